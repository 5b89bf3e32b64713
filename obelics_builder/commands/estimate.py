"""``obelics-build estimate``: core-hours of a whole dump, by stage, images included."""
from __future__ import annotations

import argparse
import json
import sys

from .. import costs

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
Project the CPU cost of a whole Common Crawl dump: core-hours per stage (read, extract, text scores, decisions, dedup,
images, final passes, writing, engine overhead) and wall-clock time on a given number of cores.

  WARCs          counted from the dump's warc.paths.gz (the default mirror needs network; --mirror sample works
                 offline), or --warcs N; when the default listing cannot be read, the typical count of a 2022-2024
                 dump (90,000) is used and said so
  pages per WARC --pages-per-warc N, or "measured" (from --throughput-from), else the Common Crawl average
                 (~35,000 HTML pages per WARC: CC-MAIN-2023-06 has 3.15 billion pages in 90,000 WARCs)
  CPU per stage  the figures measured by bench/pipeline and shipped with the package, unless --throughput-from FILE
                 (your own bench/pipeline output, per stage and images; bench/scale output, the CPU stages as one
                 figure; bench/dump output, every process's CPU of a whole crawl per page and per image URL; or an
                 OUT/stats.json, its stages' cpu_seconds) or --pages-per-core-s X (the CPU stages as one
                 figure); what a source does not measure (images) comes from the shipped figures, and says so
  image URLs     unique image URLs fetched per page read: --image-urls-per-page X, else as a crawl's stats.json
                 (--throughput-from) measured it, else OBELICS's figure (3.6 billion image links from 41.2 billion
                 Common Crawl documents: 0.087); it depends on the dump's languages and the filters

Examples:
  obelics-build estimate --dump 2023-06
  obelics-build estimate --dump 2023-06 --mirror sample --throughput-from out/stats.json
  obelics-build estimate --dump 2023-06 --warcs 90000 --pages-per-core-s 25 --cores 512
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dump", required=True, help="Common Crawl dump id: 2023-06 or CC-MAIN-2023-06")
    p.add_argument("--mirror", default=None,
                   help="mirror root (default https://data.commoncrawl.org; 'sample' for the bundled sample)")
    p.add_argument("--warcs", type=int, default=None, metavar="N",
                   help="number of WARCs in the dump (skips reading the listing)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--throughput-from", metavar="FILE",
                     help="OUT/stats.json of a crawl, or the output of bench/pipeline, bench/scale or bench/dump")
    src.add_argument("--pages-per-core-s", type=float, metavar="X",
                     help="measured HTML pages per CPU-second of the CPU stages (images from the shipped figures)")
    p.add_argument("--pages-per-warc", default=None, metavar="N|measured",
                   help=f"HTML pages per WARC (default {CC_PAGES_PER_WARC:,}, the Common Crawl average); "
                        "'measured' takes it from --throughput-from (only meaningful for full-size WARCs)")
    p.add_argument("--image-urls-per-page", type=float, default=None, metavar="X",
                   help="unique image URLs fetched per page read (default: a crawl's stats.json given with "
                        "--throughput-from, else OBELICS's 3.6e9 links / 41.2e9 documents)")
    p.add_argument("--cores", type=int, nargs="*", default=[64, 512, 4096],
                   help="print wall-clock time on these core counts (default 64 512 4096)")
    p.add_argument("--json", action="store_true", help="print the estimate as one JSON object")


# ---------------------------------------------------------------------------------------------------------------

def count_warcs(dump: str, mirror: str | None) -> int:
    """The number of WARC files listed in the dump's ``warc.paths.gz`` (raises OSError when unreachable)."""
    from ..sources.commoncrawl import _join, _read_paths, normalize_dump, resolve_mirror

    root = resolve_mirror(mirror)
    return sum(1 for _ in _read_paths(_join(root, f"crawl-data/{normalize_dump(dump)}/warc.paths.gz")))


def throughput_from_file(path) -> dict:
    """``{"pages_per_core_s", "pages_per_warc", "source"}`` of a stats.json or a bench output (the CPU stages)."""
    prof = costs.profile_from_file(path)
    return {"pages_per_core_s": prof.pages_per_cpu_s, "pages_per_warc": prof.pages_per_warc, "source": prof.source}


def estimate(n_warcs: int, pages_per_warc: float, profile: costs.CostProfile, cores=(64, 512, 4096),
             images: costs.CostProfile | None = None, image_urls_per_page: float | None = None) -> dict:
    if n_warcs < 0 or pages_per_warc <= 0 or profile.pages_per_cpu_s <= 0:
        raise ValueError("need n_warcs >= 0, pages_per_warc > 0 and a throughput > 0")
    pages = n_warcs * pages_per_warc
    proj = costs.project(pages, profile, images, image_urls_per_page)
    core_hours = proj["core_hours"]
    return {
        "warcs": n_warcs,
        "pages_per_warc": pages_per_warc,
        "pages": pages,
        "pages_per_core_s": profile.pages_per_cpu_s,
        **proj,
        "core_hours_per_warc": core_hours / n_warcs if n_warcs else 0.0,
        "input_tb": n_warcs * CC_WARC_GB / 1000.0,
        "wall_hours": {int(c): core_hours / c for c in cores if c > 0},
    }


