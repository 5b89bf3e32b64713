"""The ``extract`` stage: WARC records (from :func:`obelics_builder.sources.warc.iter_html_records`) -> documents.

Every record either becomes a document (``schema.new_document`` + ``add_text``/``add_image``) or is counted:
removed (``not_html``, ``empty_document``) or lost to an error (``too_large``, ``timeout``, ``parse_error``,
``extract_exception``) with an example (file, offset, url, message).  A page's consent signals (the record's
``consent_headers`` and the head's metas and links, read by the extractor from its own parse) are stored in
``general_metadata["page_consent"]`` when it has any (:func:`page_signals`); the ``page_consent`` stage decides.
"""
from __future__ import annotations

import re
import time

from selectolax.lexbor import SelectolaxError

from .. import schema
from ..recipe import ConfigError, ExtractConfig
from .charset import decode_html_lossless
from .default import extract_default
from .head import AI_WORDS
from .obelics import ExtractionTimeout, extract_obelics

#: payloads larger than this are rejected (reason ``too_large``)
MAX_HTML_BYTES = 20_000_000
MODES = ("obelics", "default", "trafilatura")

_MAGIC = (
    (b"%PDF-", "PDF"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"\xff\xd8\xff", "JPEG"),
    (b"PK\x03\x04", "ZIP"), (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x00\x00\x01\x00", "ICO"), (b"OggS", "Ogg"), (b"ID3", "MP3"), (b"\x7fELF", "ELF"), (b"MZ", "executable"),
    (b"wOFF", "WOFF"), (b"wOF2", "WOFF2"), (b"\xd0\xcf\x11\xe0", "OLE/MS Office"), (b"Rar!", "RAR"),
    (b"\x28\xb5\x2f\xfd", "zstd"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)
_RIFF_OR_FTYP = re.compile(rb"^(?:RIFF....(?:WEBP|AVI |WAVE)|....ftyp)", re.S)
#: bytes that never appear in text: C0 controls other than tab, LF, FF, CR, ESC
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")


class ExtractionRejected(Exception):
    """A counted rejection: ``reason`` is the stats key."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


def sniff_not_html(body: bytes) -> str | None:
    """Why a payload is clearly not an HTML page (binary magic, control bytes), or None."""
    head = body[:4096]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return f"{name} payload"
    if _RIFF_OR_FTYP.match(head[:16]):
        return "media container payload"
    if head.startswith(_UTF16_32_BOMS):
        return None
    if head:
        n = len(_CONTROL.findall(head))
        if n > max(8, len(head) // 100):
            return f"binary payload ({n} control bytes in the first {len(head)})"
    return None


def _general_metadata(record: dict) -> dict:
    keys = ("url", "warc_filename", "warc_record_offset", "warc_record_length", "dump", "fetch_date")
    return {k: record[k] for k in keys if record.get(k) is not None}


def _extract_trafilatura(html: str, url: str, deadline=None, head: dict | None = None):
    from .trafilatura_mode import extract_trafilatura  # the optional extra: imported only when chosen

    return extract_trafilatura(html, url, deadline=deadline, head=head)


def page_signals(headers, head: dict) -> dict:
    """The page's consent signals as ``general_metadata["page_consent"]`` stores them: ``headers`` (``[name,
    value]`` of the archived response's ``X-Robots-Tag`` values that hold an AI directive, and its TDMRep headers)
    and the head's ``meta`` / ``link`` entries (:mod:`.head`); empty when the page has none (no key is written, so
    pages without signals are stored as before).  The decision is :mod:`obelics_builder.optout.page`'s."""
    kept = [[n, v] for n, v in headers or ()
            if n != "x-robots-tag" or any(w in v.lower() for w in AI_WORDS)]
    return {**({"headers": kept} if kept else {}), **head}


#: mode -> ``(html, url, deadline=None, head=None) -> [("text", str) | ("image", meta)]``
EXTRACTORS = {"obelics": extract_obelics, "default": extract_default, "trafilatura": _extract_trafilatura}


def check_mode(mode: str) -> None:
    """A :class:`ConfigError` for an unknown mode, or for ``trafilatura`` without its optional extra."""
    if mode not in MODES:
        raise ConfigError(f"unknown extract mode {mode!r} (choose from: {', '.join(sorted(MODES))})")
    if mode == "trafilatura":
        from .trafilatura_mode import require_trafilatura

        require_trafilatura()



