#!/usr/bin/env python3
"""Scale benchmark: the per-WARC CPU stages (read -> extract -> text scores) on >= 2 GB of WARC input.

1. Build WARC input in a temporary folder by repeating real pages under varied URLs: the HTML responses of the
   bundled sample mirror's WARCs plus the HTML files of a pages folder (default ``../shared/data/pages``).  Each
   WARC is written streaming, one gzip member per record (like Common Crawl), a ``request`` and a ``metadata``
   record around every ``response`` (the Common Crawl layout), rotated at ``--warc-mb``.  Each page's HTTP block
   is deflated once and reused inside every record that carries it (only the WARC headers are compressed per
   record), so 2 GB are written in about a minute; the files are ordinary gzip-per-record WARCs (checked with
   warcio and gzip in tests/test_bench_scale.py).
2. Run :func:`obelics_builder.tasks.process_warc` per WARC through :class:`obelics_builder.engine.Engine`
   (LocalCluster) on the small set (default 200 MB, the first WARCs of the big set) with 1 and 2 workers, and on the
   big set (default 2 GB) with ``--big-workers`` (default 2).
3. Report pages/s per core (pages / summed task wall time, and pages / (run wall time x workers)), peak RSS per
   worker (``ru_maxrss`` of each worker process, sampled after the run), the 1 -> 2 worker speed-up, whether time
   per page stays flat (big run pages/s per core within 15% of the small run's), and the core-hour projection of
   ``obelics-build estimate`` for CC-MAIN-2023-06.  Prints figures, then one final JSON line.

Usage (from the repo root; takes tens of minutes on 2 cores)::

    .venv/bin/python bench/scale/bench_scale.py                          # 200 MB x {1,2} workers, 2 GB x 2 workers
    .venv/bin/python bench/scale/bench_scale.py --small-mb 20 --big-mb 60 # a quick smoke run
    .venv/bin/python bench/scale/bench_scale.py --keep /tmp/warcs         # keep the generated WARCs

Generated WARCs and outputs live under a temporary folder (``--tmp``, default /tmp) and are deleted at the end.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")

MB = 1_000_000


# ---------------------------------------------------------------------------------------------------------------
# Input generation
# ---------------------------------------------------------------------------------------------------------------

def page_pool(pages_dir: Path | None) -> list[tuple[bytes, str]]:
    """(HTML body, content type) of every HTML page found in the sample mirror and ``pages_dir``."""
    from obelics_builder.sources.commoncrawl import list_warcs
    from obelics_builder.sources.warc import iter_html_records
    from obelics_builder.stats import StageContext

    pool: list[tuple[bytes, str]] = []
    ctx = StageContext("read")
    for ref in list_warcs("2023-06", "sample"):
        for rec in iter_html_records(ref, ctx):
            ctype = rec["http_headers"].get("content-type") or "text/html"
            pool.append((rec["body"], ctype))
    n_sample = len(pool)
    if pages_dir and pages_dir.is_dir():
        for f in sorted(pages_dir.rglob("*")):
            if f.is_file() and f.suffix.lower() in (".html", ".htm") and f.stat().st_size > 512:
                body = f.read_bytes()
                if b"<" in body[:4096]:
                    pool.append((body, "text/html; charset=utf-8"))
    print(f"page pool: {len(pool)} pages ({n_sample} from the sample mirror, {len(pool) - n_sample} from "
          f"{pages_dir}), {sum(len(b) for b, _ in pool) / MB:.1f} MB of HTML", file=sys.stderr)
    if not pool:
        raise SystemExit("no pages found")
    return pool


def _member(raw_head: bytes, tail: bytes, tail_deflate: bytes) -> bytes:
    """One gzip member holding ``raw_head`` + ``tail``, whose raw deflate stream was computed once in advance.

    The head is deflated and flushed to a byte boundary (Z_FULL_FLUSH, not final), the precomputed stream of the
    tail follows (it ends with the final block), then CRC-32 and length of the whole: a valid gzip member, so the
    per-page cost of writing is small while readers decompress exactly what they would for a real record.
    """
    import struct
    import zlib

    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = c.compress(raw_head) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(tail, zlib.crc32(raw_head))
    size = (len(raw_head) + len(tail)) & 0xFFFFFFFF
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + head + tail_deflate + struct.pack("<II", crc, size)


def _prepare(pool):
    """Per page: the HTTP block + record end, its raw deflate stream (computed once), and the block length."""
    import zlib

    out = []
    for body, ctype in pool:
        block = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        tail = block + b"\r\n\r\n"
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        out.append((tail, c.compress(tail) + c.flush(), len(block)))
    return out


def _warc_head(rec_type: str, url: str, date: str, k: int, length: int, extra: str = "",
               ctype: str = "application/http; msgtype=response") -> bytes:
    return (f"WARC/1.0\r\nWARC-Type: {rec_type}\r\nWARC-Date: {date}\r\n"
            f"WARC-Record-ID: <urn:uuid:{k:08x}-0000-4000-8000-{hash((rec_type, k)) & 0xFFFFFFFFFFFF:012x}>\r\n"
            f"WARC-Target-URI: {url}\r\n{extra}Content-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n"
            ).encode()


def write_warcs(pool, folder: Path, total_mb: float, warc_mb: float, seed: int = 0) -> list[dict]:
    """Write gzip-per-record WARCs until ``total_mb`` (compressed) are on disk; returns [{path, bytes, pages}].

    Per page: a ``request``, the ``response`` (a pool page under a new, unique URL) and a ``metadata`` record,
    each its own gzip member, as in Common Crawl WARCs.
    """
    prepared = _prepare(pool)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files: list[dict] = []
    total = 0
    k = 0  # global page counter: every URL is unique
    while total < total_mb * MB:
        path = folder / f"BENCH-{len(files):05d}.warc.gz"
        pages = 0
        with open(path, "wb") as fh:
            info = b"software: obelics-builder bench_scale\r\nformat: WARC File Format 1.0\r\n"
            fh.write(gzip.compress(_warc_head("warcinfo", "", "2023-02-01T00:00:00Z", 0, len(info),
                                              ctype="application/warc-fields").replace(b"WARC-Target-URI: \r\n", b"")
                                   + info + b"\r\n\r\n", 6))
            while fh.tell() < warc_mb * MB:
                i = rng.randrange(len(pool))
                tail, deflated, block_len = prepared[i]
                host = f"site{rng.randrange(50_000)}.example{rng.randrange(7)}.org"
                path_q = f"/p/{k}/{rng.randrange(1 << 30):x}.html"
                url = f"https://{host}{path_q}"
                k += 1
                date = f"2023-02-0{1 + k % 9}T{k % 24:02d}:{k % 60:02d}:{(k // 60) % 60:02d}Z"
                req = f"GET {path_q} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: CCBot/2.0\r\n\r\n".encode()
                fh.write(gzip.compress(_warc_head("request", url, date, k, len(req),
                                                  ctype="application/http; msgtype=request") + req + b"\r\n\r\n", 6))
                head = _warc_head("response", url, date, k, block_len,
                                  extra="WARC-Identified-Payload-Type: text/html\r\n")
                fh.write(_member(head, tail, deflated))
                meta = b"fetchTimeMs: 120\r\n"
                fh.write(gzip.compress(_warc_head("metadata", url, date, k, len(meta),
                                                  ctype="application/warc-fields") + meta + b"\r\n\r\n", 6))
                pages += 1
            size = fh.tell()
        files.append({"path": str(path), "bytes": size, "pages": pages})
        total += size
    return files


# ---------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------

def timed_unit(ref, recipe: dict, out: str, dump: str | None) -> dict:
    """process_warc + the task's wall/CPU time and the worker's peak RSS so far (runs on a worker)."""
    import resource as _r
    import time as _t

    from obelics_builder.tasks import process_warc

    t0, c0 = _t.perf_counter(), _t.process_time()
    stats = process_warc(ref, recipe, out, dump)
    return {"stats": stats, "seconds": _t.perf_counter() - t0, "cpu_seconds": _t.process_time() - c0,
            "pid": os.getpid(), "maxrss_mb": _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024.0}


def _worker_rss(_dask_worker=None) -> dict:
    import resource as _r

    import psutil

    return {"pid": os.getpid(), "maxrss_mb": _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024.0,
            "rss_mb": psutil.Process().memory_info().rss / 2 ** 20}


def run_set(files: list[dict], workers: int, tmp: Path, label: str) -> dict:
    from obelics_builder.engine import Engine
    from obelics_builder.recipe import load_recipe
    from obelics_builder.sources.commoncrawl import warc_refs_from_paths

    recipe = load_recipe("obelics")
    out = tempfile.mkdtemp(prefix=f"scale-{label}-", dir=tmp)
    refs = warc_refs_from_paths([f["path"] for f in files])
    # largest first, so that no worker is left with a big WARC at the end
    refs = [r for _, r in sorted(zip([-f["bytes"] for f in files], refs), key=lambda x: x[0])]
    try:
        with Engine(workers=workers, threads_per_worker=1, memory_limit=None, progress=False, quiet=True) as eng:
            t0 = time.perf_counter()
            results = eng.map(timed_unit, refs, recipe, out, "CC-MAIN-2023-06", desc=label)
            wall = time.perf_counter() - t0
            rss = eng.client.run(_worker_rss) if eng.client is not None else {}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    pages = sum(r["stats"].get("read", {}).get("documents_out", 0) for r in results)
    records = sum(r["stats"].get("read", {}).get("documents_in", 0) for r in results)
    docs = sum(r["stats"].get("text_scores", {}).get("documents_out", 0) for r in results)
    errors = sum(sum(s.get("errors", {}).values()) for r in results for s in r["stats"].values())
    task_s = sum(r["seconds"] for r in results)
    cpu_s = sum(r["cpu_seconds"] for r in results)
    stage_s = {}
    for r in results:
        for name, s in r["stats"].items():
            stage_s[name] = stage_s.get(name, 0.0) + float(s.get("seconds", 0.0))
    peak = max([v["maxrss_mb"] for v in rss.values()] + [r["maxrss_mb"] for r in results])
    mb = sum(f["bytes"] for f in files) / MB
    res = {
        "label": label, "workers": workers, "warcs": len(files), "input_mb": round(mb, 1),
        "records": records, "pages": pages, "documents": docs, "errors": errors,
        "wall_s": round(wall, 1), "task_s": round(task_s, 1), "cpu_s": round(cpu_s, 1),
        "pages_per_core_s": round(pages / task_s, 2) if task_s else 0.0,
        "pages_per_cpu_s": round(pages / cpu_s, 2) if cpu_s else 0.0,
        "pages_per_s_wall": round(pages / wall, 2) if wall else 0.0,
        "pages_per_core_s_wall": round(pages / wall / workers, 2) if wall else 0.0,
        "mb_per_s_wall": round(mb / wall, 2) if wall else 0.0,
        "stage_seconds": {k: round(v, 1) for k, v in stage_s.items()},
        "peak_rss_mb_per_worker": round(peak, 1),
        "worker_rss_mb_now": [round(v["rss_mb"], 1) for v in rss.values()],
    }
    print(f"[{label}] {len(files)} WARCs, {mb:,.0f} MB, {workers} worker(s): {pages:,} pages in {wall:,.1f} s wall "
          f"-> {res['pages_per_s_wall']:.1f} pages/s, {res['pages_per_core_s']:.1f} pages/s per core (task time), "
          f"peak RSS per worker {peak:,.0f} MB; stage seconds {res['stage_seconds']}", file=sys.stderr)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small-mb", type=float, default=200.0, help="small set size, compressed MB (default 200)")
    p.add_argument("--big-mb", type=float, default=2000.0, help="big set size, compressed MB (default 2000)")
    p.add_argument("--warc-mb", type=float, default=50.0, help="size of each generated WARC (default 50 MB)")
    p.add_argument("--big-workers", type=int, nargs="+", default=[2], help="worker counts for the big set")
    p.add_argument("--small-workers", type=int, nargs="+", default=[1, 2], help="worker counts for the small set")
    p.add_argument("--pages", default=str(REPO.parent / "shared" / "data" / "pages"),
                   help="folder of extra HTML pages for the pool (default ../shared/data/pages)")
    p.add_argument("--tmp", default="/tmp", help="where to write the WARCs and outputs (deleted afterwards)")
    p.add_argument("--keep", default=None, help="write the WARCs here and keep them")
    p.add_argument("--dump-warcs", type=int, default=None,
                   help="WARC count for the projection (default 90,000, the documented count; see --listing-mirror)")
    p.add_argument("--listing-mirror", default=None,
                   help="read the CC-MAIN-2023-06 warc.paths.gz from this mirror to count WARCs (network access; "
                        "off by default)")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="obelics-bench-scale-", dir=args.tmp))
    warc_dir = Path(args.keep) if args.keep else tmp / "warcs"
    t0 = time.perf_counter()
    try:
        pool = page_pool(Path(args.pages))
        files = write_warcs(pool, warc_dir, max(args.big_mb, args.small_mb), args.warc_mb)
        gen_s = time.perf_counter() - t0
        small, acc = [], 0
        for f in files:
            if acc >= args.small_mb * MB:
                break
            small.append(f)
            acc += f["bytes"]
        big = files
        print(f"generated {len(files)} WARCs, {sum(f['bytes'] for f in files) / MB:,.0f} MB, "
              f"{sum(f['pages'] for f in files):,} pages in {gen_s:.0f} s; small set = first {len(small)} WARCs "
              f"({acc / MB:,.0f} MB)", file=sys.stderr)
        runs = []
        for w in args.small_workers:
            runs.append(run_set(small, w, tmp, f"small-{w}w"))
        for w in args.big_workers:
            runs.append(run_set(big, w, tmp, f"big-{w}w"))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    by = {r["label"]: r for r in runs}
    s1, s2 = by.get("small-1w"), by.get("small-2w")
    speedup = round(s1["wall_s"] / s2["wall_s"], 2) if s1 and s2 and s2["wall_s"] else None
    bigw = max(args.big_workers)
    bigr, smallr = by.get(f"big-{bigw}w"), by.get(f"small-{bigw}w")
    flat = None
    if bigr and smallr and smallr["pages_per_core_s"]:
        ratio = bigr["pages_per_core_s"] / smallr["pages_per_core_s"]
        flat = {"ratio": round(ratio, 3), "within_15pct": abs(ratio - 1) <= 0.15,
                "ratio_wall": round(bigr["pages_per_s_wall"] / smallr["pages_per_s_wall"], 3)}

    # projection for a whole dump, as `obelics-build estimate` computes it
    from obelics_builder.commands.estimate import CC_PAGES_PER_WARC, CC_TYPICAL_WARCS, count_warcs, estimate
    from obelics_builder.costs import from_rate

    if args.dump_warcs:
        n_warcs, warc_src = args.dump_warcs, "--dump-warcs"
    elif args.listing_mirror:
        try:
            n_warcs, warc_src = count_warcs("2023-06", args.listing_mirror), "CC-MAIN-2023-06 warc.paths.gz"
        except Exception as exc:
            n_warcs, warc_src = CC_TYPICAL_WARCS, f"assumed {CC_TYPICAL_WARCS:,} (listing unreachable: {type(exc).__name__})"
    else:  # never touch the network unless asked
        n_warcs, warc_src = CC_TYPICAL_WARCS, f"assumed {CC_TYPICAL_WARCS:,} (listing not read)"
    ref_run = bigr or runs[-1]
    proj = estimate(n_warcs, CC_PAGES_PER_WARC, from_rate(ref_run["pages_per_core_s"], "bench/scale"), (64, 512, 4096))
    peak = max(r["peak_rss_mb_per_worker"] for r in runs)

    print("", file=sys.stderr)
    print("=== bench/scale: read -> extract -> text scores ===")
    for r in runs:
        print(f"{r['label']:>10}: {r['input_mb']:>7,.0f} MB {r['warcs']:>3} WARCs {r['pages']:>8,} pages "
              f"{r['wall_s']:>8,.1f} s wall  {r['pages_per_s_wall']:>7.1f} pages/s  "
              f"{r['pages_per_core_s']:>6.1f} pages/s/core (task)  {r['pages_per_core_s_wall']:>6.1f} (wall/worker)  "
              f"peak RSS/worker {r['peak_rss_mb_per_worker']:>6,.0f} MB")
    if speedup is not None:
        print(f"speed-up 1 -> 2 workers (small set, wall): {speedup:.2f}x")
    if flat is not None:
        print(f"time per page flat: big/small pages/s per core = {flat['ratio']:.3f} "
              f"({'within' if flat['within_15pct'] else 'NOT within'} 15%)")
    print(f"peak RSS per worker: {peak:,.0f} MB ({'under' if peak < 2048 else 'OVER'} the 2 GB target)")
    print(f"CC-MAIN-2023-06 projection: {n_warcs:,} WARCs ({warc_src}) x {CC_PAGES_PER_WARC:,} pages at "
          f"{ref_run['pages_per_core_s']:.1f} pages/s/core = {proj['core_hours']:,.0f} core-hours "
          f"({proj['wall_hours'][512]:,.1f} h on 512 cores)")
    final = {
        "bench": "scale", "generated_warcs": len(files), "generated_mb": round(sum(f['bytes'] for f in files) / MB, 1),
        "runs": runs, "speedup_1_to_2_workers": speedup, "flat": flat, "peak_rss_mb_per_worker": peak,
        "pages_per_core_s": ref_run["pages_per_core_s"],
        "pages_per_warc": round(sum(f["pages"] for f in files) / len(files), 1),
        "projection": {"dump": "CC-MAIN-2023-06", "warcs": n_warcs, "warcs_source": warc_src,
                       "pages_per_warc": CC_PAGES_PER_WARC, "core_hours": round(proj["core_hours"]),
                       "wall_hours_512_cores": round(proj["wall_hours"][512], 1)},
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
    }
    print(json.dumps(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
