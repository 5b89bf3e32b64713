"""Streaming training data: shard discovery, WebDataset/Parquet readers, a rank/worker split, block shuffling,
rendering + packing, and a resumable cursor.

Stream layout.  Each *consumer* (one per rank x loader worker) reads its own slice of the shard list: shard ``i`` of
the epoch's (seeded) shard order goes to consumer ``i % n`` when there are at least as many shards as consumers;
otherwise every consumer reads every shard and keeps the documents whose ``(offset + i) % n`` is its index.
Documents are taken in *blocks* of ``shuffle_buffer`` documents; a block is shuffled with a seed derived from its
start position, its images decoded and laid out by the arch's image processor (``images.ImagePrep``), rendered,
split and packed into rows (crop-aware).  Rows are batched in order; pixels are computed by the image processor
when a batch is collated.

Cursor.  ``{"epoch", "shard_pos", "shard", "offset", "rows_done"}``: the block starts at document ``offset`` of shard
``shard`` (position ``shard_pos`` of the consumer's shard order in ``epoch``), and ``rows_done`` of its packed rows
were already consumed.  Re-reading that block reproduces the same rows, so a resumed run sees exactly the batches an
uninterrupted run would have seen.
"""
from __future__ import annotations

import glob as _glob
import hashlib
import logging
import random
import tarfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..dataset.wds import SampleError, decode_sample
from .images import ImagePrep, default_image_processor
from .pack import collate, pack_documents
from .render import ArchSpec, RenderedDoc, document_segments, render_segments, split_document
from .tokenizer import TokenIds

log = logging.getLogger(__name__)

IMAGE_EXTS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"}


class DataError(RuntimeError):
    """Unusable training input (no shards, parquet without image bytes, no usable document...)."""


# ----------------------------------------------------------------------------------------------- shard discovery

def resolve_shards(specs: list[str] | str) -> list[str]:
    """``--data`` values -> a sorted, de-duplicated shard list.  A crawl output folder OUT gives
    ``OUT/dataset/webdataset/*.tar`` if present, else ``OUT/dataset/data/*.parquet``; a folder of shards gives its
    tars (else parquets); globs and fsspec URLs are expanded; explicit files are kept."""
    if isinstance(specs, str):
        specs = [specs]
    out: list[str] = []
    for spec in specs:
        if "://" not in spec and Path(spec).is_dir():
            d = Path(spec)
            found: list[str] = []
            for base in (d / "dataset" / "webdataset", d / "webdataset", d):
                found = sorted(str(p) for p in base.glob("*.tar"))
                if found:
                    break
            if not found:
                for base in (d / "dataset" / "data", d / "data", d):
                    found = sorted(str(p) for p in base.glob("*.parquet"))
                    if found:
                        break
            if not found:
                raise DataError(f"{spec}: no training shards (looked for dataset/webdataset/*.tar and "
                                f"dataset/data/*.parquet)")
            out.extend(found)
        elif any(c in spec for c in "*?["):
            if "://" in spec:
                import fsspec
                fs, _, paths = fsspec.get_fs_token_paths(spec)
                proto = spec.split("://", 1)[0]
                out.extend(sorted(f"{proto}://{p}" if "://" not in p else p for p in paths))
            else:
                out.extend(sorted(_glob.glob(spec)))
        else:
            out.append(spec)
    seen, shards = set(), []
    for s in out:
        if s not in seen and _kind(s):
            seen.add(s)
            shards.append(s)
        elif s not in seen:
            raise DataError(f"{s}: not a .tar or .parquet shard")
    if not shards:
        raise DataError(f"no training shards found in {specs}")
    return shards


def _kind(path: str) -> str | None:
    p = path.split("?", 1)[0]
    if p.endswith(".tar") or p.endswith(".tar.gz") or p.endswith(".tgz"):
        return "tar"
    if p.endswith(".parquet"):
        return "parquet"
    return None


def _open(path: str):
    if "://" in path:
        import fsspec
        return fsspec.open(path, "rb").open()
    return open(path, "rb")


# ----------------------------------------------------------------------------------------------- readers

@dataclass
class RawDoc:
    """One document as read: items ``("text", str)`` / ``("image", bytes)`` in order (missing images dropped)."""
    shard: str
    offset: int
    key: str
    items: list[tuple[str, Any]]


def _doc_from_lists(texts, images, blobs, shard, offset, key, counts: Counter) -> RawDoc:
    items: list[tuple[str, Any]] = []
    n = max(len(texts or []), len(images or []))
    for i in range(n):
        t = texts[i] if texts and i < len(texts) else None
        u = images[i] if images and i < len(images) else None
        if t is not None and t != "":
            items.append(("text", str(t)))
        elif u is not None:
            b = blobs.get(i)
            if b:
                items.append(("image", b))
            else:
                counts["image_missing"] += 1
    return RawDoc(shard=shard, offset=offset, key=key, items=items)


