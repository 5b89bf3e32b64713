"""URL helpers shared by the extractors: standard resolution (``urljoin`` + ``<base href>``) and data: URIs.

The OBELICS reference mode does *not* use these (it resolves against the domain root, see
:func:`obelics_builder.extract.obelics.format_relative_to_absolute_path`); later extractors do.
"""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

_BASE_HREF = re.compile(rb"<base\s[^>]*?href\s*=\s*[\"']?([^\"'\s>]+)", re.I)
_STRIP_CHARS = "\t\n\r\x0c "
_WS_INSIDE = re.compile(r"[\t\n\r]")


def is_data_uri(value: str | None) -> bool:
    """``data:`` URIs (inline images, placeholders) are never fetchable image URLs."""
    return bool(value) and value.lstrip(_STRIP_CHARS)[:5].lower() == "data:"


def base_href(html: str | bytes, page_url: str) -> str:
    """The document base URL: the first ``<base href>`` resolved against the page URL, else the page URL."""
    head = html[:65536]
    if isinstance(head, str):
        head = head.encode("utf-8", "replace")
    m = _BASE_HREF.search(head)
    if not m:
        return page_url
    href = m.group(1).decode("utf-8", "replace")
    resolved = resolve_url(page_url, href)
    return resolved or page_url


def resolve_url(base: str, ref: str | None) -> str | None:
    """Resolve ``ref`` against ``base`` as browsers do (leading/trailing whitespace and inner tabs/newlines
    dropped); returns an absolute http(s) URL or None (empty, ``data:``, ``javascript:``, other schemes)."""
    if not ref:
        return None
    ref = _WS_INSIDE.sub("", ref.strip(_STRIP_CHARS))
    if not ref or is_data_uri(ref):
        return None
    try:
        url = urljoin(base, ref)
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url
