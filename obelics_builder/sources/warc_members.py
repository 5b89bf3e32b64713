"""A fast, strict reader of per-record gzip WARCs for the image archive (:mod:`.archive`), with warcio as the
reference.

warcio parses every header line in Python and inflates a record's payload in 16 KB steps; for an image archive
(thousands of revisits, megabytes of image payloads) that was most of the archive's CPU (bench/pipeline: ~2
CPU-s to index a 174 MB archive, ~0.5 ms per lookup).  Here a file is walked gzip member by gzip member with
``zlib`` (:func:`scan_members`: each member's offset, compressed length and its first bytes; the rest of a payload
is inflated and thrown away, never parsed), and a record is read back by inflating exactly its member
(:func:`read_member`).  The header parsing is that of warcio (``StatusAndHeadersParser``: a line split at its first
``:``, the name right-stripped, the value stripped, the first header of a name wins, a record's HTTP block parsed
for ``response`` and ``revisit`` records of http(s) URIs with a non-empty block) on the records this reader accepts:

* one record per gzip member (``WARC/1.0`` or ``WARC/1.1``), lines ending in CRLF, no continuation lines, every
  header line holding a ``:``, UTF-8 text, an integer ``Content-Length`` whose block the member holds exactly;
* an HTTP block starting ``HTTP/1.0`` or ``HTTP/1.1``, without ``Content-Encoding`` or ``Transfer-Encoding``
  (warcio decodes those; they are left to it), its headers within the first 128 KB of the member.

Anything else raises :class:`NotFast`, and the caller does what it did before with warcio (a whole file for the
index: uncompressed WARCs, ARC files, stream-compressed or damaged files; one record for a lookup).
``tests/test_warc_members.py`` checks both give the same index and the same hits.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

#: bytes of a member's inflated start kept for its headers (WARC + HTTP); a longer header block is NotFast
HEAD_BYTES = 1 << 17
_CHUNK = 1 << 22
_OUT_STEP = 1 << 20
_IN_STEP = 1 << 16
_WARC_LINES = (b"WARC/1.0\r\n", b"WARC/1.1\r\n")
_HTTP_PREFIXES = ("HTTP/1.0", "HTTP/1.1")
_HTTP_RECORDS = ("response", "revisit")


class NotFast(Exception):
    """Not a record (or file) this reader handles exactly like warcio: use warcio."""


@dataclass
class Member:
    offset: int  # of the gzip member in the file (warcio's record offset)
    length: int  # compressed bytes of the member
    size: int  # inflated bytes of the member
    head: bytes  # its first HEAD_BYTES inflated bytes


@dataclass
class Record:
    rec_type: str
    warc: dict[str, str]  # WARC headers, names lowercased, first of a name
    status: int  # HTTP status (0: no HTTP block, as warcio)
    http: list[tuple[str, str]] | None  # HTTP headers in order (names as written), None without an HTTP block
    body_start: int  # offset of the payload in the inflated member
    body_end: int  # end of the content block in the inflated member


def scan_members(fh: BinaryIO) -> Iterator[Member]:
    """The gzip members of ``fh`` from its start, in order.  Raises :class:`NotFast` at anything but a complete
    gzip member (another container, trailing bytes, a cut member): the caller falls back to warcio."""
    buf, pos, base = fh.read(_CHUNK), 0, 0  # base: the file offset of buf[0]
    while True:
        if len(buf) - pos < 2:  # (a member's magic may straddle two reads)
            more = fh.read(_CHUNK)
            base, buf, pos = base + pos, buf[pos:] + more, 0
            if not buf:
                return
        if buf[pos:pos + 2] != b"\x1f\x8b":
            raise NotFast("not a gzip member")
        d = zlib.decompressobj(31)
        start, head, kept, size = base + pos, [], 0, 0
        while not d.eof:
            if pos >= len(buf):
                base, buf, pos = base + len(buf), fh.read(_CHUNK), 0
                if not buf:
                    raise NotFast("cut gzip member")
            piece = buf[pos:pos + _IN_STEP]  # small input steps: unused_data is a copy of what is left of it
            data = piece
            while True:
                try:
                    out = d.decompress(data, _OUT_STEP)
                except zlib.error as exc:
                    raise NotFast(f"gzip: {exc}") from None
                if kept < HEAD_BYTES:
                    head.append(out[:HEAD_BYTES - kept])
                    kept += len(head[-1])
                size += len(out)
                if d.eof or not d.unconsumed_tail:
                    break
                data = d.unconsumed_tail
            pos += len(piece) - len(d.unused_data) if d.eof else len(piece)
        yield Member(offset=start, length=base + pos - start, size=size, head=b"".join(head))


def _headers(block: bytes) -> list[tuple[str, str]]:
    """Header lines (CRLF-separated, no status line) as warcio splits them; NotFast where warcio would differ."""
    if not block:
        return []
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise NotFast("non-UTF-8 header") from None
    out = []
    for line in text.split("\r\n"):
        if "\r" in line or "\n" in line or line[:1] in (" ", "\t") or ":" not in line:
            raise NotFast("unusual header line")
        name, value = line.split(":", 1)
        out.append((name.rstrip(" \t"), value.strip()))
    return out


def parse_record(head: bytes, size: int) -> Record:
    """The record at the start of an inflated member (``head``: its first bytes, ``size``: its inflated size)."""
    if not head.startswith(_WARC_LINES):
        raise NotFast("not a WARC/1.0 or 1.1 record")
    end = head.find(b"\r\n\r\n")
    if end < 0:
        raise NotFast("WARC headers beyond the head")
    warc: dict[str, str] = {}
    for name, value in _headers(head[10:end]):
        warc.setdefault(name.lower(), value)
    try:
        length = int(warc["content-length"])
    except (KeyError, ValueError):
        raise NotFast("no integer Content-Length") from None
    start = end + 4
    if length < 0 or start + length + 4 != size:
        raise NotFast("not exactly one record in the member")
    rec_type = warc.get("warc-type", "")
    uri = warc.get("warc-target-uri", "")
    status, http, body_start = 0, None, start
    if length and rec_type in _HTTP_RECORDS and uri.startswith(("http:", "https:")):
        block = head[start:start + length]
        hend = block.find(b"\r\n\r\n")
        if hend < 0:
            raise NotFast("HTTP headers beyond the head")
        first, _, rest = block[:hend].partition(b"\r\n")
        try:
            statusline = first.decode("utf-8")
        except UnicodeDecodeError:
            raise NotFast("non-UTF-8 status line") from None
        if (not statusline.startswith(_HTTP_PREFIXES) or statusline[8:9] != " " or "\r" in statusline
                or "\n" in statusline):
            raise NotFast("not an HTTP/1.x status line")
        http = _headers(rest)
        if any(n.strip().lower() in ("content-encoding", "transfer-encoding") for n, _ in http):
            raise NotFast("encoded payload")
        code = statusline[8:].strip().split(" ", 1)[0]
        try:
            status = int(code)
        except ValueError:
            status = 0
        body_start = start + hend + 4
    return Record(rec_type=rec_type, warc=warc, status=status, http=http, body_start=body_start,
                  body_end=start + length)


def read_member(fh: BinaryIO, offset: int, length: int, max_body: int, want_body: bool) -> tuple[Record, bytes]:
    """The record of the member at ``offset`` (``length`` compressed bytes) and up to ``max_body`` bytes of its
    payload (none unless ``want_body``)."""
    fh.seek(offset)
    raw = fh.read(length)
    if len(raw) != length:
        raise NotFast("cut member")
    d = zlib.decompressobj(31)
    try:
        data = d.decompress(raw, HEAD_BYTES + (max_body if want_body else 0))
    except zlib.error as exc:
        raise NotFast(f"gzip: {exc}") from None
    bound = HEAD_BYTES + (max_body if want_body else 0)
    if not d.eof and len(data) < bound:
        raise NotFast("cut member")
    if d.eof and d.unused_data:
        raise NotFast("more than one member")
    size = len(data) if d.eof else -1
    head = data[:HEAD_BYTES]
    record = parse_record(head, size if size >= 0 else _declared_size(head))
    body = data[record.body_start:min(record.body_end, record.body_start + max_body)] if want_body else b""
    return record, body


def _declared_size(head: bytes) -> int:
    """The member size a record's headers declare (its content block cut short by the output bound)."""
    end = head.find(b"\r\n\r\n")
    for name, value in _headers(head[10:end]) if end >= 0 and head.startswith(_WARC_LINES) else ():
        if name.lower() == "content-length":
            try:
                return end + 4 + int(value) + 4
            except ValueError:
                break
    raise NotFast("no integer Content-Length")
