"""Decode fetched bytes under a pixel limit and describe the image.

:func:`image_info` never raises anything but :class:`ImageRejected` (with a short ``reason``):

* ``empty``                — no bytes;
* ``undecodable``          — not an image in one of the decodable formats (Pillow cannot identify it);
* ``too_many_pixels``      — width × height (read from the header, before any pixel is decoded) above ``max_pixels``;
* ``decompression_bomb``   — Pillow's own bomb guard fired (``Image.MAX_IMAGE_PIXELS``, process-wide, left as is);
* ``truncated``            — the pixel data ends early;
* ``decode_error``         — anything else going wrong while decoding.

The per-call limit is checked on ``im.size`` after the lazy ``Image.open`` and before ``load()``; the global
``Image.MAX_IMAGE_PIXELS`` is never modified (that would race between threads).  A limit above twice Pillow's
global is therefore capped by Pillow (``decompression_bomb``).

Only web raster formats are tried by default (:data:`DECODE_FORMATS`): Pillow's other plugins (EPS, which runs
Ghostscript; and exotic formats such as DDS, BLP, ICNS, FLI, whose decoders are frequent fuzzing targets) are never
exercised on untrusted downloads.  Pass ``formats=None`` to allow every plugin except EPS.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

#: Pillow format IDs tried on downloaded bytes (formats browsers display, plus TIFF).
DECODE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "ICO", "TIFF")

#: Formats never decoded, even with ``formats=None`` (EPS shells out to Ghostscript).
NEVER_DECODE = frozenset({"EPS"})

#: Pillow format name -> the name we record (an MPO is a JPEG with extra frames; browsers show it as a JPEG).
FORMAT_ALIASES = {"mpo": "jpeg"}


class ImageRejected(Exception):
    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message


@dataclass
class ImageInfo:
    width: int
    height: int
    format: str  # lowercase, "jpeg" for JPEG
    sha256: str  # hex digest of the bytes
    mode: str
    n_frames: int = 1
    phash: str | None = None  # with image_info(..., phash=True): 64-bit pHash, 16 hex digits


def _open_formats(formats) -> list[str]:
    Image.init()
    if formats is None:
        return [f for f in Image.OPEN if f not in NEVER_DECODE]
    return [f for f in formats if f in Image.OPEN and f not in NEVER_DECODE]


def _is_truncation(exc: BaseException) -> bool:
    if isinstance(exc, EOFError):
        return True
    text = str(exc).lower()
    return "truncat" in text or "premature end" in text or "unexpected end" in text


def image_info(body: bytes, max_pixels: int, formats: tuple[str, ...] | list[str] | None = DECODE_FORMATS,
               phash: bool = False) -> ImageInfo:
    """Identify, bound and fully decode ``body``; return its :class:`ImageInfo` or raise :class:`ImageRejected`."""
    if not body:
        raise ImageRejected("empty")
    digest = hashlib.sha256(body).hexdigest()
    try:
        im = Image.open(io.BytesIO(body), formats=_open_formats(formats))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decompression_bomb", str(exc)[:200]) from None
    except UnidentifiedImageError as exc:
        raise ImageRejected("undecodable", str(exc)[:200]) from None
    except Exception as exc:  # malformed headers raise all sorts of things (OSError, SyntaxError, ValueError...)
        raise ImageRejected("truncated" if _is_truncation(exc) else "decode_error",
                            f"{type(exc).__name__}: {exc}"[:200]) from None
    try:
        with im:
            width, height = (int(v) for v in im.size)
            if width <= 0 or height <= 0:
                raise ImageRejected("decode_error", f"bad size {width}x{height}")
            if width * height > int(max_pixels):
                raise ImageRejected("too_many_pixels", f"{width}x{height} > {max_pixels}")
            fmt = (im.format or "").lower()
            fmt = FORMAT_ALIASES.get(fmt, fmt)
            mode = im.mode
            if im.format in ("JPEG", "MPO"):
                # decode the whole entropy-coded stream, but at 1/8 scale: proves it decodes, costs 1/64 memory
                # (at least 64 px a side is kept for the pHash, which works on a 32x32 reduction)
                im.draft("RGB", (min(width, max(64, width // 8)), min(height, max(64, height // 8))))
            im.load()
            lw, lh = im.size
            if lw * lh > int(max_pixels):  # a plugin may change the size on load (ICO picks its largest entry)
                raise ImageRejected("too_many_pixels", f"{lw}x{lh} after load > {max_pixels}")
            try:
                n_frames = int(getattr(im, "n_frames", 1) or 1)
            except Exception:
                n_frames = 1
            ph = None
            if phash:
                from .phash import phash_hex

                ph = phash_hex(im)
            return ImageInfo(width=width, height=height, format=fmt, sha256=digest, mode=mode, n_frames=n_frames,
                             phash=ph)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decompression_bomb", str(exc)[:200]) from None
    except MemoryError:
        raise ImageRejected("too_many_pixels", "out of memory while decoding") from None
    except Exception as exc:
        raise ImageRejected("truncated" if _is_truncation(exc) else "decode_error",
                            f"{type(exc).__name__}: {exc}"[:200]) from None
