"""WARC containers and record framing: what :mod:`.warc` reads when warcio's per-record-gzip iterator does not fit.

* :func:`sniff` names a container from its first bytes: ``gzip`` (per-record or whole-file), ``zstd`` (``.warc.zst``,
  optionally led by a dictionary in a skippable frame), ``arc``, ``warc`` (uncompressed), ``empty`` or ``unknown``.
* :func:`open_zstd` and :func:`open_whole_gzip` turn a compressed byte stream into a streaming, decompressed one
  (bounded reads: memory does not grow with the file).
* :func:`iter_frames` cuts an uncompressed WARC byte stream into records *by their framing* and checks each one: the
  block must end where its ``Content-Length`` says, followed by the blank lines and the next ``WARC/x.y`` header (or
  the end of the file).  A record whose length runs into the next records, or stops short of its end, is reported
  once (``bad_record_length``) at its own offset, and reading resumes at the next record header inside the block
  it swallowed (found while it was read).  A record that goes on past its ``Content-Length`` (a length too short)
  is read as declared and reading resumes at the next record header after it (``Frame.overrun`` says so).  Bytes that are no record (junk between records, a file that is
  no WARC) are one ``invalid_record`` / ``not_a_warc`` per stretch.
"""
from __future__ import annotations

import gzip
import io
import re
import tempfile
import zlib
from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: the skippable frame that carries a zstd dictionary at the start of a ``.warc.zst`` (IIPC warc.zst convention)
ZSTD_DICT_MAGIC = 0x184D2A5D
MAX_DICT_BYTES = 1 << 26
MAX_HEADER_BYTES = 1 << 16
_CHUNK = 1 << 16
_SPOOL_IN_MEMORY = 8 << 20
_VERSION_RE = re.compile(rb"WARC/\d+\.\d+\r?\n")


