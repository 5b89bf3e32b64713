"""Streaming WARC/ARC reading: HTML responses out, everything else counted.

:func:`iter_html_records` reads one WARC (any mirror, see :mod:`.commoncrawl`) record by record with warcio and yields
the HTML ``response`` records with status 200 as plain dicts.  Every record is counted in the ``read`` stage
(``documents_in``); a record that is not yielded is either *removed* with a reason (``not_response:<type>``,
``http_status:<code>``, ``not_html``, ``not_http``, ``too_large``) or lost to an *error* (``truncated_record``,
``corrupt_gzip``, ``bad_chunked_encoding``, ``content_decoding_error``, ``invalid_record``, ``bad_target_uri``,
``read_error``, ``unreadable_file``) with an example (file, offset, message).  So, per file::

    documents_in == documents_out + removed + errors

Damage never stops the run: after a broken record the reader looks for the next record start in a local file
(the next gzip member, or the next ``WARC/`` line of an uncompressed file) and continues from there; undecodable
data in a stream that cannot seek ends that file after one counted error.  Records already yielded stay yielded.

A *source* failure is different from damage: when the network or the server fails after every retry
(:class:`~.commoncrawl.SourceUnavailable`), the rest of the file was never seen, so the reader raises instead of
counting an error.  The per-WARC unit then fails, is not marked complete, and a rerun reads the file again.
"""
from __future__ import annotations

import gzip
import logging
import zlib
from typing import Iterator
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

from .commoncrawl import SourceUnavailable, WarcRef, open_stream

log = logging.getLogger("obelics_builder.sources")

HTML_TYPES = ("text/html", "application/xhtml+xml")
#: WARC headers passed through (when present) in ``warc_headers``.
KEPT_WARC_HEADERS = (
    "WARC-Identified-Content-Charset",
    "WARC-Identified-Payload-Type",
    "WARC-Identified-Content-Language",
    "WARC-Truncated",
)
#: How many times one file may be re-synchronised after damage before the rest of it is given up.
MAX_RESYNCS = 200
_SEARCH_BLOCK = 1 << 20


class _BadPayload(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _TooLarge(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Payload decoding
# ---------------------------------------------------------------------------------------------------------------

def dechunk(data: bytes) -> bytes:
    """Undo HTTP ``Transfer-Encoding: chunked``.

    A body whose first line is not a chunk size was never really chunked (a lying header): it is returned as is.
    A body cut inside its last chunk (common in crawls) keeps the bytes that are there.  A malformed chunk size or
    a missing chunk terminator after the first chunk raises ``_BadPayload("bad_chunked_encoding")``.
    """
    out = bytearray()
    pos = 0
    first = True
    n = len(data)
    while pos < n:
        eol = data.find(b"\n", pos, pos + 1024)
        if eol < 0:
            if first:
                return data
            raise _BadPayload("bad_chunked_encoding", f"no chunk-size line at byte {pos}")
        size_field = data[pos:eol].split(b";", 1)[0].strip()
        try:
            if not size_field or len(size_field) > 16:
                raise ValueError(size_field)
            size = int(size_field, 16)
        except ValueError:
            if first:
                return data
            raise _BadPayload("bad_chunked_encoding", f"bad chunk size {size_field[:20]!r} at byte {pos}")
        first = False
        pos = eol + 1
        if size == 0:
            break
        out += data[pos:pos + size]
        pos += size
        if pos >= n:
            break
        if data[pos:pos + 2] == b"\r\n":
            pos += 2
        elif data[pos:pos + 1] == b"\n":
            pos += 1
        else:
            raise _BadPayload("bad_chunked_encoding", f"chunk not terminated by CRLF at byte {pos}")
    return bytes(out)


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, limit + 1)
    if len(out) > limit:
        raise _TooLarge()
    return out


def decode_content(data: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, br); a body that is not actually encoded is returned as is."""
    enc = (encoding or "").strip().lower()
    if not enc or enc in ("identity", "none"):
        return data
    encodings = [e.strip() for e in enc.split(",") if e.strip()]
    for e in reversed(encodings):
        try:
            if e in ("gzip", "x-gzip"):
                if not data.startswith(b"\x1f\x8b"):
                    continue  # stored decoded (as Common Crawl does) under the original header
                data = _inflate(data, 16 + zlib.MAX_WBITS, limit)
            elif e == "deflate":
                try:
                    data = _inflate(data, zlib.MAX_WBITS, limit)
                except zlib.error:
                    data = _inflate(data, -zlib.MAX_WBITS, limit)
            elif e == "br":
                try:
                    import brotli  # type: ignore
                except ImportError:
                    try:
                        import brotlicffi as brotli  # type: ignore
                    except ImportError:
                        raise _BadPayload("unsupported_content_encoding", "brotli body but no brotli module installed")
                data = brotli.decompress(data)
                if len(data) > limit:
                    raise _TooLarge()
            elif e in ("identity", "none"):
                continue
            else:
                raise _BadPayload("unsupported_content_encoding", f"Content-Encoding {e!r}")
        except (zlib.error, EOFError, ValueError) as exc:
            raise _BadPayload("content_decoding_error", f"{e}: {exc}")
        except _BadPayload:
            raise
        except _TooLarge:
            raise
        except Exception as exc:  # brotli.error and friends
            raise _BadPayload("content_decoding_error", f"{e}: {type(exc).__name__}: {exc}")
    return data


def is_html_type(content_type: str | None) -> bool:
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    return ct in HTML_TYPES


def sniff_html(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<!doctype html") or b"<html" in head


def clean_target_uri(uri: str | None) -> str:
    return (uri or "").strip().strip("<>").strip()


def valid_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and not any(
            c in url for c in " \t\r\n")
    except ValueError:
        return False


def _http_headers(http) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in http.headers:
        key = str(name).strip().lower()
        out[key] = f"{out[key]}, {value}" if key in out else str(value)
    return out


def _classify(exc: BaseException) -> str:
    name = type(exc).__name__
    msg = str(exc).lower()
    if isinstance(exc, (zlib.error, gzip.BadGzipFile)) or "gzip" in msg:
        return "corrupt_gzip"
    if isinstance(exc, EOFError):
        return "truncated_record"
    if "chunk" in name.lower():
        return "bad_chunked_encoding"
    if isinstance(exc, OSError):
        return "read_error"
    return "invalid_record"


def _source_failure(exc: BaseException) -> SourceUnavailable | None:
    """The :class:`SourceUnavailable` behind ``exc`` (itself, or in its cause/context chain), if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, SourceUnavailable):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


