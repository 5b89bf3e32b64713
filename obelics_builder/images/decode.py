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

Work done only when needed (the image stage's CPU, ``bench/images/bench_stage.py``):

* ``check(format, width, height) -> reason | None`` runs on the header, before any pixel is decoded: a rejected
  image is returned with ``info.rejected`` set, its sha256, header size and format, and nothing decoded;
* a JPEG is decoded at reduced scale (draft mode: libjpeg's scaled IDCT, the whole entropy-coded stream is still
  read, so truncation is still caught): at 1/8 (at least 64 px a side) for the pHash, exactly as before, so pHashes
  are unchanged;
* ``scoring_side=S`` also returns ``info.scoring_image``: an RGB image whose longer side is at least ``S`` when
  the original is (:func:`scoring_image`), for the NSFW model — a JPEG decoded by draft mode at the smallest scale
  giving ``S`` px on the longer side (the pHash decode is reused when it is big enough), any other format reduced
  from the one full decode with ``Image.reduce`` (a box filter) to less than ``2 * S`` px.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any, Callable

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
    rejected: str | None = None  # the reason ``check`` gave on the header (nothing was decoded)
    scoring_image: Any = field(default=None, repr=False)  # with scoring_side: the reduced RGB image (PIL)


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


def _jpeg_scale(width: int, height: int, req_w: int, req_h: int) -> int:
    """The reduction libjpeg's draft mode picks for a requested size (Pillow: 1, 2, 4 or 8)."""
    scale = min(width // max(1, req_w), height // max(1, req_h))
    for s in (8, 4, 2):
        if scale >= s:
            return s
    return 1


def _phash_request(width: int, height: int) -> tuple[int, int]:
    # 1/8 scale, at least 64 px a side (the pHash works on a 32x32 reduction)
    return min(width, max(64, width // 8)), min(height, max(64, height // 8))


def _scoring_request(width: int, height: int, side: int) -> tuple[int, int]:
    # the smallest size whose longer side is at least ``side`` (never above the original)
    longer = max(width, height)
    return min(width, -(-width * side // longer)), min(height, -(-height * side // longer))


def scoring_image(im: Image.Image, side: int) -> Image.Image:
    """``im`` as RGB (alpha dropped, colour channels kept), reduced by an integer factor to a longer side in
    ``[side, 2 * side)`` when it is larger: what the NSFW model input is resized from."""
    if im.mode != "RGB":
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            r, g, b, _ = rgba.split()
            im = Image.merge("RGB", (r, g, b))
        else:
            im = im.convert("RGB")
    k = max(im.size) // side if side else 1
    if k >= 2:
        im = im.reduce(k)
    return im


def open_reduced(body: bytes, max_pixels: int, side: int, formats=DECODE_FORMATS) -> Image.Image:
    """Decode ``body`` (already validated) for scoring: :func:`scoring_image` of a draft-mode (JPEG) or full
    decode.  Raises on any problem."""
    im = Image.open(io.BytesIO(body), formats=_open_formats(formats))
    with im:
        w, h = im.size
        if w * h > int(max_pixels):
            raise ImageRejected("too_many_pixels", f"{w}x{h} > {max_pixels}")
        if im.format in ("JPEG", "MPO") and side:
            im.draft("RGB", _scoring_request(w, h, side))
        im.load()
        out = scoring_image(im, side)
        return out.copy() if out is im else out


def image_info(body: bytes, max_pixels: int, formats: tuple[str, ...] | list[str] | None = DECODE_FORMATS,
               phash: bool = False, check: Callable[[str, int, int], str | None] | None = None,
               scoring_side: int | None = None, sha256: str | None = None) -> ImageInfo:
    """Identify, bound and decode ``body``; return its :class:`ImageInfo` or raise :class:`ImageRejected`.

    ``check`` and ``scoring_side``: see the module docstring; ``sha256``: the body's digest when already known."""
    if not body:
        raise ImageRejected("empty")
    digest = sha256 or hashlib.sha256(body).hexdigest()
    fmts = _open_formats(formats)
    try:
        im = Image.open(io.BytesIO(body), formats=fmts)
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
            if check is not None:
                reason = check(fmt, width, height)
                if reason:
                    return ImageInfo(width=width, height=height, format=fmt, sha256=digest, mode=mode,
                                     rejected=reason)
            jpeg = im.format in ("JPEG", "MPO")
            reuse = not jpeg  # another format is decoded once, in full: scored from that decode
            if jpeg:
                # decode the whole entropy-coded stream, but at 1/8 scale: proves it decodes, costs 1/64 memory
                req = _phash_request(width, height)
                if scoring_side:  # the same decode serves the scoring when it is at the scoring scale
                    reuse = (_jpeg_scale(width, height, *req)
                             == _jpeg_scale(width, height, *_scoring_request(width, height, scoring_side)))
                im.draft("RGB", req)
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
            info = ImageInfo(width=width, height=height, format=fmt, sha256=digest, mode=mode, n_frames=n_frames,
                             phash=ph)
            if scoring_side:
                try:  # the image is usable even when it cannot be prepared for scoring (left unscored)
                    if reuse:
                        scored = scoring_image(im, scoring_side)
                        info.scoring_image = im.copy() if scored is im else scored
                    else:
                        info.scoring_image = open_reduced(body, max_pixels, scoring_side, fmts)
                except Exception:
                    info.scoring_image = None
            return info
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decompression_bomb", str(exc)[:200]) from None
    except MemoryError:
        raise ImageRejected("too_many_pixels", "out of memory while decoding") from None
    except Exception as exc:
        raise ImageRejected("truncated" if _is_truncation(exc) else "decode_error",
                            f"{type(exc).__name__}: {exc}"[:200]) from None
