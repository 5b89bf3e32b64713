"""The crawl pipeline: WARCs -> documents/ and stats.json, the recipe's plan (:mod:`obelics_builder.plan`) run on
an ``Engine``.

Per WARC (parallel, resumable per WARC): read -> extract -> text scores.
Run-wide, each step a Dask reduction or a map over parts, each resumable through markers:
text decisions -> URL dedup + MinHash near-duplicate dedup (before any image is fetched) -> image-URL counts ->
fetch each unique image URL once (archive first; consent, robots, decode, filters, pHash, NSFW) -> image rules,
image results and final cleaning -> per-domain paragraph dedup -> image-URL-set dedup -> opt-out (Spawning, local
list, C2PA; dated manifest) -> ``documents/``.  The steps, their order, what each reads and writes and how each is
fingerprinted are declared in :mod:`obelics_builder.plan.builtin`; ``obelics-build plan`` prints them.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time
from pathlib import Path

from . import __version__
from .engine import Engine
from .io.markers import write_json_atomic
from .plan.builtin import STAGES
from .plan.model import RunInputs
from .plan.execute import run_plan
from .plan.run import Run
from .plan.stages import build_plan
from .recipe import recipe_provenance
from .stats import Stats
from .tasks import warc_key

log = logging.getLogger("obelics_builder")

#: The built-in stages in funnel order (``image_fetch`` counts unique image URLs, not documents, and is reported
#: apart); a recipe's plan (``Plan.funnel``) adds its own stages where they run.
DOC_STAGES = [s for s in STAGES if s != "image_fetch"]


def run_inputs(refs: list, recipe: dict, dump: str | None = None, archive_refs: list | tuple | None = None,
               fetch_overrides: dict | None = None) -> RunInputs:
    """What a run is given besides its recipe, as the plan's steps are fingerprinted with it."""
    return RunInputs(recipe=recipe, warc_names=tuple(r.name for r in refs), dump=dump,
                     archive_names=tuple(r.name for r in archive_refs or ()), fetch_overrides=dict(fetch_overrides or {}),
                     env={"spawning_key": bool(os.environ.get("SPAWNING_OPTS_KEY"))})


def plan_run(refs: list, recipe: dict, out: str | Path, engine: Engine | None = None, dump: str | None = None,
             archive_refs: list | None = None, fetch_overrides: dict | None = None) -> Run:
    """The run of the recipe's plan over ``refs`` into ``out`` (executed by :func:`~.plan.run.run_plan` with an
    engine; without one, evaluated: what is done, what would run)."""
    refs = list(refs)
    if len({r.name for r in refs}) != len(refs):
        raise ValueError("the same WARC is listed twice")
    return Run(plan=build_plan(recipe), out=Path(out).resolve(),
               inputs=run_inputs(refs, recipe, dump, archive_refs, fetch_overrides), refs=refs,
               keys=[warc_key(r.name) for r in refs], engine=engine, archive_refs=tuple(archive_refs or ()))


def run_pipeline(refs: list, recipe: dict, out: str | Path, engine: Engine, dump: str | None = None,
                 archive_refs: list | None = None, fetch_overrides: dict | None = None,
                 run_info: dict | None = None) -> dict:
    """Run (or resume) the recipe's plan (:mod:`obelics_builder.plan`); returns the stats.json content."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    run = plan_run(refs, recipe, out, engine, dump, archive_refs, fetch_overrides)
    refs, archive_refs = run.refs, run.archive_refs
    fcfg = recipe["filters_config"]
    write_json_atomic(out / "run.json", {
        "dump": dump,
        "warcs": [{"uri": r.uri, "name": r.name} for r in refs],
        "image_archive": [{"uri": r.uri, "name": r.name} for r in archive_refs],
        **recipe_provenance(recipe),
        "recipe_config": {k: v for k, v in recipe.items() if k != "filters_config"},
        "filters": fcfg.get("_path"),
        # the effective filter config (what ``filter --config`` merged over the one before, as well as the file's)
        "filters_config": fcfg,
        "fetch_overrides": dict(fetch_overrides or {}),
        "run_info": run_info or {},
    })
    run_plan(run)
    result = _stats_json(run.stats, refs, recipe, dump, started, time.time() - t0, run_info, run.plan.funnel)
    write_json_atomic(out / "stats.json", result)
    return result


def read_run(out: str | Path) -> dict | None:
    """``OUT/run.json`` with its WARC and image-archive entries as ``WarcRef`` objects (``warcs``,
    ``image_archive``); None when OUT is not a crawl output folder."""
    from .sources.commoncrawl import WarcRef

    try:
        info = json.loads((Path(out) / "run.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    info["warcs"] = [WarcRef(uri=w["uri"], name=w["name"]) for w in info["warcs"]]
    info["image_archive"] = [WarcRef(uri=w["uri"], name=w["name"]) for w in info.get("image_archive", [])]
    return info


def _stats_json(stats: Stats, refs: list, recipe: dict, dump: str | None, started: str, seconds: float,
                run_info: dict | None, funnel: tuple | list = tuple(DOC_STAGES)) -> dict:
    stages = stats.to_dict()
    ordered = {name: stages[name] for name in funnel if name in stages}
    ordered.update({k: v for k, v in stages.items() if k not in ordered})
    problems = stats.balance_problems(list(funnel))
    chain = [n for n in funnel if n in stages]
    for a, b in zip(chain, chain[1:]):
        if stages[a]["documents_out"] != stages[b]["documents_in"]:
            problems.append(f"{a} out ({stages[a]['documents_out']}) != {b} in ({stages[b]['documents_in']})")
    final = stages.get(chain[-1], {}) if chain else {}
    notes = sorted({f"{name}: {n}" for name, s in stages.items() for n in s.get("notes", [])})
    return {
        "run": {
            "obelics_builder_version": __version__,
            "dump": dump,
            "warcs": [r.name for r in refs],
            **recipe_provenance(recipe),
            "filters": recipe["filters_config"].get("_path"),
            "started": started,
            "seconds": round(seconds, 2),
            **(run_info or {}),
        },
        "summary": {
            "records_in": stages.get("read", {}).get("documents_in", 0),
            "documents": final.get("documents_out", 0),
            "images": final.get("images_out", 0),
            "paragraphs": final.get("nodes_out", 0),
            "unique_image_urls": stages.get("image_fetch", {}).get("documents_in", 0),
            "image_urls_usable": stages.get("image_fetch", {}).get("documents_out", 0),
            "accounted": not problems,
            "accounting_problems": problems,
        },
        "notes": notes,
        "stages": ordered,
    }