# ---------------------------------------------------------------------------------------------------------------
# Resynchronisation after damage (seekable local files only)
# ---------------------------------------------------------------------------------------------------------------

def _seekable(fh) -> bool:
    try:
        return bool(fh.seekable())
    except Exception:
        return False


def _find_next(fh, start: int, gzipped: bool) -> int | None:
    """Offset of the next plausible record start at or after ``start`` (gzip member or ``WARC/`` line)."""
    patterns = [b"\x1f\x8b\x08"] if gzipped else [b"\nWARC/1.", b"\nWARC/0."]
    keep = 16
    pos = start
    fh.seek(start)
    tail = b""
    while True:
        block = fh.read(_SEARCH_BLOCK)
        if not block:
            return None
        buf = tail + block
        base = pos - len(tail)
        hits = [buf.find(p) for p in patterns]
        hits = [h for h in hits if h >= 0]
        if hits:
            h = min(hits)
            return base + h + (0 if gzipped else 1)
        tail = buf[-keep:]
        pos += len(block)


# ---------------------------------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------------------------------

def iter_html_records(ref: WarcRef, ctx, dump: str | None = None,
                      max_record_bytes: int = 20_000_000) -> Iterator[dict]:
    """Yield the HTML responses (status 200) of one WARC as dicts; count every record in ``ctx`` (stage "read")."""
    try:
        stream = open_stream(ref.uri)
    except SourceUnavailable:
        raise  # the server or network failed after every retry: not a property of the file
    except Exception as exc:  # missing file (404), no s3fs...
        log.warning("cannot open %s: %s", ref.uri, exc)
        ctx.add("documents_in")
        ctx.error("unreadable_file", file=ref.name, message=f"{type(exc).__name__}: {exc}"[:500])
        return
    try:
        yield from _iter_stream(stream, ref, ctx, dump, max_record_bytes)
    finally:
        try:
            stream.close()
        except Exception:
            pass


