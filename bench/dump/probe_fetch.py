#!/usr/bin/env python3
"""Peak memory of one image-fetch task (issue 19): ``images.partition.fetch_table_part`` over ``N`` URLs served by
a generated image archive (``bench/pipeline/gen_inputs.write_image_archive``, 120 variants cut from the CC0
photos, each URL a revisit of one), with the real recipe and ``--no-network``'s fetch override, each size in a
fresh subprocess.

    .venv/bin/python bench/dump/probe_fetch.py --urls 500 2000 8000
    .venv/bin/python bench/dump/probe_fetch.py --urls 2000 --tracemalloc      # + Python heap and Arrow pool peaks

Per size, one JSON line: ``baseline_mb`` (VmRSS after the imports, the recipe, the archive's index, the NSFW
detector and a warm-up task of 20 URLs), ``peak_mb`` (VmHWM at the end), ``growth_mb`` (the difference: what the task itself held),
``cpu_s``, the part's rows and bytes and, with ``--tracemalloc``, the traced Python peak and
``pyarrow.default_memory_pool().max_memory()``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench_dump (beside this file) puts the repository and bench/pipeline on sys.path and in PYTHONPATH
from bench_dump import MB, SHARED  # noqa: E402
from bench_dump import proc_status_mb as status_mb  # noqa: E402


def make_inputs(folder: Path, n: int, variants: int = 120, seed: int = 0) -> dict:
    """``n`` image URLs on ``n // 4`` generated hosts, all in one archive; their list in ``urls.json``."""
    from gen_inputs import make_variants, write_image_archive

    urls = [f"https://site{i // 4}.probe.example.org/img/{i:06d}.jpg" for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    info = write_image_archive(urls, make_variants(SHARED / "data" / "images" / "cc0-photos", variants, seed),
                               folder / "images.warc.gz", 0.0, seed)
    (folder / "urls.json").write_text(json.dumps(urls))
    return info


def child(folder: str, trace: bool, checkpoint: int | None, nsfw: bool = True) -> None:
    folder_p = Path(folder)
    if trace:
        import tracemalloc

        tracemalloc.start()
    import pyarrow as pa

    from obelics_builder.images.nsfw import detector_or_reason, nsfw_config
    from obelics_builder.images.partition import fetch_table_part
    from obelics_builder.recipe import load_recipe
    from obelics_builder.sources.archive import ImageArchive
    from obelics_builder.sources.commoncrawl import WarcRef

    recipe = load_recipe()
    if checkpoint:
        recipe = {**recipe, "images": {**(recipe.get("images") or {}), "checkpoint_urls": checkpoint}}
    if not nsfw:
        fc = recipe["filters_config"]
        recipe = {**recipe, "filters_config": {**fc, "image": {**(fc.get("image") or {}), "nsfw": {"enabled": False}}}}
    urls = json.loads((folder_p / "urls.json").read_text())
    ref = WarcRef(uri=str(folder_p / "images.warc.gz"), name="images.warc.gz")
    archive = ImageArchive([ref])
    archive.index  # noqa: B018 - built before the baseline
    detector_or_reason(nsfw_config(recipe["filters_config"]))  # the detector's model loaded (cached) before it too
    # a warm-up task of 20 URLs (another part, another OUT): the modules the fetch imports, the detector's first
    # inference, the thread pools are in the baseline, not in what the measured task holds
    fetch_table_part(9, urls[-20:], recipe, str(folder_p / "warm"), archive, {"network": False},
                     archive_names=[ref.name])
    base = status_mb("VmRSS")
    if trace:
        tracemalloc.reset_peak()
        traced0 = tracemalloc.get_traced_memory()[0]
    cpu0 = time.process_time()
    stats = fetch_table_part(0, urls, recipe, str(folder_p / "out"), archive, {"network": False},
                             archive_names=[ref.name])
    cpu = time.process_time() - cpu0
    part = folder_p / "out" / "images" / "table" / "part-00000.parquet"
    import pyarrow.parquet as pq

    md = pq.ParquetFile(part).metadata
    res = {"urls": len(urls), "baseline_mb": round(base, 1), "peak_mb": round(status_mb("VmHWM"), 1),
           "growth_mb": round(status_mb("VmHWM") - base, 1), "cpu_s": round(cpu, 2), "rows": md.num_rows,
           "row_groups": md.num_row_groups, "part_mb": round(part.stat().st_size / MB, 1),
           "usable": stats["stages"]["image_fetch"]["documents_out"] if "stages" in stats else None}
    if trace:
        cur, peak = tracemalloc.get_traced_memory()
        res.update(traced_peak_mb=round((peak - traced0) / MB, 1), traced_end_mb=round((cur - traced0) / MB, 1),
                   arrow_pool_max_mb=round(pa.default_memory_pool().max_memory() / MB, 1))
    print(json.dumps(res), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--urls", type=int, nargs="+", default=[500, 2000, 8000])
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--checkpoint-urls", type=int, default=None, help="the recipe's images.checkpoint_urls if unset")
    p.add_argument("--no-nsfw", action="store_true", help="NSFW scoring off (to see the detector's share)")
    p.add_argument("--tmp", default="/tmp")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(a.child, a.tracemalloc, a.checkpoint_urls, not a.no_nsfw)
        return 0
    env = dict(os.environ)  # PYTHONPATH holds the repository (bench_dump)
    for n in a.urls:
        folder = Path(tempfile.mkdtemp(prefix=f"probe-fetch-{n}-", dir=a.tmp))
        try:
            info = make_inputs(folder, n)
            cmd = [sys.executable, __file__, "--child", str(folder)] + (["--tracemalloc"] if a.tracemalloc else [])
            if a.no_nsfw:
                cmd.append("--no-nsfw")
            if a.checkpoint_urls:
                cmd += ["--checkpoint-urls", str(a.checkpoint_urls)]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            res["archive_variant_mb"] = info["variant_mb"]
            print(json.dumps(res), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
