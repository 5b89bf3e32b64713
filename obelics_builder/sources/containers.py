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
    """The container itself is damaged (bad gzip/zstd data): the rest of a stream-compressed file is lost."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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

class _DecodingReader(io.RawIOBase):
    """read() from a decompressor, turning its errors into :class:`DecodeError` (other errors pass through)."""

    def __init__(self, inner, reason: str) -> None:
        self.inner = inner
        self.reason = reason

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        try:
            data = self.inner.read(len(b))
        except EOFError as exc:
            raise DecodeError("truncated_record", f"compressed data ends early: {exc}")
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise DecodeError(self.reason, f"{type(exc).__name__}: {exc}")
        except OSError:
            raise  # the source failed (network, disk): not damage of the file
        except Exception as exc:  # zstd.ZstdError and friends
            raise DecodeError(self.reason, f"{type(exc).__name__}: {exc}")
        b[: len(data)] = data
        return len(data)


def open_whole_gzip(raw) -> io.BufferedReader:
    """A whole-file (or any multi-member) gzip stream, decompressed as it is read."""
    return io.BufferedReader(_DecodingReader(gzip.GzipFile(fileobj=raw, mode="rb"), "corrupt_gzip"), _CHUNK)


def open_zstd(raw) -> io.BufferedReader:
    """A ``.warc.zst`` stream, decompressed as it is read (one frame per record or one for the whole file).

    A leading skippable frame with magic 0x184D2A5D holds the dictionary the frames were compressed with (itself
    zstd-compressed when it starts with the zstd magic); other skippable frames are skipped by the decoder.
    """
    import zstandard

    head = _read_exact(raw, 8)
    dict_data = None
    rest = raw
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
    else:
        rest = _Prefixed(head, raw)
    dctx = zstandard.ZstdDecompressor(dict_data=dict_data) if dict_data is not None else zstandard.ZstdDecompressor()
    reader = dctx.stream_reader(rest, read_across_frames=True, closefd=False)
    return io.BufferedReader(_DecodingReader(reader, "corrupt_zstd"), _CHUNK)


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

    def _more(self) -> bool:
        while self.sources:
            chunk = self.sources[0].read(_CHUNK)
            if chunk:
                self.buf += chunk
                return True
            if len(self.sources) == 1:
                self.eof = True
                return False
            done = self.sources.pop(0)
            done.close()
        return False

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
    the rest of the block is read past.  Container damage (:class:`DecodeError` from a decompressing ``fh``) ends
    the stream with one :class:`Damage` at the offset of the record it hit.
    """
    src = _Input(fh, seekable)
    seen_record = False
    start = 0
    try:
        while True:
            while src.peek(1) in (b"\r", b"\n", b" ", b"\t"):
                src.take(1)
            if not src.peek(1):
                return
            start = src.pos
            if not _VERSION_RE.match(src.peek(16)):
                head = src.peek(60)
                found = src.skip_to_header()
                reason = "invalid_record" if (seen_record or found) else "not_a_warc"
                what = "no WARC record header" if reason == "invalid_record" else "not a WARC file"
                yield Damage(start, reason, f"{what} at offset {start}: starts with {excerpt(head)}")
                if not found:
                    return
                continue
            header = bytearray()
            while len(header) <= MAX_HEADER_BYTES:
                line = src.readline(MAX_HEADER_BYTES)
                header += line
                if not line or line in (b"\r\n", b"\n"):
                    break
            if not header.endswith((b"\r\n\r\n", b"\n\n", b"\n\r\n")):
                if not src.peek(1):
                    yield Damage(start, "truncated_record", f"file ends inside the record header at offset {start}")
                    return
                yield Damage(start, "invalid_record", f"record header at offset {start} has no end within "
                                                      f"{MAX_HEADER_BYTES} bytes")
                seen_record = True
                if not src.skip_to_header():
                    return
                continue
            rec_type, declared = _parse_header(bytes(header))
            seen_record = True
            if not declared.isdigit():
                yield Damage(start, "invalid_record", f"{rec_type or 'untyped'} record at offset {start} with "
                                                      f"Content-Length {excerpt(declared, 40)}")
                if not src.skip_to_header():
                    return
                continue
            length = int(declared)
            keep = min(max(0, hold(rec_type, length)), max_hold)
            frame = _read_block(src, start, bytes(header), rec_type, length, keep)
            yield frame
            if isinstance(frame, Damage) and frame.reason == "truncated_record":
                return
    except DecodeError as exc:
        yield Damage(start, exc.reason, str(exc))


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
