"""Streaming WARC/ARC reading: HTML responses out, everything else counted.

:func:`iter_html_records` reads one WARC (any mirror, see :mod:`.commoncrawl`) record by record and yields the HTML
``response`` records with status 200 as plain dicts.  Containers (sniffed from the first bytes, not the name):

* per-record gzip (``.warc.gz`` as Common Crawl writes it) and ARC files: warcio's iterator; offsets are those of
  the gzip members (random access by offset works);
* a gzip member holding several records (``gzip file.warc``: one stream for the whole file): warcio stops after the
  first record, and the reader goes on through the decompressed stream (:mod:`.containers`);
* ``.warc.zst`` (one zstd frame per record, optionally a dictionary in a leading skippable frame, or one frame for
  the whole file) and uncompressed WARCs: our own framing (:func:`.containers.iter_frames`), which checks that each
  record ends where its Content-Length says.

Records that are whole members/frames keep compressed offsets; records inside a whole-file stream get positions in
the decompressed stream (such a file has no random access).  Memory stays bounded whatever the file's size.

Every record is counted in the ``read`` stage (``documents_in``); a record that is not yielded is either *removed*
with a reason (``not_response:<type>``, ``http_status:<code>``, ``not_html``, ``not_http``, ``too_large``) or lost to
an *error* (``truncated_record``, ``corrupt_gzip``, ``corrupt_zstd``, ``bad_record_length`` (a Content-Length that
runs into the next records), ``bad_chunked_encoding``, ``content_decoding_error``, ``unsupported_content_encoding``,
``invalid_record`` (also a stretch of bytes between records that is no record), ``bad_target_uri``, ``read_error``,
``unreadable_file`` (cannot be opened), ``not_a_warc`` (empty, or no WARC record anywhere)) with an example (file,
offset, message: printable, escaped, short).  So, per file::

    documents_in == documents_out + removed + errors

Each damage is one error at its own offset.  Besides the balance, the stage counts ``inputs`` (files read),
``inputs_unreadable`` (files of which no record could be read, each named in ``unreadable_inputs``; see
:func:`unreadable_report`: a run that could read no input fails) and ``records_short_length`` (records that go on
past their Content-Length: read as declared, not lost).

Damage never stops the run: after a broken record the reader resumes at the next record start (the next gzip member
or zstd frame, or the next ``WARC/x.y`` header line; in a network stream too, for our framing); a whole-file stream
that cannot be decoded further ends that file after one counted error.  Records already yielded stay yielded.

A *source* failure is different from damage: when the network or the server fails after every retry
(:class:`~.commoncrawl.SourceUnavailable`), the rest of the file was never seen, so the reader raises instead of
counting an error.  The per-WARC unit then fails, is not marked complete, and a rerun reads the file again.
"""
from __future__ import annotations

import gzip
import io
import logging
import zlib
from typing import Iterator
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecordLoader

from .commoncrawl import SourceUnavailable, WarcRef, open_stream
from .compressed import DecodeError, open_whole_gzip, open_zstd
from .containers import Damage, Frame, excerpt, iter_frames, sniff
from .payload import _BadPayload, _TooLarge, dechunk, decode_content  # noqa: F401 (re-exported)

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


#: response headers that carry consent signals, kept one by one in ``consent_headers`` (``http_headers`` joins
#: repeated headers with ", ", which would lose where an ``X-Robots-Tag: agent:`` prefix stops applying)
CONSENT_HEADERS = frozenset({"x-robots-tag", "tdm-reservation", "tdm-policy"})


def consent_headers(http) -> list[list[str]]:
    """``[name (lowercased), value]`` of each consent header of a response, in order."""
    return [[str(n).strip().lower(), str(v)] for n, v in http.headers if str(n).strip().lower() in CONSENT_HEADERS]


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
    """Yield the HTML responses (status 200) of one WARC as dicts; count every record in ``ctx`` (stage "read").

    Also counted in the stage: ``inputs`` (files opened for reading) and ``inputs_unreadable`` (files of which no
    record could be read: missing, empty, no WARC, undecodable), each named in ``unreadable_inputs``.
    """
    tally = {"parsed": 0, "first": None}
    ctx.add("inputs")
    try:
        stream = open_stream(ref.uri)
    except SourceUnavailable:
        raise  # the server or network failed after every retry: not a property of the file
    except Exception as exc:  # missing file (404), no s3fs...
        ctx.add("documents_in")
        _error(ctx, tally, ref, "unreadable_file", None, f"{type(exc).__name__}: {exc}", quiet=True)
        _unreadable(ctx, ref, tally)
        return
    try:
        yield from _iter_stream(stream, ref, ctx, dump, max_record_bytes, tally)
    finally:
        try:
            stream.close()
        except Exception:
            pass
    if tally["parsed"] == 0:
        _unreadable(ctx, ref, tally)


