"""``obelics-build crawl``: Common Crawl dump (or local WARCs) -> OUT/documents/*.parquet and OUT/stats.json."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..recipe import DEFAULT_RECIPE

DESCRIPTION = """\
Build a dataset: read WARCs, extract interleaved documents, score and filter text, deduplicate URLs, fetch and
filter images (archive first, then the web), clean, and write OUT/documents/part-NNNNN.parquet and OUT/stats.json.

Examples:
  obelics-build crawl --dump 2023-06 --mirror sample --out ./out          # the bundled offline sample
  obelics-build crawl --dump CC-MAIN-2023-06 --warcs 10 --out ./out        # 10 WARCs from data.commoncrawl.org
  obelics-build crawl --dump 2023-06 --shard 3/100 --mirror s3://commoncrawl --out ./out
  obelics-build crawl --warc a.warc.gz b.warc.gz --out ./out               # local WARC files
  obelics-build crawl --dump 2023-06 --mirror sample --recipe obelics-2023 --out ./ref   # the 2023 reference build
  obelics-build crawl --dump 2023-06 --scheduler tcp://10.0.0.5:8786 --out s3-mounted/out

Rerunning the same command resumes: finished WARCs and stages are skipped (completion markers in OUT).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("input")
    src.add_argument("--dump", help="Common Crawl dump id: 2023-06 or CC-MAIN-2023-06")
    src.add_argument("--mirror", default=None,
                     help="mirror root: https://data.commoncrawl.org (default), s3://commoncrawl, a local folder laid "
                          "out like Common Crawl, or 'sample' (the bundled offline sample)")
    src.add_argument("--warcs", type=int, default=None, metavar="N", help="take the first N WARCs of the dump")
    src.add_argument("--shard", default=None, metavar="I/N", help="take every N-th WARC starting at I (0-based)")
    src.add_argument("--warc", nargs="+", default=None, metavar="PATH",
                     help="explicit WARC files or paths relative to the mirror root, instead of the dump's listing")
    src.add_argument("--image-archive", nargs="*", default=None, metavar="WARC",
                     help="WARC files holding image captures, served before the network (the sample has its own)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--recipe", default=DEFAULT_RECIPE,
                   help="recipe name or YAML path (default: %(default)s = pipelines/obelics.yaml, our extractor; "
                        "obelics-2023 = the 2023 OBELICS reference build: reference extraction rules and thresholds)")
    p.add_argument("--filters", default=None, help="filter config name or YAML path (default: the recipe's)")
    p.add_argument("--mode", choices=["obelics", "default", "trafilatura"], default=None,
                   help="extractor, overriding the recipe's extract.mode: default (ours: lists, tables, figures, "
                        "srcset, lazy images, boilerplate removal; the obelics recipe's), obelics (the OBELICS "
                        "reference rules; the obelics-2023 recipe's) or trafilatura (trafilatura 2.3 with images; "
                        "needs pip install 'obelics-builder[trafilatura]')")
    p.add_argument("--no-network", action="store_true", help="fetch images only from archives, never from the web")
    p.add_argument("--image-text-model", default=None, metavar="HUB_ID_OR_DIR",
                   help="score every kept image against its alt text, caption and neighbouring text with this CLIP "
                        "or SigLIP model (a folder or a Hub id; the recipe's image_text stage; GPU when present). "
                        "Same as --set image_text.model=HUB_ID_OR_DIR")
    p.add_argument("--set", dest="stage_settings", action="append", default=[], metavar="STAGE.KEY=VALUE",
                   help="set KEY in the recipe section of a stage of your own (VALUE read as YAML: 3, true, null, "
                        "text); repeatable")
    p.add_argument("--spawning-url", default=None,
                   help="Spawning opt-out API endpoint (default: the public API, or SPAWNING_API_URL); key from "
                        "SPAWNING_OPTS_KEY")
    p.add_argument("--optout-list", default=None, metavar="FILE",
                   help="a local opt-out list: one URL or domain per line; matching documents and images are removed")
    p.add_argument("--respect-robots", dest="respect_robots", action=argparse.BooleanOptionalAction, default=True,
                   help="honour robots.txt of image hosts for our user agent (default: on)")
    p.add_argument("--allow-private-addresses", action="store_true",
                   help="allow image fetches to loopback/private addresses (tests and local mirrors only)")
    eng = p.add_argument_group("execution")
    eng.add_argument("--scheduler", default=None,
                     help="Dask scheduler address (tcp://HOST:PORT) of an existing cluster; 'sync' runs in-process; "
                          "default: a LocalCluster on this machine")
    eng.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: CPU count)")
    eng.add_argument("--threads-per-worker", type=int, default=1, help="threads per LocalCluster worker (default 1)")
    out = p.add_argument_group("dataset shards (OUT/dataset)")
    out.add_argument("--shard-size", default="500MB", help="target size of each shard (default 500MB)")
    out.add_argument("--embed-images", action="store_true",
                     help="add the image bytes to the Parquet shards (a parallel image_bytes column)")
    out.add_argument("--no-webdataset", action="store_true", help="do not write WebDataset tar shards")
    out.add_argument("--no-dataset", action="store_true", help="stop after OUT/documents (no OUT/dataset)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary line")


