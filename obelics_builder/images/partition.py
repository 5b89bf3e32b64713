"""One image-fetch task: one unit of the host-partitioned image-URL plan -> ``OUT/images/table/part-NNNNN.parquet``.

A unit is a set of whole hosts, or one share of a host too large for one task (see
:func:`obelics_builder.engine.reductions.image_url_plan`).  The task reads its URLs from the unit's file itself
(the driver passes the path, never the list), and:

* skips the part when its marker's ``input_fingerprint`` is the plan's (see :mod:`.ledger`);
* fetches with the per-host limits of :mod:`.hosts` (the limit and delay divided among a split host's tasks) and
  the robots.txt answers kept in ``OUT/images/robots/`` (one request per host per run);
* saves its finished rows every ``checkpoint_urls`` URLs (or 64 MB of images) under
  ``OUT/images/table/_partial/part-NNNNN/`` (with the input fingerprint in the file names), each file sorted by URL,
  and keeps none of them: a task that is interrupted and run again fetches only the URLs it had not finished;
* writes the part from those files (a k-way merge by URL into a Parquet writer, row groups of bounded size, under a
  temporary name then renamed; the stats counted as the rows go by), so that its memory is one checkpoint's rows
  and one row group per merged file, whatever the number of URLs; the folder is removed once the part is written;
* counts the hosts it backed off (``image_fetch.hosts_backed_off``, only when there are some; one example per
  host) in its stats, besides the per-URL reasons (``host_backed_off``...).
"""
from __future__ import annotations

import heapq
import itertools
import shutil
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..io.image_table import ROW_GROUP_BYTES, ROW_GROUP_ROWS, ImageTableWriter, data_sizes, image_table_compression
from ..io.markers import read_marker
from ..io.parquet import write_table_atomic
from ..stats import StageContext, Stats, timed
from .hosts import BACKED_OFF, HostPolicy
from .ledger import fetch_input_fingerprint, fetch_rows, rows_to_table, table_stats, write_table_part
from .table import TABLE_COLUMNS

#: a spool file's row groups hold about this many bytes of images (the merge holds one row group per file)
SPOOL_ROW_GROUP_BYTES = 4 * 2 ** 20
#: the most spool files merged at once (more are merged in passes)
MERGE_FAN_IN = 8


