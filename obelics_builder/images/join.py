"""The image table re-partitioned by URL hash, so the final step joins each part's image positions by key.

The fetch writes ``OUT/images/table/*.parquet`` in whatever partitioning it likes (hash of the URL, or of its host);
the final step needs, for each document part, the rows of that part's image URLs.  Scanning every table part for
every batch is parts x batches work; instead the ``image_buckets`` step (a run-wide reduction of the plan, after the
pHash marks are stored) writes the table again, without the image bytes, into ``P`` buckets by URL hash::

    OUT/images/by_url_hash/bucket-BBBBB.parquet   rows of the URLs with url_bucket(url, P) == B, sorted by URL,
                                                  in row groups of ``row_group_rows`` (min/max URL per group)
    OUT/images/by_url_hash/_done/buckets.json     {"fingerprint", "buckets": P, "rows"}

in two waves of tasks, each holding one input part or one bucket (never the corpus):

* scatter (one task per table part): the part's rows minus ``data`` -> ``_scatter/BBBBB/<part>.parquet``, one
  fragment per bucket the part has rows in;
* gather (one task per bucket): its fragments, in table-part order, one row per URL (the last, as the scan did),
  sorted by URL -> ``bucket-BBBBB.parquet``; the fragments are then removed.

A document part's task reads its image URLs (the ``images`` column), hashes them, opens only the buckets they fall
in, each once, and reads only the row groups whose URL range holds one of them (:class:`BucketReader`).  Work per run is O(image rows) for the re-partition and
O(image positions x row_group_rows) for the lookups; memory per task is one table part, one bucket, or a batch's
row groups.  ``P`` is fixed (``image_join.buckets``) or ``ceil(rows / rows_per_bucket)``; the config is
:class:`JoinConfig` (recipe section ``image_join:``), fingerprinted with the step.

Known limit: the scatter writes up to (table parts x P) fragment files; at a full dump (10^4 parts, 10^3 buckets)
that is 10^7 small files, where a second scatter round (sqrt(P) coarse buckets first) would be needed.
"""
from __future__ import annotations

import hashlib
import math
import shutil
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..io.image_table import IMAGE_TABLE_COLUMNS
from ..io.markers import read_marker, write_marker
from ..io.parquet import tmp_path_for

#: the marker of the step (in the bucket folder)
MARKER = "buckets"
#: the bytes of rows a streamed scatter (:func:`scatter_batches`) keeps before it writes them out
SCATTER_BUFFER_BYTES = 32 * 2 ** 20
#: the columns the buckets hold: the table's, but the image bytes (the final step never reads them)
JOIN_COLUMNS = [c for c in IMAGE_TABLE_COLUMNS if c != "data"]


@dataclass(frozen=True)
class JoinConfig:
    """How the image table is bucketed for the join (recipe section ``image_join:``; these are the defaults)."""

    #: a fixed number of buckets (None: derived from the number of image rows)
    buckets: int | None = None
    #: the rows a bucket holds, about, when the number of buckets is derived
    rows_per_bucket: int = 100_000
    #: rows per row group of a bucket file (a lookup reads whole row groups)
    row_group_rows: int = 1024

    @classmethod
    def from_recipe(cls, recipe: dict) -> "JoinConfig":
        section = recipe.get("image_join") or {}
        return cls(**{f.name: section[f.name] for f in fields(cls) if section.get(f.name) is not None})

    def as_list(self) -> list:
        return [asdict(self)]

    def count(self, rows: int) -> int:
        """The number of buckets for ``rows`` image rows (at least 1)."""
        if self.buckets:
            return int(self.buckets)
        return max(1, math.ceil(rows / max(1, int(self.rows_per_bucket))))


def url_bucket(url: str, buckets: int) -> int:
    """The bucket of a URL: a stable hash (blake2b), the same in every process, Python and library version."""
    return int.from_bytes(hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "big") % buckets


def bucket_path(folder: str | Path, bucket: int) -> Path:
    return Path(folder) / f"bucket-{bucket:05d}.parquet"


def table_parts(table_dir: str | Path) -> list[Path]:
    """The fetch's output files, whatever their names or partitioning (in name order: a URL in two of them keeps
    the row of the later one, as the scan did)."""
    return sorted(Path(table_dir).glob("*.parquet"))


