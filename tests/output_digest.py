"""A small digest of what a crawl produced: every row of every ``OUT/documents`` part (all columns, in order) and
the per-stage counts of ``OUT/stats.json`` (no timings).  Independent of the Parquet writer's version, so a golden
digest fails only when the data changes.

    .venv/bin/python tests/output_digest.py OUT > tests/data/obelics-2023-sample.json
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

#: stats.json stage keys that are data (counts by reason); ``seconds`` and ``examples`` are not
STAGE_KEYS = ("documents_in", "documents_out", "nodes_in", "nodes_out", "images_in", "images_out", "removed",
              "nodes_removed", "images_removed", "errors")


def parts_digest(documents: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(Path(documents).glob("part-*.parquet")):
        table = pq.read_table(path)
        h = hashlib.sha256(json.dumps(table.schema.names).encode())
        for row in table.to_pylist():
            h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        out[path.name] = {"rows": table.num_rows, "sha256": h.hexdigest()}
    return out


def output_digest(out: Path) -> dict:
    stats = json.loads((Path(out) / "stats.json").read_text(encoding="utf-8"))
    return {
        "documents": parts_digest(Path(out) / "documents"),
        "summary": stats["summary"],
        "stages": {name: {k: st[k] for k in STAGE_KEYS} for name, st in stats["stages"].items()},
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: output_digest.py OUT")
    print(json.dumps(output_digest(Path(sys.argv[1])), indent=1, sort_keys=True))
