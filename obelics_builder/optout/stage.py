"""Opt-out stages (plain functions, no Dask) and the run-level lookups they need.

Flow (the engine wires it, see ``engine.dedup_reductions.unique_urls_plan``):

1. each part lists its URLs with :func:`collect_urls` (document URLs and image URLs);
2. the run looks up the distinct URLs once: :func:`spawning_lookup` per URL bucket (Spawning API, skipped loudly
   without a key) and ``c2pa.scan_image_table`` per image-table part (C2PA in the fetched bytes); the local list
   is matched directly in the stage;
3. each part runs :func:`optout_stage` with ``ctx.resources``:
   ``opted_out``   {url: (source, detail)} from Spawning/C2PA (only the URLs of this part are needed),
   ``local``       a :class:`~obelics_builder.optout.local.LocalOptOut` or None,
   ``manifest``    a list the stage appends manifest rows to (the caller writes it with
                   ``manifest.write_manifest_part``),
   ``removed_at``  the timestamp to record (one per run),
   ``spawning_skipped`` / ``spawning_unchecked``: what the lookup reported, repeated as stage notes.

Rules: an opted-out document URL removes the whole document (reason ``optout:document:<source>``); an opted-out
image URL removes that image position (reason ``optout:image:<source>``, unit images), or the whole document when
``ctx.config["remove_documents_with_opted_out_images"]`` is true.
"""
from __future__ import annotations

import logging

import pyarrow as pa

from ..schema import keep_positions
from ..stats import StageContext
from .manifest import manifest_row, utc_now
from .spawning import SpawningClient, client_from_config

log = logging.getLogger("obelics_builder")

URLS_SCHEMA = pa.schema([("url", pa.string()), ("kind", pa.string())])
SKIPPED_NOTE = "Spawning opt-out check SKIPPED: SPAWNING_OPTS_KEY is not set, Spawning opt-outs were NOT removed"


def collect_urls(docs: list[dict]) -> dict[str, list]:
    """Columns (url, kind) of the document URLs and distinct image URLs of a batch."""
    urls, kinds = [], []
    for d in docs:
        u = d["general_metadata"].get("url", "")
        if u:
            urls.append(u)
            kinds.append("document")
        for im in dict.fromkeys(x for x in d["images"] if x):
            urls.append(im)
            kinds.append("image")
    return {"url": urls, "kind": kinds}


def spawning_lookup(urls: list[str], cfg: dict | None, ctx: StageContext,
                    client: SpawningClient | None = None) -> dict[str, tuple[str, str]]:
    """Ask Spawning about ``urls``; returns {url: ("spawning", "")} for opted-out ones.

    Without a key: a loud note (log warning + stats note) and an empty result.  URLs left unchecked after retries
    are counted in the note; with ``cfg["on_unchecked"] == "remove"`` they are returned as opted out with detail
    ``unchecked:<reason>`` (consent-first), by default they are kept.
    """
    cfg = dict(cfg or {})
    if not cfg.get("enabled", True):
        ctx.note("Spawning opt-out check disabled by configuration (optout.spawning.enabled: false)")
        return {}
    client = client or client_from_config(cfg)
    if not client.has_key:
        ctx.note(SKIPPED_NOTE)
        return {}
    res = client.query(urls)
    log.info("spawning: %d URLs, %d opted out, %d requests, %d retries", len(res.checked), len(res.opted_out),
             res.requests, res.retries)
    out = {u: ("spawning", "") for u in res.opted_out}
    if res.unchecked:
        reasons: dict[str, int] = {}
        for r in res.unchecked.values():
            reasons[r] = reasons.get(r, 0) + 1
        policy = cfg.get("on_unchecked", "keep")
        ctx.note(f"Spawning: {len(res.unchecked)} URLs could not be checked ({dict(sorted(reasons.items()))}); "
                 f"on_unchecked={policy}")
        if policy == "remove":
            for u, r in res.unchecked.items():
                out.setdefault(u, ("spawning", f"unchecked:{r}"))
    return out


def _lookup(flagged: dict[str, tuple[str, str]], local):
    def lookup(url: str) -> tuple[str, str] | None:
        if not url:
            return None
        hit = flagged.get(url)
        if hit is not None:
            return hit
        if local is not None:
            m = local.match(url)
            if m:
                return ("local", m)
        return None
    return lookup


def optout_edits_documents(docs: list[dict], ctx: StageContext) -> bool:
    """Whether :func:`optout_stage` would remove an image position from a document it keeps (rather than only
    keep or drop whole documents), so its caller needs the whole rows."""
    res = ctx.resources
    if bool((ctx.config or {}).get("remove_documents_with_opted_out_images", False)):
        return False
    lookup = _lookup(res.get("opted_out") or {}, res.get("local"))
    return any(lookup(d["general_metadata"].get("url", "")) is None
               and any(t is None and lookup(u) is not None for t, u in zip(d["texts"], d["images"]))
               for d in docs)


def optout_stage(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: remove opted-out documents and images, recording each removal in ``ctx.resources["manifest"]``."""
    res = ctx.resources
    flagged: dict[str, tuple[str, str]] = res.get("opted_out") or {}
    local = res.get("local")
    manifest: list = res.setdefault("manifest", [])
    when = res.setdefault("removed_at", utc_now())
    if res.get("spawning_skipped"):
        ctx.note(SKIPPED_NOTE)
    whole_doc = bool((ctx.config or {}).get("remove_documents_with_opted_out_images", False))
    lookup = _lookup(flagged, local)
    out = []
    for d in docs:
        page = d["general_metadata"].get("url", "")
        hit = lookup(page)
        if hit is not None:
            ctx.remove(f"optout:document:{hit[0]}")
            manifest.append(manifest_row(page, "document", hit[0], page, when, hit[1]))
            continue
        keep = []
        image_hits = []
        for t, u in zip(d["texts"], d["images"]):
            h = lookup(u) if t is None else None
            keep.append(h is None)
            if h is not None:
                image_hits.append((u, h))
        if image_hits and whole_doc:
            src = image_hits[0][1][0]
            ctx.remove(f"optout:document_image:{src}")
            for u, h in image_hits:
                manifest.append(manifest_row(u, "image", h[0], page, when, h[1]))
            manifest.append(manifest_row(page, "document", src, page, when, "has opted-out image"))
            continue
        for u, h in image_hits:
            ctx.remove(f"optout:image:{h[0]}", unit="images")
            manifest.append(manifest_row(u, "image", h[0], page, when, h[1]))
        if image_hits:
            keep_positions(d, keep)
        out.append(d)
    return out