def clean_message(text: str, n: int = 500) -> str:
    """One line of printable ASCII (control and non-ASCII characters escaped), at most ``n`` characters."""
    text = " ".join(str(text).split())
    out = "".join(c if " " <= c <= "~" else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                  for c in text)
    return out if len(out) <= n else out[: n - 3] + "..."


def _error(ctx, tally, ref, reason: str, offset: int | None, message: str, quiet: bool = False) -> None:
    message = clean_message(message)
    ctx.error(reason, file=ref.name, offset=offset, message=message)
    if tally["first"] is None:
        tally["first"] = (reason, message)
    if not quiet and reason != "not_a_warc":  # a file that is no WARC is named once, by _unreadable
        log.warning("%s at offset %s: %s (%s)", ref.name, offset, reason, message[:200])


def _unreadable(ctx, ref, tally) -> None:
    reason, message = tally["first"] or ("no_records", "no WARC record in the file")
    ctx.stats.unreadable_input(ctx.stage, file=ref.name, reason=reason, message=message[:300])
    log.warning("%s: no record could be read: %s (%s)", ref.name, reason, message[:200])


def unreadable_report(read_stage: dict) -> tuple[list[str], bool]:
    """From a run's ``read`` stage: one line per input that could not be read (file: reason: message), and whether
    no input at all could be read (a run that read nothing should fail)."""
    named = read_stage.get("unreadable_inputs") or []
    lines = [f"cannot read {u.get('file')}: {u.get('reason')}: {u.get('message', '')}" for u in named]
    n_bad, n_in = int(read_stage.get("inputs_unreadable", 0)), int(read_stage.get("inputs", 0))
    if n_bad > len(named):
        lines.append(f"... and {n_bad - len(named)} more unreadable inputs (stats.json: read.inputs_unreadable)")
    return lines, n_in > 0 and n_bad >= n_in


def _peek(stream, n: int) -> bytes:
    try:
        return bytes(stream.peek(n)[:n])
    except (AttributeError, io.UnsupportedOperation):
        at = stream.tell()
        head = stream.read(n)
        stream.seek(at)
        return head


def _gunzip_head(stream) -> bytes:
    """The first decompressed bytes of a gzip stream (without consuming it); b"" when they do not decode."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(_peek(stream, 8192), 64)
    except zlib.error:
        return b""


def _iter_stream(stream, ref: WarcRef, ctx, dump, max_record_bytes, tally) -> Iterator[dict]:
    try:
        head = _peek(stream, 16)
    except SourceUnavailable:
        raise
    except OSError as exc:
        ctx.add("documents_in")
        _error(ctx, tally, ref, "read_error", 0, f"{type(exc).__name__}: {exc}")
        return
    kind = sniff(head)
    if kind == "empty":
        ctx.add("documents_in")
        _error(ctx, tally, ref, "not_a_warc", 0, "empty file")
    elif kind == "gzip" and sniff(_gunzip_head(stream)) == "unknown":  # e.g. a page.html.gz named .warc.gz
        ctx.add("documents_in")
        _error(ctx, tally, ref, "not_a_warc", 0, f"gzip-compressed, but not a WARC: starts with "
                                                 f"{excerpt(_gunzip_head(stream))}")
    elif kind in ("gzip", "arc"):
        yield from _iter_warcio(stream, ref, ctx, dump, max_record_bytes, tally, kind)
    elif kind == "zstd":
        try:
            decoded = open_zstd(stream)
        except DecodeError as exc:
            ctx.add("documents_in")
            _error(ctx, tally, ref, exc.reason, 0, str(exc))
            return
        yield from _iter_framed(decoded, False, ref, ctx, dump, max_record_bytes, tally)
    else:  # an uncompressed WARC, or something else that iter_frames will name as no WARC
        yield from _iter_framed(stream, _seekable(stream), ref, ctx, dump, max_record_bytes, tally)


class _At:
    """The offset/length of a framed record, as ArchiveIterator tells them."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    def get_record_offset(self) -> int:
        return self.frame.offset

    def get_record_length(self) -> int:
        return self.frame.length


