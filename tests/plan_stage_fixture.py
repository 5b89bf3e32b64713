"""Stages of one's own for tests/test_plan.py, named in recipes by dotted path (``plan_stage_fixture:drop_urls``)."""
from __future__ import annotations


def drop_urls(docs: list[dict], ctx) -> list[dict]:
    """Drops the documents whose URL contains ``ctx.config["drop"]`` (reason ``dropped_by_test``) and scores the
    others (``doc_test_images``); appends ``<stage> <batch size>`` to the file ``ctx.config["log"]``."""
    if ctx.config.get("log"):
        with open(ctx.config["log"], "a", encoding="utf-8") as f:
            f.write(f"{ctx.stage} {len(docs)}\n")
    drop = ctx.config.get("drop")
    kept = []
    for d in docs:
        if drop and drop in d["general_metadata"].get("url", ""):
            ctx.remove("dropped_by_test")
        else:
            d["doc_test_images"] = float(sum(1 for u in d["images"] if u))
            kept.append(d)
    return kept


def identity(docs: list[dict], ctx) -> list[dict]:
    return docs


NOT_A_FUNCTION = 3


def drop_by_filter(docs: list[dict], ctx) -> list[dict]:
    """Drops the documents whose URL contains ``ctx.filters["drop"]`` (its decision, from the filter config's
    ``stages: {drop_by_filter: {drop: ...}}``; reason ``dropped_by_filter``)."""
    drop = ctx.filters.get("drop")
    kept = []
    for d in docs:
        if drop and drop in d["general_metadata"].get("url", ""):
            ctx.remove("dropped_by_filter")
        else:
            kept.append(d)
    return kept
