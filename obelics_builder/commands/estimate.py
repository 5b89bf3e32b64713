"""``obelics-build estimate``: core-hours of the CPU stages (read, extract, text scores) for a whole dump."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: HTML pages per WARC when nothing better is known.  Common Crawl's announcement of CC-MAIN-2023-06 (January/February
#: 2023) gives about 3.15 billion pages in 90,000 WARC files (100 segments x 900), i.e. ~35,000 captured pages per
#: ~1 GB WARC, nearly all of them HTML (figures quoted from the announcement, not re-checked offline).  A published
#: cross-check: the February 2019 announcement (CC-MAIN-2019-09) lists 2.9 billion pages in 64,000 WARCs
#: (59.86 TiB), i.e. ~45,000 pages per WARC.  Measure it on real WARCs with --pages-per-warc measured.
CC_PAGES_PER_WARC = 35_000
#: WARC files in a 2022-2024 monthly dump (100 segments x 900 files) when the listing cannot be read.
CC_TYPICAL_WARCS = 90_000
#: Compressed size of one Common Crawl WARC file (about 1 GB each; 2023-06: ~ 90,000 files, ~ 90-100 TB).
CC_WARC_GB = 1.0

DESCRIPTION = """\
Project the CPU cost of a whole Common Crawl dump from measured throughput: core-hours for the per-WARC CPU stages
(read + extract + text scores), and wall-clock time on a given number of cores.

  WARCs          counted from the dump's warc.paths.gz under --mirror (needs network for the real mirror; works
                 offline with --mirror sample), or --warcs N
  pages per WARC --pages-per-warc N, or "measured" (from --throughput-from), else the Common Crawl average
                 (~35,000 HTML pages per WARC: CC-MAIN-2023-06 has 3.15 billion pages in 90,000 WARCs)
  pages/s/core   --pages-per-core-s X, or --throughput-from FILE: an OUT/stats.json (pages read divided by the
                 seconds of the extract and text_scores stages; reading/decompressing is not timed there, so this
                 is optimistic) or the JSON line printed by bench/scale/bench_scale.py (wall time of the whole
                 per-WARC unit, preferred)

Images (fetching, decoding, NSFW) are network-bound and not included.

Examples:
  obelics-build estimate --dump 2023-06 --mirror sample --throughput-from out/stats.json
  obelics-build estimate --dump 2023-06 --warcs 90000 --pages-per-core-s 25 --cores 512
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dump", required=True, help="Common Crawl dump id: 2023-06 or CC-MAIN-2023-06")
    p.add_argument("--mirror", default=None,
                   help="mirror root (default https://data.commoncrawl.org; 'sample' for the bundled sample)")
    p.add_argument("--warcs", type=int, default=None, metavar="N",
                   help="number of WARCs in the dump (skips reading the listing)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--throughput-from", metavar="FILE",
                     help="OUT/stats.json of a crawl, or the JSON output of bench/scale/bench_scale.py")
    src.add_argument("--pages-per-core-s", type=float, metavar="X", help="measured HTML pages per second per core")
    p.add_argument("--pages-per-warc", default=None, metavar="N|measured",
                   help=f"HTML pages per WARC (default {CC_PAGES_PER_WARC:,}, the Common Crawl average); "
                        "'measured' takes it from --throughput-from (only meaningful for full-size WARCs)")
    p.add_argument("--cores", type=int, nargs="*", default=[64, 512, 4096],
                   help="print wall-clock time on these core counts (default 64 512 4096)")
    p.add_argument("--json", action="store_true", help="print the estimate as one JSON object")


# ---------------------------------------------------------------------------------------------------------------

def count_warcs(dump: str, mirror: str | None) -> int:
    """The number of WARC files listed in the dump's ``warc.paths.gz`` (raises OSError when unreachable)."""
    from ..sources.commoncrawl import _join, _read_paths, normalize_dump, resolve_mirror

    root = resolve_mirror(mirror)
    return sum(1 for _ in _read_paths(_join(root, f"crawl-data/{normalize_dump(dump)}/warc.paths.gz")))


