"""The image table as a ledger: writing parts and ``--retry-failed``.

Each ``OUT/images/table/part-NNNNN.parquet`` has a completion marker ``_done/part-NNNNN.json`` holding:

* ``input_fingerprint`` — what the part was fetched from (URLs, fetch settings, image filters, archives, NSFW
  detector); :func:`~obelics_builder.tasks.fetch_partition` skips the part when it matches;
* ``fingerprint`` — a digest of the part's *content* (per URL: reason, sha256, sizes, nsfw, near-duplicate
  marks).  The final step fingerprints its inputs with it, so a part changed by a retry or by new near-duplicate
  marks makes the documents of the run be rebuilt, and an unchanged part keeps them;
* ``stats`` — the ``image_fetch`` stage counts of the part (recomputed after a retry).

The run-wide near-duplicate marks are written by :mod:`.phash_groups` (waves of tasks over the parts).

Rewrites are atomic per part: the marker is removed, the new table is written under a temporary name and renamed,
then the new marker is written; a crash in between leaves the part without a marker, so the next run refetches it.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from ..io.image_table import IMAGE_TABLE_COLUMNS, IMAGE_TABLE_SCHEMA, ImageTableWriter
from ..io.markers import fingerprint, marker_path, read_marker, write_marker
from ..stats import Stats
from .fetch import is_retryable, run_sync
from .hosts import SCHEDULING_KEYS
from .nsfw import BatchScorer, detector_or_reason, nsfw_config
from .table import build_image_table_async

log = logging.getLogger("obelics_builder")

#: keys of ``image:`` that are decisions applied later (changing them must not refetch anything)
DECISION_KEYS = ("drop_near_duplicates", "phash_max_distance", "max_documents_per_url", "banned_url_substrings")
CONTENT_COLUMNS = ("url", "reason", "sha256", "stored_width", "stored_height", "nsfw", "phash_group",
                   "image_near_duplicate")


def fetch_config(fetch_cfg: dict, filters_config: dict, archive_names: list[str]) -> list:
    """What a table part is fetched with besides its URLs: the fetch settings (but those that only schedule the
    work, :data:`~.hosts.SCHEDULING_KEYS`), the image filters without the decisions applied later, the NSFW
    detector (not its threshold) and the image archives."""
    fetch_cfg = {k: v for k, v in fetch_cfg.items() if k not in SCHEDULING_KEYS}
    img = dict(filters_config.get("image") or {})
    for k in DECISION_KEYS:
        img.pop(k, None)
    ns = nsfw_config(filters_config)
    img["nsfw"] = {k: ns.get(k) for k in ("enabled", "detector", "model_path")}  # the threshold is a decision
    return [fetch_cfg, img, list(archive_names)]


def urls_digest(urls: list[str]) -> str:
    """The identity of a table part: a digest of its (sorted, unique) URLs, as the image-URL plan writes it."""
    h = hashlib.sha256()
    for u in urls:
        h.update(u.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def fetch_input_fingerprint(urls: list[str], fetch_cfg: dict, filters_config: dict, archive_names: list[str]) -> str:
    return fingerprint(urls_digest(sorted(set(urls))), *fetch_config(fetch_cfg, filters_config, archive_names))


def fetch_rows(urls: list[str], archive: Any, fetch_cfg: dict, filters_config: dict,
               getaddrinfo=None, **kwargs: Any) -> tuple[list[dict], str | None]:
    """Fetch, decode, filter, hash and NSFW-score ``urls``; returns (rows, note when NSFW scoring is disabled).
    ``kwargs``: ``robots_store``, ``gate``, ``on_rows``, ``checkpoint_every``, ``keep_rows`` (see
    :func:`~.table.build_image_table_async`)."""
    if not urls:
        return [], None

    ncfg = nsfw_config(filters_config)
    detector, note = detector_or_reason(ncfg)
    scorer = BatchScorer(detector, int(ncfg["batch_size"])) if detector is not None else None

    async def go():
        return await build_image_table_async(urls, archive, fetch_cfg, filters_config, getaddrinfo=getaddrinfo,
                                             scorer=scorer, **kwargs)

    return run_sync(go()), note


def table_stats(stats: Stats, rows: list[dict], note: str | None = None) -> None:
    s = stats.stage("image_fetch")
    s["documents_in"] += len(rows)  # for this stage the unit is the unique image URL
    for r in rows:
        if r.get("reason"):
            s["removed"][r["reason"]] += 1
        else:
            s["documents_out"] += 1
        s["seconds"] += float(r.get("seconds") or 0.0)
    if note:
        if note not in s["notes"]:
            log.warning("image_fetch: %s", note)
        stats.note("image_fetch", note)


def content_fingerprint(input_fp: str, table: pa.Table) -> str:
    cols = [c for c in CONTENT_COLUMNS if c in table.column_names]
    data = {c: table.column(c).to_pylist() for c in cols}
    return fingerprint(input_fp, data)


def content_fingerprint_of_file(input_fp: str, path: str | Path, batch_rows: int = 8192) -> str:
    """:func:`content_fingerprint` of the part at ``path``, read one column and one batch at a time: the same
    digest (the same JSON text, hashed as it is produced) without holding the part's columns."""
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    h = hashlib.sha256()
    h.update(json.dumps(input_fp, sort_keys=True, default=str).encode())
    h.update(b"\x00{")
    for i, c in enumerate(sorted(c for c in CONTENT_COLUMNS if c in names)):  # json.dumps(sort_keys=True)'s order
        h.update((", " if i else "").encode() + json.dumps(c).encode() + b": [")
        first = True
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[c]):
            values = batch.column(0).to_pylist()
            if values:
                h.update(b"" if first else b", ")
                h.update(json.dumps(values, default=str)[1:-1].encode())
                first = False
        h.update(b"]")
    h.update(b"}\x00")
    return h.hexdigest()[:16]


