"""Exact dedup on the set of image URLs of a document (reference §5.5, OBELICS step 11).

Key = the sorted distinct image URLs of the document (after the image rules), joined by a newline and hashed
(SHA-1, hex): the same grouping as OBELICS's separator-less concatenation without its ambiguity ("ab"+"c" vs
"a"+"bc").  Among documents with the same key, the one with the best capture rank (``dedup.urls.capture_rank``,
i.e. the most recent crawl) is kept.  Documents without images have no key and are never removed here.  The
engine finds the losers run-wide (``engine.dedup_reductions.keep_best_losers``) and each part drops its rows with
:func:`drop_listed_rows`.
"""
from __future__ import annotations

import hashlib

import pyarrow as pa

from ..stats import StageContext
from .urls import capture_rank

KEYS_SCHEMA = pa.schema([("key", pa.string()), ("rank", pa.string()), ("row", pa.int64()), ("part", pa.string())])


def image_set_key(doc: dict) -> str:
    """Hex digest of the document's distinct image URLs, or "" when it has none."""
    urls = sorted({u for u in doc["images"] if u})
    if not urls:
        return ""
    return hashlib.sha1("\n".join(urls).encode("utf-8", "surrogatepass")).hexdigest()


def image_set_keys(docs: list[dict], part: str, row0: int = 0) -> dict[str, list]:
    """Columns (key, rank, row, part) of a batch whose first row is row ``row0`` of part ``part``.

    The rank ends with the part and row so that two captures with the same WARC name and offset (a re-extracted
    record) still have one winner.
    """
    keys, ranks, rows = [], [], []
    for i, d in enumerate(docs):
        keys.append(image_set_key(d))
        ranks.append("%s\x00%s\x00%012d" % (capture_rank(d["general_metadata"]), part, row0 + i))
        rows.append(row0 + i)
    return {"key": keys, "rank": ranks, "row": rows, "part": [part] * len(docs)}


def drop_listed_rows(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: drop rows whose index in the part is listed in ``ctx.resources["drop_rows"]`` (a set of ints).

    Batches must be given in part order: the stage keeps the running row offset in ``ctx.resources["row_offset"]``.
    The removal reason is ``ctx.config["reason"]`` (default "duplicate").
    """
    drop = ctx.resources.get("drop_rows") or set()
    row0 = int(ctx.resources.get("row_offset", 0))
    reason = (ctx.config or {}).get("reason", "duplicate")
    out = []
    for i, d in enumerate(docs):
        if row0 + i in drop:
            ctx.remove(reason)
        else:
            out.append(d)
    ctx.resources["row_offset"] = row0 + len(docs)
    return out


def drop_duplicate_image_sets(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: the run-wide losers (``ctx.resources["drop_rows"]``) plus duplicates inside the batch itself."""
    ctx.config = {"reason": "duplicate_image_set", **(ctx.config or {})}
    docs = drop_listed_rows(docs, ctx)
    best: dict[str, tuple[str, int]] = {}
    for i, d in enumerate(docs):
        k = image_set_key(d)
        if k:
            r = (capture_rank(d["general_metadata"]), i)
            if k not in best or r > best[k]:
                best[k] = r
    out = []
    for i, d in enumerate(docs):
        k = image_set_key(d)
        if k and best[k][1] != i:
            ctx.remove("duplicate_image_set")
        else:
            out.append(d)
    return out
