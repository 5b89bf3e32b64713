"""The per-URL image table: fetch each unique URL once, decode it under a pixel limit, apply the image rules.

One row per unique URL::

    url, status, error, source, bytes, seconds, attempts,      # from the fetch (the ledger)
    sha256, width, height, format,                             # from the decode (None when not decoded)
    reason,                                                    # None when usable, else why not
    data,                                                      # the image bytes when usable, else None
    phash,                                                     # 64-bit pHash (16 hex digits) of usable images
    stored_width, stored_height,                               # size of ``data`` (differs after a resize)
    nsfw,                                                      # NSFW score (filled by .nsfw.score_rows)
    phash_group, image_near_duplicate                          # run-wide near-duplicate marks (.phash)

``width``/``height`` are always the original dimensions.  With ``image_size`` > 0 and ``resize_mode`` other than
``no`` (fetch config / ``--image-size --resize-mode``), usable images are re-encoded (same format; JPEG quality 90)
after a resize: ``keep_ratio`` (the smaller side becomes ``image_size``, only ever downscaling), ``center_crop``
(smaller side to ``image_size`` then a centred square crop), ``border`` (larger side to ``image_size``, padded
with black to a square).  ``sha256`` and ``phash`` describe the original bytes.

``reason`` is the fetch error (``http_404``, ``timeout``, ``unsafe_address``...), a decode rejection
(``undecodable``, ``too_many_pixels``, ``truncated``...) or a filter (reference §4.2): ``format``, ``too_small``,
``too_large_dimensions``, ``aspect_ratio``.  Decoding runs in a small thread pool while other downloads proceed,
and a body that is not usable is dropped at once (memory stays bounded by what is kept).

Work per URL is only what its row needs: the format and size rules run on the header, before any pixel is decoded
(a rejected image has its header ``width``/``height``/``format`` and ``sha256`` but no ``phash``: only usable
images are hashed, and only they enter the run-wide near-duplicate grouping); the same bytes under several URLs of a
build are decoded once (keyed by sha256); with a ``scorer`` (:class:`~obelics_builder.images.nsfw.BatchScorer`)
usable images are NSFW-scored in batches from the reduced image the decode prepared (see :mod:`.decode`).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import os
from typing import Any, Iterable

from .decode import DECODE_FORMATS, ImageRejected, image_info, open_reduced
from .fetch import FetchResult, fetch_many_async, run_sync

IMAGE_DEFAULTS: dict[str, Any] = {
    "formats": ["jpg", "jpeg", "png", "webp"],
    "min_size": 150,
    "max_size": 20000,
    "max_aspect_ratio": 2.0,
    "max_pixels": 89478485,
}

TABLE_COLUMNS = (
    "url", "status", "error", "source", "bytes", "seconds", "attempts",
    "sha256", "width", "height", "format", "reason", "data",
    "phash", "stored_width", "stored_height", "nsfw", "phash_group", "image_near_duplicate",
)

RESIZE_MODES = ("no", "keep_ratio", "center_crop", "border")
#: a build with ``on_rows`` hands its final rows over at least once per this many bytes of images they hold
CHECKPOINT_BYTES = 64 * 2 ** 20
_SAVE_FORMAT = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


def _open(body: bytes, decode_formats) -> "Image.Image":
    from PIL import Image

    return Image.open(io.BytesIO(body), formats=list(decode_formats) if decode_formats else None)


def resize_image(im, size: int, mode: str):
    """The resized PIL image for ``mode`` (see module docstring); the input unchanged for ``no``."""
    from PIL import Image

    if mode == "no" or size <= 0:
        return im
    w, h = im.size
    if mode == "keep_ratio":
        k = size / min(w, h)
        if k >= 1:
            return im
        return im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.LANCZOS)
    if mode == "center_crop":
        k = size / min(w, h)
        nw, nh = max(size, round(w * k)), max(size, round(h * k))
        im = im.resize((nw, nh), Image.LANCZOS)
        left, top = (nw - size) // 2, (nh - size) // 2
        return im.crop((left, top, left + size, top + size))
    if mode == "border":
        k = size / max(w, h)
        nw, nh = max(1, round(w * k)), max(1, round(h * k))
        im = im.resize((nw, nh), Image.LANCZOS)
        canvas = Image.new(im.mode if im.mode in ("RGB", "RGBA", "L", "LA") else "RGB", (size, size))
        canvas.paste(im.convert(canvas.mode), ((size - nw) // 2, (size - nh) // 2))
        return canvas
    raise ValueError(f"unknown resize_mode {mode!r} (one of {RESIZE_MODES})")


def derive(body: bytes, fmt: str, img_cfg: dict, decode_formats=DECODE_FORMATS) -> dict:
    """(Optionally) resized + re-encoded bytes with their size; {} when no resize is configured."""
    out: dict = {}
    size, mode = int(img_cfg.get("image_size") or 0), str(img_cfg.get("resize_mode") or "no")
    if size <= 0 or mode == "no":
        return out
    im = _open(body, decode_formats)
    with im:
        im.load()
        if im.mode not in ("RGB", "RGBA", "L", "LA"):
            im2 = im.convert("RGBA" if "transparency" in im.info or im.mode in ("PA", "P") else "RGB")
        else:
            im2 = im
        res = resize_image(im2, size, mode)
        save_fmt = _SAVE_FORMAT.get(fmt, "JPEG")
        if save_fmt == "JPEG" and res.mode not in ("RGB", "L"):
            res = res.convert("RGB")
        buf = io.BytesIO()
        res.save(buf, format=save_fmt, **({"quality": 90} if save_fmt in ("JPEG", "WEBP") else {}))
        out.update(data=buf.getvalue(), stored_width=res.size[0], stored_height=res.size[1])
    return out


def image_filter_config(filter_cfg: dict | None) -> dict:
    """The ``image:`` section of a filter config (or that section itself) over the defaults."""
    filter_cfg = filter_cfg or {}
    section = filter_cfg["image"] if isinstance(filter_cfg.get("image"), dict) else filter_cfg
    out = dict(IMAGE_DEFAULTS)
    out.update({k: v for k, v in section.items() if v is not None})
    return out


def banned_url(url: str, words: Iterable[str]) -> str | None:
    """The first banned substring found in ``url`` (plain, case-sensitive, as OBELICS did), else None."""
    for w in words:
        if w and w in url:
            return w
    return None


def size_problem(width: int, height: int, img_cfg: dict) -> str | None:
    """The §4.2 size/aspect rule on original dimensions: ``too_small``/``too_large_dimensions``/``aspect_ratio``."""
    lo, hi = int(img_cfg["min_size"]), int(img_cfg["max_size"])
    if width < lo or height < lo:
        return "too_small"
    if width > hi or height > hi:
        return "too_large_dimensions"
    ratio_max = float(img_cfg["max_aspect_ratio"])
    if ratio_max > 0:
        ratio = width / height
        if ratio > ratio_max or ratio < 1.0 / ratio_max:
            return "aspect_ratio"
    return None


def _empty_row(result: FetchResult) -> dict:
    return {
        "url": result.url,
        "status": result.status,
        "error": result.error,
        "source": result.source,
        "bytes": result.bytes,
        "seconds": result.seconds,
        "attempts": result.attempts,
        "sha256": None,
        "width": None,
        "height": None,
        "format": None,
        "reason": None,
        "data": None,
        "phash": None,
        "stored_width": None,
        "stored_height": None,
        "nsfw": None,
        "phash_group": None,
        "image_near_duplicate": None,
    }


def judge(result: FetchResult, img_cfg: dict, decode_formats=DECODE_FORMATS, scoring_side: int | None = None,
          cache: dict | None = None) -> tuple[dict, Any]:
    """``(row, scoring image or None)`` of one fetch result (see module docstring).  ``cache`` (sha256 -> decode
    outcome) is shared by the calls of one build; the scoring image is only made for a body not seen before."""
    row = _empty_row(result)
    if not result.ok or result.body is None:
        row["reason"] = result.error or "fetch_failed"
        return row, None
    body = result.body
    allowed = {str(f).lower() for f in img_cfg["formats"]}

    def check(fmt: str, width: int, height: int) -> str | None:
        return "format" if fmt not in allowed else size_problem(width, height, img_cfg)

    digest = hashlib.sha256(body).hexdigest()
    hit = cache.get(digest) if cache is not None else None
    image = None
    if hit is None:
        try:
            hit = image_info(body, int(img_cfg["max_pixels"]), formats=decode_formats, phash=True, check=check,
                             scoring_side=scoring_side, sha256=digest)
            image, hit.scoring_image = hit.scoring_image, None
        except ImageRejected as exc:
            hit = exc.reason
        if cache is not None:
            cache[digest] = hit
    if isinstance(hit, str):
        row["reason"] = hit
        return row, None
    info = hit
    row.update(sha256=info.sha256, width=info.width, height=info.height, format=info.format, phash=info.phash,
               reason=info.rejected)
    if row["reason"] is None:
        row["data"] = body
        row["stored_width"], row["stored_height"] = info.width, info.height
        try:
            row.update(derive(body, info.format, img_cfg, decode_formats))
        except Exception as exc:  # decoded once already: a failure here is a re-encode problem, not a crash
            row.update(reason="reencode_error", data=None)
            row["error"] = row["error"] or f"reencode_error: {type(exc).__name__}"[:100]
            return row, None
        if scoring_side and row["data"] is not body:  # resized bytes are stored: score what is stored
            try:
                image = open_reduced(row["data"], int(img_cfg["max_pixels"]), scoring_side, decode_formats)
            except Exception:
                image = None
    return row, image


def row_from_fetch(result: FetchResult, img_cfg: dict, decode_formats=DECODE_FORMATS) -> dict:
    """Decode and judge one fetch result; the row keeps the bytes only when the image is usable."""
    return judge(result, img_cfg, decode_formats)[0]


async def build_image_table_async(
    urls: Iterable[str],
    archive: Any,
    fetch_cfg: dict | None,
    filter_cfg: dict | None,
    *,
    decode_workers: int | None = None,
    getaddrinfo=None,
    scorer: Any = None,
    robots_store: str | None = None,
    gate: list | None = None,
    on_rows: Any = None,
    checkpoint_every: int = 1000,
    checkpoint_bytes: int = CHECKPOINT_BYTES,
    keep_rows: bool = True,
) -> list[dict]:
    """The rows of ``urls`` (see :func:`build_image_table`).  ``on_rows(rows)`` (optional, run in the decode pool)
    gets the rows that are final (decoded, NSFW-scored) every ``checkpoint_every`` URLs or ``checkpoint_bytes`` of
    image bytes, whichever comes first, each row once (a fetch task saves them so that a resumed task does not fetch
    them again).  ``keep_rows=False`` (with ``on_rows``): the rows are not kept nor returned (a list of None), the
    last ones are handed to ``on_rows`` at the end too: memory is what waits for a checkpoint, whatever the number
    of URLs."""
    if not keep_rows and on_rows is None:
        raise ValueError("keep_rows=False needs on_rows (the rows would be lost)")
    unique = list(dict.fromkeys(u for u in urls if u))
    img_cfg = image_filter_config(filter_cfg)
    for k in ("image_size", "resize_mode"):  # resize settings live with the fetch settings
        if (fetch_cfg or {}).get(k) is not None:
            img_cfg[k] = fetch_cfg[k]
    if str(img_cfg.get("resize_mode") or "no") not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {img_cfg.get('resize_mode')!r}")
    workers = decode_workers or max(1, min(4, os.cpu_count() or 1))
    loop = asyncio.get_running_loop()
    side = scorer.side if scorer is not None else None
    cache: dict = {}
    unsaved: list[dict] = []
    unsaved_bytes = [0]

    def settled(row: dict) -> bool:
        return scorer is None or row["reason"] is not None or scorer.settled(row)

    async def checkpoint(final: bool = False) -> None:
        if on_rows is None or not unsaved or (not final and len(unsaved) < max(1, int(checkpoint_every))
                                              and unsaved_bytes[0] < checkpoint_bytes):
            return
        ready = [r for r in unsaved if settled(r)]
        if ready:
            keep = {id(r) for r in ready}
            unsaved[:] = [r for r in unsaved if id(r) not in keep]
            unsaved_bytes[0] = sum(len(r["data"] or b"") for r in unsaved)
            await loop.run_in_executor(pool, on_rows, ready)

    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="image-decode") as pool:

        async def on_result(result: FetchResult) -> dict:
            if not (result.ok and result.body is not None):
                row = row_from_fetch(result, img_cfg)
            else:
                row, image = await loop.run_in_executor(pool, judge, result, img_cfg, DECODE_FORMATS, side, cache)
                if scorer is not None and row["reason"] is None:
                    scorer.add(row, image)
                    batch = scorer.take()
                    if batch:
                        await loop.run_in_executor(pool, scorer.score, batch)
            unsaved.append(row)
            unsaved_bytes[0] += len(row["data"] or b"")
            await checkpoint()
            return row if keep_rows else None

        rows = await fetch_many_async(unique, archive, fetch_cfg, getaddrinfo=getaddrinfo, on_result=on_result,
                                      robots_store=robots_store, gate=gate)
        while scorer is not None:
            batch = scorer.take(final=True)
            if not batch:
                break
            await loop.run_in_executor(pool, scorer.score, batch)
        if not keep_rows:
            await checkpoint(final=True)
        return rows


def build_image_table(
    urls: list[str], archive: Any, fetch_cfg: dict | None, filter_cfg: dict | None, **kwargs
) -> list[dict]:
    """One row per unique URL (first-seen order): fetch (archive first), decode, filter.  See module docstring."""
    return run_sync(build_image_table_async(urls, archive, fetch_cfg, filter_cfg, **kwargs))


def table_by_url(rows: Iterable[dict]) -> dict[str, dict]:
    return {r["url"]: r for r in rows}
