"""Run-wide steps as Dask DataFrame reductions; memory is bounded by partition size, not corpus size (a small run's
inputs are reduced in this process instead: ``arrow_reductions``)."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..io.markers import read_marker, write_marker
from . import arrow_reductions
from .url_units import assign_units, host_column, write_units
from .parts import read_parts


def _existing(files: list[Path]) -> list[str]:
    return [str(f) for f in files if f.exists() and pq.ParquetFile(f).metadata.num_rows > 0]


def url_losers(keys_files: list[Path], dest: Path, fp: str, scheduler: str) -> None:
    """Rows (part, row) whose URL has a better-ranked capture elsewhere in the run -> parquet files in ``dest``."""
    if read_marker(dest, "losers", fp) is not None:
        return
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _existing(keys_files)
    if files and arrow_reductions.fits(files):
        arrow_reductions.best_rank_losers(files, dest, "url", skip_empty=False)
    elif files:
        df = read_parts(files, ["url", "rank", "row", "part"])
        best = df.groupby("url")["rank"].max().rename("best").reset_index()
        joined = df.merge(best, on="url", how="inner")
        losers = joined[joined["rank"] != joined["best"]][["part", "row"]]
        losers.to_parquet(str(dest), write_index=False, compute_kwargs={"scheduler": scheduler})
    write_marker(dest, "losers", {"fingerprint": fp})


#: the plan's table of fetch units (one row per unit: index, bucket, urls, hosts, shares, digest)
UNITS_FILE = "units.parquet"


#: URLs per partition of the plan's shuffle by unit (each partition writes the units it holds)
SHUFFLE_ROWS = 500_000


def image_url_plan(pairs_files: list[Path], dest: Path, fp: str, max_documents_per_url: int, scheduler: str,
                   urls_per_partition: int = 20_000, host_max_urls: int = 50_000,
                   banned: tuple[str, ...] | list[str] = ()) -> int:
    """Count distinct documents per image URL over the run, and partition the URLs to fetch by host.

    Writes ``dest/too_frequent/*.parquet`` (URLs in more than ``max_documents_per_url`` documents) and, for the
    other unique URLs (but those with a ``banned`` substring), the fetch units: ``dest/fetch/bucket=B/urls.parquet``
    (sorted URLs) and ``dest/fetch/units.parquet`` (one row per unit, in unit order: bucket, urls, hosts, shares,
    digest of the URLs).  A host is in one unit (bucket = hash of the host % the number of buckets, one bucket per
    ``urls_per_partition`` URLs); a host with more than ``host_max_urls`` URLs is split over ``ceil(n / cap)``
    units of its own (by URL hash), each with ``shares`` = that number (the per-host limit is divided by it).
    The URLs pass through files, never through this process.  Returns the number of units.
    """
    done = read_marker(dest, "plan", fp)
    if done is not None:
        return int(done["partitions"])
    shutil.rmtree(dest, ignore_errors=True)
    for sub in ("too_frequent", "fetch", "_unique"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    files = _existing(pairs_files)
    units: list[dict] = []
    split: dict = {}
    if files and arrow_reductions.fits(files):
        units, split = arrow_reductions.url_plan(files, dest, max_documents_per_url, urls_per_partition,
                                                 host_max_urls, tuple(banned))
    elif files:
        import dask
        import dask.dataframe as dd

        pairs = read_parts(files, ["image_url", "doc_url"])  # (grouped: the shuffles are O(groups x split_out))
        split_out = max(1, pairs.npartitions // 4)
        pairs = pairs.drop_duplicates(split_out=split_out)
        counts = pairs.groupby("image_url").size(split_out=split_out).rename("documents").reset_index()
        too = counts[counts["documents"] > max_documents_per_url][["image_url"]]
        ok = counts[counts["documents"] <= max_documents_per_url][["image_url"]]
        if banned:
            import re

            pattern = "|".join(re.escape(w) for w in banned)
            ok = ok[~ok["image_url"].str.contains(pattern, regex=True)]
        ok = ok.map_partitions(host_column, meta=ok._meta.assign(host=ok._meta["image_url"]))
        dask.compute(too.to_parquet(str(dest / "too_frequent"), write_index=False, compute=False),
                     ok.to_parquet(str(dest / "_unique"), write_index=False, compute=False), scheduler=scheduler)
        unique = dd.read_parquet(str(dest / "_unique"))
        per_host = unique.groupby("host").size(split_out=split_out)
        n, big = dask.compute(unique.shape[0], per_host[per_host > host_max_urls], scheduler=scheduler)
        big = big.sort_index()
        buckets = math.ceil((int(n) - int(big.sum())) / urls_per_partition) if int(n) > int(big.sum()) else 0
        nxt = buckets
        for host, count in big.items():
            split[host] = (nxt, math.ceil(int(count) / host_max_urls))
            nxt += split[host][1]
        if n:
            planned = unique.map_partitions(assign_units, buckets, split,
                                            meta=assign_units(unique._meta, buckets, split))
            total = nxt
            shares = {b: k for f, k in split.values() for b in range(f, f + k)}
            nparts = max(1, min(total, math.ceil(int(n) / SHUFFLE_ROWS)))
            if planned.npartitions > 1 or nparts > 1:
                planned = planned.shuffle(on="unit", npartitions=nparts)
            meta = write_units(planned._meta, str(dest / "fetch"), shares)
            written = planned.map_partitions(write_units, str(dest / "fetch"), shares, meta=meta)
            units = written.compute(scheduler=scheduler).sort_values("bucket").to_dict("records")
    shutil.rmtree(dest / "_unique", ignore_errors=True)
    schema = pa.schema([("bucket", pa.int64()), ("urls", pa.int64()), ("hosts", pa.int64()), ("shares", pa.int64()),
                        ("digest", pa.string())])
    units = [u for u in units if u["urls"]]
    pq.write_table(pa.Table.from_pylist(units, schema=schema), dest / "fetch" / UNITS_FILE)
    write_marker(dest, "plan", {"fingerprint": fp, "partitions": len(units), "split_hosts": len(split)})
    return len(units)


def plan_units(dest: Path) -> list[dict]:
    """The fetch units of a written plan, in unit order (part-NNNNN is the N-th): bucket, urls, hosts, shares,
    digest (small: one row per unit, whatever the number of URLs)."""
    path = dest / "fetch" / UNITS_FILE
    return pq.read_table(path).to_pylist() if path.exists() else []


def fetch_bucket_urls(dest: Path, bucket: int) -> list[str]:
    from ..images.partition import unit_urls

    folder = dest / "fetch" / f"bucket={bucket}"
    return unit_urls(folder) if folder.exists() else []
