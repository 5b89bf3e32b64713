"""``obelics-build filter OUT --config FILE``: reapply filter thresholds from stored scores, without recomputation."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Reapply thresholds to a finished (or interrupted) crawl output. WARCs are not read again and text metrics are not
recomputed: the per-WARC scored parts (OUT/parts/scored) are reused, the text decisions and every later stage are
redone with the new config, and OUT/documents and OUT/stats.json are rewritten.

Example:
  obelics-build filter ./out --config filters/my-thresholds.yaml
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="a crawl output folder (holds run.json)")
    p.add_argument("--config", required=True, help="filter config: a YAML path or a packaged name (e.g. obelics)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, 'sync', or default LocalCluster")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..pipeline import read_run, run_pipeline
    from ..recipe import recipe_for_run
    from .crawl import print_summary

    out = Path(args.out)
    info = read_run(out)
    if info is None:
        print(f"filter: {out} has no run.json: not a crawl output folder", file=sys.stderr)
        return 2
    recipe = recipe_for_run(info, filters=args.config)
    refs = info["warcs"]
    if not any((out / "parts" / "scored" / "_done").glob("*.json")):
        print("filter: no scored parts in OUT (run crawl first)", file=sys.stderr)
        return 2
    archive = info["image_archive"]
    with Engine(scheduler=args.scheduler, workers=args.workers, quiet=args.quiet) as engine:
        result = run_pipeline(refs, recipe, out, engine, dump=info.get("dump"), archive_refs=archive,
                              fetch_overrides=info.get("fetch_overrides"), run_info=info.get("run_info"))
    print_summary(result, str(out), quiet=args.quiet)
    return 0 if result["summary"]["accounted"] else 1
