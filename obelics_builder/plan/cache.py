"""What a stage of one's own computed, kept across reruns of its step (``ctx.cache``).

A step reruns whenever anything it reads changes: a text threshold changed by ``obelics-build filter`` reruns every
step after the text filter, a stage of one's own included, although most of its documents are the same.  A stage
whose scores are costly (a model over every image) keeps them here, by a key it derives from what the score
depends on (an image's sha256 and a text, say), and finds them again on the rerun::

    score = ctx.cache.get(key)
    if score is None:
        score = compute(...)
        ctx.cache.put(key, score)

One file per part, ``OUT/parts/<name>/_cache/<part key>.<identity>.parquet`` (``key: string, value: string`` the
value's JSON), written atomically when the part is done, holding what the file before it held plus what this run
added (a threshold moved back and forth never recomputes).  Its ``identity`` is the stage's own config (its
``use`` and its recipe section: what its function computes with), never what it reads or its decisions: another
model, or another option of the stage, starts an empty cache (and the old file is removed).  Values must be JSON
(numbers, strings, lists, mappings).  A cache file that cannot be read is ignored (the values are computed again).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..io.markers import fingerprint
from ..io.parquet import write_table_atomic

SCHEMA = pa.schema([("key", pa.string()), ("value", pa.string())])


def cache_identity(use: str, section: dict) -> str:
    """What a stage's cached values depend on: its function and its recipe section."""
    return fingerprint("stage-cache", use, section or {})


class StageCache:
    """The cached values of one part of one stage (see the module docstring)."""

    def __init__(self, folder: str | Path, key: str, identity: str) -> None:
        self.folder, self.key, self.identity = Path(folder) / "_cache", key, identity
        self.path = self.folder / f"{key}.{identity}.parquet"
        self.values: dict[str, str] = {}
        self.hits = self.added = 0
        if self.path.exists():
            try:
                t = pq.read_table(self.path)
                self.values = dict(zip(t.column("key").to_pylist(), t.column("value").to_pylist()))
            except Exception:  # noqa: BLE001 - a damaged cache is recomputed, never fatal
                self.values = {}

    def get(self, key: str) -> Any:
        """The value stored under ``key`` (None when there is none)."""
        raw = self.values.get(key)
        if raw is None:
            return None
        self.hits += 1
        return json.loads(raw)

    def put(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)
        self.added += 1

    def __len__(self) -> int:
        return len(self.values)

    def save(self) -> None:
        """Write the file (only when something was added) and remove the part's files of other identities."""
        if self.added:
            keys = sorted(self.values)
            write_table_atomic(pa.table({"key": keys, "value": [self.values[k] for k in keys]}, schema=SCHEMA),
                               self.path)
        for old in self.folder.glob(f"{self.key}.*.parquet"):
            ident = old.name[len(self.key) + 1:-len(".parquet")]
            if old != self.path and len(ident) == 16 and all(c in "0123456789abcdef" for c in ident):
                old.unlink()