def _write(table: pa.Table, path: Path, row_group_rows: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_rows, write_statistics=["url"])
    tmp.replace(path)


# ---- the step's two waves (module level: picklable for the engine) ---------------------------------------------

def scatter_part(path: str, dest: str, buckets: int) -> int:
    """One table part's rows (minus the bytes) -> one fragment per bucket they fall in; returns the rows."""
    path = Path(path)
    names = pq.ParquetFile(path).schema_arrow.names
    t = pq.read_table(path, columns=[c for c in JOIN_COLUMNS if c in names])
    if t.num_rows == 0:
        return 0
    scatter_by_bucket(t, dest, path.stem, buckets, _write)
    return t.num_rows


def scatter_by_bucket(t: pa.Table, dest: str | Path, name: str, buckets: int, write) -> None:
    """``t``'s rows by ``url_bucket`` of their ``url`` -> ``write(rows, DEST/_scatter/BBBBB/NAME.parquet)``, one
    fragment per bucket they fall in (the scatter wave of a by-URL-hash regrouping)."""
    for b, rows in by_bucket(t, buckets):
        write(rows, Path(dest) / "_scatter" / f"{b:05d}" / f"{name}.parquet")


def by_bucket(t: pa.Table, buckets: int):
    """``(bucket, rows)`` for each ``url_bucket`` of ``t``'s ``url`` column that holds rows."""
    ids = pa.array([url_bucket(u, buckets) for u in t.column("url").to_pylist()], pa.int32())
    for b in pc.unique(ids).to_pylist():
        yield b, t.filter(pc.equal(ids, b))


def scatter_batches(tables, dest: str | Path, name: str, buckets: int, write, max_bytes: int | None = None) -> int:
    """:func:`scatter_by_bucket` for a part read in pieces (``tables``, e.g. its row groups): the rows of each
    bucket are kept until the rows kept in all hold about ``max_bytes``, then written out, one fragment per bucket,
    ``DEST/_scatter/BBBBB/NAME-KKKKK.parquet`` (``K`` counts the write-outs: a bucket's fragments of one part keep
    the part's row order in name order); returns the rows.  Memory: ``max_bytes`` (default
    :data:`SCATTER_BUFFER_BYTES`) and one piece, whatever the part."""
    max_bytes = SCATTER_BUFFER_BYTES if max_bytes is None else max_bytes
    pending: dict[int, list[pa.Table]] = {}
    held = rows = flushes = 0

    def flush() -> None:
        nonlocal held, flushes
        for b, ts in sorted(pending.items()):
            write(pa.concat_tables(ts), Path(dest) / "_scatter" / f"{b:05d}" / f"{name}-{flushes:05d}.parquet")
        pending.clear()
        held, flushes = 0, flushes + 1

    for t in tables:
        if t.num_rows == 0:
            continue
        rows += t.num_rows
        for b, part in by_bucket(t, buckets):
            pending.setdefault(b, []).append(part)
        held += t.nbytes
        if held >= max_bytes:
            flush()
    if pending:
        flush()
    return rows


def gather_bucket(bucket: int, dest: str, row_group_rows: int) -> int:
    """A bucket's fragments -> ``bucket-BBBBB.parquet``: one row per URL (the last fragment's), sorted by URL."""
    folder = Path(dest) / "_scatter" / f"{bucket:05d}"
    frags = [pq.read_table(f) for f in sorted(folder.glob("*.parquet"))] if folder.exists() else []
    if frags:
        t = pa.concat_tables(frags, promote_options="default")
    else:
        t = pa.table({"url": pa.array([], pa.string())})
    t = t.append_column("_order", pa.array(range(t.num_rows), pa.int64()))
    t = t.sort_by([("url", "ascending"), ("_order", "descending")])
    if t.num_rows > 1:  # keep the first of each URL run (= the last written)
        urls = t.column("url")
        same = pc.equal(urls.slice(1), urls.slice(0, t.num_rows - 1))
        keep = pa.concat_arrays([pa.array([True]), pc.invert(same.combine_chunks())])
        t = t.filter(keep)
    t = t.drop_columns(["_order"])
    _write(t, bucket_path(dest, bucket), row_group_rows)
    shutil.rmtree(folder, ignore_errors=True)
    return t.num_rows


