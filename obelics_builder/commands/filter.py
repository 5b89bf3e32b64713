"""``obelics-build filter OUT --config FILE``: reapply filter thresholds from stored scores, without recomputation."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Reapply thresholds to a finished (or interrupted) crawl output. WARCs are not read again and text metrics are not
recomputed: the per-WARC scored parts (OUT/parts/scored) are reused, the text decisions and every later stage are
redone with the new config, and OUT/documents and OUT/stats.json are rewritten. OUT/dataset, when the crawl wrote
one, is rebuilt from the new documents with the options it was built with (shard size, embedded images, WebDataset
tars); with --no-dataset, or when the rebuild cannot happen, it is marked STALE (OUT/dataset/STALE): `publish`
refuses it and `status` reports it until `obelics-build shards OUT` rebuilds it.

The filter config is checked before any work (unknown keys or check names, wrong types, values out of range:
every problem at once); `filter --check FILE` only checks it, without an output folder.

Examples:
  obelics-build filter ./out --config filters/my-thresholds.yaml
  obelics-build filter --check filters/my-thresholds.yaml
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", nargs="?", help="a crawl output folder (holds run.json)")
    p.add_argument("--config", help="filter config: a YAML path or a packaged name (e.g. obelics); required with OUT")
    p.add_argument("--check", metavar="FILE", default=None,
                   help="only check the filter config FILE (prints OK or every problem; exit 1 on problems) and exit")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, 'sync', or default LocalCluster")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes")
    p.add_argument("--no-dataset", action="store_true",
                   help="do not rebuild OUT/dataset (it is marked STALE until `obelics-build shards OUT`)")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")


def _scored_fingerprint(name: str, recipe: dict, dump: str | None) -> str:
    """The fingerprint the plan gives the scored part of WARC ``name`` under ``recipe`` (its rule over the
    per-WARC step: the WARC's name and dump, and what changes the stored scores, never the thresholds)."""
    from ..plan.model import unit_fingerprint
    from ..tasks import warc_config

    return unit_fingerprint([name, dump], [], warc_config(recipe))


def _differences(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [prefix or "(all)"]


def validate(args: argparse.Namespace) -> tuple[Path, dict, dict]:
    """Everything checked before any work: the output folder and its run.json, the filter config (merged over the
    one the run used: keys it leaves out keep the run's values), that it changes no stored score (``filter`` never
    rereads or rescores a WARC), the opt-out list the run named, the scheduler.  Returns (out, run info, recipe)."""
    from ..errors import UsageError
    from ..io.markers import read_marker
    from ..quality.score import scoring_inputs
    from ..recipe import load_filters, recipe_for_run
    from ..tasks import warc_key
    from . import checks

    if not args.out or not args.config:
        raise UsageError("filter: give OUT --config FILE (reapply thresholds to a crawl output) or --check FILE "
                         "(check a filter config)")
    load_filters(args.config)  # the file alone first: its problems, before anything is read from OUT
    out = Path(args.out)
    info = checks.read_crawl_output(out, "filter")
    checks.check_positive(args.workers, "--workers")
    recipe = recipe_for_run(info)
    ran_with = recipe["filters_config"]
    recipe["filters_config"] = load_filters(args.config, over=ran_with)
    scored = out / "parts" / "scored"
    if not any((scored / "_done").glob("*.json")):
        raise UsageError(f"filter: no scored parts in {scored} (run crawl first; filter reuses its scores)")
    dump = info.get("dump")
    stale = []
    for ref in info["warcs"]:
        marker = read_marker(scored, warc_key(ref.name))
        if marker is not None and marker.get("fingerprint") != _scored_fingerprint(ref.name, recipe, dump):
            stale.append(ref.name)
    if stale:
        changed = _differences(scoring_inputs(ran_with), scoring_inputs(recipe["filters_config"]))
        if changed:
            raise UsageError(f"filter: {args.config} changes what the stored scores were computed from "
                             f"({', '.join(changed[:4])}): filter only reapplies thresholds; to rescore, run crawl "
                             f"--filters {args.config} into a new --out")
        raise UsageError(f"filter: the stored scores of {len(stale)} WARC(s) no longer match the filter config this "
                         f"output ran with (a word list or model changed since the crawl?): rerun the crawl")
    checks.check_recorded_optout_list(recipe)
    checks.check_stages(recipe)
    checks.check_scheduler(args.scheduler)
    return out, info, recipe


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..pipeline import run_pipeline
    from .crawl import print_summary

    from ..dataset.stale import mark_stale, recorded_options

    if args.check:
        from .config import check_files

        if args.out or args.config:
            from ..errors import UsageError

            raise UsageError("filter --check FILE checks a filter config and runs nothing: give it without OUT "
                             "and --config")
        return check_files([args.check], "filters")
    out, info, recipe = validate(args)
    refs = info["warcs"]
    archive = info["image_archive"]
    # before OUT/documents change: a run that stops half-way leaves the dataset marked, never silently old
    options = recorded_options(out)
    marked = mark_stale(out, f"OUT/documents were rewritten by `filter --config {args.config}` after this "
                             "dataset was built")
    with Engine(scheduler=args.scheduler, workers=args.workers, quiet=args.quiet) as engine:
        result = run_pipeline(refs, recipe, out, engine, dump=info.get("dump"), archive_refs=archive,
                              fetch_overrides=info.get("fetch_overrides"), run_info=info.get("run_info"))
        stale_note = None
        if marked is not None:
            if args.no_dataset:
                stale_note = "not rebuilt (--no-dataset)"
            elif options is None:
                stale_note = "not rebuilt: its shards.json is missing or unreadable, so its options are unknown"
            else:
                from ..dataset import write_dataset

                result["dataset"] = write_dataset(out, **options, engine=engine)
    print_summary(result, str(out), quiet=args.quiet)
    if stale_note:
        print(f"filter: {out / 'dataset'} is STALE, {stale_note}: `publish` refuses it; rebuild it with "
              f"`obelics-build shards {out}`", file=sys.stderr)
    return 0 if result["summary"]["accounted"] else 1
