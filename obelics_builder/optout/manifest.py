"""The opt-out manifest: which URLs were removed, by which source, when — written beside the shards for audits.

File: ``optout-manifest-YYYY-MM-DD.parquet`` (UTC date of the run), columns:

``url``         the opted-out URL (document URL or image URL)
``kind``        ``document`` | ``image``
``source``      ``spawning`` | ``local`` | ``c2pa`` | page-level consent (:mod:`.page`): ``page:x-robots-tag`` |
                ``page:meta-robots`` | ``page:tdm-reservation`` | ``page:noimageai``
``removed_at``  timestamp (UTC, microseconds) when the removal was decided
``doc_url``     the document the URL was removed from (for a document, the URL itself)
``detail``      e.g. ``domain`` / ``url`` for the local list, the ``notAllowed`` entries for C2PA, the header or
                meta tag (as the page had it) for page-level consent

Each part writes its rows (:func:`write_manifest_part`; page-level consent rows beside its text-filter part, the
others beside its published part) and the run merges the parts (:func:`merge_manifests`)
streaming, one part in memory at a time.
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..io.parquet import tmp_path_for, write_table_atomic

KINDS = ("document", "image")
SOURCES = ("spawning", "local", "c2pa", "page:x-robots-tag", "page:meta-robots", "page:tdm-reservation",
           "page:noimageai")
MANIFEST_SCHEMA = pa.schema([
    ("url", pa.string()), ("kind", pa.string()), ("source", pa.string()),
    ("removed_at", pa.timestamp("us", tz="UTC")), ("doc_url", pa.string()), ("detail", pa.string()),
])


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def manifest_row(url: str, kind: str, source: str, doc_url: str, removed_at: _dt.datetime | None = None,
                 detail: str = "") -> dict:
    if kind not in KINDS:
        raise ValueError(f"manifest kind must be one of {KINDS}")
    if source not in SOURCES:
        raise ValueError(f"manifest source must be one of {SOURCES}")
    return {"url": url, "kind": kind, "source": source, "removed_at": removed_at or utc_now(),
            "doc_url": doc_url, "detail": detail}


def manifest_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{k: r.get(k, "") for k in MANIFEST_SCHEMA.names} for r in rows],
                                schema=MANIFEST_SCHEMA)


def write_manifest_part(rows: list[dict], path: str | Path) -> Path:
    return write_table_atomic(manifest_table(rows), path)


def manifest_name(date: _dt.date | _dt.datetime | None = None) -> str:
    d = date or utc_now()
    if isinstance(d, _dt.datetime):
        d = d.astimezone(_dt.timezone.utc).date()
    return f"optout-manifest-{d.isoformat()}.parquet"


def merge_manifests(part_files, out_dir: str | Path, date: _dt.date | _dt.datetime | None = None) -> Path:
    """Concatenate manifest parts into ``out_dir/optout-manifest-YYYY-MM-DD.parquet`` (atomic; always written,
    empty when nothing was removed, so an audit can tell "nothing removed" from "not run")."""
    out = Path(out_dir) / manifest_name(date)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(out)
    writer = pq.ParquetWriter(tmp, MANIFEST_SCHEMA, compression="zstd")
    try:
        for f in part_files:
            f = Path(f)
            if not f.exists():
                continue
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=65_536):
                writer.write_table(pa.Table.from_batches([batch]).cast(MANIFEST_SCHEMA))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, out)
    return out


def read_manifest(path: str | Path) -> list[dict]:
    return pq.read_table(path).to_pylist()
