"""How each step runs: its units and the task each gets (``map``), or its run-wide reduction (``reduce``).

A task gets ``(item, fingerprint)`` and the arguments every unit shares; it skips its work when its marker holds
that fingerprint.  The tasks are :mod:`obelics_builder.tasks`' (and :mod:`.custom`'s for a stage of one's own);
the paths they read are the plan's (a step reads its source step's folder), so a stage inserted before it is
read instead of the built-in one.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

from ..io.markers import read_marker, write_marker
from .model import Step, run_fingerprint, whole
from .run import Run, Unit

log = logging.getLogger("obelics_builder")


def run_plan(run: Run) -> Run:
    """Every step in order (executed, or evaluated when ``run.engine`` is None)."""
    for step in run.plan.steps:
        executor(step)(run, step)
    return run


def executor(step: Step) -> Callable[[Run, Step], None]:
    return _custom if step.custom is not None else EXECUTORS[step.name]


# ---- module-level task wrappers (picklable): ((item, fp), *shared) -> stats --------------------------------------

def _warc_task(job: tuple, recipe: dict, out: str, dump: str | None) -> dict:
    from ..tasks import process_warc

    ref, fp = job
    return process_warc(ref, recipe, out, dump, fp=fp)


def _text_filter_task(job: tuple, recipe: dict, out: str, src: str) -> dict:
    from ..tasks import filter_part

    return filter_part(job[0], recipe, out, job[1], src)


def _url_dedup_task(job: tuple, losers: str, near: str | None, out: str, src: str) -> dict:
    from ..tasks import dedup_part

    return dedup_part(job[0], losers, near, job[1], out, src)


def _fetch_task(job: tuple, recipe: dict, out: str, archive_refs: tuple, overrides: dict) -> dict:
    from ..tasks import fetch_unit

    (index, path, shares), fp = job
    return fetch_unit(index, path, shares, recipe, out, archive_refs, overrides, fp=fp)


def _final_task(job: tuple, recipe: dict, out: str, too_frequent: str, src: str, images: str) -> dict:
    from ..tasks import finalize_part

    return finalize_part(job[0], recipe, out, too_frequent, job[1], src, images)


def _paragraphs_task(job: tuple, recipe: dict, out: str, frequent: str, src: str) -> dict:
    from ..tasks import paragraphs_part

    return paragraphs_part(job[0], recipe, out, frequent, job[1], src)


def _publish_task(job: tuple, recipe: dict, out: str, sets: str, flagged: str, src: str) -> dict:
    from ..tasks import publish_part

    (index, key), fp = job
    return publish_part(index, key, recipe, out, sets, flagged, fp, src)


def _warc_progress(stats: dict) -> dict:
    return {"records": stats.get("read", {}).get("documents_in", 0),
            "documents": stats.get("text_scores", {}).get("documents_out", 0),
            "images": stats.get("text_scores", {}).get("images_out", 0)}


def _image_progress(stats: dict) -> dict:
    s = stats.get("image_fetch", {})
    return {"images": s.get("documents_in", 0), "usable": s.get("documents_out", 0)}


def _parts(run: Run) -> list[Unit]:
    return [Unit(k, k, [k], k) for k in run.keys]


def _scheduler(run: Run) -> str:
    return run.engine.dask_scheduler


# ---- the steps -------------------------------------------------------------------------------------------------

def _warc(run: Run, step: Step) -> None:
    from ..tasks import warc_key

    units = [Unit(warc_key(r.name), warc_key(r.name), [r.name, run.inputs.dump], r) for r in run.refs]
    run.map_units(step, units, _warc_task, run.recipe, str(run.out), run.inputs.dump, desc="WARCs",
                  progress=_warc_progress)


def _text_filter(run: Run, step: Step) -> None:
    run.map_units(step, _parts(run), _text_filter_task, run.recipe, str(run.out), str(run.source(step)),
                  desc="text filters")


def _url_losers(run: Run, step: Step) -> None:
    from ..engine.reductions import url_losers

    keys = [run.folder(step.reads[0]) / f"{k}.keys.parquet" for k in run.keys]
    run.reduce(step, lambda fp, done: url_losers(keys, step.folder(run.out), fp, _scheduler(run)))


def _near_enabled(run: Run) -> bool:
    return (run.recipe.get("near_dedup") or {}).get("enabled", True)


def _near_dedup(run: Run, step: Step) -> None:
    from ..engine.dedup_reductions import near_duplicate_losers

    cfg = run.recipe.get("near_dedup") or {}
    parts = [run.folder(step.reads[0]) / f"{k}.parquet" for k in run.keys]

    def execute(fp: str, done: bool) -> None:
        if not _near_enabled(run):
            run.stats.note("url_dedup", "near-duplicate dedup disabled by the recipe (near_dedup.enabled: false)")
            return
        near = near_duplicate_losers(parts, step.folder(run.out), fp, _scheduler(run),
                                     {k: v for k, v in cfg.items() if k != "enabled"},
                                     exclude_dir=run.folder(step.reads[1]))
        log.info("near-duplicate dedup: %s", near)

    run.reduce(step, execute, done=lambda: _near_enabled(run))
    if not _near_enabled(run):  # nothing to do: a rerun "skips" it
        run.reports[-1].skip, run.reports[-1].note = 1, "off (near_dedup.enabled: false)"


def _url_dedup(run: Run, step: Step) -> None:
    text, losers, near = step.reads
    near_dir = str(run.folder(near)) if _near_enabled(run) else None
    run.map_units(step, _parts(run), _url_dedup_task, str(run.folder(losers)), near_dir, str(run.out),
                  str(run.folder(text)), desc="URL dedup")


def _image_plan(run: Run, step: Step) -> None:
    from ..engine.reductions import image_url_plan

    pairs = [run.folder(step.reads[0]) / f"{k}.pairs.parquet" for k in run.keys]
    max_docs, banned, cap = step.config(run.inputs)

    def execute(fp: str, done: bool) -> None:
        run.state["partitions"] = image_url_plan(pairs, step.folder(run.out), fp, int(max_docs), _scheduler(run),
                                                 host_max_urls=int(cap), banned=tuple(banned))

    run.reduce(step, execute)
    if run.dry and run.reports[-1].skip:
        run.state["partitions"] = int(read_marker(step.folder(run.out), "plan")["partitions"])


def _image_fetch(run: Run, step: Step) -> None:
    """One task per unit of the plan; each gets its unit's file and reads its URLs itself (the driver reads only
    the plan's table of units: O(units), never the URLs).  A unit's identity is the digest of its URLs."""
    from ..engine.reductions import plan_units

    if "partitions" not in run.state:
        run.unknown(step, "its partitions are known once the image plan has run")
        return
    plan_dir = run.folder(step.reads[0])
    units = [Unit(f"part-{i:05d}", f"part-{i:05d}", [u["digest"]],
                  (i, str(plan_dir / "fetch" / f"bucket={u['bucket']}" / "urls.parquet"), int(u["shares"])))
             for i, u in enumerate(plan_units(plan_dir))]
    if not run.dry:
        _prune(step.folder(run.out), {u.name for u in units})
    run.map_units(step, units, _fetch_task, run.recipe, str(run.out), run.archive_refs, dict(run.inputs.fetch_overrides),
                  desc="image fetch", progress=_image_progress, compare="input_fingerprint")


def _image_phash(run: Run, step: Step) -> None:
    table = run.folder(step.reads[0])
    names = [f"part-{i:05d}" for i in range(run.state.get("partitions", 0))]
    distance = int(step.config(run.inputs)[0])

    def content() -> str | None:
        fps = {n: (read_marker(table, n) or {}).get("fingerprint") for n in names}
        return None if None in fps.values() else run_fingerprint([whole(fps)], step.config(run.inputs))

    def execute(fp: str, done: bool) -> None:
        if done:
            return
        if distance >= 0:
            from ..images.phash_groups import apply_phash_groups

            apply_phash_groups(table, names, distance, run.engine)
        after = content()
        if after is not None:
            write_marker(step.folder(run.out), "phash", {"fingerprint": after})

    if run.fps.get(step.reads[0]) is None:
        run.unknown(step, "after the image fetch")
        return
    run.reduce(step, execute, content=content)


def _image_buckets(run: Run, step: Step) -> None:
    from ..images.join import JoinConfig, bucket_images

    table = run.folder(run.plan.step(step.reads[0]).reads[0])  # the fetch's table, as the pHash step marked it
    if run.fps.get(step.reads[0]) is None:
        run.unknown(step, "after the pHash marks")
        return
    cfg = JoinConfig.from_recipe(run.recipe)
    run.reduce(step, lambda fp, done: bucket_images(table, step.folder(run.out), fp, cfg, run.engine))


def _final(run: Run, step: Step) -> None:
    src, plan, buckets = step.reads
    run.map_units(step, _parts(run), _final_task, run.recipe, str(run.out), str(run.folder(plan) / "too_frequent"),
                  str(run.folder(src)), str(run.folder(buckets)), desc="final")


def _paragraph_counts(run: Run, step: Step) -> None:
    from ..engine.dedup_reductions import frequent_paragraphs

    counts = [run.folder(step.reads[0]) / f"{k}.pcounts.parquet" for k in run.keys]
    min_count = int((run.recipe.get("paragraph_dedup") or {}).get("min_count", 3))
    run.reduce(step, lambda fp, done: frequent_paragraphs(counts, step.folder(run.out), fp, _scheduler(run), min_count))


def _paragraphs(run: Run, step: Step) -> None:
    src, counts = step.reads
    run.map_units(step, _parts(run), _paragraphs_task, run.recipe, str(run.out), str(run.folder(counts)),
                  str(run.folder(src)), desc="paragraph dedup")


def _image_set_losers(run: Run, step: Step) -> None:
    from ..engine.dedup_reductions import keep_best_losers

    sets = [run.folder(step.reads[0]) / f"{k}.sets.parquet" for k in run.keys]
    run.reduce(step, lambda fp, done: keep_best_losers(sets, step.folder(run.out), fp, _scheduler(run)))


def _file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _optout_lookups(run: Run, step: Step) -> None:
    from .lookups import optout_lookups

    flagged = step.folder(run.out) / "flagged.json"
    urls = [run.folder(step.reads[0]) / f"{k}.urls.parquet" for k in run.keys]
    table = run.folder(step.reads[1])

    def execute(fp: str, done: bool) -> None:
        run.stats.merge(optout_lookups(step.folder(run.out), urls, table, run.state.get("partitions", 0),
                                       run.recipe, fp, run.engine))

    run.reduce(step, execute, content=lambda: _file_digest(flagged), done=flagged.exists)
    if run.dry and run.reports[-1].skip:  # the stored lookups' counts, as the run would merge them
        run.stats.merge((read_marker(step.folder(run.out), "lookups") or {}).get("stats", {}))


def _publish(run: Run, step: Step) -> None:
    src, sets, lookups = step.reads
    units = [Unit(k, f"part-{i:05d}", [k], (i, k)) for i, k in enumerate(run.keys)]
    if not run.dry:
        _prune(step.folder(run.out), {u.name for u in units})
    run.map_units(step, units, _publish_task, run.recipe, str(run.out), str(run.folder(sets)),
                  str(run.folder(lookups) / "flagged.json"), str(run.folder(src)), desc="dedup + opt-out")


def _manifest(run: Run, step: Step) -> None:
    def execute(fp: str, done: bool) -> None:
        from ..optout.manifest import merge_manifests

        out = run.out
        page = run.folder("text_filter")  # page-level consent rows, beside each text-filter part
        manifest = merge_manifests([page / f"{k}.manifest.parquet" for k in run.keys]
                                   + [out / "parts" / "optout" / f"{k}.manifest.parquet" for k in run.keys], out)
        for old in out.glob("optout-manifest-*.parquet"):
            if old != manifest:
                old.unlink()

    run.reduce(step, execute)


def _custom(run: Run, step: Step) -> None:
    from .custom import custom_part_task
    from .stages import stage_filters

    spec = step.custom
    names = [s.name for s in run.plan.steps]
    images = str(run.folder("image_fetch")) if names.index(step.name) > names.index("final") else None
    run.map_units(step, _parts(run), custom_part_task, spec.use, spec.name, step.products,
                  run.recipe.get(spec.name) or {}, run.recipe, str(run.out), str(run.source(step)),
                  str(step.folder(run.out)), stage_filters(run.recipe.get("filters_config"), spec.name), images,
                  desc=spec.name)


def _prune(folder: Path, keep: set[str]) -> None:
    """Remove outputs (and their markers) of an earlier run that this run no longer produces."""
    if not folder.exists():
        return
    for f in folder.glob("part-*.parquet"):
        if f.stem not in keep:
            f.unlink()
            (folder / "_done" / f"{f.stem}.json").unlink(missing_ok=True)


EXECUTORS: dict[str, Callable[[Run, Step], None]] = {
    "warc": _warc, "text_filter": _text_filter, "url_losers": _url_losers, "near_dedup": _near_dedup,
    "url_dedup": _url_dedup, "image_plan": _image_plan, "image_fetch": _image_fetch, "image_phash": _image_phash,
    "image_buckets": _image_buckets, "final": _final, "paragraph_counts": _paragraph_counts, "paragraphs": _paragraphs,
    "image_set_losers": _image_set_losers, "optout_lookups": _optout_lookups, "publish": _publish,
    "manifest": _manifest,
}
