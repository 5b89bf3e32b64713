"""HTTP payload decoding for WARC response bodies: ``Transfer-Encoding: chunked`` and ``Content-Encoding`` (gzip,
deflate, br, zstd), bounded by a size limit (a decompression bomb is ``too_large``, never memory)."""
from __future__ import annotations

import io
import zlib

from .compressed import ZSTD_MAGIC, DecodeError, zstd_frames


class _BadPayload(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _TooLarge(Exception):
    pass



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
    """Undo ``Content-Encoding`` (gzip, deflate, br, zstd); a body that is not actually encoded is returned as is."""
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
                data = _unbrotli(data, limit)
            elif e == "zstd":
                data = _unzstd(data, limit)
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


def _unbrotli(data: bytes, limit: int) -> bytes:
    import brotli

    d = brotli.Decompressor()
    out = bytearray(d.process(data, output_buffer_limit=limit + 1))
    while len(out) <= limit and not d.is_finished() and not d.can_accept_more_data():
        out += d.process(b"", output_buffer_limit=limit + 1 - len(out))
    if len(out) > limit:
        raise _TooLarge()
    if not d.is_finished():
        raise _BadPayload("content_decoding_error", "br: the compressed body ends early")
    return bytes(out)


def _unzstd(data: bytes, limit: int) -> bytes:
    import zstandard

    if not data.startswith(ZSTD_MAGIC):
        raise _BadPayload("content_decoding_error", "zstd: no zstd frame")
    frames = zstd_frames(io.BytesIO(data), zstandard.ZstdDecompressor())
    out = bytearray()
    try:
        while len(out) <= limit:
            chunk = frames.read(min(1 << 16, limit + 1 - len(out)))
            if not chunk:
                break
            out += chunk
    except DecodeError as exc:
        raise _BadPayload("content_decoding_error", f"zstd: {exc}")
    if len(out) > limit:
        raise _TooLarge()
    return bytes(out)
