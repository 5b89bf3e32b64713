"""Images: safe fetching (archive first), decoding under a pixel limit, the per-URL image table, image filters.

Modules: :mod:`.safety` (SSRF checks, safe resolver), :mod:`.fetch` (asyncio fetcher), :mod:`.decode`
(:func:`image_info`), :mod:`.table` (:func:`build_image_table`, :func:`banned_url`), :mod:`.apply`
(:func:`apply_image_table`, a document stage).
"""
from .apply import apply_image_table, apply_images_stage, convert_rendered
from .decode import DECODE_FORMATS, ImageInfo, ImageRejected, image_info
from .fetch import DEFAULTS as FETCH_DEFAULTS
from .fetch import Fetcher, FetchResult, fetch_many, fetch_many_async, summarize
from .safety import SafeResolver, UnsafeAddress, UnsafeURL, check_url, resolve_and_check
from .table import banned_url, build_image_table, build_image_table_async, row_from_fetch, size_problem, table_by_url

__all__ = [
    "apply_image_table", "apply_images_stage", "convert_rendered",
    "DECODE_FORMATS", "ImageInfo", "ImageRejected", "image_info",
    "FETCH_DEFAULTS", "Fetcher", "FetchResult", "fetch_many", "fetch_many_async", "summarize",
    "SafeResolver", "UnsafeAddress", "UnsafeURL", "check_url", "resolve_and_check",
    "banned_url", "build_image_table", "build_image_table_async", "row_from_fetch", "size_problem", "table_by_url",
]