def unit_urls(path: str | Path) -> list[str]:
    """The sorted, unique URLs of a plan unit (a parquet file, or a folder of them, with an ``image_url`` column)."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    urls: set[str] = set()
    for f in files:
        urls.update(pq.read_table(f, columns=["image_url"]).column("image_url").to_pylist())
    return sorted(u for u in urls if u)


class Spool:
    """The finished rows of an unfinished part: ``folder/<fp>-<n>.parquet``, each file sorted by URL, in row groups
    of about :data:`SPOOL_ROW_GROUP_BYTES` (rows of another fingerprint are stale and removed).

    The part is assembled from these files (:meth:`part_tables`), never from rows held in memory: a k-way merge by
    URL of at most :data:`MERGE_FAN_IN` files at once (more are merged in passes under ``folder/_merge``), holding
    one row group per file."""

    def __init__(self, folder: Path, fp: str) -> None:
        self.folder, self.fp = Path(folder), fp
        self._n = itertools.count()

    def files(self) -> list[Path]:
        """This fingerprint's files, in the order they were saved."""
        return sorted(self.folder.glob(f"{self.fp}-*.parquet"), key=lambda f: int(f.stem.rsplit("-", 1)[1]))

    def load(self) -> set[str]:
        """The URLs saved already (stale files removed; a file from before the files were sorted is sorted)."""
        urls: set[str] = set()
        if not self.folder.exists():
            return urls
        shutil.rmtree(self.folder / "_merge", ignore_errors=True)
        for f in sorted(self.folder.glob("*.parquet")):
            if not f.name.startswith(f"{self.fp}-"):
                f.unlink(missing_ok=True)
        for f in self.files():
            try:
                got = pq.read_table(f, columns=["url"]).column("url").to_pylist()
                if got != sorted(got):  # written unsorted by an older version: at most one checkpoint's rows
                    rows = pq.read_table(f).to_pylist()
                    f.unlink()
                    self._write(sorted(rows, key=lambda r: r["url"]), f)
            except Exception:  # a file cut by a crash (they are written atomically: should not happen)
                f.unlink(missing_ok=True)
                continue
            urls.update(got)
        n = max((int(f.stem.rsplit("-", 1)[1]) for f in self.files()), default=-1)
        self._n = itertools.count(n + 1)
        return urls

    @staticmethod
    def _write(rows: list[dict], path: Path) -> None:
        table = rows_to_table(rows)
        mean = max(1, sum(data_sizes(table)) // max(1, table.num_rows))
        write_table_atomic(table, path, image_table_compression(table.column_names),
                           row_group_size=max(1, min(ROW_GROUP_ROWS, SPOOL_ROW_GROUP_BYTES // mean)))

    def save(self, rows: list[dict]) -> None:
        if rows:
            self._write(sorted(rows, key=lambda r: r["url"]), self.folder / f"{self.fp}-{next(self._n):06d}.parquet")

    def part_tables(self, urls: list[str], on_rows=None) -> Iterator[pa.Table]:
        """The part's rows: one per URL of ``urls`` (sorted, unique; the row saved last), in URL order, as tables of
        bounded size; ``on_rows(rows)`` sees each table's rows first.  Raises when a URL has no saved row."""
        files = self.files()
        n = 0
        while len(files) > MERGE_FAN_IN:  # merge passes: every file's rows stay in save order
            merged = []
            for i in range(0, len(files), MERGE_FAN_IN):
                dest = self.folder / "_merge" / f"{n:06d}.parquet"
                n += 1
                with ImageTableWriter(dest, max_bytes=SPOOL_ROW_GROUP_BYTES) as w:
                    for t in _tables(_merge(files[i:i + MERGE_FAN_IN])):
                        w.write(t)
                merged.append(dest)
            files = merged
        wanted = iter(urls)

        def rows():
            nxt = next(wanted, None)
            for r in _merge(files):
                if nxt is not None and nxt < r["url"]:
                    raise RuntimeError(f"{self.folder.name}: no saved row for {nxt!r}")
                if nxt is not None and nxt == r["url"]:
                    yield {c: r.get(c) for c in TABLE_COLUMNS}
                    nxt = next(wanted, None)
            if nxt is not None:
                raise RuntimeError(f"{self.folder.name}: no saved row for {nxt!r}")

        for t, batch in _tables(rows(), with_rows=True):
            if on_rows is not None:
                on_rows(batch)
            yield t

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _file_rows(j: int, path: Path) -> Iterator[tuple[str, int, dict]]:
    pf = pq.ParquetFile(path)
    for g in range(pf.metadata.num_row_groups):
        for r in pf.read_row_group(g).to_pylist():
            yield r["url"], j, r


def _merge(files: list[Path]) -> Iterator[dict]:
    """The rows of sorted ``files`` in URL order, one per URL: that of the last file holding it."""
    last = None
    for url, _, r in heapq.merge(*(_file_rows(j, f) for j, f in enumerate(files)), key=lambda t: (t[0], t[1])):
        if last is not None and last["url"] != url:
            yield last
        last = r
    if last is not None:
        yield last


def _tables(rows: Iterator[dict], with_rows: bool = False):
    """Rows as tables of at most ``ROW_GROUP_ROWS`` rows and about ``ROW_GROUP_BYTES`` of image bytes."""
    buf: list[dict] = []
    size = 0
    for r in rows:
        buf.append(r)
        size += len(r.get("data") or b"")
        if len(buf) >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield (rows_to_table(buf), buf) if with_rows else rows_to_table(buf)
            buf, size = [], 0
    if buf:
        yield (rows_to_table(buf), buf) if with_rows else rows_to_table(buf)


def fetch_table_part(index: int, urls: list[str], recipe: dict, out: str, archive: Any, fetch_overrides: dict,
                     fp: str | None = None, shares: int = 1, archive_names: list[str] | None = None,
                     getaddrinfo=None) -> dict:
    """Build ``images/table/part-NNNNN.parquet`` from ``urls`` (see the module docstring); returns its stats."""
    folder = Path(out) / "images" / "table"
    key = f"part-{index:05d}"
    urls = sorted(set(urls))
    fetch_cfg = {**(recipe.get("images") or {}), **fetch_overrides}
    fcfg = recipe["filters_config"]
    fp = fp or fetch_input_fingerprint(urls, fetch_cfg, fcfg, list(archive_names or ()))
    done = read_marker(folder, key)
    if done is not None and done.get("input_fingerprint") == fp:
        return done["stats"]
    from .fetch import DEFAULTS

    policy = HostPolicy.from_config(fetch_cfg)
    shares = max(1, int(shares))
    per_host = int(fetch_cfg.get("per_host") or DEFAULTS["per_host"])
    run_cfg = {**fetch_cfg, "per_host": max(1, per_host // shares),
               "per_host_delay_s": policy.per_host_delay_s * shares}
    spool = Spool(folder / "_partial" / key, fp)
    saved = spool.load()
    todo = [u for u in urls if u not in saved]
    del saved
    stats = Stats()
    gate: list = []
    with timed(StageContext(stage="image_fetch", config={}, stats=stats, resources={}), process=True, wall=False):
        _, note = fetch_rows(todo, archive, run_cfg, fcfg, getaddrinfo=getaddrinfo,
                             robots_store=str(Path(out) / "images" / "robots"), gate=gate, on_rows=spool.save,
                             checkpoint_every=policy.checkpoint_urls, keep_rows=False)

    def final_stats() -> dict:  # once every row has gone by (counted per table as it is written)
        table_stats(stats, [], note)
        if gate:
            host_gate = gate[0]
            for host in host_gate.backed_off_hosts:
                stats.add("image_fetch", "hosts_backed_off")
                stats.example("image_fetch", BACKED_OFF, url=host,
                              message=f"{host_gate.failures_max} failures in a row: the host's remaining URLs skipped")
        return stats.to_dict()

    write_table_part(folder, key, spool.part_tables(urls, on_rows=lambda rows: table_stats(stats, rows)), fp,
                     final_stats)
    spool.clear()
    return stats.to_dict()