def _iter_stream(stream, ref: WarcRef, ctx, dump, max_record_bytes) -> Iterator[dict]:
    seekable = _seekable(stream)
    gzipped = False
    if seekable:
        try:
            gzipped = stream.read(2) == b"\x1f\x8b"
            stream.seek(0)
        except OSError:
            seekable = False
    start = 0
    resyncs = 0
    while True:
        state = {"open": False, "offset": start}
        try:
            it = ArchiveIterator(stream, arc2warc=True)
            for record in it:
                state["open"], state["offset"] = True, it.offset
                ctx.add("documents_in")
                out = _process(record, it, ref, ctx, dump, max_record_bytes, state)
                state["open"] = False
                if out is not None:
                    ctx.add("documents_out")
                    yield out
            return
        except Exception as exc:  # damage: count the record it cost, then try to go on
            unavailable = _source_failure(exc)
            if unavailable is not None:
                log.warning("%s: source failed at offset %s: %s", ref.name, state["offset"], unavailable)
                raise unavailable
            reason = _classify(exc)
            offset = state["offset"]
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            if not state["open"]:
                ctx.add("documents_in")
            state["open"] = False
            ctx.error(reason, file=ref.name, offset=offset, message=message)
            log.warning("%s at offset %s: %s (%s)", ref.name, offset, reason, message[:200])
        if not seekable or resyncs >= MAX_RESYNCS:
            if resyncs >= MAX_RESYNCS:
                log.warning("%s: too much damage, giving up on the rest of the file", ref.name)
            return
        try:
            nxt = _find_next(stream, max(offset, start) + 1, gzipped)
        except SourceUnavailable:
            raise
        except OSError:
            return
        if nxt is None:
            return
        resyncs += 1
        start = nxt
        stream.seek(nxt)


def _process(record, it, ref: WarcRef, ctx, dump, max_record_bytes, state) -> dict | None:
    """One record -> a dict to yield, or None after counting why not (resolves state["open"])."""
    rec_type = record.rec_type or "unknown"
    declared = (record.rec_headers.get_header("Content-Length") or "").strip()
    if not declared.isdigit():  # warcio reads such a record as empty; it is damage, not data
        ctx.error("invalid_record", file=ref.name, offset=state["offset"],
                  message=f"{rec_type} record with Content-Length {declared[:40]!r}")
        return None
    if rec_type != "response":
        ctx.remove(f"not_response:{rec_type}")
        return None
    http = record.http_headers
    if http is None or not getattr(http, "statusline", None):
        ctx.remove("not_http")
        return None
    status = str(http.get_statuscode() or "").strip()
    if status != "200":
        ctx.remove(f"http_status:{status or 'none'}")
        return None
    headers = _http_headers(http)
    ctype = headers.get("content-type")
    if ctype and not is_html_type(ctype):
        ctx.remove("not_html")
        return None
    if record.payload_length is not None and record.payload_length > max_record_bytes:
        ctx.remove("too_large")
        return None

    raw = bytearray()
    while len(raw) <= max_record_bytes:
        chunk = record.raw_stream.read(min(1 << 16, max_record_bytes + 1 - len(raw)))
        if not chunk:
            break
        raw += chunk
    if len(raw) > max_record_bytes:
        ctx.remove("too_large")
        return None
    remaining = getattr(record.raw_stream, "limit", 0) or 0
    if remaining > 0:
        ctx.error("truncated_record", file=ref.name, offset=state["offset"],
                  message=f"record ends {remaining} bytes short of its Content-Length")
        return None

    try:
        body = bytes(raw)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = dechunk(body)
        body = decode_content(body, headers.get("content-encoding"), max_record_bytes)
    except _TooLarge:
        ctx.remove("too_large")
        return None
    except _BadPayload as exc:
        ctx.error(exc.reason, file=ref.name, offset=state["offset"], message=str(exc)[:500])
        return None
    if not ctype and not sniff_html(body):
        ctx.remove("not_html")
        return None

    rh = record.rec_headers
    url = clean_target_uri(rh.get_header("WARC-Target-URI"))
    if not valid_http_url(url):
        ctx.error("bad_target_uri", file=ref.name, offset=state["offset"], message=f"WARC-Target-URI {url[:200]!r}")
        return None
    offset = it.get_record_offset()
    length = it.get_record_length()
    warc_headers = {h: rh.get_header(h) for h in KEPT_WARC_HEADERS if rh.get_header(h)}
    return {
        "url": url,
        "body": body,
        "http_headers": headers,
        "warc_filename": ref.name,
        "warc_record_offset": int(offset),
        "warc_record_length": int(length),
        "fetch_date": rh.get_header("WARC-Date"),
        "dump": dump,
        "warc_headers": warc_headers,
    }
