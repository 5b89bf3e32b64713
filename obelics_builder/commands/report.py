"""``obelics-build report OUT``: a static HTML report of a crawl output (funnel, sample, removals, distributions)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Write OUT/report/index.html: a self-contained static report of a crawl output folder (no server, no CDN, open it
from disk or any static web server). Pages: the funnel (documents, paragraphs and images through each stage, with
removals per reason), a browsable sample of kept documents rendered interleaved with thumbnails made from the
fetched bytes, removed examples per reason next to the threshold that removed them, and score distributions with
their cutoffs. Images flagged NSFW are never shown, only counted.

Examples:
  obelics-build report ./out
  obelics-build report ./out --sample 100 --per-page 20 --dest /tmp/out-report
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="a crawl output folder (holds stats.json)")
    p.add_argument("--dest", default=None, help="report folder (default: OUT/report)")
    p.add_argument("--sample", type=int, default=30, metavar="N", help="kept documents to render (default 30)")
    p.add_argument("--per-page", type=int, default=10, metavar="N", help="documents per page (default 10)")
    p.add_argument("--examples", type=int, default=5, metavar="N", help="removed examples per reason (default 5)")
    p.add_argument("--max-scan-docs", type=int, default=20000, metavar="N",
                   help="scored documents read for examples and distributions (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the document sample (default 0)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from ..report import build_report

    out = Path(args.out)
    if not (out / "stats.json").is_file():
        print(f"report: {out}/stats.json not found: run `obelics-build crawl --out {out}` first", file=sys.stderr)
        return 2
    for name in ("sample", "per_page", "examples", "max_scan_docs"):
        if getattr(args, name) < (0 if name in ("sample", "examples") else 1):
            print(f"report: --{name.replace('_', '-')} must be positive", file=sys.stderr)
            return 2
    try:
        index = build_report(out, args.dest, sample=args.sample, per_page=args.per_page, examples=args.examples,
                             max_scan_docs=args.max_scan_docs, seed=args.seed)
    except (OSError, ValueError) as e:
        print(f"report: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"report: {index}")
    return 0
