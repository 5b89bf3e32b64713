"""Page-level consent: the ``page_consent`` stage decides from the signals the extractor stored.

The extract stage records what the page said when it was crawled (``general_metadata["page_consent"]``, see
:func:`obelics_builder.extract.stage.page_signals`): the archived response's ``X-Robots-Tag`` and TDMRep headers,
and the head's robots / agent / TDMRep metas and links (never a ``<noscript>``'s or the body's).  This stage reads
them with the recipe's ``page_consent:`` section (:class:`PageConsentConfig`), so changing the section or running
``obelics-build filter`` decides again from the stored signals without reading a WARC.

A document is removed, counted under the first reason that applies (in this order), when:

* ``consent:page:x-robots-tag``: an archived ``X-Robots-Tag`` header holds ``noai`` or ``noml`` for everyone, ``*``
  or our agent name (``X-Robots-Tag: otherbot: noai`` does not apply; ``obelics-builder: noai`` does; names and
  directives case-insensitive, several directives in one header, several headers);
* ``consent:page:meta-robots``: ``<meta name="robots">`` or ``<meta name="AGENT">`` (our agent name) holds ``noai``
  or ``noml``;
* ``consent:page:tdm-reservation``: rights reserved under the W3C TDM Reservation Protocol.  As TDMRep orders its
  techniques, the ``tdm-reservation`` header decides when it is present (``1`` reserved, ``0`` not), else the
  ``<meta name="tdm-reservation">``, else a ``<link rel="tdm-reservation">`` (taken as a reservation); any other
  value is a protocol error and counts as unset.  The ``tdm-policy`` URL (header, meta or link) goes to the
  manifest's detail: its licence terms are not something a crawl can accept.

``noimageai`` (header or meta, for us) removes the page's images and keeps its text (``consent:page:noimageai``,
unit images; the document too, under the same reason, when nothing but images was left).

Each removal is a row of the dated opt-out manifest (source ``page:x-robots-tag``, ..., the evidence in
``detail``); the step writes its rows beside its part and the run merges them with the Spawning and C2PA ones.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from ..errors import ConfigError, did_you_mean
from ..images.consent import UA_TOKEN, tdm_reserved, x_robots_directives
from ..schema import keep_positions
from ..stats import StageContext
from .manifest import manifest_row, utc_now

REASON_X_ROBOTS = "consent:page:x-robots-tag"
REASON_META = "consent:page:meta-robots"
REASON_TDM = "consent:page:tdm-reservation"
REASON_NOIMAGEAI = "consent:page:noimageai"
#: every reason of this stage, in the order a document is judged (the card lists them in this order)
REASONS = (REASON_X_ROBOTS, REASON_META, REASON_TDM, REASON_NOIMAGEAI)
#: directives that withhold the whole page (``noimageai`` withholds its images only)
PAGE_DIRECTIVES = frozenset({"noai", "noml"})
_TOKENS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class PageConsentConfig:
    """A recipe's ``page_consent`` section; these defaults are every entry point's (every signal honoured)."""

    #: off: the stage removes nothing (it still runs, and says it is off)
    enabled: bool = True
    #: the archived response's ``X-Robots-Tag: noai`` / ``noml``
    x_robots_tag: bool = True
    #: ``<meta name="robots" | "AGENT" content="noai | noml">`` in the head
    meta_robots: bool = True
    #: W3C TDMRep ``tdm-reservation: 1`` (header, head meta or link)
    tdm_reservation: bool = True
    #: ``noimageai`` (header or head meta): remove the page's images, keep its text
    noimageai: bool = True
    #: the agent name pages address us by (``X-Robots-Tag: AGENT: noai``, ``<meta name="AGENT">``)
    agent: str = UA_TOKEN

    @classmethod
    def from_mapping(cls, section: dict | None) -> "PageConsentConfig":
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ConfigError(f"page_consent: expected a mapping, got {type(section).__name__}")
        known = sorted(f.name for f in fields(cls))
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise ConfigError(f"page_consent: unknown key(s) {', '.join(unknown)}{did_you_mean(unknown[0], known)} "
                              f"(known: {', '.join(known)})")
        return cls(**{**asdict(cls()), **section})

    def as_dict(self) -> dict:
        return asdict(self)


def _meta_directives(content: str) -> set[str]:
    return {t for t in _TOKENS.split(content.lower()) if t in PAGE_DIRECTIVES or t == "noimageai"}


def _tdm(signals: dict) -> tuple[bool, str]:
    """(reserved, evidence) under TDMRep's order: header, then meta, then link."""
    headers = signals.get("headers") or []
    metas = signals.get("meta") or []
    links = signals.get("link") or []
    policy = next((v for n, v in headers if n == "tdm-policy"), None) \
        or next((c for n, c in metas if n == "tdm-policy"), None) \
        or next((h for r, h in links if r == "tdm-policy"), None)
    reserved, where = None, ""
    for where, values in (("header", [v for n, v in headers if n == "tdm-reservation"]),
                          ("meta", [c for n, c in metas if n == "tdm-reservation"])):
        valid = [v.strip().strip('"').strip() for v in values if v.strip().strip('"').strip() in ("0", "1")]
        if valid:
            reserved = tdm_reserved(valid[0])
            break
    if reserved is None and any(r == "tdm-reservation" for r, _ in links):
        reserved, where = True, "link"
    if not reserved:
        return False, ""
    return True, f"tdm-reservation: 1 ({where})" + (f"; tdm-policy: {policy}" if policy else "")


