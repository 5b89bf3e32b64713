"""(part, row) loser folders: the output format of the run-wide dedup reductions, read by the per-part passes."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

LOSERS_SCHEMA = pa.schema([("part", pa.string()), ("row", pa.int64())])


def part_key(path: str | Path) -> str:
    """The part key of a part file (``<key>.parquet`` -> ``<key>``), as used in (part, row) loser files."""
    name = Path(path).name
    return name[: -len(".parquet")] if name.endswith(".parquet") else name


def rows_to_drop(losers_dir: str | Path, key: str) -> set[int]:
    """Rows of part ``key`` listed in a losers folder ((part, row) parquet files); empty if the folder is absent."""
    path = Path(losers_dir)
    rows: set[int] = set()
    if not path.exists():
        return rows
    for f in sorted(path.glob("*.parquet")):
        t = pq.read_table(f, columns=["part", "row"], filters=[("part", "=", key)])
        rows.update(t.column("row").to_pylist())
    return rows
