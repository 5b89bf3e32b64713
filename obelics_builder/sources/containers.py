"""WARC containers and record framing: what :mod:`.warc` reads when warcio's per-record-gzip iterator does not fit.

* :func:`sniff` names a container from its first bytes: ``gzip`` (per-record or whole-file), ``zstd`` (``.warc.zst``,
  optionally led by a dictionary in a skippable frame), ``arc``, ``warc`` (uncompressed), ``empty`` or ``unknown``.
  :mod:`.compressed` decompresses gzip and zstd as they are read.
* :func:`iter_frames` cuts an uncompressed WARC byte stream into records *by their framing* and checks each one: the
  block must end where its ``Content-Length`` says, followed by the blank lines and the next ``WARC/x.y`` header (or
  the end of the file).  A record whose length runs into the next records is reported once (``bad_record_length``)
  at its own offset, and reading resumes at the record header inside the block it swallowed (found while the block
  was read: a seekable file seeks back, a stream replays a spool of the bytes from there, on disk past 8 MB).  A
  record that goes on past its ``Content-Length`` (a length too short) is read as declared and reading resumes at
  the next record header after it (``Frame.overrun`` says so).  Bytes that are no record (junk between records, a
  file that is no WARC) are one ``invalid_record`` / ``not_a_warc`` per stretch.
"""
from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass

from .compressed import GZIP_MAGIC, ZSTD_MAGIC, DecodeError, _is_skippable, _Members, excerpt

__all__ = ["DecodeError", "excerpt", "sniff", "iter_frames", "Frame", "Damage"]

MAX_HEADER_BYTES = 1 << 16
_CHUNK = 1 << 16
_SPOOL_IN_MEMORY = 8 << 20
_VERSION_RE = re.compile(rb"WARC/\d+\.\d+\r?\n")


def sniff(head: bytes) -> str:
    if not head:
        return "empty"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or _is_skippable(head):
        return "zstd"
    body = head.lstrip(b"\r\n\t ")
    if body.startswith(b"filedesc://"):
        return "arc"
    if body.startswith(b"WARC/"):
        return "warc"
    return "unknown"



# ---------------------------------------------------------------------------------------------------------------
# Framing of uncompressed WARC records
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Frame:
    """One well-framed record: its header bytes and (all or the start of) its block."""

    offset: int
    length: int  # header + block + the blank lines after it, up to the next record
    rec_type: str
    content_length: int
    header: bytes
    block: bytes
    complete: bool  # False when only the start of the block was kept (a record too large to hold)
    #: set when the record goes on past its Content-Length (a length too short): the block is kept as declared,
    #: what follows it up to the next record header is passed over (and counted in ``length``)
    overrun: str = ""


@dataclass
class Damage:
    offset: int
    reason: str
    message: str