def rows_to_table(rows: list[dict]) -> pa.Table:
    return pa.table({c: [r.get(c) for r in rows] for c in IMAGE_TABLE_COLUMNS}, schema=IMAGE_TABLE_SCHEMA)


def read_part(path: Path, columns: list[str] | None = None) -> list[dict]:
    """Rows of a table part; columns missing in an older part come back as None."""
    names = pq.ParquetFile(path).schema_arrow.names
    want = [c for c in (columns or IMAGE_TABLE_COLUMNS) if c in names]
    rows = pq.read_table(path, columns=want).to_pylist()
    for r in rows:
        for c in columns or IMAGE_TABLE_COLUMNS:
            r.setdefault(c, None)
    return rows


def write_table_part(folder: Path, key: str, rows: list[dict] | pa.Table | Iterable[pa.Table], input_fp: str,
                     stats: dict | Callable[[], dict]) -> str:
    """Write a part and its marker (see module docstring); returns the content fingerprint.

    ``rows``: a list of rows, a table, or an iterable of tables (streamed: the part is never whole in memory),
    written in row groups of bounded size (:class:`~obelics_builder.io.image_table.ImageTableWriter`).  ``stats``:
    the marker's stats, or a function giving them once ``rows`` has been consumed."""
    folder = Path(folder)
    if isinstance(rows, list):
        rows = rows_to_table(rows)
    tables = [rows] if isinstance(rows, pa.Table) else rows
    schema = rows.schema if isinstance(rows, pa.Table) else IMAGE_TABLE_SCHEMA
    marker_path(folder, key).unlink(missing_ok=True)
    path = folder / f"{key}.parquet"
    with ImageTableWriter(path, schema) as writer:
        for table in tables:
            writer.write(table)
    cfp = content_fingerprint_of_file(input_fp, path)
    write_marker(folder, key, {"fingerprint": cfp, "input_fingerprint": input_fp,
                               "stats": stats() if callable(stats) else stats})
    return cfp


# ---------------------------------------------------------------------------------------------------------------
# --retry-failed
# ---------------------------------------------------------------------------------------------------------------

def failed_retryable(rows: list[dict]) -> list[str]:
    """URLs whose row failed at fetch time with a retryable error class (not 404, consent, decode or filters)."""
    return [r["url"] for r in rows if r.get("reason") and r.get("reason") == r.get("error")
            and is_retryable(r.get("error"))]


def retry_failed(out: str | Path, recipe: dict, archive: Any, fetch_cfg: dict, getaddrinfo=None) -> dict:
    """Refetch only the retryable failures of every finished table part and merge them in place.

    ``fetch_cfg`` is the fetch configuration for the retry (e.g. with ``allow_private_addresses``); the parts keep
    their input fingerprint, so the pipeline does not refetch them afterwards.  Returns a summary dict.
    """
    table_dir = Path(out) / "images" / "table"
    fcfg = recipe["filters_config"]
    summary = {"parts": 0, "retried": 0, "recovered": 0, "still_failing": 0, "errors_before": {}, "errors_after": {}}
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    for path in sorted(table_dir.glob("part-*.parquet")):
        key = path.stem
        marker = read_marker(table_dir, key)
        if marker is None:
            continue  # unfinished part: the pipeline fetches it in full
        rows = read_part(path)
        urls = failed_retryable(rows)
        if not urls:
            continue
        summary["parts"] += 1
        by_url = {r["url"]: r for r in rows}
        for u in urls:
            before[by_url[u]["error"]] = before.get(by_url[u]["error"], 0) + 1
        new_rows, note = fetch_rows(urls, archive, fetch_cfg, fcfg, getaddrinfo=getaddrinfo)
        for nr in new_rows:
            old = by_url[nr["url"]]
            nr["attempts"] = int(old.get("attempts") or 0) + int(nr.get("attempts") or 0)
            nr["seconds"] = round(float(old.get("seconds") or 0.0) + float(nr.get("seconds") or 0.0), 4)
            by_url[nr["url"]] = nr
            summary["retried"] += 1
            if nr.get("reason"):
                summary["still_failing"] += 1
                after[nr["reason"]] = after.get(nr["reason"], 0) + 1
            else:
                summary["recovered"] += 1
        merged = [by_url[r["url"]] for r in rows]
        stats = Stats()
        table_stats(stats, merged, note)
        write_table_part(table_dir, key, merged, marker.get("input_fingerprint", ""), stats.to_dict())
    summary["errors_before"], summary["errors_after"] = before, after
    return summary