def tar_samples(path: str, start: int, counts: Counter) -> Iterator[tuple[int, str, dict[str, bytes]]]:
    """``(offset, key, {suffix: bytes})`` of a WebDataset tar, members grouped by key (the name up to the first dot
    of the base name), from sample ``start`` (earlier samples are skipped without reading their payload).  An
    unreadable tar ends the shard (counted ``unreadable_shard``)."""
    offset = -1
    cur_key, members = None, {}
    try:
        with _open(path) as f, tarfile.open(fileobj=f, mode="r|*") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                d, _, base = m.name.rpartition("/")
                key, dot, suffix = base.partition(".")
                if not dot:
                    counts["tar_member_without_suffix"] += 1
                    continue
                key = f"{d}/{key}" if d else key
                if key != cur_key:
                    if cur_key is not None and offset >= start:
                        yield offset, cur_key, members
                    offset += 1
                    cur_key, members = key, {}
                if offset < start:
                    continue  # skip without reading the payload
                fh = tf.extractfile(m)
                members[suffix] = fh.read() if fh is not None else b""
            if cur_key is not None and offset >= start:
                yield offset, cur_key, members
    except (tarfile.TarError, OSError, EOFError) as e:
        counts["unreadable_shard"] += 1
        log.warning("%s: unreadable tar after sample %d: %s", path, offset, e)


def iter_tar(path: str, start: int, counts: Counter) -> Iterator[RawDoc]:
    """WebDataset shard: ``KEY.json`` holds texts/images/metadata, ``KEY.images.tar`` the image files
    ``<pos>.<ext>`` (the layout of ``obelics_builder.dataset.wds``; the earlier ``KEY.<pos>.<ext>`` members are read
    too).  Yields from sample ``start``."""
    for offset, key, members in tar_samples(path, start, counts):
        if "json" not in members:
            counts["sample_without_json"] += 1
            yield RawDoc(path, offset, key, [])
            continue
        try:
            row, images = decode_sample(members)
        except SampleError as e:
            counts[e.reason] += 1
            log.debug("%s %s: bad sample: %s", path, key, e)
            yield RawDoc(path, offset, key, [])
            continue
        blobs = {pos: data for pos, (data, ext) in images.items() if ext.lower() in IMAGE_EXTS}
        yield _doc_from_lists(row["texts"], row["images"], blobs, path, offset, key, counts)


def iter_parquet(path: str, start: int, counts: Counter) -> Iterator[RawDoc]:
    """OBELICS parquet with an ``image_bytes`` column (without it the shard cannot train: DataError)."""
    import pyarrow.parquet as pq

    with _open(path) as f:
        pf = pq.ParquetFile(f)
        names = set(pf.schema_arrow.names)
        if "image_bytes" not in names:
            raise DataError(f"{path}: this parquet shard has no image_bytes column, so it holds image URLs only and "
                            f"cannot train; write the dataset with embedded images or train on its WebDataset tars "
                            f"(OUT/dataset/webdataset)")
        if not {"texts", "images"} <= names:
            raise DataError(f"{path}: not an OBELICS parquet shard (needs texts, images, image_bytes columns)")
        for off, t, i in parquet_rows_from(pf, start, ["texts", "images", "image_bytes"]):
            blobs = {j: b for j, b in enumerate(t["image_bytes"][i] or []) if b}
            yield _doc_from_lists(t["texts"][i], t["images"][i], blobs, path, off, f"row{off}", counts)


def parquet_rows_from(pf, start: int, columns: list[str]) -> Iterator[tuple[int, dict, int]]:
    """The rows of a Parquet file from row ``start`` on, as ``(offset, row group as a dict of lists, index in it)``;
    row groups before ``start`` are not read (a resumed cursor skips them)."""
    row0 = 0
    for rg in range(pf.num_row_groups):
        n = pf.metadata.row_group(rg).num_rows
        if row0 + n > start:
            t = pf.read_row_group(rg, columns=columns).to_pydict()
            for i in range(max(0, start - row0), n):
                yield row0 + i, t, i
        row0 += n


