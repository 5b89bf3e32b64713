#!/usr/bin/env python3
"""bench/pipeline's measuring process: ``obelics-build crawl`` in this process, probes on, one JSON file out.

    python bench/pipeline/run_ours.py INPUTS.json WORKDIR RESULT.json

1. Imports the package and installs the probes of :data:`TARGETS` (see ``probes.py``).
2. Warm-up: ``crawl`` of the 5-page warm-up WARC and its image archive (``--scheduler sync --no-network``): every
   model, table and lazy import is loaded then.  The process's CPU (``getrusage``, from its start: interpreter,
   imports, warm-up) at that point is the whole-process start-up cost.
3. The measured run: ``crawl`` of the bench WARCs with the bench image archive, same options, every stage (the
   dataset shards too).  Its process CPU, wall time, the probes' figures and ``stats.json`` go to RESULT.json.

``--scheduler sync`` is one worker in one process: the stages run in this thread (the image decode in its pool
threads), so the pipeline's own ``cpu_seconds`` and the probes see all of it and the remainder is the engine's own
work (markers, fingerprints, planning, Parquet glue).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


#: module:qualname -> label (a label is a row of the bench's table or a part of one; see bench_pipeline.GROUPS)
TARGETS = {
    "obelics_builder.quality.langid:LangId.predict": "lang-id",
    "obelics_builder.quality.langid:LangId.predict_with_scores": "lang-id",
    # the image table (images/table.py): judge (header checks, decode once per sha256, pHash, scoring image) in
    # the decode threads; BatchScorer.score (the detector's batches) there too; the archive lookups in the loop
    "obelics_builder.images.table:row_from_fetch": "image decode",  # a failed fetch's row (no decode)
    "obelics_builder.images.phash:phash_hex": "image pHash",
    "obelics_builder.images.decode:scoring_image": "image NSFW",  # the detector's reduced input
    "obelics_builder.images.decode:open_reduced": "image NSFW",
    "obelics_builder.images.nsfw:BatchScorer.score": "image NSFW",
    "obelics_builder.engine.reductions:url_losers": "dedup: URL groups",
    "obelics_builder.engine.dedup_reductions:near_duplicate_losers": "dedup: MinHash",
    "obelics_builder.engine.reductions:image_url_plan": "image: URL plan",
    "obelics_builder.engine.reductions:fetch_bucket_urls": "image: URL plan",
    "obelics_builder.images.phash_groups:apply_phash_groups": "image: pHash groups",
    "obelics_builder.engine.dedup_reductions:frequent_paragraphs": "final: run-wide",
    "obelics_builder.engine.dedup_reductions:keep_best_losers": "final: run-wide",
    "obelics_builder.plan.lookups:optout_lookups": "final: run-wide",
    "obelics_builder.tasks:load_image_rows": "final: image-table reads",
    "obelics_builder.io.parquet:DocumentWriter.write": "writing: parts",
    "obelics_builder.io.parquet:DocumentWriter.close": "writing: parts",
    "obelics_builder.io.parquet:write_table_atomic": "writing: parts",
    "obelics_builder.io.parquet:iter_document_batches": "part reads",
    "obelics_builder.dataset.shards:write_dataset": "writing: dataset",
    "obelics_builder.images.ledger:write_table_part": "image: table write",  # rows -> Arrow, content fingerprint
    "obelics_builder.optout.manifest:write_manifest_part": "writing: parts",
    "obelics_builder.optout.manifest:merge_manifests": "writing: parts",
    # per-part side outputs computed between the stages
    "obelics_builder.dedup.urls:url_keys": "dedup: keys per part",
    "obelics_builder.dedup.image_urls:image_url_doc_pairs": "image: URL plan",
    "obelics_builder.dedup.paragraphs:paragraph_counts": "final: per-part keys and counts",
    "obelics_builder.dedup.paragraphs:merge_counts": "final: per-part keys and counts",
    "obelics_builder.dedup.paragraphs:counts_table": "final: per-part keys and counts",
    "obelics_builder.dedup.image_sets:image_set_keys": "final: per-part keys and counts",
    "obelics_builder.optout.stage:collect_urls": "final: per-part keys and counts",
    "obelics_builder.engine.dedup_reductions:load_frequent_paragraphs": "final: per-part keys and counts",
    # the engine's own bookkeeping (a part of its overhead)
    "obelics_builder.io.markers:read_marker": "engine: markers",
    "obelics_builder.io.markers:write_marker": "engine: markers",
    "obelics_builder.io.markers:write_json_atomic": "engine: markers",
    "obelics_builder.tasks:fingerprint": "engine: fingerprints",
}


def _judged(res, args) -> str:
    fetched = args[0]
    if not (fetched.ok and fetched.body is not None):
        return "fetch_failed"  # (row_from_fetch of a failed fetch: no decode)
    return "rejected" if res[0].get("reason") else "usable"


def _looked_up(res, args) -> str:
    hit = res[0]
    return "miss" if hit is None else "hit" if hit.ok else "refused"


#: module:qualname -> (label, outcome of its result): the image table's per-URL work split by outcome
OUTCOME_TARGETS = {
    "obelics_builder.images.table:judge": ("image decode", _judged),
    "obelics_builder.images.fetch:Fetcher._from_archive": ("image archive", _looked_up),
}


def crawl_args(warcs: list[str], archive: str, out: Path) -> list[str]:
    return ["crawl", "--warc", *warcs, "--image-archive", archive, "--out", str(out), "--scheduler", "sync",
            "--no-network", "--quiet"]


def warmup_cpu(stages: dict, probe_totals: dict, total: float) -> dict:
    """Where the warm-up crawl's CPU went: its stages' cpu_seconds, the probes outside every stage, the rest."""
    out = {name: float(s.get("cpu_seconds") or 0.0) for name, s in stages.items()}
    nested = ("image decode", "image pHash", "image NSFW")  # inside the image fetch's CPU (decode threads: no mark)
    out.update({k: v for k, v in probe_totals.items() if "@" not in k and not k.startswith(nested)})
    out["rest (CLI, validation, engine)"] = total - sum(out.values())
    return {k: round(v, 3) for k, v in out.items() if v >= 0.005}


def thread_cpu() -> dict[str, float]:
    """CPU seconds of the live threads of this process by name (Linux ``/proc/self/task``; {} elsewhere): where
    the CPU outside the main thread goes (Arrow's and onnxruntime's pools; finished threads are not listed)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path("/proc/self/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return out


def nsfw_setting(out: Path) -> dict:
    """Whether the run scored NSFW: the crawl's own filter config (``image.nsfw``) and the image stage's notes
    (a detector that could not be loaded is said there), not whether a probe fired."""
    from obelics_builder.images.nsfw import nsfw_config
    from obelics_builder.recipe import recipe_for_run

    try:
        info = json.loads((out / "run.json").read_text(encoding="utf-8"))
        cfg = nsfw_config(recipe_for_run(info)["filters_config"])
    except Exception as exc:  # (the bench says it could not tell, never guesses)
        return {"enabled": None, "error": f"{type(exc).__name__}: {exc}"[:200]}
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    notes = [n for n in (stats.get("stages", {}).get("image_fetch", {}).get("notes") or []) + (stats.get("notes") or [])
             if "nsfw" in str(n).lower()]
    return {"enabled": bool(cfg.get("enabled")), "detector": cfg.get("detector"), "notes": notes,
            "on": bool(cfg.get("enabled")) and not any("disabled" in n.lower() for n in notes)}


def main(argv: list[str]) -> int:
    inputs = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    work, result_path = Path(argv[1]), Path(argv[2])
    cpu_start = cpu_now()
    import obelics_builder.cli as cli
    import obelics_builder.commands.crawl  # noqa: F401
    import obelics_builder.pipeline  # noqa: F401
    import probes

    missing = probes.install(TARGETS) + probes.install_outcomes(OUTCOME_TARGETS) + probes.install_stage_markers()
    cpu_imports = cpu_now()
    import io
    from contextlib import redirect_stdout

    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        rc_warm = cli.main(crawl_args(inputs["warmup_warcs"], inputs["warmup_archive"], work / "warmup-out"))
    cpu_startup = cpu_now()
    warm_wall = time.perf_counter() - t0
    before, calls_before, threads_before = probes.snapshot(), probes.calls(), thread_cpu()
    t0, c0, m0 = time.perf_counter(), cpu_now(), time.thread_time()
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = cli.main(crawl_args(inputs["warcs"], inputs["image_archive"], work / "out"))
    wall, cpu, main_cpu = time.perf_counter() - t0, cpu_now() - c0, time.thread_time() - m0
    after, calls_after, threads_after = probes.snapshot(), probes.calls(), thread_cpu()
    stats = json.loads((work / "out" / "stats.json").read_text(encoding="utf-8"))
    warm = json.loads((work / "warmup-out" / "stats.json").read_text(encoding="utf-8"))["stages"]
    result = {
        "rc": rc, "rc_warmup": rc_warm, "summary_line": buf.getvalue().splitlines()[:1],
        "cpu_at_start": round(cpu_start, 3), "cpu_after_imports": round(cpu_imports, 3),
        "startup_cpu": round(cpu_startup, 3), "warmup_wall": round(warm_wall, 2),
        "warmup_cpu": warmup_cpu(warm, before, cpu_startup - cpu_imports),
        "warmup_pages": warm.get("read", {}).get("documents_out", 0),
        "warmup_image_urls": warm.get("image_fetch", {}).get("documents_in", 0),
        "cpu": round(cpu, 3), "wall": round(wall, 2), "main_thread_cpu": round(main_cpu, 3),
        "thread_cpu": {k: round(v - threads_before.get(k, 0.0), 2) for k, v in sorted(threads_after.items())
                       if v - threads_before.get(k, 0.0) >= 0.01},
        "probes": {k: round(after.get(k, 0.0) - before.get(k, 0.0), 4) for k in sorted(after)},
        "probe_calls": {k: calls_after[k] - calls_before.get(k, 0) for k in sorted(calls_after)
                        if calls_after[k] - calls_before.get(k, 0)},
        "probes_missing": missing,
        "nsfw": nsfw_setting(work / "out"),
        "stats": {"run": stats.get("run"), "summary": stats.get("summary"), "stages": stats.get("stages")},
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "pid": os.getpid(),
    }
    result_path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
