"""The image bytes the dataset shards embed, by a keyed lookup: no index of the run's image URLs in one process.

``write_dataset`` needs, for each batch of documents, the bytes of its image URLs.  The image table is partitioned
by host (the fetch units), so instead of indexing every URL, the bytes are re-partitioned by URL hash first, in two
waves of tasks (on the engine when there is one), each holding one table part or one bucket::

    OUT/images/_bytes_by_url_hash/bucket-BBBBB.parquet   url, data, format of the URLs with url_bucket(url, B) == B,
                                                    sorted by URL, in row groups of about ``row_group_bytes``
                                                    (min/max URL statistics: a lookup reads only the groups that
                                                    can hold its URLs)

* scatter (a task per table part): the part's ``url``, ``data``, ``format`` -> one fragment per bucket;
* gather (a task per bucket): its fragments; per URL the row of the first table part (in name order) and its
  first row there, as the earlier in-memory index kept -> ``bucket-BBBBB.parquet``.

``B`` is the table's image bytes (Parquet footers) over ``bucket_bytes``; a lookup holds the row groups of one
bucket at a time (at most ``bucket_bytes``) and the bytes it returns.  The folder is built at the start of a
``write_dataset`` and removed at its end (:class:`ImageBytes` is a context manager).
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..images.join import BucketReader, bucket_path, scatter_batches
from ..io.parquet import tmp_path_for

COLUMNS = ["url", "data", "format"]


@dataclass(frozen=True)
class BytesConfig:
    #: image bytes per bucket, about (one lookup holds at most one bucket's row groups)
    bucket_bytes: int = 64 * 2 ** 20
    #: image bytes per row group of a bucket, about (a lookup reads whole row groups)
    row_group_bytes: int = 2 ** 20


def table_files(out: str | Path) -> list[Path]:
    """The image table parts whose rows can give bytes (those with a ``url`` and a ``data`` column)."""
    files = sorted((Path(out) / "images" / "table").glob("part-*.parquet"))
    return [f for f in files if {"url", "data"} <= set(pq.ParquetFile(f).schema_arrow.names)]


def data_bytes(path: Path) -> int:
    """The uncompressed size of a part's ``data`` column, from its footer."""
    md = pq.ParquetFile(path).metadata
    col = md.schema.to_arrow_schema().get_field_index("data")
    return sum(md.row_group(i).column(col).total_uncompressed_size for i in range(md.num_row_groups))


def scatter_bytes(item: tuple[int, str], dest: str, buckets: int) -> int:
    """One table part's (url, data, format) -> fragments per bucket, with the part's index and each row's order;
    read one row group at a time (:func:`~obelics_builder.images.join.scatter_batches`: memory bounded whatever
    the part's size)."""
    index, path = item
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names

    def pieces():
        order = 0
        for g in range(pf.metadata.num_row_groups):
            t = pf.read_row_group(g, columns=[c for c in COLUMNS if c in names], use_threads=False)
            if "format" not in names:
                t = t.append_column("format", pa.nulls(t.num_rows, pa.string()))
            t = t.append_column("_order", pa.array(range(order, order + t.num_rows), pa.int64()))
            t = t.append_column("_file", pa.array([index] * t.num_rows, pa.int32()))
            order += t.num_rows
            yield t.filter(pc.is_valid(t.column("url")))

    return scatter_batches(pieces(), dest, f"{index:05d}", buckets, _write)


def gather_bytes(bucket: int, dest: str, row_group_bytes: int) -> int:
    """A bucket's fragments -> ``bucket-BBBBB.parquet``: one row per URL (the first), sorted by URL."""
    folder = Path(dest) / "_scatter" / f"{bucket:05d}"
    frags = [pq.read_table(f, use_threads=False) for f in sorted(folder.glob("*.parquet"))] if folder.exists() else []
    if not frags:
        return 0
    t = pa.concat_tables(frags)
    # sorted on the light columns; the bytes are moved only when the order changes (a bucket fed by one URL-sorted
    # table part, as in a run of one fetch unit, is in order already) or a URL repeats
    order = pc.sort_indices(t.select(["url", "_file", "_order"]),
                            sort_keys=[("url", "ascending"), ("_file", "ascending"), ("_order", "ascending")])
    if not pc.all(pc.equal(order, pa.array(range(t.num_rows), pa.uint64()))).as_py():
        t = t.take(order)
    if t.num_rows > 1:  # keep the first of each URL run
        urls = t.column("url")
        same = pc.equal(urls.slice(1), urls.slice(0, t.num_rows - 1)).combine_chunks()
        if pc.any(same).as_py():
            t = t.filter(pa.concat_arrays([pa.array([True]), pc.invert(same)]))
    t = t.select(COLUMNS)
    path = bucket_path(dest, bucket)
    tmp = tmp_path_for(path)
    sizes = pc.add(pc.fill_null(pc.binary_length(t.column("data")), 0),
                   pc.fill_null(pc.binary_length(t.column("url")), 0)).to_pylist()
    with pq.ParquetWriter(tmp, t.schema, compression={"url": "zstd", "data": "none", "format": "zstd"},
                          write_statistics=["url"]) as w:
        start = acc = 0
        for i, n in enumerate(sizes):
            acc += n
            if acc >= row_group_bytes or i == t.num_rows - 1:
                w.write_table(t.slice(start, i + 1 - start))
                start, acc = i + 1, 0
    tmp.replace(path)
    shutil.rmtree(folder, ignore_errors=True)
    return t.num_rows


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    pq.write_table(table, tmp, compression={"url": "zstd", "data": "none", "format": "zstd", "_order": "zstd",
                                            "_file": "zstd"})
    tmp.replace(path)


class ImageBytes:
    """``with ImageBytes(out, engine) as store: store.get_many(urls)``: the bytes buckets of ``OUT`` built on
    entering (see the module docstring), looked up by URL, removed on leaving."""

    def __init__(self, out: str | Path, engine=None, cfg: BytesConfig = BytesConfig()) -> None:
        self.out = Path(out)
        self.folder = self.out / "images" / "_bytes_by_url_hash"
        self.engine = engine
        self.cfg = cfg
        self.reader: BucketReader | None = None

    def _run(self, fn, items, *args, desc: str):
        if self.engine is None:
            return [fn(i, *args) for i in items]
        return self.engine.map(fn, items, *args, desc=desc)

    def __enter__(self) -> "ImageBytes":
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        files = table_files(self.out)
        buckets = max(1, math.ceil(sum(data_bytes(f) for f in files) / self.cfg.bucket_bytes))
        self._run(scatter_bytes, [(i, str(f)) for i, f in enumerate(files)], str(self.folder), buckets,
                  desc="dataset: image bytes by URL hash")
        self._run(gather_bytes, list(range(buckets)), str(self.folder), int(self.cfg.row_group_bytes),
                  desc="dataset: image bytes buckets")
        shutil.rmtree(self.folder / "_scatter", ignore_errors=True)
        self.reader = BucketReader(self.folder, buckets, cache=8)
        return self

    def __exit__(self, *exc) -> bool:
        self.reader = None
        shutil.rmtree(self.folder, ignore_errors=True)
        return False

    def get_many(self, urls: Iterable[str]) -> dict[str, tuple[bytes, str | None]]:
        """``{url: (bytes, format)}`` for the URLs whose bytes are stored."""
        return {u: (r["data"], r["format"]) for u, r in self.reader.lookup(u for u in urls if u).items()
                if r["data"]}
