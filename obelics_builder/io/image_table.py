"""The image table's columns (``OUT/images/table/part-NNNNN.parquet``, one row per unique image URL): what
:mod:`obelics_builder.images.ledger` writes and the final step reads.  A leaf module, so the tasks and the ledger
can both use it without importing each other."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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


#: a table part's row groups hold at most this many rows and, about, this many bytes of ``data`` (one row at least):
#: a reader that goes over a part row group by row group holds one of them, whatever the part's size
ROW_GROUP_ROWS = 1024
ROW_GROUP_BYTES = 8 * 2 ** 20


def data_sizes(table: pa.Table) -> list[int]:
    """The size of each row's ``data`` (0 when None or when the table has no ``data`` column)."""
    if "data" not in table.column_names:
        return [0] * table.num_rows
    return pc.fill_null(pc.binary_length(table.column("data")), 0).to_pylist()


def bounded_slices(table: pa.Table, max_rows: int | None = None, max_bytes: int | None = None):
    """``table`` as consecutive slices of at most ``max_rows`` rows and ``max_bytes`` of ``data`` (or one row);
    the defaults :data:`ROW_GROUP_ROWS`, :data:`ROW_GROUP_BYTES`."""
    max_rows = ROW_GROUP_ROWS if max_rows is None else max_rows
    max_bytes = ROW_GROUP_BYTES if max_bytes is None else max_bytes
    sizes = data_sizes(table)
    start = acc = 0
    for i, n in enumerate(sizes):
        if i > start and (i - start >= max_rows or acc + n > max_bytes):
            yield table.slice(start, i - start)
            start, acc = i, 0
        acc += n
    if start < table.num_rows or table.num_rows == 0:
        yield table.slice(start, table.num_rows - start)


class ImageTableWriter:
    """Streams tables of image rows into one Parquet file in row groups bounded by :func:`bounded_slices`; the file
    appears under its name only when the writer closes without an error (a temporary name, then a rename).

    ``with ImageTableWriter(path, schema) as w: w.write(table)...``; an empty file (schema, no rows) when nothing
    was written."""

    def __init__(self, path, schema: pa.Schema = IMAGE_TABLE_SCHEMA, max_rows: int | None = None,
                 max_bytes: int | None = None) -> None:
        from .parquet import tmp_path_for  # (io.parquet imports the schema module: kept out of this leaf's imports)

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path_for(self.path)
        self.schema = schema
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.rows = 0
        self.writer = pq.ParquetWriter(self.tmp, schema, compression=image_table_compression(schema.names))

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if table.schema != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        for part in bounded_slices(table, self.max_rows, self.max_bytes):
            self.writer.write_table(part, row_group_size=max(1, part.num_rows))
            self.rows += part.num_rows

    def close(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "ImageTableWriter":
        return self

    def __exit__(self, exc_type, *exc) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
