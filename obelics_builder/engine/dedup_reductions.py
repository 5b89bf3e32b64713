"""Run-wide dedup steps on Dask: MinHash near duplicates, image-URL sets, per-domain paragraph counts, opt-out URLs.

Same contract as ``reductions`` (and the same in-process path for a small run's inputs: ``arrow_reductions``):
inputs are per-part parquet files, outputs are parquet folders with a completion marker carrying a fingerprint
(rerun with the same fingerprint = nothing to do), and memory is bounded by the partition size, never by the
corpus size:

* MinHash (:func:`near_duplicate_losers`, in ``engine.near_dedup``): signatures and LSH band rows per part,
  written hash-partitioned on the band key; star edges and their verification per range of partitions; union-find
  over dense doc ids; keep the best capture rank per component -> ``losers/*.parquet`` (part, row), the format of
  ``reductions.url_losers``.
* Image-URL sets (:func:`keep_best_losers` on ``dedup.image_sets.image_set_keys`` files).
* Paragraphs (:func:`frequent_paragraphs` on ``dedup.paragraphs.paragraph_counts`` files).
* Opt-out (:func:`unique_urls_plan`: the distinct URLs to look up, hash-partitioned).

Wiring in ``pipeline.run_pipeline`` (proposed; the lead wires it):

* step 3, right after ``url_losers(...)``::

      near_dir = out / "parts" / "url_dedup" / "_near"
      near_cfg = recipe.get("near_dedup") or {}
      if near_cfg.get("enabled", True):
          near_duplicate_losers([text_dir / f"{k}.parquet" for k in keys], near_dir,
                                fingerprint(text_fp, near_cfg), engine.dask_scheduler, near_cfg,
                                exclude_dir=losers_dir)
  and ``tasks.dedup_part`` also drops ``rows_to_drop(near_dir / "losers", key)`` with reason ``near_duplicate``
  (its fingerprint gains the near fingerprint); everything downstream (image plan, fetch) then sees survivors only.
* after images: split ``finalize_part`` in two per-part passes around two run-wide reductions:
  pass A (image rules, images, final cleaning as today) also writes ``<part>.pcounts.parquet``
  (``dedup.paragraphs.paragraph_counts`` merged per part); run-wide :func:`frequent_paragraphs`;
  pass B: ``dedup.paragraphs.dedup_paragraphs`` (resources ``frequent`` = :func:`load_frequent_paragraphs` for the
  part's domains), ``final_cleaning_stage`` again, writes ``<part>.sets.parquet`` (``image_sets.image_set_keys``)
  and ``<part>.urls.parquet`` (``optout.stage.collect_urls``); run-wide :func:`keep_best_losers` on the sets files and
  :func:`unique_urls_plan` on the url files, Spawning per URL bucket in the driver (``optout.stage.spawning_lookup``,
  one client, so the requests/s cap holds) and ``optout.c2pa.scan_image_table`` per image-table part (engine.map);
  pass C: ``image_sets.drop_duplicate_image_sets`` then ``optout.stage.optout_stage`` -> ``documents/``, each part
  writing its manifest rows, merged at the end with ``optout.manifest.merge_manifests(..., out)``.
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..io.markers import read_marker, write_marker
from . import arrow_reductions
from .losers import LOSERS_SCHEMA, part_key, rows_to_drop  # noqa: F401  (re-exported: tasks, pipeline)
from .near_dedup import DEFAULT_NEAR, NearConfig, near_config, near_duplicate_losers  # noqa: F401  (re-exported)
from .parts import read_parts

log = logging.getLogger("obelics_builder")


def _nonempty(files) -> list[str]:
    return [str(f) for f in files if Path(f).exists() and pq.ParquetFile(f).metadata.num_rows > 0]


# ---------------------------------------------------------------------------------------------------------------
# Generic "same key: keep the best rank" (image-URL sets)
# ---------------------------------------------------------------------------------------------------------------

def keep_best_losers(keys_files: list[Path], dest: Path, fp: str, scheduler: str, key_column: str = "key") -> int:
    """Rows (part, row) whose ``key_column`` value has a better ``rank`` elsewhere in the run -> ``dest``.

    Input files have columns (key_column, rank, row, part); rows with a null/empty key never lose.  Ranks must be
    unique per row (``dedup.image_sets`` appends part and row), so exactly one row per key is kept.
    Returns the number of losers.
    """
    done = read_marker(dest, "losers", fp)
    if done is not None:
        return int(done.get("losers", 0))
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _nonempty(keys_files)
    n = 0
    if files and arrow_reductions.fits(files):
        n = arrow_reductions.best_rank_losers(files, dest, key_column, skip_empty=True)
    elif files:
        df = read_parts(files, [key_column, "rank", "row", "part"])
        df = df[df[key_column].notnull() & (df[key_column] != "")]
        best = df.groupby(key_column)["rank"].max().rename("best").reset_index()
        joined = df.merge(best, on=key_column, how="inner")
        losers = joined[joined["rank"] != joined["best"]][["part", "row"]]
        losers.to_parquet(str(dest), write_index=False, compute_kwargs={"scheduler": scheduler})
        n = sum(pq.ParquetFile(f).metadata.num_rows for f in dest.glob("*.parquet"))
    write_marker(dest, "losers", {"fingerprint": fp, "losers": n})
    return n


# ---------------------------------------------------------------------------------------------------------------
# Per-domain paragraph counts
# ---------------------------------------------------------------------------------------------------------------

def frequent_paragraphs(count_files: list[Path], dest: Path, fp: str, scheduler: str, min_count: int = 3,
                        buckets: int = 64) -> int:
    """(domain, paragraph hash) pairs counted ``>= min_count`` times over the run.

    Input: ``dedup.paragraphs.paragraph_counts`` files (domain, phash, n).  Output: ``dest/bucket=B/*.parquet``
    (domain, phash), bucketed on the domain so a part reads only the buckets of its domains
    (:func:`load_frequent_paragraphs`).  Returns the number of frequent pairs.
    """
    done = read_marker(dest, "frequent", fp)
    if done is not None:
        return int(done["pairs"])
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _nonempty(count_files)
    total = 0
    if files and arrow_reductions.fits(files):
        total = arrow_reductions.frequent_pairs(files, dest, int(min_count), buckets)
    elif files:
        df = read_parts(files, ["domain", "phash", "n"])
        counts = df.groupby(["domain", "phash"])["n"].sum().reset_index()
        freq = counts[counts["n"] >= int(min_count)][["domain", "phash"]]

        def bucket(pdf, b=buckets):
            from ..dedup.paragraphs import domain_bucket

            return pdf.assign(bucket=np.asarray([domain_bucket(d, b) for d in pdf["domain"]], dtype=np.int64))

        freq = freq.map_partitions(bucket, meta=bucket(freq._meta))
        freq.to_parquet(str(dest), partition_on=["bucket"], write_index=False, compute_kwargs={"scheduler": scheduler})
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in dest.glob("bucket=*/*.parquet"))
    write_marker(dest, "frequent", {"fingerprint": fp, "pairs": total, "buckets": buckets, "min_count": min_count})
    return total


