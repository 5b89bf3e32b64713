"""``obelics-build plan [--recipe R] [--out OUT]``: the recipe's plan, and what a rerun in OUT would skip."""
from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Print the plan a crawl runs: its steps in order (from the recipe's `stages:` list, with stages of your own where
the list puts them), what each maps over, reads, writes and is configured by, and its fingerprint.

With --out OUT (a crawl output), the plan is evaluated against OUT's completion markers, as a rerun of that crawl
would: how many units of each step are done with the same fingerprint (a rerun skips them) and how many would run.
Without --recipe, OUT's own recipe is used (the one it ran with, its command-line overrides included); with
--recipe, the answer is for a rerun with that recipe. A step after one that fetches or looks up (images, opt-outs)
has a fingerprint only once those have run. Nothing is run or written.

Examples:
  obelics-build plan
  obelics-build plan --recipe my-recipe.yaml --out ./out
"""

KIND = {"warcs": "one task per WARC", "parts": "one task per part", "images": "one task per image-URL partition",
        "run": "run-wide"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default=None, help="recipe: a YAML path or a packaged name (default: OUT's recipe, "
                                                  "else obelics)")
    p.add_argument("--filters", default=None, help="filter config merged over the recipe's (as crawl --filters)")
    p.add_argument("--out", default=None, help="a crawl output folder: say what a rerun there would skip")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def collect(args: argparse.Namespace) -> dict:
    """The plan as data: ``{"recipe", "out", "warcs", "steps": [...], "skip", "units"}``."""
    from ..io.markers import fingerprint
    from ..pipeline import plan_run
    from ..plan.execute import run_plan
    from ..recipe import DEFAULT_RECIPE, load_filters, load_recipe, recipe_for_run
    from . import checks

    info = checks.read_crawl_output(args.out, "plan") if args.out else None
    if args.recipe or info is None:
        recipe = load_recipe(args.recipe or DEFAULT_RECIPE, check_extractor=False)
    else:
        recipe = recipe_for_run(info)
    if args.filters:
        recipe["filters_config"] = load_filters(args.filters, over=recipe["filters_config"])
    refs = info["warcs"] if info else []
    run = plan_run(refs, recipe, args.out or ".", None, dump=(info or {}).get("dump"),
                   archive_refs=(info or {}).get("image_archive"), fetch_overrides=(info or {}).get("fetch_overrides"))
    if info is not None:
        run_plan(run)
    reports = {r.step.name: r for r in run.reports}
    steps = []
    for step in run.plan.steps:
        r = reports.get(step.name)
        config = step.config(run.inputs)
        steps.append({
            "step": step.name, "kind": step.kind, "stages": list(step.stages), "what": step.what,
            "reads": list(step.reads) or (["the WARC files"] if step.kind == "warcs" else []),
            "writes": f"OUT/{step.writes}/" if step.writes != "." else "OUT/",
            "configured_by": list(step.sections), "config_fingerprint": fingerprint(*config),
            "custom": step.custom.use if step.custom else None,
            "fingerprint": r.fingerprint if r else None, "units": r.units if r else None,
            "skip": r.skip if r else None, "note": r.note if r else "",
        })
    known = [s for s in steps if s["units"] is not None]
    return {"recipe": recipe.get("_path") or recipe.get("name"), "out": str(run.out) if info else None,
            "warcs": len(refs), "funnel": list(run.plan.funnel), "steps": steps,
            "units": sum(s["units"] for s in known), "skip": sum(s["skip"] for s in known),
            "unknown": [s["step"] for s in steps if info is not None and s["units"] is None]}


def _status(s: dict) -> str:
    if s["units"] is None:
        return f"not known yet: {s['note']}" if s["note"] else "not known yet"
    if s["kind"] == "run":
        return ("done: skipped" if s["skip"] else "would run") + (f" ({s['note']})" if s["note"] else "")
    if s["skip"] == s["units"]:
        return f"{s['units']} unit(s), all done: skipped" + (f" ({s['note']})" if s["note"] else "")
    run = s["units"] - s["skip"]
    return f"{s['units']} unit(s): {s['skip']} done, {run} would run" + (f" ({s['note']})" if s["note"] else "")


def render(plan: dict) -> str:
    head = f"plan of {plan['recipe']}"
    head += f" over {plan['out']} ({plan['warcs']} WARC(s))" if plan["out"] else " (give --out OUT for what a rerun skips)"
    lines = [head, ""]
    for i, s in enumerate(plan["steps"], 1):
        stages = f": {', '.join(s['stages'])}" if s["stages"] else ""
        lines.append(f"{i:2d}. {s['step']}  [{KIND[s['kind']]}{stages}]" + (" (yours)" if s["custom"] else ""))
        if s["what"]:
            lines.append(f"      {s['what']}")
        lines.append(f"      reads   {', '.join(s['reads']) or '-'}")
        lines.append(f"      writes  {s['writes']}")
        lines.append(f"      config  {'; '.join(s['configured_by']) or '-'}  ({s['config_fingerprint']})")
        if plan["out"]:
            lines.append(f"      fingerprint {s['fingerprint'] or '?'}: {_status(s)}")
    lines.append("")
    lines.append("funnel (stats.json): " + " -> ".join(plan["funnel"]))
    if plan["out"]:
        tail = f"a rerun would skip {plan['skip']} of {plan['units']} known unit(s)"
        if plan["unknown"]:
            tail += f"; not known until the steps before them run: {', '.join(plan['unknown'])}"
        lines.append(tail)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    plan = collect(args)
    if args.json:
        print(json.dumps(plan, indent=2))
    else:
        print(render(plan))
    sys.stdout.flush()
    return 0