#: block bytes kept beyond max_record_bytes for the HTTP headers of a response (and for a record too large to
#: hold: enough to read its status and headers)
HTTP_HEAD_BYTES = 1 << 16


def _iter_framed(fh, seekable: bool, ref: WarcRef, ctx, dump, max_record_bytes, tally,
                 skip: int = 0) -> Iterator[dict]:
    """Records of an uncompressed WARC byte stream (a file, or a decompressed whole-file gzip / zstd stream).

    ``skip`` records are passed over uncounted (they were counted by an earlier pass over the same file).
    """
    full = max_record_bytes + HTTP_HEAD_BYTES

    def hold(rec_type: str, length: int) -> int:
        if rec_type != "response":
            return 0
        return length if length <= full else HTTP_HEAD_BYTES

    loader = ArcWarcRecordLoader()
    for ev in iter_frames(fh, seekable, hold, full):
        if isinstance(ev, Damage):
            ctx.add("documents_in")
            _error(ctx, tally, ref, ev.reason, ev.offset, ev.message)
            continue
        if skip > 0:
            skip -= 1
            tally["parsed"] += 1
            continue
        ctx.add("documents_in")
        tally["parsed"] += 1
        if ev.overrun:  # not lost: read as declared; counted apart from the balance, and said
            ctx.add("records_short_length")
            log.warning("%s: %s", ref.name, clean_message(ev.overrun, 300))
        state = {"open": True, "offset": ev.offset}
        try:
            record = loader.parse_record_stream(io.BufferedReader(io.BytesIO(ev.header + ev.block)),
                                                known_format="warc", no_record_parse=ev.rec_type != "response")
            out = _process(record, _At(ev), ref, ctx, dump, max_record_bytes, state, partial=not ev.complete)
        except Exception as exc:  # warcio could not parse the headers of a well-framed record
            _error(ctx, tally, ref, "invalid_record", ev.offset, f"{type(exc).__name__}: {exc}")
            continue
        if out is not None:
            ctx.add("documents_out")
            yield out


class _RawFallback(Exception):
    """warcio could not inflate a gzip member and went on reading the file's raw bytes as records: in a gzip WARC
    such a "record" is damage (random bytes whose first line has five fields read as an ARC header), never data."""

    def __init__(self) -> None:
        super().__init__("the gzip member does not decompress")


class _QuietIterator(ArchiveIterator):
    """warcio's iterator without its raw stderr warning (which prints the bytes it found); logged short instead."""

    INC_RECORD = ""

    def tell_misframed(self, name: str, offset) -> None:
        if self.err_count > getattr(self, "_told", 0):
            self._told = self.err_count
            log.warning("%s: record at offset %s is not followed by a blank line (its Content-Length may be wrong)",
                        name, offset)


def _iter_warcio(stream, ref: WarcRef, ctx, dump, max_record_bytes, tally, kind: str) -> Iterator[dict]:
    """Per-record gzip WARCs and ARCs, with warcio; a gzip that turns out to hold several records in one member
    (a whole-file gzip) is read on from the decompressed stream."""
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
        seen = 0
        it = None
        try:
            it = _QuietIterator(stream, arc2warc=True)
            for record in it:
                if kind == "gzip" and it.reader.decompressor is None:
                    raise _RawFallback()
                it.tell_misframed(ref.name, state["offset"])
                state["open"], state["offset"] = True, it.offset
                ctx.add("documents_in")
                tally["parsed"] += 1
                seen += 1
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
            whole = "non-chunked gzip" in str(exc) and not state["open"]
            reason = _classify(exc)
            if kind == "gzip" and it is not None and it.reader is not None and it.reader.decompressor is None:
                reason, state["offset"] = "corrupt_gzip", it.offset  # the member at it.offset does not inflate
            message = " ".join(f"{type(exc).__name__}: {exc}".split())
        if whole:  # several records in one gzip member: read on (outside the handler: warcio's buffers go)
            del it
            yield from _whole_gzip(stream, seekable, start, seen, ref, ctx, dump, max_record_bytes, tally)
            return
        offset = state["offset"]
        if not state["open"]:
            ctx.add("documents_in")
        state["open"] = False
        _error(ctx, tally, ref, reason, offset, message)
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


