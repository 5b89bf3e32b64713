"""The image table's columns (``OUT/images/table/part-NNNNN.parquet``, one row per unique image URL): what
:mod:`obelics_builder.images.ledger` writes and the final step reads.  A leaf module, so the tasks and the ledger
can both use it without importing each other."""
from __future__ import annotations

import pyarrow as pa

IMAGE_TABLE_COLUMNS = ["url", "status", "error", "source", "bytes", "seconds", "attempts", "sha256", "width",
                       "height", "format", "reason", "data", "phash", "stored_width", "stored_height", "nsfw",
                       "phash_group", "image_near_duplicate"]
IMAGE_TABLE_SCHEMA = pa.schema([
    ("url", pa.string()), ("status", pa.int32()), ("error", pa.string()), ("source", pa.string()),
    ("bytes", pa.int64()), ("seconds", pa.float64()), ("attempts", pa.int32()), ("sha256", pa.string()),
    ("width", pa.int32()), ("height", pa.int32()), ("format", pa.string()), ("reason", pa.string()),
    ("data", pa.binary()), ("phash", pa.string()), ("stored_width", pa.int32()), ("stored_height", pa.int32()),
    ("nsfw", pa.float32()), ("phash_group", pa.string()), ("image_near_duplicate", pa.bool_()),
])

#: Parquet compression per column: the image bytes (``data``: JPEG, PNG, WebP..., compressed already) are stored
#: as they are; zstd on them saved ~0% of the size for ~0.35 CPU-s per 200 MB written and ~0.6 per read; every other
#: column zstd.  Dictionary encoding stays on for ``data``: identical bytes under several URLs are stored once.
IMAGE_TABLE_COMPRESSION = {name: ("none" if name == "data" else "zstd") for name in IMAGE_TABLE_COLUMNS}


def image_table_compression(columns) -> dict[str, str]:
    """The codec of each of ``columns`` (a part written before a column existed has fewer)."""
    return {c: IMAGE_TABLE_COMPRESSION.get(c, "zstd") for c in columns}
