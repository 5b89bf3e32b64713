"""Exact document-URL dedup: among captures of one URL keep the most recent one.

OBELICS keeps the copy whose ``warc_filename`` is lexicographically largest (Common Crawl paths embed the crawl id,
so that is the most recent crawl, reference §5.5); ties (the same URL twice in one WARC) are broken by the larger
record offset, so the choice is deterministic.  The engine computes, per URL, the largest ``rank`` over the whole run
(a Dask groupby) and each part then drops its rows whose rank is not that maximum.
"""
from __future__ import annotations

from ..stats import StageContext


def capture_rank(general_metadata: dict) -> str:
    """A string whose lexicographic order is the keep order (larger = kept)."""
    return "%s\x00%020d" % (general_metadata.get("warc_filename", ""), int(general_metadata.get("warc_record_offset") or 0))


def url_keys(docs: list[dict]) -> dict[str, list]:
    """Columns (url, rank, row) for the global reduction."""
    return {
        "url": [d["general_metadata"].get("url", "") for d in docs],
        "rank": [capture_rank(d["general_metadata"]) for d in docs],
        "row": list(range(len(docs))),
    }


def drop_duplicate_urls(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: keep only rows whose rank equals the run-wide best rank of their URL.

    ``ctx.resources["best_rank"]`` maps url -> best rank (only URLs of this batch need to be present; a URL missing
    from the map is kept).  Duplicates inside the batch itself are resolved here too.
    """
    best: dict[str, str] = dict(ctx.resources.get("best_rank") or {})
    for d in docs:  # duplicates within this batch
        url, rank = d["general_metadata"].get("url", ""), capture_rank(d["general_metadata"])
        if rank > best.get(url, ""):
            best[url] = rank
    out, seen = [], set()
    for d in docs:
        url, rank = d["general_metadata"].get("url", ""), capture_rank(d["general_metadata"])
        if rank == best.get(url, rank) and (url, rank) not in seen:
            seen.add((url, rank))
            out.append(d)
        else:
            ctx.remove("duplicate_url")
    return out
