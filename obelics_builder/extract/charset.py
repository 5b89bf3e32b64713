"""Bytes -> str for HTML payloads: declared charsets first, then detection, never an exception.

Order (:func:`decode_html`): byte-order mark; HTTP ``Content-Type`` charset; ``WARC-Identified-Content-Charset``;
``<meta charset>`` / ``<meta http-equiv="content-type" content="...charset=...">`` in the first 4 KB; then
detection (strict UTF-8, then charset_normalizer); else UTF-8 with replacement characters.

A declared charset is used only if it decodes the body strictly.  Two corrections browsers also make in practice:

* labels are mapped as browsers map them (``latin-1``/``iso-8859-1``/``ascii`` -> ``cp1252``, ``shift_jis`` ->
  ``cp932``, ``gb2312``/``gbk`` -> ``gb18030``, ``euc-kr`` -> ``cp949``, ``tis-620`` -> ``cp874``...); a ``<meta>``
  declaring UTF-16 means UTF-8 (the page could not have been read as ASCII otherwise); unknown labels are ignored;
* a body declared in a single-byte legacy charset that is valid UTF-8 *and* contains multi-byte sequences is
  decoded as UTF-8 (mis-declared UTF-8 pages are common; real Latin-1 text is practically never valid UTF-8).

A declared charset that fails strict decoding falls through to the next source and finally to detection.
"""
from __future__ import annotations

import codecs
import re

#: WHATWG-style label corrections (after lower-casing); values must be Python codec names.
_ALIASES = {
    "latin1": "cp1252", "latin-1": "cp1252", "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "iso_8859-1": "cp1252",
    "l1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252", "ansi_x3.4-1968": "cp1252", "windows-1252": "cp1252",
    "x-cp1252": "cp1252", "cp819": "cp1252", "ibm819": "cp1252",
    "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874", "windows-874": "cp874",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "chinese": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
    "windows-31j": "cp932", "csshiftjis": "cp932", "euc-kr": "cp949", "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso8859-8", "x-mac-roman": "mac-roman", "macintosh": "mac-roman", "x-mac-cyrillic": "mac-cyrillic",
    "x-user-defined": None, "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8",
    "big5": "big5hkscs", "x-euc-jp": "euc_jp", "koi8_r": "koi8-r",
}
_SINGLE_BYTE = {"cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874",
                "iso8859-2", "iso8859-15", "koi8-r", "koi8-u", "mac-roman", "latin_1", "iso8859-8"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([^\s\"';,]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:\-]+)", re.I)
_NON_ASCII = re.compile(rb"[\x80-\xff]")
#: bytes handed to the statistical detector (enough for a reliable guess, bounded cost)
DETECT_BYTES = 256 * 1024


def normalize_charset(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None for an unknown / useless label."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if not label:
        return None
    if label in _ALIASES:
        return _ALIASES[label]
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name in ("latin-1", "iso8859-1", "ascii"):  # codecs' own names for the same labels
        return "cp1252"
    if name.startswith("utf-7"):  # never honoured by browsers (XSS vector)
        return None
    return name


def charset_from_content_type(value: str | None) -> str | None:
    m = _CT_CHARSET.search(value or "")
    return m.group(1) if m else None


def charset_from_meta(body: bytes) -> str | None:
    """The charset of the first ``<meta ... charset=...>`` in the first 4 KB (both meta forms)."""
    m = _META_CHARSET.search(body[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _is_utf8_with_multibyte(body: bytes) -> bool:
    if not _NON_ASCII.search(body):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _detect(body: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - declared dependency
        return None
    try:
        best = from_bytes(body[:DETECT_BYTES]).best()
    except Exception:
        return None
    if best is None:
        return None
    return normalize_charset(best.encoding)


def decode_html(body: bytes, http_headers: dict | None = None, warc_charset: str | None = None) -> tuple[str, str]:
    """Decode an HTML payload; returns ``(text, encoding_used)``.  Never raises for any bytes."""
    if isinstance(body, str):
        return body, "str"
    body = bytes(body)
    for bom, enc in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(enc, errors="replace"), enc

    declared = []
    headers = http_headers or {}
    ctype = headers.get("content-type") or headers.get("Content-Type")
    for label, from_meta in ((charset_from_content_type(ctype), False), (warc_charset, False),
                             (charset_from_meta(body), True)):
        enc = normalize_charset(label)
        if enc and from_meta and enc.startswith("utf-16"):
            enc = "utf-8"
        if enc and enc not in declared:
            declared.append(enc)

    for enc in declared:
        if enc in _SINGLE_BYTE and _is_utf8_with_multibyte(body):
            return body.decode("utf-8"), "utf-8"
        text = _strict(body, enc)
        if text is not None:
            return text, enc

    if not _NON_ASCII.search(body):
        return body.decode("ascii"), "ascii"
    text = _strict(body, "utf-8")
    if text is not None:
        return text, "utf-8"
    enc = _detect(body)
    if enc:
        text = _strict(body, enc)
        if text is not None:
            return text, enc
        # a detector guess that fails later in the body: keep it only if the damage is small
        text = body.decode(enc, errors="replace")
        if text.count("\ufffd") <= max(2, len(text) // 1000):
            return text, enc
    return body.decode("utf-8", errors="replace"), "utf-8"
