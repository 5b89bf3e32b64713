"""Image-URL rules applied before any image is fetched (no bandwidth spent on images that would be dropped):

* banned substrings (OBELICS ``URL_BAN_WORDS``: a plain, case-sensitive substring test on the absolute URL, §4.4);
* URLs present in more than ``max_documents_per_url`` documents of the run (OBELICS step 06: count > 10), counted by
  the engine as a groupby over (image URL, document) pairs.
"""
from __future__ import annotations

from ..schema import keep_positions
from ..stats import StageContext


def banned_substring(url: str, words: frozenset[str] | list[str]) -> str | None:
    for w in words:
        if w and w in url:
            return w
    return None


def image_url_doc_pairs(docs: list[dict]) -> dict[str, list]:
    """Distinct (image_url, document url) pairs of a batch: the input of the run-wide URL count."""
    urls, docs_col = [], []
    for d in docs:
        page = d["general_metadata"].get("url", "")
        for u in {u for u in d["images"] if u}:
            urls.append(u)
            docs_col.append(page)
    return {"image_url": urls, "doc_url": docs_col}


def image_url_prefilter(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: drop image positions with a banned URL or a too frequent URL.

    ``ctx.resources``: ``url_ban_words`` (iterable of substrings, may be empty) and ``too_frequent`` (set of URLs).
    Documents are kept (the final cleaning drops documents left without images).
    """
    words = list(ctx.resources.get("url_ban_words") or ())
    too_frequent = ctx.resources.get("too_frequent") or set()
    for d in docs:
        keep = []
        for t, u in zip(d["texts"], d["images"]):
            if t is not None:
                keep.append(True)
            elif words and banned_substring(u or "", words):
                ctx.remove("image:banned_url_substring", unit="images")
                keep.append(False)
            elif u in too_frequent:
                ctx.remove("image:too_frequent_url", unit="images")
                keep.append(False)
            else:
                keep.append(True)
        if not all(keep):
            keep_positions(d, keep)
    return docs
