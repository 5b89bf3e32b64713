"""The per-URL image table: fetch each unique URL once, decode it under a pixel limit, apply the image rules.

One row per unique URL::

    url, status, error, source, bytes, seconds, attempts,      # from the fetch
    sha256, width, height, format,                             # from the decode (None when not decoded)
    reason,                                                    # None when usable, else why not
    data                                                       # the image bytes when usable, else None

``reason`` is the fetch error (``http_404``, ``timeout``, ``unsafe_address``...), a decode rejection
(``undecodable``, ``too_many_pixels``, ``truncated``...) or a filter (reference §4.2): ``format``, ``too_small``,
``too_large_dimensions``, ``aspect_ratio``.  Decoding runs in a small thread pool while other downloads proceed,
and a body that is not usable is dropped at once (memory stays bounded by what is kept).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any, Iterable

from .decode import DECODE_FORMATS, ImageRejected, image_info
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
)


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


def row_from_fetch(result: FetchResult, img_cfg: dict, decode_formats=DECODE_FORMATS) -> dict:
    """Decode and judge one fetch result; the row keeps the bytes only when the image is usable."""
    row = {
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
    }
    if not result.ok or result.body is None:
        row["reason"] = result.error or "fetch_failed"
        return row
    try:
        info = image_info(result.body, int(img_cfg["max_pixels"]), formats=decode_formats)
    except ImageRejected as exc:
        row["reason"] = exc.reason
        return row
    row.update(sha256=info.sha256, width=info.width, height=info.height, format=info.format)
    allowed = {str(f).lower() for f in img_cfg["formats"]}
    if info.format not in allowed:
        row["reason"] = "format"
    else:
        row["reason"] = size_problem(info.width, info.height, img_cfg)
    if row["reason"] is None:
        row["data"] = result.body
    return row


async def build_image_table_async(
    urls: Iterable[str],
    archive: Any,
    fetch_cfg: dict | None,
    filter_cfg: dict | None,
    *,
    decode_workers: int | None = None,
    getaddrinfo=None,
) -> list[dict]:
    unique = list(dict.fromkeys(u for u in urls if u))
    img_cfg = image_filter_config(filter_cfg)
    workers = decode_workers or max(1, min(4, os.cpu_count() or 1))
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="image-decode") as pool:

        async def on_result(result: FetchResult) -> dict:
            if result.ok and result.body is not None:
                return await loop.run_in_executor(pool, row_from_fetch, result, img_cfg)
            return row_from_fetch(result, img_cfg)

        return await fetch_many_async(unique, archive, fetch_cfg, getaddrinfo=getaddrinfo, on_result=on_result)


def build_image_table(
    urls: list[str], archive: Any, fetch_cfg: dict | None, filter_cfg: dict | None, **kwargs
) -> list[dict]:
    """One row per unique URL (first-seen order): fetch (archive first), decode, filter.  See module docstring."""
    return run_sync(build_image_table_async(urls, archive, fetch_cfg, filter_cfg, **kwargs))


def table_by_url(rows: Iterable[dict]) -> dict[str, dict]:
    return {r["url"]: r for r in rows}
