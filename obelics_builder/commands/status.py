"""``obelics-build status OUT``: what is done, failed and pending in a crawl output, from its completion markers."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DESCRIPTION = """\
Summarise a crawl output folder from its completion markers: per step, how many units (WARCs, parts, image
partitions) are done, failed and pending, and the last run's summary. Safe to run while a crawl is in progress.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="a crawl output folder")
    p.add_argument("--json", action="store_true", help="print the status as JSON")


def collect(out: Path) -> dict:
    from ..tasks import warc_key

    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    keys = [warc_key(w["name"]) for w in info["warcs"]]
    steps = {}
    from ..errors import ConfigError
    from ..plan.stages import build_plan

    try:  # stages of one's own (the recipe the run had)
        custom = build_plan(info.get("recipe_config") or {}).custom
    except ConfigError:
        custom = ()
    for step, folder, names in (
        ("read+extract+score (per WARC)", out / "parts" / "scored", keys),
        ("text filters (per part)", out / "parts" / "text", keys),
        ("URL dedup (per part)", out / "parts" / "url_dedup", keys),
        *((f"{s.name} (yours, per part)", s.folder(out), keys) for s in custom),
        ("final (per part)", out / "documents", [f"part-{i:05d}" for i in range(len(keys))]),
    ):
        done = {p.stem for p in (folder / "_done").glob("*.json")} if (folder / "_done").exists() else set()
        failed = {p.stem for p in (folder / "_failed").glob("*.json")} if (folder / "_failed").exists() else set()
        d = [n for n in names if n in done]
        f = [n for n in names if n in failed and n not in done]
        steps[step] = {"total": len(names), "done": len(d), "failed": len(f),
                       "pending": len(names) - len(d) - len(f), "failed_units": f[:20]}
    plan = out / "images" / "plan" / "_done" / "plan.json"
    if plan.exists():
        n = int(json.loads(plan.read_text())["partitions"])
        folder = out / "images" / "table" / "_done"
        done = sum(1 for i in range(n) if (folder / f"part-{i:05d}.json").exists())
        steps["image fetch (per URL partition)"] = {"total": n, "done": done, "failed": 0, "pending": n - done,
                                                    "failed_units": []}
    status = {"out": str(out), "warcs": len(keys), "steps": steps}
    if (out / "dataset").is_dir():
        from ..dataset.stale import stale_reason

        why = stale_reason(out)
        status["dataset"] = {"path": str(out / "dataset"), "stale": why is not None, "stale_reason": why}
    if (out / "stats.json").exists():
        stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
        status["last_run"] = {"started": stats["run"].get("started"), "summary": stats["summary"]}
    return status


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not (out / "run.json").exists():
        print(f"status: {out} has no run.json: not a crawl output folder (or the crawl has not started)",
              file=sys.stderr)
        return 2
    status = collect(out)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{status['out']}: {status['warcs']} WARC(s)")
    for step, s in status["steps"].items():
        print(f"  {step:<34} {s['done']:>6}/{s['total']:<6} done  {s['failed']:>4} failed  {s['pending']:>6} pending")
        for u in s["failed_units"]:
            print(f"      failed: {u}")
    ds = status.get("dataset")
    if ds and ds["stale"]:
        print(f"  dataset: {ds['path']} is STALE ({ds['stale_reason']}): rebuild it with "
              f"`obelics-build shards {status['out']}` (publish refuses it)")
    elif ds:
        print(f"  dataset: {ds['path']} (in step with the documents)")
    if "last_run" in status:
        sm = status["last_run"]["summary"]
        print(f"  last completed run ({status['last_run']['started']}): {sm['documents']} documents, "
              f"{sm['images']} images; accounted: {sm['accounted']}")
    return 0