def load_frequent_paragraphs(dest: Path, domains: set[str]) -> set[tuple[str, int]]:
    """The frequent (domain, phash) pairs of the given domains (reads only their buckets)."""
    from ..dedup.paragraphs import domain_bucket

    meta = read_marker(dest, "frequent") or {}
    nb = int(meta.get("buckets", 64))
    out: set[tuple[str, int]] = set()
    wanted = pa.array(sorted(domains), pa.string())
    import pyarrow.compute as pc

    for b in sorted({domain_bucket(d, nb) for d in domains}):
        for f in sorted((dest / f"bucket={b}").glob("*.parquet")):
            t = pq.read_table(f, columns=["domain", "phash"])
            t = t.filter(pc.is_in(t.column("domain"), value_set=wanted))
            out.update(zip(t.column("domain").to_pylist(), t.column("phash").to_pylist()))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Opt-out: distinct URLs to look up
# ---------------------------------------------------------------------------------------------------------------

def unique_urls_plan(url_files: list[Path], dest: Path, fp: str, scheduler: str, urls_per_bucket: int = 100_000) -> int:
    """Distinct (url, kind) rows of ``optout.stage.collect_urls`` files, hash-partitioned into ``dest/bucket=B``.

    Returns the number of buckets; read one with :func:`bucket_urls`.
    """
    done = read_marker(dest, "urls", fp)
    if done is not None:
        return int(done["buckets"])
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _nonempty(url_files)
    nb = 0
    if files and arrow_reductions.fits(files):
        nb = arrow_reductions.distinct_urls(files, dest, urls_per_bucket)
    elif files:
        import pandas as pd

        df = read_parts(files, ["url", "kind"]).drop_duplicates()
        n = int(df.shape[0].compute(scheduler=scheduler))
        nb = max(1, math.ceil(n / urls_per_bucket)) if n else 0
        if nb:
            def bucket(pdf, p=nb):
                h = pd.util.hash_pandas_object(pdf["url"], index=False).astype("uint64")
                return pdf.assign(bucket=(h % p).astype("int64"))

            df = df.map_partitions(bucket, meta=bucket(df._meta))
            df.to_parquet(str(dest), partition_on=["bucket"], write_index=False, compute_kwargs={"scheduler": scheduler})
    write_marker(dest, "urls", {"fingerprint": fp, "buckets": nb})
    return nb


def bucket_urls(dest: Path, bucket: int) -> list[tuple[str, str]]:
    rows: set[tuple[str, str]] = set()
    for f in sorted((dest / f"bucket={bucket}").glob("*.parquet")):
        t = pq.read_table(f, columns=["url", "kind"])
        rows.update(zip(t.column("url").to_pylist(), t.column("kind").to_pylist()))
    return sorted(rows)