def page_verdict(signals: dict | None, cfg: PageConsentConfig) -> tuple[str | None, str, str]:
    """``(document reason or None, its evidence, noimageai evidence or "")`` for one page's stored signals."""
    if not signals or not cfg.enabled:
        return None, "", ""
    agent = cfg.agent.strip().lower()
    found: list[tuple[str, str]] = []  # (reason, evidence) of every signal that withholds the page
    noimage: list[str] = []
    for name, value in signals.get("headers") or []:
        if name != "x-robots-tag":
            continue
        d = x_robots_directives(value, agent)
        if cfg.x_robots_tag and d & PAGE_DIRECTIVES:
            found.append((REASON_X_ROBOTS, f"X-Robots-Tag: {value}"))
        if "noimageai" in d:
            noimage.append(f"X-Robots-Tag: {value}")
    for name, content in signals.get("meta") or []:
        if name != "robots" and name != agent:
            continue
        d = _meta_directives(content)
        if cfg.meta_robots and d & PAGE_DIRECTIVES:
            found.append((REASON_META, f'meta {name}="{content}"'))
        if "noimageai" in d:
            noimage.append(f'meta {name}="{content}"')
    if cfg.tdm_reservation:
        reserved, evidence = _tdm(signals)
        if reserved:
            found.append((REASON_TDM, evidence))
    if found:
        first = min(found, key=lambda f: REASONS.index(f[0]))[0]
        return first, "; ".join(e for _, e in found), ""
    return None, "", "; ".join(noimage) if cfg.noimageai else ""


def page_consent_stage(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: remove the documents (and the images) whose page withheld consent; each removal is counted and
    appended to ``ctx.resources["manifest"]`` (``removed_at``: ``ctx.resources["removed_at"]``, else now)."""
    cfg = PageConsentConfig.from_mapping(ctx.config)
    manifest: list = ctx.resources.setdefault("manifest", [])
    when = ctx.resources.setdefault("removed_at", utc_now())
    if not cfg.enabled:
        ctx.note("page-level consent signals NOT honoured: disabled by the recipe (page_consent.enabled: false)")
        return docs
    off = [f.name for f in fields(cfg) if f.type in (bool, "bool") and f.name != "enabled" and not getattr(cfg, f.name)]
    if off:
        ctx.note(f"page-level consent: not honoured by the recipe: {', '.join(off)} (page_consent.<signal>: false)")
    out = []
    for d in docs:
        gm = d["general_metadata"]
        reason, evidence, noimage = page_verdict(gm.get("page_consent"), cfg)
        page = gm.get("url", "")
        if reason is not None:
            ctx.remove(reason)
            manifest.append(manifest_row(page, "document", reason.split(":", 1)[1], page, when, evidence))
            continue
        if noimage and any(u is not None for u in d["images"]):
            keep = [u is None for u in d["images"]]
            for u in d["images"]:
                if u is not None:
                    ctx.remove(REASON_NOIMAGEAI, unit="images")
                    manifest.append(manifest_row(u, "image", "page:noimageai", page, when, noimage))
            keep_positions(d, keep)
            if not d["texts"]:
                ctx.remove(REASON_NOIMAGEAI)
                continue
        out.append(d)
    return out