def consumer_slot(rank: int, world_size: int, rotate: int) -> tuple[int, int, int]:
    """In a DataLoader worker (or the main process): ``(logical worker, consumer index, consumers)``; the
    logical worker names the cursor, rotated on resume so each cursor keeps its consumer."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    wid, W = (info.id, info.num_workers) if info else (0, 1)
    logical = (wid + rotate) % W
    return logical, rank * W + logical, world_size * W


def iter_shard(path: str, start: int, counts: Counter) -> Iterator[RawDoc]:
    kind = _kind(path)
    if kind == "tar":
        return iter_tar(path, start, counts)
    if kind == "parquet":
        return iter_parquet(path, start, counts)
    raise DataError(f"{path}: not a .tar or .parquet shard")


def sample_texts(shards: list[str], max_docs: int = 2000, max_chars: int = 4_000_000, read=None) -> list[str]:
    """Texts of the first documents of ``shards`` (for training the ``--tiny`` tokenizer); ``read(shard, start,
    counts)`` iterates a shard's documents (default :func:`iter_shard`)."""
    read = read or iter_shard
    out, n, chars, counts = [], 0, 0, Counter()
    for s in shards:
        for doc in read(s, 0, counts):
            for kind, v in doc.items:
                if kind == "text":
                    out.append(v)
                    chars += len(v)
            n += 1
            if n >= max_docs or chars >= max_chars:
                return out
    return out


# ----------------------------------------------------------------------------------------------- cursor & stream

@dataclass
class Cursor:
    epoch: int = 0
    shard_pos: int = 0
    shard: str = ""
    offset: int = 0
    rows_done: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Cursor":
        return cls(**{k: d[k] for k in ("epoch", "shard_pos", "shard", "offset", "rows_done") if k in d}) if d else cls()


@dataclass
class StreamConfig:
    shards: list[str]
    spec: ArchSpec
    tok: TokenIds
    encoder: Any                      # list[str] -> list[list[int]]
    max_seq_len: int = 256
    max_images: int = 5               # image crops per packed row (a split image counts each crop)
    batch_size: int = 2
    shuffle_buffer: int = 256         # documents per shuffled block
    reader: Any = None                # (path, start, counts) -> RawDocs; None: iter_shard (``mix`` sets pair readers)
    max_epochs: int | None = None     # stop after this many passes over the shards (None: loop forever)
    seed: int = 0
    shuffle: bool = True
    pad_to_max: bool = False
    prep: ImagePrep | None = None     # the arch's image processor (default: its default config for ``spec``)

    def __post_init__(self):
        if self.prep is None:
            self.prep = ImagePrep(self.spec, default_image_processor(self.spec))


def consumer_shards(cfg: StreamConfig, epoch: int, consumer: int, n_consumers: int) -> list[tuple[str, int | None]]:
    """(shard, stride_key) pairs this consumer reads in ``epoch``: stride_key None = whole shard, else keep docs
    with ``(offset + stride_key) % n_consumers == consumer``."""
    order = list(cfg.shards)
    if cfg.shuffle:
        random.Random(f"{cfg.seed}/{epoch}").shuffle(order)
    if len(order) >= n_consumers:
        return [(s, None) for s in order[consumer::n_consumers]]
    return [(s, i) for i, s in enumerate(order)]


