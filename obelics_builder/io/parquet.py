"""Parquet parts of documents, written atomically (temporary name, then rename)."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import SCORE_PREFIXES, from_arrow, score_columns, to_arrow


def tmp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


class DocumentWriter:
    """Streams batches of documents into one Parquet file; the file appears under its name only on close().

    The score-column set is fixed by the first non-empty batch (later batches are aligned to it), so a file always
    has one schema.  ``abort()`` removes the temporary file.
    """

    def __init__(self, path: str | Path, compression: str = "zstd", row_group_size: int = 2048) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path_for(self.path)
        self.compression = compression
        self.row_group_size = row_group_size
        self.writer: pq.ParquetWriter | None = None
        self.score_names: list[str] | None = None
        self.rows = 0

    def write(self, docs: list[dict]) -> None:
        if not docs:
            return
        if self.score_names is None:
            names: set[str] = set()
            for d in docs:
                names.update(score_columns(d))
            self.score_names = sorted(names)
        table = to_arrow(docs, self.score_names)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression=self.compression)
        else:
            table = table.cast(self.writer.schema)
        self.writer.write_table(table, row_group_size=self.row_group_size)
        self.rows += len(docs)

    def write_table(self, table: pa.Table) -> None:
        """Write rows that are already documents in Arrow form (a part's own rows, e.g. the survivors of a pass
        that only drops rows), as they are: no conversion to dicts and back."""
        if table.num_rows == 0:
            return
        if self.writer is None:
            if self.score_names is None:
                self.score_names = [n for n in table.column_names if n.startswith(SCORE_PREFIXES)]
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression=self.compression)
        else:
            table = table.select(self.writer.schema.names).cast(self.writer.schema)
        self.writer.write_table(table, row_group_size=self.row_group_size)
        self.rows += table.num_rows

    def write_rows(self, table: pa.Table, light: list[dict], kept: list[dict]) -> None:
        """Write the rows of ``table`` whose light documents (:func:`iter_row_batches`) are in ``kept``, in order."""
        index = {id(d): i for i, d in enumerate(light)}
        rows = [index[id(d)] for d in kept]
        self.write_table(table if len(rows) == table.num_rows else table.take(pa.array(rows, pa.int64())))

    def close(self) -> Path:
        if self.writer is None:  # no rows: still write a valid, empty file with the OBELICS columns
            table = to_arrow([], [])
            pq.write_table(table, self.tmp, compression=self.compression)
        else:
            self.writer.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:
                pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "DocumentWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def write_documents(path: str | Path, docs: Iterable[dict], compression: str = "zstd") -> Path:
    with DocumentWriter(path, compression) as w:
        w.write(list(docs))
    return Path(path)


def iter_document_batches(path: str | Path, batch_size: int = 1024, columns: list[str] | None = None) -> Iterator[list[dict]]:
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
        yield from_arrow(pa.Table.from_batches([batch]))


def iter_row_batches(path: str | Path, batch_size: int = 1024) -> Iterator[tuple[pa.Table, list[dict]]]:
    """Batches of a document part as (Arrow table, light documents).  A light document holds only ``texts``,
    ``images`` and the parsed ``general_metadata``: what the passes that only drop rows read (URL, near-duplicate
    and image-set dedup, opt-out without image removals).  They hand the survivors to
    :meth:`DocumentWriter.write_rows`, which writes those rows as stored: no image metadata parsed and serialised
    again, no score column rebuilt.  :func:`documents_of` gives whole documents for the rows a pass must edit."""
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_size):
        table = pa.Table.from_batches([batch])
        texts = table.column("texts").to_pylist()
        images = table.column("images").to_pylist()
        gms = table.column("general_metadata").to_pylist()
        yield table, [{"texts": t or [], "images": im or [], "general_metadata": json.loads(g) if g else {}}
                      for t, im, g in zip(texts, images, gms)]


def documents_of(table: pa.Table, light: list[dict], subset: list[dict]) -> list[dict]:
    """Whole documents (:func:`~obelics_builder.schema.from_arrow`) of the rows whose light documents are
    ``subset``."""
    index = {id(d): i for i, d in enumerate(light)}
    return from_arrow(table.take(pa.array([index[id(d)] for d in subset], pa.int64())))


def read_documents(path: str | Path) -> list[dict]:
    return from_arrow(pq.read_table(path))


def write_table_atomic(table: pa.Table, path: str | Path, compression: str | dict[str, str] = "zstd",
                       row_group_size: int | None = None) -> Path:
    """``table`` -> ``path`` (a temporary name, then a rename); ``compression``: one codec, or one per column;
    ``row_group_size``: rows per row group (None: Arrow's default)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    pq.write_table(table, tmp, compression=compression, row_group_size=row_group_size)
    os.replace(tmp, path)
    return path