def _fail(message: str, code: int = 2) -> int:
    print(f"estimate: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from ..sources.commoncrawl import normalize_dump

    try:
        dump = normalize_dump(args.dump)
    except ValueError as exc:
        return _fail(str(exc))
    if args.image_urls_per_page is not None and args.image_urls_per_page < 0:
        return _fail("--image-urls-per-page must be >= 0")
    if args.warcs is not None:
        if args.warcs < 0:
            return _fail("--warcs must be >= 0")
        n_warcs, warc_source = args.warcs, "--warcs"
    else:
        try:
            n_warcs = count_warcs(dump, args.mirror)
            warc_source = f"crawl-data/{dump}/warc.paths.gz under {args.mirror or 'the default mirror'}"
        except (OSError, EOFError, ValueError) as exc:
            if args.mirror is not None:  # the user named a listing: reading it is what they asked for
                return _fail(f"cannot read the WARC listing of {dump} under {args.mirror} ({type(exc).__name__}: "
                             f"{exc}); give --warcs N (2022-2024 dumps list about {CC_TYPICAL_WARCS:,})", 1)
            n_warcs = CC_TYPICAL_WARCS
            warc_source = (f"typical 2022-2024 dump: the listing could not be read ({type(exc).__name__}); "
                           f"--warcs N to set it")

    try:
        shipped = costs.shipped_profile()
    except (OSError, ValueError) as exc:  # a broken installation: say so, the user's own figures still work
        shipped = None
        shipped_problem = f"{type(exc).__name__}: {exc}"
    try:
        if args.throughput_from:
            profile = costs.profile_from_file(args.throughput_from)
        elif args.pages_per_core_s is not None:
            profile = costs.from_rate(args.pages_per_core_s, "--pages-per-core-s")
        elif shipped is not None:
            profile = shipped
        else:
            return _fail(f"the shipped figures cannot be read ({shipped_problem}); give --throughput-from or "
                         f"--pages-per-core-s", 1)
    except OSError as exc:
        return _fail(f"{args.throughput_from}: {exc.strerror or exc}")
    except costs.ProfileError as exc:
        return _fail(str(exc))

    if args.pages_per_warc is None:
        ppw, ppw_source = float(CC_PAGES_PER_WARC), "Common Crawl average (CC-MAIN-2023-06: 3.15e9 pages / 90,000 WARCs)"
    elif str(args.pages_per_warc).lower() == "measured":
        if not args.throughput_from or not profile.pages_per_warc:
            return _fail("--pages-per-warc measured needs --throughput-from with a WARC count")
        ppw, ppw_source = float(profile.pages_per_warc), f"measured in {args.throughput_from}"
    else:
        try:
            ppw = float(args.pages_per_warc)
        except ValueError:
            ppw = -1.0
        if ppw <= 0:
            return _fail(f"--pages-per-warc must be a positive number or 'measured', got {args.pages_per_warc!r}")
        ppw_source = "--pages-per-warc"

    est = estimate(n_warcs, ppw, profile, args.cores, shipped, args.image_urls_per_page)
    est.update({"dump": dump, "warcs_source": warc_source, "pages_per_warc_source": ppw_source,
                "throughput_source": profile.source})
    if args.json:
        print(json.dumps(est, sort_keys=True))
        return 0
    _print(est, profile)
    return 0


def _print(est: dict, profile: costs.CostProfile) -> None:
    print(f"{est['dump']}: CPU cost of the whole pipeline, by stage")
    print(f"  WARCs            {est['warcs']:>16,}   ({est['warcs_source']})")
    print(f"  pages per WARC   {est['pages_per_warc']:>16,.0f}   ({est['pages_per_warc_source']})")
    print(f"  pages            {est['pages']:>16,.0f}")
    print(f"  CPU figures      {profile.source}")
    img = est["images"]
    if img:
        print(f"  image URLs       {img['image_urls']:>16,.0f}   ({img['image_urls_per_page']:.3f} unique per page read: "
              f"{img['image_urls_per_page_source']})")
        print(f"  image stage      {img['image_urls_per_cpu_s']:>16,.1f}   image URLs per CPU-second ({img['source']})")
    else:
        print("  image URLs       not estimated (no measured image figures)")
    total = est["core_hours"] or 1.0
    print(f"\n  {'stage':<18} {'core-hours':>14} {'share':>7} {'CPU-s per 1k pages':>19}")
    for g, h in est["core_hours_by_stage"].items():
        per_k = h * 3600.0 / est["pages"] * 1000 if est["pages"] else 0.0
        print(f"  {g:<18} {h:>14,.0f} {h / total * 100:>6.1f}% {per_k:>19.2f}")
    print(f"  {'total':<18} {est['core_hours']:>14,.0f}          ({est['core_hours_per_warc']:.2f} per WARC; CPU "
          f"stages {est['pages_per_core_s']:.1f} pages per CPU-second)")
    for c, h in est["wall_hours"].items():
        print(f"  on {c:>5} cores    {h:>16,.1f} h   ({h / 24:,.1f} days)")
    print(f"  input            ~{est['input_tb']:,.0f} TB of WARCs to stream (~{CC_WARC_GB:g} GB each); image "
          f"downloads are network-bound: their wall time is not CPU time")