def bucket_images(table_dir: str | Path, dest: str | Path, fp: str, cfg: JoinConfig, engine=None) -> dict:
    """The ``image_buckets`` step: re-partition the image table by URL hash (skipped when its marker holds
    ``fp``).  ``engine``: an :class:`~obelics_builder.engine.Engine` (None: in this process).  Returns the marker."""
    dest = Path(dest)
    done = read_marker(dest, MARKER, fp)
    if done is not None:
        return done
    parts = table_parts(table_dir)
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)  # footers only
    buckets = cfg.count(rows)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)

    def run(fn, items, *args, desc):
        if engine is None:
            return [fn(i, *args) for i in items]
        return engine.map(fn, items, *args, desc=desc)

    run(scatter_part, [str(p) for p in parts], str(dest), buckets, desc="image buckets: scatter")
    kept = sum(run(gather_bucket, list(range(buckets)), str(dest), int(cfg.row_group_rows),
                   desc="image buckets: gather"))
    shutil.rmtree(dest / "_scatter", ignore_errors=True)
    marker = {"fingerprint": fp, "buckets": buckets, "rows": kept}
    write_marker(dest, MARKER, marker)
    return marker


# ---- the final step's side: keyed lookups ------------------------------------------------------------------------

def part_image_urls(path: str | Path, batch_rows: int = 4096) -> set[str]:
    """The distinct image URLs of a document part (its ``images`` column only, read in batches)."""
    urls: set[str] = set()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=["images"]):
        urls.update(u for imgs in batch.column(0).to_pylist() for u in (imgs or ()) if u)
    return urls


class BucketReader:
    """Image rows by URL from the buckets, reading only the buckets and row groups that can hold the URLs asked for.

    Counts what it read (``files``: bucket files opened, ``row_groups``, ``rows``) so tests and benchmarks can see
    the work.  Keeps at most ``cache`` bucket footers open (memory bounded whatever the number of buckets)."""

    def __init__(self, folder: str | Path, buckets: int, cache: int = 64):
        self.folder = Path(folder)
        self.buckets = int(buckets)
        self.cache = cache
        self._open: OrderedDict[int, tuple[pq.ParquetFile, list, list]] = OrderedDict()
        self.files = self.row_groups = self.rows = 0

    @classmethod
    def of(cls, folder: str | Path) -> "BucketReader":
        marker = read_marker(folder, MARKER)
        if marker is None:
            raise FileNotFoundError(f"{folder}: the image buckets are not built (no {MARKER} marker)")
        return cls(folder, int(marker["buckets"]))

    def _file(self, b: int) -> tuple[pq.ParquetFile, list, list] | None:
        if b in self._open:
            self._open.move_to_end(b)
            return self._open[b]
        path = bucket_path(self.folder, b)
        if not path.exists():
            return None
        f = pq.ParquetFile(path)
        self.files += 1
        col = f.schema_arrow.get_field_index("url")
        lo, hi = [], []
        for i in range(f.metadata.num_row_groups):
            st = f.metadata.row_group(i).column(col).statistics
            lo.append(st.min if st is not None and st.has_min_max else "")
            hi.append(st.max if st is not None and st.has_min_max else "\U0010ffff" * 8)
        self._open[b] = (f, lo, hi)
        if len(self._open) > self.cache:
            self._open.popitem(last=False)
        return self._open[b]

    def lookup(self, urls) -> dict[str, dict]:
        """``{url: row}`` (no ``data``) for the URLs that have a row."""
        by_bucket: dict[int, list[str]] = {}
        for u in set(urls):
            if u:
                by_bucket.setdefault(url_bucket(u, self.buckets), []).append(u)
        found: dict[str, dict] = {}
        for b, wanted in sorted(by_bucket.items()):
            opened = self._file(b)
            if opened is None:
                continue
            f, lo, hi = opened
            wanted.sort()
            groups = []
            for g in range(len(lo)):  # row groups are sorted by URL and do not overlap
                i = bisect_left(wanted, lo[g])
                if i < len(wanted) and wanted[i] <= hi[g]:
                    groups.append(g)
            if not groups:
                continue
            t = f.read_row_groups(groups, use_threads=False)  # (Arrow's threads: more CPU for the same bytes)
            self.row_groups += len(groups)
            self.rows += t.num_rows
            t = t.filter(pc.is_in(t.column("url"), value_set=pa.array(wanted, pa.string())))
            for row in t.to_pylist():
                found[row["url"]] = row
        return found
