"""The crawl pipeline: WARCs -> documents/ and stats.json, composed from the units in ``tasks`` on an ``Engine``.

Per WARC (parallel, resumable per WARC): read -> extract -> text scores.
Run-wide, each step a Dask reduction or a map over parts, each resumable through markers:
text decisions -> URL dedup + MinHash near-duplicate dedup (before any image is fetched) -> image-URL counts ->
fetch each unique image URL once (archive first; consent, robots, decode, filters, pHash, NSFW) -> image rules,
image results and final cleaning -> per-domain paragraph dedup -> image-URL-set dedup -> opt-out (Spawning, local
list, C2PA; dated manifest) -> ``documents/``.
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
from .engine.reductions import fetch_bucket_urls, image_url_plan, url_losers
from .io.markers import read_marker, write_json_atomic
from .recipe import recipe_provenance
from .stats import Stats
from .engine.dedup_reductions import frequent_paragraphs, keep_best_losers, near_duplicate_losers
from .tasks import (dedup_part, fetch_partition, filter_part, fingerprint, finalize_part, paragraphs_part,
                    process_warc, publish_part, warc_key)

log = logging.getLogger("obelics_builder")

#: Stages in funnel order (``image_fetch`` counts unique image URLs, not documents, and is reported apart).
DOC_STAGES = ["read", "extract", "text_scores", "text_filter", "url_dedup", "image_rules", "images", "final",
              "paragraph_dedup", "cleanup", "image_set_dedup", "optout"]


def run_pipeline(refs: list, recipe: dict, out: str | Path, engine: Engine, dump: str | None = None,
                 archive_refs: list | None = None, fetch_overrides: dict | None = None,
                 run_info: dict | None = None) -> dict:
    """Run (or resume) the whole pipeline; returns the stats.json content."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    refs = list(refs)
    if len({r.name for r in refs}) != len(refs):
        raise ValueError("the same WARC is listed twice")
    keys = [warc_key(r.name) for r in refs]
    archive_refs = tuple(archive_refs or ())
    fetch_overrides = dict(fetch_overrides or {})
    fcfg = recipe["filters_config"]
    stats = Stats()
    write_json_atomic(out / "run.json", {
        "dump": dump,
        "warcs": [{"uri": r.uri, "name": r.name} for r in refs],
        "image_archive": [{"uri": r.uri, "name": r.name} for r in archive_refs],
        **recipe_provenance(recipe),
        "recipe_config": {k: v for k, v in recipe.items() if k != "filters_config"},
        "filters": fcfg.get("_path"),
        # the effective filter config (what ``filter --config`` merged over the one before, as well as the file's)
        "filters_config": fcfg,
        "fetch_overrides": fetch_overrides,
        "run_info": run_info or {},
    })

    # 1. per WARC
    for s in engine.map(process_warc, refs, recipe, str(out), dump, desc="WARCs", progress=_warc_progress):
        stats.merge(s)
    # 2. text decisions per part
    for s in engine.map(filter_part, keys, recipe, str(out), desc="text filters"):
        stats.merge(s)
    # 3. URL dedup: run-wide groupby, then per part
    text_dir = out / "parts" / "text"
    text_fp = fingerprint([(k, (read_marker(text_dir, k) or {}).get("fingerprint")) for k in keys])
    losers_dir = out / "parts" / "url_dedup" / "_losers"
    url_losers([text_dir / f"{k}.keys.parquet" for k in keys], losers_dir, text_fp, engine.dask_scheduler)
    # near duplicates (MinHash LSH over 5-gram shingles), before any image is fetched
    near_cfg = recipe.get("near_dedup") or {}
    near_dir = out / "parts" / "url_dedup" / "_near"
    near_fp = fingerprint(text_fp, near_cfg)
    if near_cfg.get("enabled", True):
        near = near_duplicate_losers([text_dir / f"{k}.parquet" for k in keys], near_dir, near_fp,
                                     engine.dask_scheduler, {k: v for k, v in near_cfg.items() if k != "enabled"},
                                     exclude_dir=losers_dir)
        log.info("near-duplicate dedup: %s", near)
    else:
        stats.note("url_dedup", "near-duplicate dedup disabled by the recipe (near_dedup.enabled: false)")
    for s in engine.map(dedup_part, keys, str(losers_dir), str(near_dir) if near_cfg.get("enabled", True) else None,
                        near_fp, str(out), desc="URL dedup"):
        stats.merge(s)
    # 4. image URLs: run-wide counts, then fetch each unique URL once (hash partitions)
    dedup_dir = out / "parts" / "url_dedup"
    dedup_fp = fingerprint([(k, (read_marker(dedup_dir, k) or {}).get("fingerprint")) for k in keys])
    img_cfg = fcfg.get("image") or {}
    plan_dir = out / "images" / "plan"
    plan_fp = fingerprint(dedup_fp, img_cfg.get("max_documents_per_url", 10))
    partitions = image_url_plan([dedup_dir / f"{k}.pairs.parquet" for k in keys], plan_dir, plan_fp,
                                int(img_cfg.get("max_documents_per_url", 10)), engine.dask_scheduler)
    banned = _banned_words(fcfg)
    buckets = []
    for b in range(partitions):
        urls = [u for u in fetch_bucket_urls(plan_dir, b) if not any(w in u for w in banned)]
        buckets.append(urls)
    _prune(out / "images" / "table", {f"part-{i:05d}" for i in range(partitions)})
    fetch_stats = engine.map(_fetch_bucket, list(enumerate(buckets)), recipe, str(out), archive_refs,
                             fetch_overrides, desc="image fetch", progress=_image_progress)
    for s in fetch_stats:
        stats.merge(s)
    # near-duplicate images across the run (pHash bands, see images/phash.py): marks stored in the table parts
    if int(img_cfg.get("phash_max_distance", 4)) >= 0:
        from .images.ledger import apply_phash_groups

        apply_phash_groups(out / "images" / "table", [f"part-{i:05d}" for i in range(partitions)],
                           int(img_cfg.get("phash_max_distance", 4)))
    # 5. image rules, image results, final cleaning per part (pass A)
    img_fp = fingerprint(plan_fp, [(read_marker(out / "images" / "table", f"part-{i:05d}") or {}).get("fingerprint")
                                   for i in range(partitions)])
    for s in engine.map(finalize_part, keys, recipe, str(out), str(plan_dir / "too_frequent"), img_fp, desc="final"):
        stats.merge(s)
    # 6. per-domain paragraph dedup: run-wide counts, then per part (pass B)
    final_dir = out / "parts" / "final"
    final_fp = fingerprint(img_fp, [(k, (read_marker(final_dir, k) or {}).get("fingerprint")) for k in keys])
    par_cfg = recipe.get("paragraph_dedup") or {}
    frequent_dir = out / "parts" / "paragraphs" / "_frequent"
    frequent_paragraphs([final_dir / f"{k}.pcounts.parquet" for k in keys], frequent_dir,
                        fingerprint(final_fp, par_cfg), engine.dask_scheduler, int(par_cfg.get("min_count", 3)))
    for s in engine.map(paragraphs_part, keys, recipe, str(out), str(frequent_dir), fingerprint(final_fp, par_cfg),
                        desc="paragraph dedup"):
        stats.merge(s)
    # 7. image-set dedup (run-wide groupby) and opt-out (Spawning, local list, C2PA) -> documents/ (pass C)
    par_dir = out / "parts" / "paragraphs"
    par_fp = fingerprint(final_fp, [(k, (read_marker(par_dir, k) or {}).get("fingerprint")) for k in keys])
    sets_dir = par_dir / "_image_set_losers"
    keep_best_losers([par_dir / f"{k}.sets.parquet" for k in keys], sets_dir, par_fp, engine.dask_scheduler)
    flagged_file, optout_stats = _optout_lookups(out, keys, partitions, recipe, par_fp, engine)
    stats.merge(optout_stats)
    _prune(out / "documents", {f"part-{i:05d}" for i in range(len(keys))})
    publish_fp = fingerprint(par_fp, _file_digest(flagged_file))
    for s in engine.map(_publish, list(enumerate(keys)), recipe, str(out), str(sets_dir), str(flagged_file),
                        publish_fp, desc="dedup + opt-out"):
        stats.merge(s)
    from .optout.manifest import merge_manifests

    manifest = merge_manifests([out / "parts" / "optout" / f"{k}.manifest.parquet" for k in keys], out)
    for old in out.glob("optout-manifest-*.parquet"):
        if old != manifest:
            old.unlink()

    result = _stats_json(stats, refs, recipe, dump, started, time.time() - t0, run_info)
    write_json_atomic(out / "stats.json", result)
    return result