class _Input:
    """Forward reading with a look-ahead buffer, an absolute position, and a way back for resynchronisation."""

    def __init__(self, fh, seekable: bool) -> None:
        self.fh = fh
        self.seekable = seekable
        self.sources: list = [fh]
        self.buf = bytearray()
        self.pos = 0  # absolute position of buf[0]
        self.eof = False
        self.error: DecodeError | None = None  # met while reading ahead; reported by the reader where it belongs
        self.dead = False

    def _more(self) -> bool:
        if self.error is not None or self.dead:
            return False
        while self.sources:
            try:
                chunk = self.sources[0].read(_CHUNK)
            except DecodeError as exc:  # the data ends here for now; the damage is told where it is met
                self.error = exc
                return False
            if chunk:
                self.buf += chunk
                return True
            if len(self.sources) == 1:
                self.eof = True
                return False
            done = self.sources.pop(0)
            done.close()
        return False

    @property
    def ended(self) -> bool:
        """No more data for now: the end of the file, or a decoding error not yet reported."""
        return self.eof or self.error is not None or self.dead

    def damage(self, start: int) -> "Damage":
        """The pending decoding error as a :class:`Damage` at ``start``; after it the stream goes on at the next
        member (resumable) or ends."""
        exc, self.error = self.error, None
        if not exc.resumable:
            self.dead = True
        return Damage(start, exc.reason, str(exc))

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n and self._more():
            pass
        return bytes(self.buf[:n])

    def take(self, n: int) -> bytes:
        self.peek(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.pos += len(out)
        return out

    def chunk(self, limit: int) -> bytes:
        """Up to ``limit`` bytes (at least one unless at the end)."""
        if not self.buf:
            self._more()
        return self.take(min(limit, len(self.buf)))

    def readline(self, limit: int) -> bytes:
        start = 0
        while True:
            i = self.buf.find(b"\n", start, limit)
            if i >= 0:
                return self.take(i + 1)
            if len(self.buf) >= limit:
                return self.take(limit)
            start = len(self.buf)
            if not self._more():
                return self.take(len(self.buf))

    def rewind(self, pos: int, spool) -> None:
        """Go back to ``pos``: seek a seekable file, else replay ``spool`` (the bytes from ``pos`` on)."""
        if self.seekable:
            for src in self.sources[:-1]:
                src.close()
            self.fh.seek(pos)
            self.sources, self.buf = [self.fh], bytearray()
        else:
            spool.seek(0)
            pending = io.BytesIO(bytes(self.buf))
            self.sources = [spool, pending, *self.sources]
            self.buf = bytearray()
        self.pos = pos
        self.eof = False

    def skip_to_header(self) -> bool:
        """Drop bytes up to the next line that starts with ``WARC/x.y``; False (everything dropped) at the end."""
        while True:
            self.peek(16)
            if _VERSION_RE.match(self.buf):
                return True
            i = self.buf.find(b"\nWARC/")
            while i >= 0:
                if len(self.buf) - (i + 1) < 16 and not self.ended:
                    break  # too close to the end of what is buffered to tell
                if _VERSION_RE.match(self.buf, i + 1):
                    self.take(i + 1)
                    return True
                i = self.buf.find(b"\nWARC/", i + 1)
            if self.ended:
                self.take(len(self.buf))
                return False
            self.take(i if i >= 0 else max(0, len(self.buf) - 6))
            self._more()


def _damage_covers(exc: DecodeError, pos: int) -> bool:
    """Whether the member that ``exc`` damaged holds the decompressed position ``pos``."""
    return exc.member_start is None or exc.member_start <= pos


def _parse_header(header: bytes) -> tuple[str, str]:
    """(WARC-Type, Content-Length as written) from a record header."""
    rec_type, length = "", ""
    for line in header.split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        if key == b"warc-type":
            rec_type = value.strip().decode("latin-1")
        elif key == b"content-length":
            length = value.strip().decode("latin-1")
    return rec_type, length


def iter_frames(fh, seekable: bool, hold, max_hold: int):
    """Yield :class:`Frame` and :class:`Damage` events for an uncompressed WARC byte stream.

    ``hold(rec_type, content_length) -> int`` says how many block bytes to keep for a record (at most ``max_hold``);
    the rest of the block is read past.  Container damage (:class:`DecodeError` from a decompressing ``fh``) is one
    :class:`Damage` at the offset of the record it hit; reading goes on at the next member when the decoder can.
    When ``fh`` tells where its members start (:class:`_Members`), a record that is exactly one or more members
    gets the compressed offset and length (random access); others keep positions in the decompressed stream.
    """
    src = _Input(fh, seekable)
    st = {"seen": False, "start": 0}
    members = fh if isinstance(fh, _Members) else None
    while True:
        try:
            ev = _next_event(src, st, hold, max_hold)
        except DecodeError as exc:
            yield Damage(st["start"], exc.reason, str(exc))
            if not exc.resumable:
                return
            src.pos += len(src.buf)  # what was buffered of the damaged member is dropped with it
            src.buf = bytearray()
            src.eof = False
            continue
        if ev is None:
            return
        if members is not None and isinstance(ev, Damage) and members.member_at(ev.offset) is not None:
            ev.offset = members.member_at(ev.offset)
        if members is not None and isinstance(ev, Frame):
            begin = members.member_at(ev.offset)
            end = members.member_at(ev.offset + ev.length)
            if end is None and not src.peek(1):
                end = members.raw_pos if not members.inbuf else None
            if begin is not None and end is not None:
                ev.offset, ev.length = begin, end - begin
            members.forget_before(st["start"])
        yield ev


def _next_event(src: _Input, st: dict, hold, max_hold: int):
    while src.peek(1) in (b"\r", b"\n", b" ", b"\t"):
        src.take(1)
    if not src.peek(1):
        return src.damage(src.pos) if src.error is not None else None
    start = st["start"] = src.pos
    if not _VERSION_RE.match(src.peek(16)):
        head = src.peek(60)
        found = src.skip_to_header()
        if not found and src.error is not None and _damage_covers(src.error, start):
            return src.damage(start)  # the junk is what a damaged member decoded to: one damage
        reason = "invalid_record" if (st["seen"] or found) else "not_a_warc"
        what = "no WARC record header" if reason == "invalid_record" else "not a WARC file"
        return Damage(start, reason, f"{what} at offset {start}: starts with {excerpt(head)}")
    header = bytearray()
    while len(header) <= MAX_HEADER_BYTES:
        line = src.readline(MAX_HEADER_BYTES)
        header += line
        if not line or line in (b"\r\n", b"\n"):
            break
    st["seen"] = True
    if not header.endswith((b"\r\n\r\n", b"\n\n", b"\n\r\n")):
        if not src.peek(1):
            if src.error is not None:
                return src.damage(start)
            return Damage(start, "truncated_record", f"file ends inside the record header at offset {start}")
        src.skip_to_header()
        return Damage(start, "invalid_record", f"record header at offset {start} has no end within "
                                               f"{MAX_HEADER_BYTES} bytes")
    rec_type, declared = _parse_header(bytes(header))
    if not declared.isdigit():
        src.skip_to_header()
        return Damage(start, "invalid_record", f"{rec_type or 'untyped'} record at offset {start} with "
                                               f"Content-Length {excerpt(declared, 40)}")
    length = int(declared)
    keep = min(max(0, hold(rec_type, length)), max_hold)
    return _read_block(src, start, bytes(header), rec_type, length, keep)


def _read_block(src: _Input, start: int, header: bytes, rec_type: str, length: int, keep: int):
    """Read one block; check what follows it.  Returns the :class:`Frame`, or a :class:`Damage` (after which
    ``src`` is positioned at the next record header, if any)."""
    kept = bytearray()
    block_start = src.pos
    candidate = None  # absolute position of the first ``WARC/x.y`` line start inside the block
    spool = None
    tail = b""
    todo = length
    while todo > 0:
        data = src.chunk(min(todo, _CHUNK))
        if not data:
            break
        todo -= len(data)
        base = src.pos - len(data)
        if len(kept) < keep:
            kept += data[: keep - len(kept)]
        if candidate is None:
            probe = tail + data
            i = probe.find(b"\nWARC/")
            while i >= 0:
                if _VERSION_RE.match(probe, i + 1):
                    break
                if len(probe) - (i + 1) < 16:
                    i = -1  # too close to the end to tell: seen again with the next chunk
                    break
                i = probe.find(b"\nWARC/", i + 1)
            if i >= 0:
                candidate = base - len(tail) + i + 1
                if not src.seekable:
                    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
                    spool.write(probe[i + 1:])
                    data = b""
            tail = probe[-16:]
        if spool is not None and data:
            spool.write(data)
    got = length - todo
    block_end = src.pos
    if candidate is None and todo == 0:  # a record header that starts in the last bytes of the block
        probe = tail + src.peek(32)
        i = probe.find(b"\nWARC/")
        while 0 <= i < len(tail) - 1:
            if _VERSION_RE.match(probe, i + 1):
                candidate = block_end - len(tail) + i + 1
                if not src.seekable:
                    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
                    spool.write(tail[i + 1:])
                break
            i = probe.find(b"\nWARC/", i + 1)
    # what follows the block: blank lines, then the next record or the end of the file
    run = 0
    while src.peek(run + 1)[run:run + 1] in (b"\r", b"\n") and run < 64:
        run += 1
    after = src.peek(run + 16)[run:]
    terminated = src.peek(run).count(b"\n") >= 2
    framed = todo == 0 and (not after or bool(_VERSION_RE.match(after)) or (terminated and candidate is None))
    if framed and not after and src.error is not None and _damage_covers(src.error, block_end + run - 1):
        # the member this record ends in failed its check (checksum, CRC) right after it: the record is the damage
        if spool is not None:
            spool.close()
        return src.damage(start)
    if framed:
        src.take(run)
        if spool is not None:
            spool.close()
        return Frame(start, src.pos - start, rec_type, length, header, bytes(kept), len(kept) >= length)
    if candidate is not None:
        how = "reaches the end of the file" if todo else "runs into the next record"
        dmg = Damage(start, "bad_record_length",
                     f"{rec_type or 'untyped'} record at offset {start}: Content-Length {length} {how} "
                     f"(next record header at offset {candidate})")
        src.rewind(candidate, spool)
        return dmg
    if spool is not None:
        spool.close()
    if todo and src.error is not None:
        return src.damage(start)
    if todo:
        return Damage(start, "truncated_record",
                      f"{rec_type or 'untyped'} record at offset {start} ends {todo} bytes short of its "
                      f"Content-Length {length} (block starts at {block_start}, {got} bytes there)")
    # no blank line after the block, no record header inside it: the record goes on past its Content-Length.
    # What it declared is kept; the rest of it, up to the next record header, is passed over.
    note = (f"{rec_type or 'untyped'} record at offset {start}: Content-Length {length} ends inside the record "
            f"(followed by {excerpt(after, 30)}); read as declared")
    if not src.skip_to_header() and src.error is not None and _damage_covers(src.error, block_end):
        return src.damage(start)  # a damaged member decoded to this record: one damage
    return Frame(start, src.pos - start, rec_type, length, header, bytes(kept), len(kept) >= length, overrun=note)
