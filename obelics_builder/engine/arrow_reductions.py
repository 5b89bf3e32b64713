"""The run-wide reductions of a small run, on Arrow tables in this process, without Dask's dataframe.

``reductions`` and ``dedup_reductions`` call these when the input files hold at most :data:`IN_MEMORY_ROWS` rows
in all (the Parquet footers say so without reading the data): the same results as their Dask graphs (same rows,
same buckets: the same pandas hashes on the same strings), in the same output layout (one file per folder instead
of one per Dask partition).  Memory stays bounded by that row cap; a bigger run goes to Dask, whose dataframe import
alone costs ~0.6 CPU-s, more than every reduction of a run of a few thousand pages together.
"""
from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: at most this many input rows (all files together) are reduced in this process; more go to Dask
IN_MEMORY_ROWS = 250_000

#: the file each in-memory reduction writes in a folder (Dask writes part.0.parquet, part.1.parquet, ...)
PART_FILE = "part.0.parquet"


def total_rows(files: list[str]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def fits(files: list[str]) -> bool:
    """Whether ``files`` (non-empty Parquet files) are small enough to reduce in this process."""
    return total_rows(files) <= IN_MEMORY_ROWS


def _read(files: list[str], columns: list[str]) -> pa.Table:
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def best_rank_losers(files: list[str], dest: Path, key_column: str, skip_empty: bool) -> int:
    """Rows (part, row) whose ``key_column`` value has a better (greater) ``rank`` in another row -> one file in
    ``dest``; rows with a null key (and an empty one with ``skip_empty``) never lose, nor do rows whose rank is the
    best of their key.  Returns the number of losers."""
    t = _read(files, [key_column, "rank", "row", "part"])
    keep = pc.is_valid(t.column(key_column))
    if skip_empty:
        keep = pc.and_(keep, pc.not_equal(t.column(key_column), ""))
    t = t.filter(keep)
    best = t.group_by(key_column).aggregate([("rank", "max")])
    joined = t.join(best, key_column, join_type="inner")
    losers = joined.filter(pc.not_equal(joined.column("rank"), joined.column("rank_max"))).select(["part", "row"])
    _write(losers, dest / PART_FILE)
    return losers.num_rows


def frequent_pairs(files: list[str], dest: Path, min_count: int, buckets: int) -> int:
    """(domain, phash) pairs whose counts sum to ``>= min_count`` -> ``dest/bucket=B/part.0.parquet`` (domain,
    phash), B = ``dedup.paragraphs.domain_bucket(domain, buckets)``.  Returns the number of pairs."""
    from ..dedup.paragraphs import domain_bucket

    t = _read(files, ["domain", "phash", "n"])
    t = t.filter(pc.and_(pc.is_valid(t.column("domain")), pc.is_valid(t.column("phash"))))
    counts = t.group_by(["domain", "phash"]).aggregate([("n", "sum")])
    freq = counts.filter(pc.greater_equal(counts.column("n_sum"), int(min_count))).select(["domain", "phash"])
    by_bucket: dict[int, list[int]] = {}
    for i, d in enumerate(freq.column("domain").to_pylist()):
        by_bucket.setdefault(domain_bucket(d, buckets), []).append(i)
    for b, rows in sorted(by_bucket.items()):
        _write(freq.take(pa.array(rows, pa.int64())), dest / f"bucket={b}" / PART_FILE)
    return freq.num_rows


def _url_hash_buckets(urls: pa.Array, parts: int) -> list[int]:
    """``pandas.util.hash_pandas_object(url) % parts``, as the Dask graphs compute it (pandas is in the process
    already: pyarrow imports it on its first array)."""
    import numpy as np
    import pandas as pd

    h = pd.util.hash_pandas_object(pd.Series(urls.to_pylist(), dtype=object), index=False).to_numpy(np.uint64)
    return (h % np.uint64(parts)).astype(np.int64).tolist()


def distinct_urls(files: list[str], dest: Path, urls_per_bucket: int) -> int:
    """Distinct (url, kind) rows, hash-partitioned on the URL into ``dest/bucket=B/part.0.parquet``.  Returns the
    number of buckets."""
    t = _read(files, ["url", "kind"])
    t = t.group_by(["url", "kind"]).aggregate([])
    n = t.num_rows
    nb = max(1, math.ceil(n / urls_per_bucket)) if n else 0
    if nb:
        buckets = [0] * n if nb == 1 else _url_hash_buckets(t.column("url").combine_chunks(), nb)
        by_bucket: dict[int, list[int]] = {}
        for i, b in enumerate(buckets):
            by_bucket.setdefault(b, []).append(i)
        for b, rows in sorted(by_bucket.items()):
            _write(t.take(pa.array(rows, pa.int64())).select(["url", "kind"]), dest / f"bucket={b}" / PART_FILE)
    return nb


def url_plan(files: list[str], dest: Path, max_documents_per_url: int, urls_per_partition: int,
             host_max_urls: int, banned) -> tuple[list[dict], dict]:
    """``reductions.image_url_plan`` on a small run: writes ``too_frequent/part.0.parquet`` and the fetch units
    (``fetch/bucket=B/urls.parquet``, by the same ``assign_units`` and ``write_units``); returns the units' rows
    (in bucket order) and the split hosts."""
    import pandas as pd

    from .url_units import assign_units, host_column, write_units

    t = _read(files, ["image_url", "doc_url"]).group_by(["image_url", "doc_url"]).aggregate([])
    t = t.filter(pc.is_valid(t.column("image_url")))
    counts = t.group_by("image_url").aggregate([([], "count_all")])
    many = pc.greater(counts.column("count_all"), int(max_documents_per_url))
    _write(counts.filter(many).select(["image_url"]), dest / "too_frequent" / PART_FILE)
    ok = [u for u in counts.filter(pc.invert(many)).column("image_url").to_pylist()
          if not any(w in u for w in banned)]
    if not ok:
        return [], {}
    unique = host_column(pd.DataFrame({"image_url": pd.Series(ok, dtype=object)}))
    per_host = unique.groupby("host").size()
    big = per_host[per_host > host_max_urls].sort_index()
    n = len(unique)
    buckets = math.ceil((n - int(big.sum())) / urls_per_partition) if n > int(big.sum()) else 0
    split: dict = {}
    nxt = buckets
    for host, count in big.items():
        split[host] = (nxt, math.ceil(int(count) / host_max_urls))
        nxt += split[host][1]
    shares = {b: k for f, k in split.values() for b in range(f, f + k)}
    units = write_units(assign_units(unique, buckets, split), str(dest / "fetch"), shares)
    return units.sort_values("bucket").to_dict("records"), split
