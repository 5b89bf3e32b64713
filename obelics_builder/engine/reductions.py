"""Run-wide steps as Dask DataFrame reductions; memory is bounded by partition size, not corpus size."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..io.markers import read_marker, write_marker


def _existing(files: list[Path]) -> list[str]:
    return [str(f) for f in files if f.exists() and pq.ParquetFile(f).metadata.num_rows > 0]


def url_losers(keys_files: list[Path], dest: Path, fp: str, scheduler: str) -> None:
    """Rows (part, row) whose URL has a better-ranked capture elsewhere in the run -> parquet files in ``dest``."""
    if read_marker(dest, "losers", fp) is not None:
        return
    import dask.dataframe as dd

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _existing(keys_files)
    if files:
        df = dd.read_parquet(files, columns=["url", "rank", "row", "part"])
        best = df.groupby("url")["rank"].max().rename("best").reset_index()
        joined = df.merge(best, on="url", how="inner")
        losers = joined[joined["rank"] != joined["best"]][["part", "row"]]
        losers.to_parquet(str(dest), write_index=False, compute_kwargs={"scheduler": scheduler})
    write_marker(dest, "losers", {"fingerprint": fp})


def image_url_plan(pairs_files: list[Path], dest: Path, fp: str, max_documents_per_url: int, scheduler: str,
                   urls_per_partition: int = 20_000) -> int:
    """Count distinct documents per image URL over the run.

    Writes ``dest/too_frequent/*.parquet`` (URLs in more than ``max_documents_per_url`` documents) and
    ``dest/fetch/bucket=B/*.parquet`` (the other unique URLs, hash-partitioned into fetch partitions).  Returns the
    number of fetch partitions.
    """
    done = read_marker(dest, "plan", fp)
    if done is not None:
        return int(done["partitions"])
    import dask.dataframe as dd
    import pandas as pd

    shutil.rmtree(dest, ignore_errors=True)
    (dest / "too_frequent").mkdir(parents=True, exist_ok=True)
    (dest / "fetch").mkdir(parents=True, exist_ok=True)
    files = _existing(pairs_files)
    partitions = 0
    if files:
        pairs = dd.read_parquet(files, columns=["image_url", "doc_url"]).drop_duplicates()
        counts = pairs.groupby("image_url").size().rename("documents").reset_index()
        too = counts[counts["documents"] > max_documents_per_url][["image_url"]]
        too.to_parquet(str(dest / "too_frequent"), write_index=False, compute_kwargs={"scheduler": scheduler})
        ok = counts[counts["documents"] <= max_documents_per_url][["image_url"]]
        n = int(ok.shape[0].compute(scheduler=scheduler))
        partitions = max(1, math.ceil(n / urls_per_partition)) if n else 0
        if partitions:
            def bucket(df: pd.DataFrame, p: int = partitions) -> pd.DataFrame:
                h = pd.util.hash_pandas_object(df["image_url"], index=False).astype("uint64")
                return df.assign(bucket=(h % p).astype("int64"))

            ok = ok.map_partitions(bucket, meta=bucket(ok._meta))
            ok.to_parquet(str(dest / "fetch"), partition_on=["bucket"], write_index=False,
                          compute_kwargs={"scheduler": scheduler})
    write_marker(dest, "plan", {"fingerprint": fp, "partitions": partitions})
    return partitions


def fetch_bucket_urls(dest: Path, bucket: int) -> list[str]:
    folder = dest / "fetch" / f"bucket={bucket}"
    urls: list[str] = []
    for f in sorted(folder.glob("*.parquet")):
        urls += pq.read_table(f, columns=["image_url"]).column("image_url").to_pylist()
    return sorted(set(urls))
