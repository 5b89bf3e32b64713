"""Compressed WARC containers, decompressed as they are read with bounded memory: gzip members (one per record, or
one for the whole file) and zstd frames (``.warc.zst``, with an optional dictionary frame).  Damage in one member is
reported once (:class:`DecodeError`) after everything decoded before it, and decoding resumes at the next member."""
from __future__ import annotations

import io
import zlib

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: the skippable frame that carries a zstd dictionary at the start of a ``.warc.zst`` (IIPC warc.zst convention)
ZSTD_DICT_MAGIC = 0x184D2A5D
MAX_DICT_BYTES = 1 << 26
_CHUNK = 1 << 16


class DecodeError(Exception):
    """The container itself is damaged (bad gzip/zstd data).  ``resumable``: reading can go on at the next
    member/frame; else the rest of the file is lost."""

    def __init__(self, reason: str, message: str, resumable: bool = False, member_start: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.resumable = resumable
        #: decompressed position where the damaged member starts (its output before the damage was delivered)
        self.member_start = member_start


def excerpt(data: bytes | str, n: int = 32) -> str:
    """A short, printable, escaped excerpt of raw bytes for warnings (never raw binary on a terminal)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "backslashreplace")
    text = repr(bytes(data[:n]))
    return text + ("..." if len(data) > n else "")


def _is_skippable(head: bytes) -> bool:
    return len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F


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
        self.decoded = 0  # decompressed bytes produced so far (delivered, or waiting in out)
        self.pending: DecodeError | None = None
        self.resync = False
        self.starts: dict[int, int] = {}  # decompressed position -> compressed offset, of member starts
        self.raw_eof = False
        self.cur_start: int | None = None  # decompressed position where the member being decoded starts
        self.cur_raw = 0  # compressed offset where it starts
        self.resync_from: int | None = None  # compressed offset of the damaged member (not a member to resume at)

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
        at = self.cur_start if self.cur_start is not None else self.decoded
        self.resync_from = self.cur_raw if self.cur_start is not None else self.raw_pos
        self.cur_start = None
        self.pending = DecodeError(reason, message, resumable=resumable, member_start=at)
        self.resync = resumable

    def _skip_to_magic(self) -> bool:
        """Drop compressed bytes up to the next member start (never the damaged one again); False at the end."""
        skip = 1 if self.raw_pos == self.resync_from else 0
        self.resync_from = None
        while True:
            self._fill(len(self.magic) + skip)
            i = self.inbuf.find(self.magic, skip)
            if i >= 0:
                self._consume(i)
                return True
            if self.raw_eof:
                self._consume(len(self.inbuf))
                return False
            self._consume(max(skip, len(self.inbuf) - len(self.magic) + 1))
            skip = 0
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
            self.resync, self.d = False, None
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
            self.cur_start, self.cur_raw = self.decoded, self.raw_pos
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
            self.cur_start = None
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
            self.resync, self.obj = False, None
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
                self.cur_start, self.cur_raw = self.decoded, self.raw_pos
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
                    self.cur_start = None
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