def _parse_shard(text: str | None):
    from ..errors import UsageError

    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like I/N (e.g. 3/100), got {text!r}") from None
    if not (n > 0 and 0 <= i < n):
        raise UsageError(f"--shard {text}: need 0 <= I < N (I counts from 0)")
    return i, n


def _check_remote(paths: list[str], mirror: str | None) -> None:
    """Remote WARCs (URLs) outside the checked mirror: their driver is installed and their host answers."""
    from urllib.parse import urlsplit

    from ..sources.mirrorcheck import check_mirror

    roots = {f"{u.scheme}://{u.netloc}" for u in (urlsplit(p) for p in paths if "://" in p)}
    for root in sorted(roots):
        if not (mirror and mirror.startswith(root)):
            check_mirror(root)


def validate(args: argparse.Namespace) -> dict:
    """Every option checked before any work starts (a :class:`UsageError` or ``ConfigError`` otherwise): the
    recipe, filter config and opt-out list, the dump id, the mirror (folder, network, the dump's listing), the WARC
    paths, the output folder, the scheduler, the numbers.  Returns what :func:`run` needs."""
    from ..errors import UsageError
    from ..sources import commoncrawl as cc
    from ..sources.mirrorcheck import check_mirror
    from . import checks

    if not args.dump and not args.warc:
        raise UsageError("crawl: give --dump (a Common Crawl dump, e.g. 2023-06) or --warc FILE...")
    checks.check_positive(args.workers, "--workers")
    checks.check_positive(args.threads_per_worker, "--threads-per-worker")
    if args.warcs is not None and args.warcs < 0:
        raise UsageError(f"--warcs must be 0 or more, got {args.warcs}")
    shard = _parse_shard(args.shard)
    shard_size = checks.check_shard_size(args.shard_size)
    recipe = recipe_from_args(args)
    checks.check_stages(recipe)
    dump = None
    if args.dump:
        try:
            dump = cc.normalize_dump(args.dump)
        except ValueError as e:
            raise UsageError(f"--dump: {e}") from None
    mirror = cc.resolve_mirror(args.mirror) if (args.dump or args.mirror) else None
    if mirror:
        check_mirror(mirror, dump if not args.warc else None)
    if args.warc:
        paths = []
        for p in args.warc:
            if not (Path(p).exists() or "://" in p) and mirror:
                p = f"{mirror.rstrip('/')}/{p}"
            if "://" not in p and not Path(p).is_file():
                what = "is a folder, not a WARC file" if Path(p).is_dir() else "no such file"
                raise UsageError(f"--warc {p}: {what}")
            paths.append(p)
        _check_remote(paths, mirror)
        refs = cc.warc_refs_from_paths(paths)
    else:
        refs = cc.list_warcs(dump, mirror, limit=args.warcs, shard=shard)
    if not refs:
        raise UsageError("crawl: no WARC selected (the dump's listing is empty, or --warcs 0, or the --shard is "
                         "past the end)")
    if len({r.name for r in refs}) != len(refs):
        raise UsageError("crawl: the same WARC is given twice")
    archive_refs = list(cc.image_archive_refs(dump, mirror)) if (dump and mirror) else []
    if args.image_archive:
        for p in args.image_archive:
            if "://" not in p and not Path(p).is_file():
                raise UsageError(f"--image-archive {p}: no such file")
        archive_refs += cc.warc_refs_from_paths(args.image_archive)
    checks.check_scheduler(args.scheduler)
    checks.check_out_folder(args.out)
    return {"recipe": recipe, "dump": dump, "mirror": mirror, "refs": refs, "archive_refs": archive_refs,
            "shard_size": shard_size}


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..pipeline import run_pipeline

    plan = validate(args)
    recipe, dump, mirror = plan["recipe"], plan["dump"], plan["mirror"]
    refs, archive_refs = plan["refs"], plan["archive_refs"]

    overrides = {}
    if args.no_network:
        overrides["network"] = False
    if args.allow_private_addresses:
        overrides["allow_private_addresses"] = True
    if not args.respect_robots:
        overrides["respect_robots"] = False

    with Engine(scheduler=args.scheduler, workers=args.workers, threads_per_worker=args.threads_per_worker,
                quiet=args.quiet) as engine:
        result = run_pipeline(refs, recipe, args.out, engine, dump=dump, archive_refs=archive_refs,
                              fetch_overrides=overrides,
                              run_info={"mirror": mirror, "scheduler": args.scheduler or "LocalCluster"})
        # inputs of which no record could be read are named; a run that could read none of them fails
        from ..sources.warc import unreadable_report

        unreadable, none_read = unreadable_report(result["stages"].get("read", {}))
        if not none_read and not args.no_dataset:  # on the cluster: its image-bytes buckets are tasks
            from ..dataset import write_dataset

            result["dataset"] = write_dataset(args.out, shard_size_bytes=plan["shard_size"],
                                              embed_images=args.embed_images, webdataset=not args.no_webdataset,
                                              engine=engine)
    for line in unreadable:
        print(f"crawl: {line}", file=sys.stderr)
    if none_read:
        print_summary(result, args.out, quiet=args.quiet)
        print(f"crawl: no input could be read ({len(refs)} WARC(s) given)", file=sys.stderr)
        return 1
    print_summary(result, args.out, quiet=args.quiet)
    return 0 if result["summary"]["accounted"] else 1