class DecodeError(Exception):
    """The container itself is damaged (bad gzip/zstd data).  ``resumable``: reading can go on at the next
    member/frame; else the rest of the file is lost."""

    def __init__(self, reason: str, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.resumable = resumable


def excerpt(data: bytes | str, n: int = 32) -> str:
    """A short, printable, escaped excerpt of raw bytes for warnings (never raw binary on a terminal)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "backslashreplace")
    text = repr(bytes(data[:n]))
    return text + ("..." if len(data) > n else "")


def _is_skippable(head: bytes) -> bool:
    return len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F


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
# Decompressing streams
# ---------------------------------------------------------------------------------------------------------------

class _Members(io.RawIOBase):
    """A stream of compressed members (gzip members, zstd frames), decompressed as it is read, with bounded memory.

    Everything decoded before damage is delivered first; then :class:`DecodeError` is raised once (``resumable``:
    the reader has skipped to the next member, and reading may go on).  ``member_at`` maps a decompressed position
    where a member starts to that member's offset in the compressed file (random access for per-record members).
    """

    magic = b""
    reason = "corrupt_data"

    def __init__(self, raw, start: int = 0) -> None:
        self.raw = raw
        self.inbuf = bytearray()
        self.raw_pos = start  # offset in the compressed file of inbuf[0]
        self.out = bytearray()
        self.decoded = 0  # decompressed bytes delivered by readinto + len(out) == position of out's end
        self.pending: DecodeError | None = None
        self.resync = False
        self.starts: dict[int, int] = {}  # decompressed position -> compressed offset, of member starts
        self.raw_eof = False
        self.resync_started = False

    def readable(self) -> bool:
        return True

    def _fill(self, n: int) -> bool:
        while len(self.inbuf) < n and not self.raw_eof:
            chunk = self.raw.read(max(_CHUNK, n - len(self.inbuf)))
            if not chunk:
                self.raw_eof = True
            self.inbuf += chunk
        return len(self.inbuf) >= n

    def _consume(self, n: int) -> bytes:
        data = bytes(self.inbuf[:n])
        del self.inbuf[:n]
        self.raw_pos += len(data)
        return data

    def _unconsume(self, data: bytes) -> None:
        self.inbuf[:0] = data
        self.raw_pos -= len(data)

    def member_at(self, decoded_pos: int) -> int | None:
        return self.starts.get(decoded_pos)

    def forget_before(self, decoded_pos: int) -> None:
        for k in [k for k in self.starts if k < decoded_pos]:
            del self.starts[k]

    def readinto(self, b) -> int:
        while not self.out:
            if self.pending is not None:
                exc, self.pending = self.pending, None
                raise exc
            if not self._step():
                return 0
        n = min(len(b), len(self.out))
        b[:n] = self.out[:n]
        del self.out[:n]
        return n

    def _damage(self, reason: str, message: str, resumable: bool) -> None:
        self.pending = DecodeError(reason, message, resumable=resumable)
        self.resync = resumable

    def _skip_to_magic(self) -> bool:
        """Drop compressed bytes up to the next member start; False at the end of the file."""
        while True:
            self._fill(len(self.magic))
            i = self.inbuf.find(self.magic, 1 if self.resync_started else 0)
            self.resync_started = False
            if i >= 0:
                self._consume(i)
                return True
            if self.raw_eof:
                self._consume(len(self.inbuf))
                return False
            self._consume(max(0, len(self.inbuf) - len(self.magic)))
            self._fill(len(self.inbuf) + 1)

    def _step(self) -> bool:
        """Decode some more into ``out``; False at the end of the stream."""
        raise NotImplementedError


class _GzipMembers(_Members):
    magic = b"\x1f\x8b\x08"
    reason = "corrupt_gzip"

    def __init__(self, raw, start: int = 0) -> None:
        super().__init__(raw, start)
        self.d = None

    def _step(self) -> bool:
        if self.resync:
            self.resync, self.resync_started, self.d = False, True, None
            if not self._skip_to_magic():
                return False
        if self.d is None:  # at a member boundary
            if not self._fill(1):
                return False
            if not (self._fill(3) and self.inbuf.startswith(self.magic)):
                if self._only_zeros_left():  # zero padding at the end, as some writers leave
                    return False
                self._damage(self.reason, f"no gzip member at offset {self.raw_pos}: {excerpt(self.inbuf)}", True)
                return True
            self.starts[self.decoded] = self.raw_pos
            self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = self.d.unconsumed_tail
        if not data:
            self._fill(1)
            if not self.inbuf:
                self.d = None
                self._damage("truncated_record", "the file ends inside a gzip member", False)
                return True
            data = self._consume(min(len(self.inbuf), _CHUNK))
        try:
            out = self.d.decompress(data, _CHUNK)
        except zlib.error as exc:
            self.d = None
            self._unconsume(data)  # the next member may start inside the input that failed: search it again
            self._damage(self.reason, f"zlib.error: {exc} (member before offset {self.raw_pos})", True)
            return True
        self.out += out
        self.decoded += len(out)
        if self.d.eof:
            self._unconsume(self.d.unused_data)
            self.d = None
        return True

    def _only_zeros_left(self) -> bool:
        while self._fill(len(self.inbuf) + 1):
            if self.inbuf.strip(b"\0"):
                return False
            self._consume(len(self.inbuf))
        return not self.inbuf.strip(b"\0")


class _ZstdFrames(_Members):
    """zstd frames, fed to the decoder block by block (a block decodes to at most 128 KiB: bounded memory);
    skippable frames are passed over."""

    magic = ZSTD_MAGIC
    reason = "corrupt_zstd"

    def __init__(self, raw, dctx, start: int = 0) -> None:
        super().__init__(raw, start)
        self.dctx = dctx
        self.obj = None
        self.blocks_left = False
        self.checksum = 0

    def _step(self) -> bool:
        import zstandard

        if self.resync:
            self.resync, self.resync_started, self.obj = False, True, None
            if not self._skip_to_magic():
                return False
        try:
            if self.obj is None:  # at a frame boundary
                if not self._fill(1):
                    return False
                if not self._fill(8):
                    self._damage("truncated_record", f"{len(self.inbuf)} stray bytes at the end of the file", False)
                    self._consume(len(self.inbuf))
                    return True
                if _is_skippable(self.inbuf):
                    size = int.from_bytes(self.inbuf[4:8], "little")
                    self._consume(8)
                    while size > 0:
                        if not self._fill(1):
                            self._damage("truncated_record", "the file ends inside a skippable frame", False)
                            return True
                        size -= len(self._consume(min(size, len(self.inbuf))))
                    return True
                if not self.inbuf.startswith(ZSTD_MAGIC):
                    self._damage(self.reason, f"no zstd frame at offset {self.raw_pos}: {excerpt(self.inbuf)}", True)
                    return True
                header = self._frame_header()
                self.starts[self.decoded] = self.raw_pos
                self.obj = self.dctx.decompressobj()
                self._feed(self._consume(header))
                self.blocks_left = True
                return True
            if self.blocks_left:
                if not self._fill(3):
                    raise EOFError
                h = int.from_bytes(self.inbuf[:3], "little")
                last, btype, bsize = h & 1, (h >> 1) & 3, h >> 3
                if btype == 3 or bsize > (1 << 17):
                    raise ValueError(f"bad block header at offset {self.raw_pos}")
                n = 3 + (1 if btype == 1 else bsize)
                if not self._fill(n):
                    raise EOFError
                block = self._consume(n)
                try:
                    self._feed(block)
                except zstandard.ZstdError:
                    self._unconsume(block)
                    raise
                if last:
                    self.blocks_left = False
                    if self.checksum:
                        if not self._fill(4):
                            raise EOFError
                        self._feed(self._consume(4))
                    if not self.obj.eof:
                        raise ValueError("frame does not end after its last block")
                    self.obj = None
                return True
        except EOFError:
            self.obj = None
            self._damage("truncated_record", "the file ends inside a zstd frame", False)
            return True
        except (ValueError, zstandard.ZstdError) as exc:
            self.obj = None
            self._damage(self.reason, f"{type(exc).__name__}: {exc} (frame before offset {self.raw_pos})", True)
            return True
        return True

    def _frame_header(self) -> int:
        """Size of the frame header at inbuf[0] (magic included); sets ``checksum``."""
        if not self._fill(5):
            raise EOFError
        fhd = self.inbuf[4]
        fcs_flag, single, self.checksum, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        if fhd & 0x08:
            raise ValueError(f"reserved bit set in a zstd frame header at offset {self.raw_pos}")
        size = 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
        if not self._fill(size):
            raise EOFError
        return size

    def _feed(self, data: bytes) -> None:
        out = self.obj.decompress(data)
        self.out += out
        self.decoded += len(out)


def zstd_frames(raw, dctx) -> _Members:
    """zstd frames of ``raw`` decompressed with ``dctx`` (no dictionary frame expected)."""
    return _ZstdFrames(raw, dctx)


def open_whole_gzip(raw, start: int = 0) -> _Members:
    """A whole-file (or any multi-member) gzip stream, decompressed as it is read; see :class:`_Members`."""
    return _GzipMembers(raw, start)


def open_zstd(raw) -> _Members:
    """A ``.warc.zst`` stream, decompressed as it is read (one frame per record or one for the whole file).

    A leading skippable frame with magic 0x184D2A5D holds the dictionary the frames were compressed with (itself
    zstd-compressed when it starts with the zstd magic); other skippable frames are passed over.
    """
    import zstandard

    head = _read_exact(raw, 8)
    dict_data = None
    start = 0
    if len(head) == 8 and int.from_bytes(head[:4], "little") == ZSTD_DICT_MAGIC:
        size = int.from_bytes(head[4:8], "little")
        if size > MAX_DICT_BYTES:
            raise DecodeError("corrupt_zstd", f"zstd dictionary frame of {size} bytes")
        blob = _read_exact(raw, size)
        if len(blob) < size:
            raise DecodeError("truncated_record", "file ends inside the zstd dictionary frame")
        if blob.startswith(ZSTD_MAGIC):
            try:
                blob = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read(MAX_DICT_BYTES)
            except zstandard.ZstdError as exc:
                raise DecodeError("corrupt_zstd", f"zstd dictionary: {exc}")
        dict_data = zstandard.ZstdCompressionDict(blob)
        start = 8 + size
        rest = raw
    else:
        rest = _Prefixed(head, raw)
    dctx = zstandard.ZstdDecompressor(dict_data=dict_data) if dict_data is not None else zstandard.ZstdDecompressor()
    return _ZstdFrames(rest, dctx, start)


def _read_exact(fh, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = fh.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


class _Prefixed(io.RawIOBase):
    def __init__(self, prefix: bytes, raw) -> None:
        self.prefix = prefix
        self.raw = raw

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            if n is None or n < 0:
                out, self.prefix = self.prefix + self.raw.read(), b""
                return out
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            return out
        return self.raw.read(n)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


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
                if len(self.buf) - (i + 1) < 16 and not self.eof:
                    break  # too close to the end of what is buffered to tell
                if _VERSION_RE.match(self.buf, i + 1):
                    self.take(i + 1)
                    return True
                i = self.buf.find(b"\nWARC/", i + 1)
            if self.eof:
                self.take(len(self.buf))
                return False
            self.take(i if i >= 0 else max(0, len(self.buf) - 6))
            self._more()


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
    src.skip_to_header()
    return Frame(start, src.pos - start, rec_type, length, header, bytes(kept), len(kept) >= length, overrun=note)
