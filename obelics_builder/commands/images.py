"""``obelics-build images OUT``: (re)run the image step of a crawl output, optionally retrying only failures."""
from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Run the image step of a crawl output (OUT/run.json, the image-URL plan under OUT/images/plan) and rebuild the
final documents. The image table OUT/images/table/part-*.parquet is the per-URL ledger (status, error class,
bytes, seconds, attempts, source, reason, sha256, pHash, NSFW score).

--retry-failed refetches only URLs whose error is retryable (timeouts, connection/DNS errors, HTTP 429 and 5xx;
never 404s, consent refusals, unsafe addresses or filtered images), merges the results into the table parts
atomically, then reruns the final step: every other finished unit is skipped (completion markers).

Without --retry-failed, changed fetch settings (--no-network, --allow-private-addresses, --image-size ...) apply
to the whole image step: parts fetched with other settings are fetched again.

Examples:
  obelics-build images ./out --retry-failed
  obelics-build images ./out --image-size 512 --resize-mode center_crop
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="a crawl output folder (holds run.json)")
    p.add_argument("--retry-failed", action="store_true", help="refetch only retryable failures, then refinalize")
    p.add_argument("--allow-private-addresses", action="store_true",
                   help="allow fetches to loopback/private addresses (tests and local mirrors only)")
    p.add_argument("--no-network", action="store_true", help="images only from the archives, never the web")
    p.add_argument("--respect-robots", dest="respect_robots", action="store_true", default=None,
                   help="honour robots.txt of image hosts (default)")
    p.add_argument("--no-respect-robots", dest="respect_robots", action="store_false",
                   help="do not fetch or honour robots.txt (X-Robots-Tag/tdm-reservation headers still apply)")
    p.add_argument("--image-size", type=int, default=None, metavar="N", help="resize stored images to N px")
    p.add_argument("--resize-mode", choices=["no", "keep_ratio", "center_crop", "border"], default=None,
                   help="how --image-size applies (default keep_ratio when --image-size is given)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, 'sync', or default LocalCluster")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")


def _overrides(args: argparse.Namespace) -> dict:
    o: dict = {}
    if args.no_network:
        o["network"] = False
    if args.allow_private_addresses:
        o["allow_private_addresses"] = True
    if args.respect_robots is not None:
        o["respect_robots"] = bool(args.respect_robots)
    if args.image_size is not None:
        o["image_size"] = int(args.image_size)
        o["resize_mode"] = args.resize_mode or "keep_ratio"
    elif args.resize_mode is not None:
        o["resize_mode"] = args.resize_mode
    return o


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..images.ledger import retry_failed
    from ..errors import UsageError
    from ..pipeline import run_pipeline
    from ..recipe import recipe_for_run
    from ..tasks import _archive
    from . import checks
    from .crawl import print_summary

    out = Path(args.out)
    info = checks.read_crawl_output(out, "images")
    if not (out / "images" / "plan").exists():
        raise UsageError("images: no image plan in OUT/images/plan (run crawl first)")
    checks.check_positive(args.workers, "--workers")
    recipe = recipe_for_run(info)
    checks.check_recorded_optout_list(recipe)
    checks.check_scheduler(args.scheduler)
    refs, archive = info["warcs"], info["image_archive"]
    stored = dict(info.get("fetch_overrides") or {})
    new = _overrides(args)
    if args.retry_failed:
        fetch_cfg = {**(recipe.get("images") or {}), **stored, **new}
        summary = retry_failed(out, recipe, _archive(tuple(archive)), fetch_cfg)
        print(f"retry-failed: {summary['retried']} URLs retried in {summary['parts']} parts, "
              f"{summary['recovered']} recovered, {summary['still_failing']} still failing "
              f"{summary['errors_after'] or ''}")
        overrides = stored  # the parts keep their fetch fingerprint: the pipeline does not refetch them
    else:
        overrides = {**stored, **new}
    with Engine(scheduler=args.scheduler, workers=args.workers, quiet=args.quiet) as engine:
        result = run_pipeline(refs, recipe, out, engine, dump=info.get("dump"), archive_refs=archive,
                              fetch_overrides=overrides, run_info=info.get("run_info"))
    print_summary(result, str(out), quiet=args.quiet)
    return 0 if result["summary"]["accounted"] else 1
