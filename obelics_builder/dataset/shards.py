"""Final shards: Parquet in the published OBELICS schema (for the Hub) and WebDataset tars (for training).

``OUT/dataset/`` layout::

    data/train-NNNNN-of-MMMMM.parquet   images, metadata, general_metadata, texts  (+ image_bytes with embed_images)
    webdataset/train-NNNNN.tar          per document KEY.json and KEY.images.tar (layout: ``wds.py``)
    shards.json                         the shard list (file, rows, bytes, sha256) and the counts
    README.md, funnel.png               the dataset card (``card.py``)

Shards are sized by a target in bytes (a shard is closed after the row group / sample that reaches it), written
under temporary names and renamed only when every shard is complete (Parquet names carry the total).  Output is
deterministic: the same documents and images give the same bytes (tar members have fixed mtime/uid/gid/mode).

WebDataset sample: key ``d`` + the 0-based document index (7+ digits, no dots), members ``KEY.json`` (the four
OBELICS columns, each a JSON string) and ``KEY.images.tar`` (the image files ``<pos>.<ext>``, ext from the image
format: jpg, png, webp, gif...); see ``wds.py`` for why.  Image positions whose bytes are unavailable are still
listed in ``images``; only the file is missing.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import OBELICS_ARROW_SCHEMA, OBELICS_COLUMNS
from .image_bytes import ImageBytes
from .wds import COPY_BUFSIZE, SampleError, decode_sample, encode_sample

DEFAULT_SHARD_SIZE = 500 * 10**6

#: Parquet schema of the published shards, and the variant with image bytes.
PUBLISHED_SCHEMA = OBELICS_ARROW_SCHEMA
EMBEDDED_SCHEMA = OBELICS_ARROW_SCHEMA.append(pa.field("image_bytes", pa.list_(pa.binary())))

PARQUET_NAME = re.compile(r"^train-(\d{5})-of-(\d{5})\.parquet$")
TAR_NAME = re.compile(r"^train-(\d{5})\.tar$")

#: image format (as Pillow names it, lower case) -> file extension in the tars
FORMAT_EXT = {"jpeg": "jpg", "jpg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "bmp": "bmp",
              "tiff": "tif", "tif": "tif", "avif": "avif", "heif": "heif", "ico": "ico"}

#: the tokenizer the card's token counts use: Unicode word runs and single punctuation marks
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
TOKENIZER_NAME = "regex word tokenizer `\\w+|[^\\w\\s]` (Unicode word runs and single punctuation marks)"


def count_tokens(texts: Iterable[str | None]) -> int:
    return sum(len(TOKEN_RE.findall(t)) for t in texts if t)


def parse_size(text: str | int) -> int:
    """``500MB`` / ``1.5GB`` / ``64MiB`` / ``1000`` -> bytes (KB/MB/GB/TB decimal, KiB/MiB/GiB binary)."""
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", str(text).lower())
        if not m:
            raise ValueError(f"not a size: {text!r} (e.g. 500MB, 2GB, 64MiB, 1000000)")
        unit = m.group(2).rstrip("b")
        mult = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
                "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}.get(unit)
        if mult is None:
            raise ValueError(f"unknown size unit in {text!r}")
        value = int(float(m.group(1)) * mult)
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return value


def image_ext(fmt: str | None, data: bytes | None = None) -> str:
    """File extension for an image: from its format name, else sniffed from the bytes, else ``bin``."""
    if fmt:
        ext = FORMAT_EXT.get(str(fmt).lower())
        if ext:
            return ext
    if data:
        if data[:3] == b"\xff\xd8\xff":
            return "jpg"
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return "png"
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "webp"
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return "gif"
        if data[:2] == b"BM":
            return "bmp"
    if fmt and re.fullmatch(r"[a-z0-9]{1,8}", str(fmt).lower()):
        return str(fmt).lower()
    return "bin"


# ---------------------------------------------------------------------------------------------------------------
# Inputs: final documents and the image table
# ---------------------------------------------------------------------------------------------------------------

def document_parts(out: str | Path) -> list[Path]:
    """The complete ``OUT/documents/part-*.parquet`` files, in order.

    When the folder has completion markers (``_done/``), a part without its marker is incomplete and skipped.
    """
    folder = Path(out) / "documents"
    parts = sorted(folder.glob("part-*.parquet"))
    done = folder / "_done"
    if done.is_dir():
        parts = [p for p in parts if (done / f"{p.stem}.json").exists()]
    return parts


def iter_rows(out: str | Path, batch_size: int = 256) -> Iterator[list[dict]]:
    """Batches of published rows from ``OUT/documents``: ``images`` (list), ``texts`` (list) and the two JSON
    columns kept as the strings they are on disk (no re-serialisation)."""
    for path in document_parts(out):
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_size, columns=list(OBELICS_COLUMNS)):
            cols = batch.to_pydict()
            yield [
                {
                    "images": cols["images"][i] or [],
                    "metadata": cols["metadata"][i] or "[]",
                    "general_metadata": cols["general_metadata"][i] or "{}",
                    "texts": cols["texts"][i] or [],
                }
                for i in range(batch.num_rows)
            ]


# ---------------------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class ShardInfo:
    path: Path
    rows: int = 0
    bytes: int = 0
    sha256: str = ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ParquetShardWriter:
    """Rows -> ``folder/.train-NNNNN.parquet.tmp`` files of about ``target_bytes`` each; ``finish()`` renames them
    to ``train-NNNNN-of-MMMMM.parquet`` (and removes shards of an earlier run that are not part of this one)."""

    def __init__(self, folder: str | Path, target_bytes: int = DEFAULT_SHARD_SIZE, embed_images: bool = False,
                 compression: str = "zstd", max_rows_per_group: int = 10_000) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.target = int(target_bytes)
        self.schema = EMBEDDED_SCHEMA if embed_images else PUBLISHED_SCHEMA
        self.embed = embed_images
        self.compression = compression
        # a row group is flushed at this many (Arrow, uncompressed) bytes, so a shard overshoots its target by
        # at most one row group
        self.group_bytes = max(1 << 12, min(self.target // 8, 64 << 20))
        self.max_rows = max_rows_per_group
        self.pending: list[dict] = []
        self.pending_bytes = 0
        self.writer: pq.ParquetWriter | None = None
        self.current: ShardInfo | None = None
        self.shards: list[ShardInfo] = []
        self.nbytes = 0  # Arrow bytes written (the card's dataset_size)

    def _tmp(self, i: int) -> Path:
        return self.folder / f".train-{i:05d}.parquet.tmp"

    def write(self, row: dict) -> None:
        """``row``: images, metadata (JSON str), general_metadata (JSON str), texts [, image_bytes]."""
        self.pending.append(row)
        self.pending_bytes += (sum(len(t) for t in row["texts"] if t) + sum(len(u) for u in row["images"] if u)
                               + len(row["metadata"]) + len(row["general_metadata"])
                               + sum(len(b) for b in (row.get("image_bytes") or []) if b))
        if self.pending_bytes >= self.group_bytes or len(self.pending) >= self.max_rows:
            self._flush()

    def _table(self, rows: list[dict]) -> pa.Table:
        arrays = [
            pa.array([r["images"] for r in rows], pa.list_(pa.string())),
            pa.array([r["metadata"] for r in rows], pa.string()),
            pa.array([r["general_metadata"] for r in rows], pa.string()),
            pa.array([r["texts"] for r in rows], pa.list_(pa.string())),
        ]
        if self.embed:
            arrays.append(pa.array([r.get("image_bytes") or [None] * len(r["texts"]) for r in rows],
                                   pa.list_(pa.binary())))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _open(self) -> None:
        i = len(self.shards)
        self.current = ShardInfo(self._tmp(i))
        self.writer = pq.ParquetWriter(self.current.path, self.schema, compression=self.compression)

    def _close_current(self) -> None:
        if self.writer is not None and self.current is not None:
            self.writer.close()
            self.current.bytes = self.current.path.stat().st_size
            self.shards.append(self.current)
        self.writer = None
        self.current = None

    def _flush(self) -> None:
        if not self.pending:
            return
        table = self._table(self.pending)
        self.pending, self.pending_bytes = [], 0
        if self.writer is None:
            self._open()
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.current.rows += table.num_rows
        self.nbytes += table.nbytes
        if self.current.path.stat().st_size >= self.target:
            self._close_current()

    def finish(self) -> list[ShardInfo]:
        self._flush()
        self._close_current()
        if not self.shards:  # no rows: one valid, empty shard so loaders see the schema
            self._open()
            self._close_current()
        total = len(self.shards)
        final = [self.folder / f"train-{i:05d}-of-{total:05d}.parquet" for i in range(total)]
        return _publish_shards(self.shards, final, self.folder, "train-*.parquet")

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:
                pass
        for s in self.shards + ([self.current] if self.current else []):
            s.path.unlink(missing_ok=True)


class TarShardWriter:
    """WebDataset samples -> ``folder/.train-NNNNN.tar.tmp`` of about ``target_bytes``; ``finish()`` renames them
    to ``train-NNNNN.tar``.  Members have fixed metadata so the same samples give the same bytes."""

    def __init__(self, folder: str | Path, target_bytes: int = DEFAULT_SHARD_SIZE) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.target = int(target_bytes)
        self.tar: tarfile.TarFile | None = None
        self.fileobj = None
        self.current: ShardInfo | None = None
        self.shards: list[ShardInfo] = []

    def _open(self) -> None:
        i = len(self.shards)
        self.current = ShardInfo(self.folder / f".train-{i:05d}.tar.tmp")
        self.fileobj = open(self.current.path, "wb")
        self.tar = tarfile.open(fileobj=self.fileobj, mode="w", format=tarfile.USTAR_FORMAT)
        self.tar.copybufsize = COPY_BUFSIZE  # a member's bytes in one read and one write, not 16 KB steps

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self.tar.addfile(info, io.BytesIO(data))

    def write(self, key: str, row: dict, images: dict[int, tuple[bytes, str]]) -> None:
        """``row`` in Parquet form: texts, images (lists), metadata, general_metadata (JSON strings);
        ``images``: pos -> (bytes, ext).  Writes ``KEY.json`` and ``KEY.images.tar``."""
        if "." in key or "/" in key:
            raise ValueError(f"a WebDataset key must not contain dots or slashes: {key!r}")
        if self.tar is None:
            self._open()
        for suffix, data in encode_sample(row, images).items():
            self._add(f"{key}.{suffix}", data)
        self.current.rows += 1
        if self.fileobj.tell() >= self.target:
            self._close_current()

    def _close_current(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.fileobj.close()
            self.current.bytes = self.current.path.stat().st_size
            self.shards.append(self.current)
        self.tar = self.fileobj = self.current = None

    def finish(self) -> list[ShardInfo]:
        self._close_current()
        if not self.shards:
            self._open()
            self._close_current()
        final = [self.folder / f"train-{i:05d}.tar" for i in range(len(self.shards))]
        return _publish_shards(self.shards, final, self.folder, "train-*.tar")

    def abort(self) -> None:
        if self.tar is not None:
            try:
                self.tar.close()
                self.fileobj.close()
            except Exception:
                pass
        for s in self.shards + ([self.current] if self.current else []):
            s.path.unlink(missing_ok=True)


def sample_key(index: int) -> str:
    return f"d{index:07d}"


# ---------------------------------------------------------------------------------------------------------------
# write_dataset
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class DatasetSummary:
    documents: int = 0
    images: int = 0  # image positions
    images_with_bytes: int = 0  # image positions whose bytes were available (in the tars / image_bytes)
    text_positions: int = 0
    tokens: int = 0
    parquet: list[ShardInfo] = field(default_factory=list)
    webdataset: list[ShardInfo] = field(default_factory=list)
    arrow_bytes: int = 0
    embed_images: bool = False
    shard_size_bytes: int = DEFAULT_SHARD_SIZE

    def to_dict(self, root: Path) -> dict:
        def files(shards):
            return [{"path": s.path.relative_to(root).as_posix(), "rows": s.rows, "bytes": s.bytes,
                     "sha256": s.sha256} for s in shards]

        return {
            "documents": self.documents,
            "images": self.images,
            "images_with_bytes": self.images_with_bytes,
            "text_positions": self.text_positions,
            "tokens": self.tokens,
            "tokenizer": TOKENIZER_NAME,
            "arrow_bytes": self.arrow_bytes,
            "embed_images": self.embed_images,
            "shard_size_bytes": self.shard_size_bytes,
            "parquet": files(self.parquet),
            "webdataset": files(self.webdataset),
        }


def _publish_shards(shards: list, final: list[Path], folder: Path, pattern: str) -> list:
    """Move complete shards (temporary names) to their final names; remove shards of an earlier build that this
    build no longer has."""
    keep = {p.name for p in final}
    for old in folder.glob(pattern):
        if old.name not in keep:
            old.unlink()
    for s, dst in zip(shards, final):
        os.replace(s.path, dst)
        s.path = dst
        s.sha256 = _sha256(dst)
    return shards


def write_dataset(out: str | Path, shard_size_bytes: int | str = DEFAULT_SHARD_SIZE, embed_images: bool = False,
                  webdataset: bool = True, card: bool = True, license: str | None = None, engine=None) -> dict:
    """Write ``OUT/dataset/`` from ``OUT/documents`` and ``OUT/images/table``; returns the ``shards.json`` content.

    The image bytes are looked up by URL in buckets by URL hash (:mod:`.image_bytes`), built first on ``engine``
    (an :class:`~obelics_builder.engine.Engine`; None: in this process): memory is a batch of documents and their
    images, whatever the size of the run.

    With ``card`` (default) also writes the dataset card ``README.md`` and ``funnel.png`` (needs ``OUT/stats.json``;
    without it the card says so).
    """
    out = Path(out)
    target = parse_size(shard_size_bytes)
    root = out / "dataset"
    root.mkdir(parents=True, exist_ok=True)
    need_bytes = embed_images or webdataset
    with ImageBytes(out, engine) if need_bytes else contextlib.nullcontext() as store:
        result = _write_shards(out, root, target, store, embed_images, webdataset)
    from ..io.markers import write_json_atomic

    write_json_atomic(root / "shards.json", result)
    if card:
        from .card import write_card

        write_card(out, result, license=license)
    from .stale import clear_stale

    clear_stale(out)  # rebuilt from the current documents
    return result


def _write_shards(out: Path, root: Path, target: int, store, embed_images: bool, webdataset: bool) -> dict:
    pq_writer = ParquetShardWriter(root / "data", target, embed_images=embed_images)
    tar_writer = TarShardWriter(root / "webdataset", target) if webdataset else None
    summary = DatasetSummary(embed_images=embed_images, shard_size_bytes=target)
    try:
        for rows in iter_rows(out):
            found = store.get_many(u for r in rows for u in r["images"] if u) if store is not None else {}
            for row in rows:
                texts, images = row["texts"], row["images"]
                n_img = sum(1 for u in images if u is not None)
                summary.documents += 1
                summary.images += n_img
                summary.text_positions += sum(1 for t in texts if t is not None)
                summary.tokens += count_tokens(texts)
                pos_bytes = {i: found[u] for i, u in enumerate(images) if u is not None and u in found}
                summary.images_with_bytes += len(pos_bytes)
                if embed_images:
                    row = {**row, "image_bytes": [pos_bytes[i][0] if i in pos_bytes else None
                                                  for i in range(len(texts))]}
                pq_writer.write(row)
                if tar_writer is not None:
                    files = {i: (b, image_ext(fmt, b)) for i, (b, fmt) in pos_bytes.items()}
                    tar_writer.write(sample_key(summary.documents - 1), row, files)
        summary.parquet = pq_writer.finish()
        summary.arrow_bytes = pq_writer.nbytes
        if tar_writer is not None:
            summary.webdataset = tar_writer.finish()
    except BaseException:
        pq_writer.abort()
        if tar_writer is not None:
            tar_writer.abort()
        raise
    if not webdataset:  # tars of an earlier run would describe other documents
        for old in (root / "webdataset").glob("train-*.tar"):
            old.unlink()
    return summary.to_dict(root)


# ---------------------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------------------

def parquet_shards(path: str | Path) -> list[Path]:
    """Parquet shard files of a dataset folder (``OUT/dataset``, its ``data/``) or a single file."""
    p = Path(path)
    if p.is_file():
        return [p]
    if (p / "data").is_dir():
        p = p / "data"
    return sorted(f for f in p.glob("*.parquet") if not f.name.startswith("."))


def tar_shards(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if (p / "webdataset").is_dir():
        p = p / "webdataset"
    return sorted(f for f in p.glob("*.tar") if not f.name.startswith("."))


def iter_parquet_rows(path: str | Path, batch_size: int = 256) -> Iterator[dict]:
    """Rows of published Parquet shards: images, metadata (str), general_metadata (str), texts [, image_bytes]."""
    for f in parquet_shards(path):
        pf = pq.ParquetFile(f)
        cols = [c for c in (*OBELICS_COLUMNS, "image_bytes") if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=batch_size, columns=cols):
            d = batch.to_pydict()
            for i in range(batch.num_rows):
                yield {c: d[c][i] for c in cols}


def iter_tar_samples(path: str | Path, counts: Counter | None = None
                     ) -> Iterator[tuple[str, dict, dict[int, tuple[bytes, str]]]]:
    """``(key, row, {pos: (bytes, ext)})`` from WebDataset tars, in file order; ``row`` in Parquet form (texts and
    images lists, metadata and general_metadata JSON strings).

    Members are grouped by key (the name up to the first dot); ``wds.decode_sample`` reads the group (this layout or
    the earlier one).  A group that is not a valid sample is skipped and counted in ``counts`` under its reason;
    a file that is not a tar raises SampleError (a ValueError).
    """
    counts = counts if counts is not None else Counter()

    def done(key, members):
        try:
            row, images = decode_sample(members)
        except SampleError as e:
            counts[e.reason] += 1
            return None
        return key, row, images

    for f in tar_shards(path):
        try:
            with tarfile.open(f, "r") as tar:
                key, members = None, {}
                for m in tar:
                    if not m.isfile():
                        continue
                    name = m.name.rsplit("/", 1)[-1]
                    k, _, rest = name.partition(".")
                    if k != key:
                        if key is not None and (s := done(key, members)) is not None:
                            yield s
                        key, members = k, {}
                    members[rest] = tar.extractfile(m).read()
                if key is not None and (s := done(key, members)) is not None:
                    yield s
        except (tarfile.TarError, EOFError) as e:
            raise SampleError(f"{f}: not a readable tar shard ({str(e).splitlines()[-1].strip('- ')})") from e