def _fetch_bucket(item: tuple, recipe: dict, out: str, archive_refs: tuple, fetch_overrides: dict) -> dict:
    index, urls = item
    return fetch_partition(index, urls, recipe, out, archive_refs, fetch_overrides)


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


def _warc_progress(stats: dict) -> dict:
    return {"records": stats.get("read", {}).get("documents_in", 0),
            "documents": stats.get("text_scores", {}).get("documents_out", 0),
            "images": stats.get("text_scores", {}).get("images_out", 0)}


def _image_progress(stats: dict) -> dict:
    s = stats.get("image_fetch", {})
    return {"images": s.get("documents_in", 0), "usable": s.get("documents_out", 0)}


def _publish(item: tuple, recipe: dict, out: str, sets_dir: str, flagged_file: str, upstream_fp: str) -> dict:
    index, key = item
    return publish_part(index, key, recipe, out, sets_dir, flagged_file, upstream_fp)


def _file_digest(path: Path) -> str | None:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _optout_lookups(out: Path, keys: list[str], table_parts: int, recipe: dict, upstream_fp: str,
                    engine: Engine) -> tuple[Path, Stats]:
    """Look up every distinct document and image URL once: Spawning (per URL bucket, one client so its rate cap
    holds; skipped loudly without a key) and C2PA in the fetched image bytes (per image-table part).  Writes
    ``OUT/parts/optout/flagged.json`` ({url: [source, detail]}) and returns it with the lookup's stats."""
    from .engine.dedup_reductions import bucket_urls, unique_urls_plan
    from .optout.c2pa import scan_image_table
    from .optout.stage import spawning_lookup
    from .stats import StageContext

    ocfg = recipe.get("optout") or {}
    folder = out / "parts" / "optout"
    flagged_file = folder / "flagged.json"
    spawn_cfg = ocfg.get("spawning") or {}
    fp = fingerprint(upstream_fp, spawn_cfg, ocfg.get("c2pa"), bool(os.environ.get("SPAWNING_OPTS_KEY")))
    stats = Stats()
    done = read_marker(folder, "lookups", fp)
    if done is not None and flagged_file.exists():
        return flagged_file, Stats.from_dict(done["stats"])
    ctx = StageContext("optout", ocfg, stats)
    plan = folder / "_urls"
    buckets = unique_urls_plan([out / "parts" / "paragraphs" / f"{k}.urls.parquet" for k in keys], plan, upstream_fp,
                               engine.dask_scheduler)
    flagged: dict[str, list] = {}
    client = None
    for b in range(buckets):
        urls = [u for u, _kind in bucket_urls(plan, b)]
        if client is None:
            from .optout.spawning import client_from_config

            client = client_from_config(spawn_cfg)
        for u, hit in spawning_lookup(urls, spawn_cfg, ctx, client).items():
            flagged[u] = list(hit)
    if buckets == 0:
        spawning_lookup([], spawn_cfg, ctx)  # still says loudly when the check is skipped
    c2pa_cfg = ocfg.get("c2pa") or {}
    if c2pa_cfg.get("enabled", True):
        tables = [str(out / "images" / "table" / f"part-{i:05d}.parquet") for i in range(table_parts)]
        tables = [t for t in tables if Path(t).exists()]
        for res in engine.map(scan_image_table, tables, desc="C2PA"):
            for u, detail in res["opted_out"].items():
                flagged.setdefault(u, ["c2pa", detail])
    write_json_atomic(flagged_file, dict(sorted(flagged.items())))
    from .io.markers import write_marker

    write_marker(folder, "lookups", {"fingerprint": fp, "stats": stats.to_dict()})
    return flagged_file, stats


def _banned_words(fcfg: dict) -> list[str]:
    img = fcfg.get("image") or {}
    path = (fcfg.get("wordlists") or {}).get("url_ban_words")
    if not img.get("banned_url_substrings", True) or not path:
        return []
    from .quality.wordlists import load_wordlist

    return sorted(load_wordlist(path))


def _prune(folder: Path, keep: set[str]) -> None:
    """Remove outputs (and their markers) of an earlier run that this run no longer produces."""
    if not folder.exists():
        return
    for f in folder.glob("part-*.parquet"):
        if f.stem not in keep:
            f.unlink()
            (folder / "_done" / f"{f.stem}.json").unlink(missing_ok=True)


def _stats_json(stats: Stats, refs: list, recipe: dict, dump: str | None, started: str, seconds: float,
                run_info: dict | None) -> dict:
    stages = stats.to_dict()
    ordered = {name: stages[name] for name in DOC_STAGES if name in stages}
    ordered.update({k: v for k, v in stages.items() if k not in ordered})
    problems = stats.balance_problems(DOC_STAGES)
    chain = [n for n in DOC_STAGES if n in stages]
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
