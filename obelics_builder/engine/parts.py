"""How a run-wide reduction reads its per-part input files: grouped into Dask partitions of about
:data:`PARTITION_BYTES` each, so the graph of a reduction is O(bytes / PARTITION_BYTES), not O(WARCs) (a
90,000-WARC dump's small per-part key files would otherwise be 90,000 partitions, each with its chain of tasks)."""
from __future__ import annotations

import os

#: bytes of Parquet input (on disk, compressed) per partition of a reduction
PARTITION_BYTES = 32 * 2 ** 20


def file_groups(files: list[str], target_bytes: int = PARTITION_BYTES) -> list[list[str]]:
    """Consecutive files in groups of at most ``target_bytes`` (a bigger file is a group of its own)."""
    groups: list[list[str]] = []
    size = 0
    for f in files:
        s = os.path.getsize(f)
        if groups and size + s <= target_bytes:
            groups[-1].append(f)
            size += s
        else:
            groups.append([f])
            size = s
    return groups


def read_parts(files: list[str], columns: list[str], target_bytes: int = PARTITION_BYTES):
    """A Dask DataFrame of ``columns`` of ``files`` (non-empty Parquet files), one partition per group of files."""
    import dask.dataframe as dd

    groups = file_groups(files, target_bytes)
    if len(groups) == len(files):  # nothing to group: Dask's own reader, one partition per file
        return dd.read_parquet(files, columns=columns)
    return dd.from_map(_read_group, groups, names=columns, enforce_metadata=False)


def _read_group(files: list[str], names: list[str]):
    """The files' rows as one pandas frame, with the dtypes ``dd.read_parquet`` gives them (strings as
    ``string[pyarrow]``)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    strings = pd.StringDtype("pyarrow")
    table = pa.concat_tables([pq.read_table(f, columns=names) for f in files], promote_options="default")
    return table.to_pandas(types_mapper=lambda t: strings if pa.types.is_string(t) or pa.types.is_large_string(t)
                           else None)