class RowStream:
    """Packed rows for one consumer, starting at a cursor.  Iterating yields ``(row, cursor_after_row, counts)``."""

    def __init__(self, cfg: StreamConfig, consumer: int = 0, n_consumers: int = 1, cursor: Cursor | None = None):
        self.cfg, self.consumer, self.n = cfg, consumer, n_consumers
        self.cursor = cursor or Cursor()
        self.counts: Counter = Counter()

    # documents from a position, across shards and epochs
    def _docs(self, epoch: int, shard_pos: int, offset: int) -> Iterator[tuple[int, int, RawDoc]]:
        empty_epochs = 0
        read = self.cfg.reader or iter_shard
        while self.cfg.max_epochs is None or epoch < self.cfg.max_epochs:
            shards = consumer_shards(self.cfg, epoch, self.consumer, self.n)
            any_doc = False
            while shard_pos < len(shards):
                path, stride = shards[shard_pos]
                for doc in read(path, offset, self.counts):
                    any_doc = True
                    if stride is not None and (doc.offset + stride) % self.n != self.consumer:
                        continue
                    yield epoch, shard_pos, doc
                shard_pos, offset = shard_pos + 1, 0
            if any_doc or offset:
                empty_epochs = 0
            else:
                empty_epochs += 1
                if empty_epochs >= 2:
                    raise DataError(f"consumer {self.consumer}/{self.n}: the shards hold no documents")
            epoch, shard_pos, offset = epoch + 1, 0, 0

    def _shard_name(self, epoch: int, pos: int) -> str:
        shards = consumer_shards(self.cfg, epoch, self.consumer, self.n)
        return shards[pos][0] if pos < len(shards) else ""

    def block_rows(self, docs: list[RawDoc], block_seed: str) -> list:
        """Shuffle, decode, render, split and pack one block of documents (deterministic)."""
        cfg = self.cfg
        docs = list(docs)
        if cfg.shuffle:
            random.Random(block_seed).shuffle(docs)
        segmented = []
        for d in docs:
            items = []
            for kind, v in d.items:
                if kind == "text":
                    items.append(("text", v))
                else:
                    ref = cfg.prep.decode(v)
                    if ref is None:
                        self.counts["image_undecodable"] += 1
                    else:
                        items.append(("image", ref))
            segs = document_segments(items, cfg.spec.arch)
            if not segs:
                self.counts["empty_document"] += 1
                continue
            segmented.append((d, segs))
        encoded = iter(cfg.encoder([v for _, segs in segmented for k, v in segs if k == "text"]))
        rendered: list[RenderedDoc] = []
        for d, segs in segmented:
            segs = [(k, next(encoded) if k == "text" else v) for k, v in segs]
            rd = render_segments(segs, cfg.tok, cfg.spec, source=f"{d.shard}#{d.offset}")
            windows, dropped = split_document(rd, cfg.max_seq_len, cfg.max_images, cfg.tok.bos, cfg.tok.eos)
            self.counts.update({f"dropped_{k}": v for k, v in dropped.items()})
            rendered.extend(windows)
        return pack_documents(rendered, cfg.max_seq_len, cfg.max_images)

    def __iter__(self):
        cfg, c = self.cfg, self.cursor
        epoch, shard_pos, offset, skip = c.epoch, c.shard_pos, c.offset, c.rows_done
        docs_it = self._docs(epoch, shard_pos, offset)
        pending = None  # first doc of the next block, already pulled from the iterator
        rowless_since = epoch  # the epoch since which no block gave a row
        while True:
            block: list[RawDoc] = []
            start = (epoch, shard_pos, offset)
            if pending is not None:
                block.append(pending[2])
                pending = None
            for item in docs_it:
                if len(block) >= cfg.shuffle_buffer:
                    pending = item
                    break
                block.append(item[2])
            if pending is not None:
                nxt = (pending[0], pending[1], pending[2].offset)
            elif not block:  # the documents ran out (``max_epochs`` passes done)
                return
            else:  # this is the last block: the cursor after it is the end of the last pass
                nxt = (self.cfg.max_epochs or 0, 0, 0)
            rows = self.block_rows(block, f"{cfg.seed}/{start[0]}/{start[1]}/{start[2]}")
            self.counts["documents"] += len(block)
            if rows:
                rowless_since = nxt[0]
            elif nxt[0] >= rowless_since + 2:  # a whole epoch read and not one usable row
                drops = {k: v for k, v in self.counts.items() if k.startswith("dropped_") or k.startswith("image_")}
                raise DataError(f"consumer {self.consumer}/{self.n}: no document gives a usable row with "
                                f"--max-seq-len {cfg.max_seq_len} and {cfg.max_images} image crop(s) per row "
                                f"(rejections: {drops}); raise --max-seq-len or lower --image-longest-edge")
            name = self._shard_name(start[0], start[1])
            for i in range(skip, len(rows)):
                if i + 1 < len(rows):
                    cur = Cursor(start[0], start[1], name, start[2], i + 1)
                else:
                    cur = Cursor(nxt[0], nxt[1], self._shard_name(nxt[0], nxt[1]), nxt[2], 0)
                yield rows[i], cur
            if pending is None:
                return
            skip = 0
            epoch, shard_pos, offset = nxt


def batches(stream: RowStream, cfg: StreamConfig) -> Iterator[dict]:
    """Rows -> collated numpy batches of ``cfg.batch_size`` rows, each with the cursor after its last row and the
    rejection counts since the previous batch."""
    rows: list = []
    last_counts: Counter = Counter()
    for row, cur in stream:
        rows.append(row)
        if len(rows) == cfg.batch_size:
            b = collate(rows, cfg.spec, cfg.tok, pad_to=cfg.max_seq_len if cfg.pad_to_max else None,
                        pixels=cfg.prep.pixels)
            b["n_images"] = sum(len(r.images) for r in rows)
            b["n_crops"] = sum(r.n_crops for r in rows)
            b["n_docs"] = sum(r.n_docs for r in rows)
            b["cursor"] = cur.to_dict()
            delta = stream.counts - last_counts
            last_counts = stream.counts.copy()
            b["counts"] = dict(delta)
            yield b
            rows = []


def batch_hash(input_ids: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(input_ids, dtype=np.int64).tobytes()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- torch side

def make_dataset(cfg: StreamConfig, rank: int = 0, world_size: int = 1, cursors: dict | None = None,
                 rotate: int = 0):
    """A torch ``IterableDataset`` of collated batches (use ``DataLoader(ds, batch_size=None, num_workers=W)``)."""
    import torch
    from torch.utils.data import IterableDataset

    class PackedBatches(IterableDataset):
        def __iter__(self):
            logical, consumer, n = consumer_slot(rank, world_size, rotate)
            cur = Cursor.from_dict((cursors or {}).get(str(logical)) or (cursors or {}).get(logical))
            stream = RowStream(cfg, consumer, n, cur)
            for b in batches(stream, cfg):
                out = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in b.items()}
                out["stream"] = logical
                yield out

    return PackedBatches()