def _whole_gzip(stream, seekable, start, seen, ref, ctx, dump, max_record_bytes, tally) -> Iterator[dict]:
    """Go on reading a gzip member that holds several records: decompress from ``start`` as one stream, pass over
    the ``seen`` records already counted.  Offsets are then positions in the decompressed stream (a whole-file
    gzip has no random access)."""
    if seekable:
        stream.seek(start)
        raw = stream
    elif start == 0:
        raw = open_stream(ref.uri)  # a network stream cannot go back: read it again from the start
    else:
        return
    try:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(_peek(raw, 4096), 32)
        except zlib.error:
            head = b""
        if sniff(head) == "arc":  # an ARC in one gzip member: warcio reads it decompressed
            yield from _iter_warcio_plain(gzip.GzipFile(fileobj=raw, mode="rb"), seen, ref, ctx, dump,
                                          max_record_bytes, tally)
        else:
            yield from _iter_framed(open_whole_gzip(raw, start), False, ref, ctx, dump, max_record_bytes, tally,
                                    skip=seen)
    except DecodeError as exc:
        ctx.add("documents_in")
        _error(ctx, tally, ref, exc.reason, None, str(exc))
    finally:
        if raw is not stream:
            raw.close()


def _iter_warcio_plain(fh, skip, ref, ctx, dump, max_record_bytes, tally) -> Iterator[dict]:
    state = {"open": False, "offset": 0}
    try:
        it = _QuietIterator(fh, arc2warc=True)
        for record in it:
            if skip > 0:
                skip -= 1
                continue
            state["open"], state["offset"] = True, it.offset
            ctx.add("documents_in")
            tally["parsed"] += 1
            out = _process(record, it, ref, ctx, dump, max_record_bytes, state)
            state["open"] = False
            if out is not None:
                ctx.add("documents_out")
                yield out
    except Exception as exc:
        if _source_failure(exc) is not None:
            raise _source_failure(exc)
        if not state["open"]:
            ctx.add("documents_in")
        _error(ctx, tally, ref, _classify(exc), state["offset"], f"{type(exc).__name__}: {exc}")


def _process(record, it, ref: WarcRef, ctx, dump, max_record_bytes, state, partial: bool = False) -> dict | None:
    """One record -> a dict to yield, or None after counting why not (resolves state["open"])."""
    rec_type = record.rec_type or "unknown"
    declared = (record.rec_headers.get_header("Content-Length") or "").strip()
    if not declared.isdigit():  # warcio reads such a record as empty; it is damage, not data
        ctx.error("invalid_record", file=ref.name, offset=state["offset"],
                  message=clean_message(f"{rec_type} record with Content-Length {declared[:40]!r}"))
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

    if partial:  # only the start of the block was kept: it is larger than max_record_bytes
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
        ctx.error(exc.reason, file=ref.name, offset=state["offset"], message=clean_message(str(exc)))
        return None
    if not ctype and not sniff_html(body):
        ctx.remove("not_html")
        return None

    rh = record.rec_headers
    url = clean_target_uri(rh.get_header("WARC-Target-URI"))
    if not valid_http_url(url):
        ctx.error("bad_target_uri", file=ref.name, offset=state["offset"],
                  message=clean_message(f"WARC-Target-URI {url[:200]!r}"))
        return None
    offset = it.get_record_offset()
    length = it.get_record_length()
    warc_headers = {h: rh.get_header(h) for h in KEPT_WARC_HEADERS if rh.get_header(h)}
    return {
        "url": url,
        "body": body,
        "http_headers": headers,
        "consent_headers": consent_headers(http),
        "warc_filename": ref.name,
        "warc_record_offset": int(offset),
        "warc_record_length": int(length),
        "fetch_date": rh.get_header("WARC-Date"),
        "dump": dump,
        "warc_headers": warc_headers,
    }
