"""Image-text pair sets as training sources (LAION- and PMD-style), read into the trainer's documents.

Two layouts, as those sets are distributed:

* **WebDataset tars**: one sample per key with an image member (``KEY.jpg`` / ``.png`` / ``.jpeg`` / ``.webp``) and
  its caption (``KEY.txt``); other members (``KEY.json`` metadata) are ignored.  This is what img2dataset writes.
* **Parquet** with the image bytes in a column (``jpg``, ``png``, ``image``, ``image_bytes``, ``img``; a binary
  column or a ``{bytes, path}`` struct as Hugging Face ``datasets`` stores an ``Image`` feature) and the caption in
  another (``caption``, ``txt``, ``text``, ``TEXT``).  Other column names are given with ``image_column`` /
  ``caption_column``.

A pair becomes a two-item document, the image then its caption (``[("image", bytes), ("text", caption)]``), so the
arch's renderer lays it out as the papers train on pairs: BOS, the image's token run, the caption, EOS.  A sample
without a decodable image member or with an empty caption is an empty document (counted ``pair_without_image`` /
``pair_without_caption``, then ``empty_document`` by the stream), so shard offsets and cursors stay exact.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterator

from .data import IMAGE_EXTS, DataError, RawDoc, _kind, _open, parquet_rows_from, tar_samples

IMAGE_COLUMNS = ("jpg", "png", "image", "image_bytes", "img", "jpeg", "webp")
CAPTION_COLUMNS = ("caption", "txt", "text", "TEXT", "Caption")
PAIR_IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class PairReader:
    """A picklable ``(path, start, counts) -> RawDocs`` reader for ``StreamConfig.reader``."""
    image_column: str | None = None
    caption_column: str | None = None

    def __call__(self, path: str, start: int, counts: Counter) -> Iterator[RawDoc]:
        kind = _kind(path)
        if kind == "tar":
            return iter_pair_tar(path, start, counts, caption_suffix=self.caption_column or "txt")
        if kind == "parquet":
            return iter_pair_parquet(path, start, counts, self.image_column, self.caption_column)
        raise DataError(f"{path}: not a .tar or .parquet shard")


def _caption(raw) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return str(raw).strip() if raw is not None else ""


def _pair(path: str, offset: int, key: str, image: bytes | None, caption: str, counts: Counter) -> RawDoc:
    if not image:
        counts["pair_without_image"] += 1
        return RawDoc(path, offset, key, [])
    if not caption:
        counts["pair_without_caption"] += 1
        return RawDoc(path, offset, key, [])
    return RawDoc(path, offset, key, [("image", image), ("text", caption)])


def iter_pair_tar(path: str, start: int, counts: Counter, caption_suffix: str = "txt") -> Iterator[RawDoc]:
    for offset, key, members in tar_samples(path, start, counts):
        image = next((members[s] for s in PAIR_IMAGE_SUFFIXES if members.get(s)), None)
        if image is None:
            image = next((b for s, b in members.items() if s.lower() in IMAGE_EXTS and b), None)
        yield _pair(path, offset, key, image, _caption(members.get(caption_suffix)), counts)


def pair_columns(schema, path: str, image_column: str | None = None,
                 caption_column: str | None = None) -> tuple[str, str]:
    """The (image, caption) column names of a pair parquet's arrow ``schema`` (DataError when there are none)."""
    import pyarrow as pa

    names = list(schema.names)

    def holds_bytes(name: str) -> bool:
        t = schema.field(name).type
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return True
        return pa.types.is_struct(t) and any(t.field(i).name == "bytes" for i in range(t.num_fields))

    def pick(given, candidates, ok, what):
        if given is not None:
            if given not in names:
                raise DataError(f"{path}: no {what} column {given!r} (columns: {', '.join(names)})")
            if not ok(given):
                raise DataError(f"{path}: column {given!r} does not hold {what}s")
            return given
        for c in candidates:
            if c in names and ok(c):
                return c
        raise DataError(f"{path}: not an image-text pair parquet: no {what} column (looked for "
                        f"{', '.join(candidates)}; columns: {', '.join(names)}); name it with "
                        f"{'image_column' if what == 'image' else 'caption_column'}=...")

    def is_text(name: str) -> bool:
        t = schema.field(name).type
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    return (pick(image_column, IMAGE_COLUMNS, holds_bytes, "image"),
            pick(caption_column, CAPTION_COLUMNS, is_text, "caption"))


def iter_pair_parquet(path: str, start: int, counts: Counter, image_column: str | None = None,
                      caption_column: str | None = None) -> Iterator[RawDoc]:
    import pyarrow.parquet as pq

    with _open(path) as f:
        pf = pq.ParquetFile(f)
        icol, ccol = pair_columns(pf.schema_arrow, path, image_column, caption_column)
        for off, t, i in parquet_rows_from(pf, start, [icol, ccol]):
            im = t[icol][i]
            if isinstance(im, dict):
                im = im.get("bytes")
            yield _pair(path, off, f"row{off}", im, _caption(t[ccol][i]), counts)


def detect_kind(shard: str) -> str:
    """``"docs"`` (an OBELICS shard) or ``"pairs"`` (an image-text pair shard), from its first sample / schema."""
    kind = _kind(shard)
    if kind == "parquet":
        import pyarrow.parquet as pq

        with _open(shard) as f:
            schema = pq.ParquetFile(f).schema_arrow
        if {"texts", "images"} <= set(schema.names):
            return "docs"
        pair_columns(schema, shard)  # raises with the columns it looked for
        return "pairs"
    if kind == "tar":
        for _, _, members in tar_samples(shard, 0, Counter()):
            suffixes = {s.lower() for s in members}
            if suffixes & set(PAIR_IMAGE_SUFFIXES):  # OBELICS samples keep images in KEY.images.tar
                return "pairs"
            if "json" in suffixes:
                return "docs"
            raise DataError(f"{shard}: neither an OBELICS WebDataset shard (KEY.json) nor an image-text pair shard "
                            f"(KEY.jpg/png + KEY.txt); its first sample has {', '.join(sorted(members))}")
        raise DataError(f"{shard}: an empty or unreadable tar")
    raise DataError(f"{shard}: not a .tar or .parquet shard")