def extract_record(record: dict, mode: str = ExtractConfig.mode,
                   time_budget_s: float = ExtractConfig.page_time_budget_s) -> dict:
    """One WARC record dict -> one document; raises :class:`ExtractionRejected` for counted rejections."""
    check_mode(mode)
    t0 = time.monotonic()
    deadline = t0 + time_budget_s if time_budget_s and time_budget_s > 0 else None
    body = record.get("body")
    url = record.get("url") or ""
    if body is None:
        raise ExtractionRejected("not_html", "record has no body")
    utf8 = None
    if isinstance(body, str):
        if len(body) > MAX_HTML_BYTES:
            raise ExtractionRejected("too_large", f"{len(body)} characters > {MAX_HTML_BYTES}")
        html = body
    else:
        if len(body) > MAX_HTML_BYTES:
            raise ExtractionRejected("too_large", f"{len(body)} bytes > {MAX_HTML_BYTES}")
        why = sniff_not_html(body)
        if why:
            raise ExtractionRejected("not_html", why)
        warc_charset = (record.get("warc_headers") or {}).get("WARC-Identified-Content-Charset")
        html, _, lossless = decode_html_lossless(body, record.get("http_headers"), warc_charset)
        if lossless:  # the payload is exactly the text's UTF-8: look for NUL in it (bytes, faster), parse it as it is
            utf8 = body if b"\x00" not in body else None
    if utf8 is None and "\x00" in html:
        html = html.replace("\x00", "\ufffd")
    if deadline is not None and time.monotonic() > deadline:
        raise ExtractionRejected("timeout", f"decoding took more than {time_budget_s}s")
    head: dict = {}  # the head's consent signals, read by the extractor from its own parse
    try:
        nodes = (extract_default(html, url, deadline=deadline, utf8=utf8, head=head) if mode == "default"
                 else EXTRACTORS[mode](html, url, deadline=deadline, head=head))
    except ExtractionTimeout:
        raise ExtractionRejected("timeout", f"page took more than {time_budget_s}s "
                                            f"({len(html)} characters)") from None
    except (SelectolaxError, ValueError, MemoryError) as e:
        raise ExtractionRejected("parse_error", f"{type(e).__name__}: {e}"[:500]) from None
    if not nodes:
        raise ExtractionRejected("empty_document", "no text and no image after extraction")
    doc = schema.new_document(_general_metadata(record))
    signals = page_signals(record.get("consent_headers"), head)
    if signals:
        doc["general_metadata"]["page_consent"] = signals
    for kind, value in nodes:
        if kind == "text":
            schema.add_text(doc, value)
        else:
            schema.add_image(doc, value)
    return doc


def extract_html(html: str | bytes, url: str, mode: str = ExtractConfig.mode, http_headers: dict | None = None,
                 time_budget_s: float = 0) -> dict:
    """Convenience: one HTML page (str, or bytes decoded with :func:`decode_html`) -> a document."""
    return extract_record({"url": url, "body": html, "http_headers": http_headers or {}}, mode=mode,
                          time_budget_s=time_budget_s)


#: rejections that are removals (the page is fine, it just holds nothing for us) rather than errors
_REMOVALS = ("empty_document", "not_html")


def extract_stage(records: list[dict], ctx) -> list[dict]:
    """Stage: records -> documents; every record not returned is counted in ``ctx``."""
    cfg = ExtractConfig.from_mapping(ctx.config)  # the recipe's extract section; missing keys take the defaults
    mode, budget = cfg.mode, cfg.page_time_budget_s
    check_mode(mode)  # a configuration error (ConfigError) stops the run: it is not a per-record problem
    docs = []
    for record in records:
        where = {"file": record.get("warc_filename"), "offset": record.get("warc_record_offset"),
                 "url": record.get("url")}
        try:
            docs.append(extract_record(record, mode, budget))
        except ExtractionRejected as e:
            if e.reason in _REMOVALS:
                ctx.remove(e.reason)
            else:
                ctx.error(e.reason, message=e.message, **where)
        except Exception as e:  # never let one page stop the batch
            ctx.error("extract_exception", message=f"{type(e).__name__}: {e}"[:500], **where)
    return docs
