"""Benchmark: the one step of the near-duplicate reduction whose state grows with the corpus (connected components).

For each size N, writes synthetic verified edges shaped like ``bench_dedup.py``'s corpus (0.375 verified edges per
document, each joining a document to an earlier one; parts of 20,000 rows; files of at most 1M edges, as the
verification tasks write them), then runs ``engine.near_dedup.components_task`` in a fresh process and reports its
wall time and peak RSS (``ru_maxrss``) above the process's RSS after imports.  One JSON line per size.

    .venv/bin/python bench/dedup/bench_union_find.py --sizes 1000000 10000000 50000000 --out /tmp/bench-uf
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from obelics_builder.dedup.lsh_tables import EDGE, write_rows  # noqa: E402

PART = 20_000

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from obelics_builder.engine.near_dedup import components_task
import psutil
arg = json.loads(sys.argv[2])
base = psutil.Process().memory_info().rss
t = time.time()
s = components_task(arg["dest"], arg["part_rows"], arg["names"], "bench")
wall = time.time() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall_s": round(wall, 2), "rss_after_imports_mb": round(base / 2**20, 1),
                  "peak_rss_mb": round(peak / 2**20, 1), "step_peak_mb": round((peak - base) / 2**20, 1),
                  "clustered": s["clustered_documents"], "clusters": s["clusters"],
                  "union_rounds": s["union_rounds"], "union_find_mb": round(s["union_find_bytes"] / 2**20, 1)}))
"""


def write_edges(n: int, dest: Path, seed: int = 0) -> tuple[list[int], list[str]]:
    rng = np.random.default_rng(seed)
    m = int(n * 0.375)
    names = []
    for i, lo in enumerate(range(0, m, 1_000_000)):
        k = min(1_000_000, m - lo)
        b = rng.integers(1, n, k)
        a = np.maximum(0, b - rng.integers(1, 200_000, k))  # a recent earlier document, as the bench's ring buffer
        e = np.empty(k, dtype=EDGE)
        e["a"] = ((a // PART) << 32) | (a % PART)
        e["b"] = ((b // PART) << 32) | (b % PART)
        write_rows(dest / "verified" / f"{i:05d}.bin", e)
        names.append(f"{i:05d}")
    part_rows = [PART] * (n // PART) + ([n % PART] if n % PART else [])
    return part_rows, names


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--out", default="/tmp/bench-uf")
    args = ap.parse_args(argv)
    for n in args.sizes:
        dest = Path(args.out) / f"n{n}"
        shutil.rmtree(dest, ignore_errors=True)
        part_rows, names = write_edges(n, dest)
        arg = json.dumps({"dest": str(dest), "part_rows": part_rows, "names": names})
        out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), arg], capture_output=True, text=True, check=True)
        res = {"documents": n, **json.loads(out.stdout.strip().splitlines()[-1])}
        print(json.dumps(res), flush=True)
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    main()
