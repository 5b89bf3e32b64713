"""One image-fetch task: one unit of the host-partitioned image-URL plan -> ``OUT/images/table/part-NNNNN.parquet``.

A unit is a set of whole hosts, or one share of a host too large for one task (see
:func:`obelics_builder.engine.reductions.image_url_plan`).  The task reads its URLs from the unit's file itself
(the driver passes the path, never the list), and:

* skips the part when its marker's ``input_fingerprint`` is the plan's (see :mod:`.ledger`);
* fetches with the per-host limits of :mod:`.hosts` (the limit and delay divided among a split host's tasks) and
  the robots.txt answers kept in ``OUT/images/robots/`` (one request per host per run);
* saves its finished rows every ``checkpoint_urls`` URLs under ``OUT/images/table/_partial/part-NNNNN/`` (with the
  input fingerprint in the file names): a task that is interrupted and run again fetches only the URLs it had not
  finished; the folder is removed once the part is written;
* counts the hosts it backed off (``image_fetch.hosts_backed_off``, only when there are some; one example per
  host) in its stats, besides the per-URL reasons (``host_backed_off``...).
"""
from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ..io.image_table import image_table_compression
from ..io.markers import read_marker
from ..io.parquet import write_table_atomic
from ..stats import StageContext, Stats, timed
from .hosts import BACKED_OFF, HostPolicy
from .ledger import fetch_input_fingerprint, fetch_rows, rows_to_table, table_stats, write_table_part
from .table import TABLE_COLUMNS


def unit_urls(path: str | Path) -> list[str]:
    """The sorted, unique URLs of a plan unit (a parquet file, or a folder of them, with an ``image_url`` column)."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    urls: set[str] = set()
    for f in files:
        urls.update(pq.read_table(f, columns=["image_url"]).column("image_url").to_pylist())
    return sorted(u for u in urls if u)


class Spool:
    """The finished rows of an unfinished part: ``folder/<fp>-<n>.parquet`` (rows of another fingerprint are
    stale and removed)."""

    def __init__(self, folder: Path, fp: str) -> None:
        self.folder, self.fp = Path(folder), fp
        self._n = itertools.count()

    def load(self) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        if not self.folder.exists():
            return rows
        for f in sorted(self.folder.glob("*.parquet")):
            if not f.name.startswith(f"{self.fp}-"):
                f.unlink(missing_ok=True)
                continue
            try:
                for r in pq.read_table(f).to_pylist():
                    rows[r["url"]] = r
            except Exception:  # a file cut by a crash (they are written atomically: should not happen)
                f.unlink(missing_ok=True)
        n = max((int(f.stem.rsplit("-", 1)[1]) for f in self.folder.glob(f"{self.fp}-*.parquet")), default=-1)
        self._n = itertools.count(n + 1)
        return rows

    def save(self, rows: list[dict]) -> None:
        if rows:
            table = rows_to_table(rows)
            write_table_atomic(table, self.folder / f"{self.fp}-{next(self._n):06d}.parquet",
                               image_table_compression(table.column_names))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


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
    stats = Stats()
    gate: list = []
    with timed(StageContext(stage="image_fetch", config={}, stats=stats, resources={}), process=True, wall=False):
        rows, note = fetch_rows(todo, archive, run_cfg, fcfg, getaddrinfo=getaddrinfo,
                                robots_store=str(Path(out) / "images" / "robots"), gate=gate,
                                on_rows=spool.save, checkpoint_every=policy.checkpoint_urls)
    by_url = {**saved, **{r["url"]: r for r in rows}}
    merged = [{c: by_url[u].get(c) for c in TABLE_COLUMNS} for u in urls]
    table_stats(stats, merged, note)
    if gate:
        host_gate = gate[0]
        for host in host_gate.backed_off_hosts:
            stats.add("image_fetch", "hosts_backed_off")
            stats.example("image_fetch", BACKED_OFF, url=host,
                          message=f"{host_gate.failures_max} failures in a row: the host's remaining URLs skipped")
    write_table_part(folder, key, merged, fp, stats.to_dict())
    spool.clear()
    return stats.to_dict()