def throughput_from_file(path: str | Path) -> dict:
    """``{"pages_per_core_s", "pages_per_warc", "source"}`` from a stats.json or a bench_scale JSON output."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        for line in reversed(text.strip().splitlines()):  # the bench prints figures then one JSON line
            line = line.strip()
            if line.startswith("{"):
                try:
                    data = json.loads(line)
                    break
                except json.JSONDecodeError:
                    continue
    if not isinstance(data, dict):
        raise ValueError(f"{path}: neither a stats.json nor a bench_scale JSON output")
    if "pages_per_core_s" in data:  # bench/scale
        ppc = float(data["pages_per_core_s"])
        ppw = data.get("pages_per_warc")
        return {"pages_per_core_s": ppc, "pages_per_warc": float(ppw) if ppw else None,
                "source": f"{path} (bench_scale: wall time of read+extract+text scores per core)"}
    if "stages" in data:  # stats.json
        stages = data["stages"]
        pages = int(stages.get("read", {}).get("documents_out", 0))
        secs = sum(float(stages.get(s, {}).get("seconds", 0.0)) for s in ("read", "extract", "text_scores"))
        if pages <= 0 or secs <= 0:
            raise ValueError(f"{path}: no pages read or no stage seconds recorded; cannot measure throughput")
        n_warcs = len((data.get("run") or {}).get("warcs") or [])
        return {"pages_per_core_s": pages / secs, "pages_per_warc": pages / n_warcs if n_warcs else None,
                "source": f"{path} (stats.json: {pages:,} pages / {secs:,.1f} s of read+extract+text_scores)"}
    raise ValueError(f"{path}: neither a stats.json nor a bench_scale JSON output")


def estimate(n_warcs: int, pages_per_warc: float, pages_per_core_s: float, cores=(64, 512, 4096)) -> dict:
    if n_warcs < 0 or pages_per_warc <= 0 or pages_per_core_s <= 0:
        raise ValueError("need n_warcs >= 0, pages_per_warc > 0 and pages_per_core_s > 0")
    pages = n_warcs * pages_per_warc
    core_hours = pages / pages_per_core_s / 3600.0
    return {
        "warcs": n_warcs,
        "pages_per_warc": pages_per_warc,
        "pages": pages,
        "pages_per_core_s": pages_per_core_s,
        "core_hours": core_hours,
        "core_hours_per_warc": core_hours / n_warcs if n_warcs else 0.0,
        "input_tb": n_warcs * CC_WARC_GB / 1000.0,
        "wall_hours": {int(c): core_hours / c for c in cores if c > 0},
    }


def run(args: argparse.Namespace) -> int:
    from ..sources.commoncrawl import normalize_dump

    try:
        dump = normalize_dump(args.dump)
    except ValueError as exc:
        print(f"estimate: {exc}", file=sys.stderr)
        return 2
    if args.warcs is not None:
        if args.warcs < 0:
            print("estimate: --warcs must be >= 0", file=sys.stderr)
            return 2
        n_warcs, warc_source = args.warcs, "--warcs"
    else:
        try:
            n_warcs = count_warcs(dump, args.mirror)
        except (OSError, EOFError, ValueError) as exc:
            print(f"estimate: cannot read the WARC listing of {dump} ({type(exc).__name__}: {exc}); give --warcs N "
                  f"(2022-2024 dumps list about {CC_TYPICAL_WARCS:,})", file=sys.stderr)
            return 1
        warc_source = f"crawl-data/{dump}/warc.paths.gz under {args.mirror or 'the default mirror'}"

    measured = None
    if args.throughput_from:
        try:
            measured = throughput_from_file(args.throughput_from)
        except (OSError, ValueError) as exc:
            print(f"estimate: {exc}", file=sys.stderr)
            return 2
        ppc, ppc_source = measured["pages_per_core_s"], measured["source"]
    else:
        ppc, ppc_source = args.pages_per_core_s, "--pages-per-core-s"
    if not ppc or ppc <= 0:
        print("estimate: throughput must be > 0 pages/s per core", file=sys.stderr)
        return 2

    if args.pages_per_warc is None:
        ppw, ppw_source = float(CC_PAGES_PER_WARC), "Common Crawl average (CC-MAIN-2023-06: 3.15e9 pages / 90,000 WARCs)"
    elif str(args.pages_per_warc).lower() == "measured":
        if not measured or not measured.get("pages_per_warc"):
            print("estimate: --pages-per-warc measured needs --throughput-from with a WARC count", file=sys.stderr)
            return 2
        ppw, ppw_source = float(measured["pages_per_warc"]), f"measured in {args.throughput_from}"
    else:
        try:
            ppw = float(args.pages_per_warc)
        except ValueError:
            ppw = -1.0
        if ppw <= 0:
            print(f"estimate: --pages-per-warc must be a positive number or 'measured', got {args.pages_per_warc!r}",
                  file=sys.stderr)
            return 2
        ppw_source = "--pages-per-warc"

    est = estimate(n_warcs, ppw, ppc, args.cores)
    est.update({"dump": dump, "warcs_source": warc_source, "pages_per_warc_source": ppw_source,
                "throughput_source": ppc_source})
    if args.json:
        print(json.dumps(est, sort_keys=True))
        return 0
    print(f"{dump}: CPU stages (read + extract + text scores)")
    print(f"  WARCs            {n_warcs:>16,}   ({warc_source})")
    print(f"  pages per WARC   {ppw:>16,.0f}   ({ppw_source})")
    print(f"  pages            {est['pages']:>16,.0f}")
    print(f"  pages/s per core {ppc:>16,.2f}   ({ppc_source})")
    print(f"  core-hours       {est['core_hours']:>16,.0f}   ({est['core_hours_per_warc']:.2f} per WARC)")
    for c, h in est["wall_hours"].items():
        print(f"  on {c:>5} cores    {h:>16,.1f} h   ({h / 24:,.1f} days)")
    print(f"  input            ~{est['input_tb']:,.0f} TB of WARCs to stream (~{CC_WARC_GB:g} GB each); images not "
          f"included")
    return 0