def recipe_from_args(args: argparse.Namespace) -> dict:
    """The effective recipe: ``--recipe`` with ``--mode``, the opt-out options and ``--filters`` applied."""
    from ..recipe import load_filters, load_recipe

    recipe = load_recipe(args.recipe, overrides={"extract": {"mode": args.mode}} if args.mode else None)
    optout = recipe.setdefault("optout", {})
    if args.spawning_url or os.environ.get("SPAWNING_API_URL"):
        optout.setdefault("spawning", {})["url"] = args.spawning_url or os.environ["SPAWNING_API_URL"]
    if args.optout_list:
        from ..optout.local import check_list_file

        optout["local_list"] = str(check_list_file(args.optout_list))
    if args.filters:
        # merged over the recipe's: a config with a few thresholds keeps the recipe's other values
        recipe["filters_config"] = load_filters(args.filters, over=recipe["filters_config"])
    settings = list(getattr(args, "stage_settings", None) or [])
    if getattr(args, "image_text_model", None):
        settings.append(("--image-text-model", "image_text", "model", args.image_text_model,
                         '{use: "obelics_builder.align:image_text", after: final}, as pipelines/obelics.yaml does'))
    apply_stage_settings(recipe, settings)
    return recipe


def apply_stage_settings(recipe: dict, settings: list) -> None:
    """``--set STAGE.KEY=VALUE`` (or an option's ``(flag, stage, key, value, hint)``) into the recipe's section of that
    stage of one's own; a stage the recipe does not run is a :class:`UsageError`."""
    import yaml

    from ..errors import UsageError, did_you_mean
    from ..plan.stages import parse_stages

    names = [c.name for c in parse_stages(recipe.get("stages"))[0]]
    for item in settings:
        hint = None
        if isinstance(item, tuple):
            flag, stage, key, value, hint = item
        else:
            flag = f"--set {item}"
            target, eq, text = item.partition("=")
            stage, dot, key = target.partition(".")
            if not eq or not dot or not stage or not key:
                raise UsageError(f"{flag}: expected STAGE.KEY=VALUE (e.g. --set image_text.batch_size=64)")
            try:
                value = yaml.safe_load(text) if text.strip() else None
            except yaml.YAMLError:
                value = text
        if stage not in names:
            runs = f"its stages of your own: {', '.join(names)}" if names else "it has no stage of your own"
            entry = hint or '{use: "module:function", after: STAGE, name: %s}' % stage
            raise UsageError(f"{flag}: recipe {recipe.get('name')!r} runs no stage {stage!r}"
                             f"{did_you_mean(stage, names)} ({runs}; add {entry} to its stages:)")
        section = recipe.get(stage)
        recipe[stage] = {**(section if isinstance(section, dict) else {}), key: value}


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Rows under a header, every column as wide as its widest cell: the first column left-aligned, the middle
    ones right-aligned (numbers), the last one left as is (free text)."""
    cols = len(header)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(cols - 1)]

    def line(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, cols - 1)]
        return (" ".join(cells) + "  " + r[-1]).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def zero_documents_message(result: dict) -> str:
    """The loud line for a crawl that kept no document: where the last ones went and what to do."""
    where = ""
    for name, st in result["stages"].items():
        if name == "image_fetch":  # counts image URLs, not documents
            continue
        if st.get("documents_in", 0) > 0 and st.get("documents_out", 0) == 0:
            reasons = {**st.get("removed", {}), **{f"error:{k}": v for k, v in st.get("errors", {}).items()}}
            top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
            where = (f" the stage '{name}' removed the last {st['documents_in']} document(s)"
                     + (f" ({top})" if top else "") + ";")
            break
    if not where and result["summary"].get("records_in", 0) == 0:
        where = " no HTML record was read from the WARC(s);"
    return (f"crawl: WARNING: 0 documents, the dataset is EMPTY:{where} see the stage table, the notes and "
            "OUT/stats.json; `publish` refuses an empty dataset")


def print_summary(result: dict, out: str, quiet: bool = False) -> None:
    s = result["summary"]
    line = (f"{s['documents']} documents, {s['images']} images, {s['paragraphs']} paragraphs "
            f"from {s['records_in']} WARC records of {len(result['run']['warcs'])} WARC(s) -> {out}")
    print(line)
    if s["documents"] == 0:
        print(zero_documents_message(result), file=sys.stderr)
    if quiet:
        return
    rows = []
    for name, st in result["stages"].items():
        reasons = {**st["removed"], **{f"error:{k}": v for k, v in st["errors"].items()}}
        for key in ("nodes_removed", "images_removed"):
            for k, v in st[key].items():
                reasons[f"{k} ({key.split('_')[0]})"] = v
        top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        rows.append((str(name), str(st["documents_in"]), str(st["documents_out"]), top))
    print(format_table(("stage", "docs in", "docs out", "top removals"), rows))
    for note in result["notes"]:
        print(f"note: {note}")
    if not s["accounted"]:
        print("ACCOUNTING PROBLEM: " + "; ".join(s["accounting_problems"]), file=sys.stderr)
    if "dataset" in result:
        print(f"dataset: {Path(out) / 'dataset'} (Parquet + WebDataset shards, README.md card, funnel.png)")
    print(f"stats: {Path(out) / 'stats.json'}")
