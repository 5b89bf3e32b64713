"""The opt-out lookups step: every distinct document and image URL of the run looked up once."""
from __future__ import annotations

from pathlib import Path

from ..io.markers import read_marker, write_json_atomic, write_marker
from ..stats import StageContext, Stats


def optout_lookups(folder: Path, url_files: list[Path], table_dir: Path, table_parts: int, recipe: dict, fp: str,
                   engine) -> Stats:
    """Spawning (per URL bucket, one client so its rate cap holds; skipped loudly, reading no URL, when disabled or
    without a key) and C2PA in the
    fetched image bytes (per image-table part).  Writes ``folder/flagged.json`` ({url: [source, detail]}) and a
    marker holding ``fp`` and the lookup's stats; returns the stats (the stored ones when the marker holds ``fp``)."""
    from ..engine.dedup_reductions import bucket_urls, unique_urls_plan
    from ..optout.c2pa import scan_image_table
    from ..optout.stage import spawning_lookup

    ocfg = recipe.get("optout") or {}
    flagged_file = folder / "flagged.json"
    spawn_cfg = ocfg.get("spawning") or {}
    done = read_marker(folder, "lookups", fp)
    if done is not None and flagged_file.exists():
        return Stats.from_dict(done["stats"])
    stats = Stats()
    ctx = StageContext("optout", ocfg, stats)
    flagged: dict[str, list] = {}
    from ..optout.spawning import client_from_config

    client = client_from_config(spawn_cfg)
    if spawn_cfg.get("enabled", True) and client.has_key:
        # the distinct URLs, one hash bucket at a time on this process (one client, so its rate cap holds)
        plan = folder / "_urls"
        for b in range(unique_urls_plan(url_files, plan, fp, engine.dask_scheduler)):
            urls = [u for u, _kind in bucket_urls(plan, b)]
            for u, hit in spawning_lookup(urls, spawn_cfg, ctx, client).items():
                flagged[u] = list(hit)
    else:  # nothing to ask: no URL is read on the driver, the check still says loudly that it is skipped
        spawning_lookup([], spawn_cfg, ctx, client)
    c2pa_cfg = ocfg.get("c2pa") or {}
    if c2pa_cfg.get("enabled", True):
        tables = [str(table_dir / f"part-{i:05d}.parquet") for i in range(table_parts)]
        tables = [t for t in tables if Path(t).exists()]
        for res in engine.map(scan_image_table, tables, desc="C2PA"):
            for u, detail in res["opted_out"].items():
                flagged.setdefault(u, ["c2pa", detail])
    write_json_atomic(flagged_file, dict(sorted(flagged.items())))
    write_marker(folder, "lookups", {"fingerprint": fp, "stats": stats.to_dict()})
    return stats
