"""Lossless conversion between published Parquet shards (with embedded image bytes) and WebDataset tars.

Parquet -> WebDataset: each row becomes ``KEY.json`` (the four columns as JSON strings) plus ``KEY.images.tar``
holding ``<pos>.<ext>`` for every non-null ``image_bytes[pos]`` (ext from ``metadata[pos]["format"]`` or sniffed
from the bytes); the layout is described in ``wds.py``.  WebDataset -> Parquet: the inverse; ``metadata`` and
``general_metadata`` are copied as stored (tars of the earlier layout, with native JSON values, are serialised
compactly in key order, exactly as the builder writes them), and ``image_bytes`` is added when any sample carries
image files.  Sample keys are renumbered ``d0000000, d0000001, ...`` in input order (keys carry no content).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .shards import (DEFAULT_SHARD_SIZE, ParquetShardWriter, TarShardWriter, image_ext, iter_parquet_rows,
                     iter_tar_samples, parquet_shards, parse_size, sample_key, tar_shards)


class ConvertError(ValueError):
    pass


def detect_format(src: str | Path) -> str:
    """``parquet`` or ``webdataset`` from what ``src`` holds (a file or a folder)."""
    p = Path(src)
    if not p.exists():
        raise ConvertError(f"{src}: no such file or folder")
    has_pq, has_tar = bool(parquet_shards(p)), bool(tar_shards(p))
    if has_pq and not has_tar:
        return "parquet"
    if has_tar and not has_pq:
        return "webdataset"
    if has_pq and has_tar:
        raise ConvertError(f"{src} holds both Parquet and tar shards: pass --to parquet|webdataset")
    raise ConvertError(f"{src}: no .parquet or .tar shards found")


def _tars_have_images(src: str | Path) -> bool:
    return any(images for _k, _row, images in iter_tar_samples(src))


def _metadata_list(text: str | None) -> list:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def parquet_to_webdataset(src: str | Path, dst: str | Path, shard_size: int | str = DEFAULT_SHARD_SIZE) -> dict:
    writer = TarShardWriter(dst, parse_size(shard_size))
    n = n_img = 0
    try:
        for row in iter_parquet_rows(src):
            metadata = _metadata_list(row["metadata"])
            files = {}
            for pos, data in enumerate(row.get("image_bytes") or []):
                if data is not None:
                    meta = metadata[pos] if pos < len(metadata) and isinstance(metadata[pos], dict) else {}
                    files[pos] = (data, image_ext(meta.get("format"), data))
            doc = {"texts": row["texts"] or [], "images": row["images"] or [],
                   "metadata": row["metadata"] or "[]", "general_metadata": row["general_metadata"] or "{}"}
            writer.write(sample_key(n), doc, files)
            n += 1
            n_img += len(files)
        shards = writer.finish()
    except BaseException:
        writer.abort()
        raise
    return {"documents": n, "image_files": n_img, "shards": [str(s.path) for s in shards]}


def webdataset_to_parquet(src: str | Path, dst: str | Path, shard_size: int | str = DEFAULT_SHARD_SIZE,
                          embed_images: bool | None = None) -> dict:
    embed = _tars_have_images(src) if embed_images is None else embed_images
    writer = ParquetShardWriter(dst, parse_size(shard_size), embed_images=embed)
    n = n_img = 0
    skipped: Counter = Counter()
    try:
        for key, row, images in iter_tar_samples(src, skipped):
            if embed:
                row["image_bytes"] = [images[i][0] if i in images else None for i in range(len(row["texts"]))]
            writer.write(row)
            n += 1
            n_img += len(images)
        shards = writer.finish()
    except BaseException:
        writer.abort()
        raise
    return {"documents": n, "image_files": n_img, "skipped": dict(skipped),
            "shards": [str(s.path) for s in shards]}


def convert(src: str | Path, dst: str | Path, to: str | None = None, shard_size: int | str = DEFAULT_SHARD_SIZE) -> dict:
    """Convert ``src`` shards to the other format into folder ``dst``; returns counts and the shard paths."""
    if to is None:
        to = "webdataset" if detect_format(src) == "parquet" else "parquet"
    if to not in ("parquet", "webdataset"):
        raise ConvertError(f"--to must be parquet or webdataset, not {to!r}")
    Path(dst).mkdir(parents=True, exist_ok=True)
    if to == "webdataset":
        if not parquet_shards(src):
            raise ConvertError(f"{src}: no Parquet shards to convert")
        return {"to": to, **parquet_to_webdataset(src, dst, shard_size)}
    if not tar_shards(src):
        raise ConvertError(f"{src}: no tar shards to convert")
    return {"to": to, **webdataset_to_parquet(src, dst, shard_size)}
