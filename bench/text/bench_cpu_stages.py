#!/usr/bin/env python3
"""CPU stages of a whole single-process crawl: CPU-seconds per 1,000 pages per stage, pages per CPU-second.

    PYTHONPATH=$PWD .venv/bin/python bench/text/bench_cpu_stages.py [WARC ...] [--profile FILE] [--keep DIR]

Runs :func:`obelics_builder.pipeline.run_pipeline` with the default recipe on the given WARCs (default: the dev
WARCs of ``../shared/eval/dev``, 1,609 real, unique pages) in this process (``Engine("sync")``), with the image
stage replaced by a synthetic image table (every unique image URL "fetched": 400x300 JPEG, a pHash and an NSFW
score derived from the URL, no bytes), so the final passes see documents with images and the figures are those of
the CPU stages alone: read, extract, text scores (lang-id / metrics), decisions, dedup, final passes, writing.

Every timed region is charged its *own* CPU time (``time.process_time``; a region nested in another, such as the
Parquet writes of a stage, is subtracted from its parent), so the stage figures add up to the whole run; ``engine``
is what no region claims (the pipeline's glue, markers, stats).  Start-up is measured apart, in subprocesses:
``python -c 'import obelics_builder.cli'`` and a whole ``obelics-build crawl`` of one page (``--startup``).
Prints the figures, then one final JSON line.
"""
from __future__ import annotations

import argparse
import cProfile
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DEV = Path(os.environ.get("OBELICS_SHARED", REPO.parent / "shared")) / "eval" / "dev"

_stack: list[list] = []  # [label, start, child time]
TOTALS: dict[str, float] = {}


def _enter(label: str) -> None:
    _stack.append([label, time.process_time(), 0.0])


def _leave() -> None:
    label, t0, child = _stack.pop()
    spent = time.process_time() - t0
    TOTALS[label] = TOTALS.get(label, 0.0) + spent - child
    if _stack:
        _stack[-1][2] += spent


def timed(label: str, fn):
    def wrapper(*a, **k):
        _enter(label)
        try:
            return fn(*a, **k)
        finally:
            _leave()
    wrapper.__name__ = getattr(fn, "__name__", label)
    return wrapper


def timed_iter(label: str, fn):
    def wrapper(*a, **k):
        it = iter(fn(*a, **k))
        while True:
            _enter(label)
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                _leave()
            yield item
    return wrapper


def _synthetic_fetch(item, recipe, out, archive_refs, fetch_overrides):
    """The image stage's unit, replaced: one 'fetched' row per URL, derived from its hash (no I/O, no decode)."""
    from obelics_builder.images.ledger import fetch_input_fingerprint, table_stats, write_table_part
    from obelics_builder.io.markers import read_marker
    from obelics_builder.stats import Stats

    index, urls = item
    folder = Path(out) / "images" / "table"
    key = f"part-{index:05d}"
    urls = sorted(set(urls))
    fp = fetch_input_fingerprint(urls, {"synthetic": True}, recipe["filters_config"], [])
    done = read_marker(folder, key)
    if done is not None and done.get("input_fingerprint") == fp:
        return done["stats"]
    rows = []
    for u in urls:
        h = hashlib.sha256(u.encode()).hexdigest()
        rows.append({"url": u, "status": 200, "error": None, "source": "archive", "bytes": 20000, "seconds": 0.0,
                     "attempts": 1, "sha256": h, "width": 400, "height": 300, "format": "jpeg", "reason": None,
                     "data": b"", "phash": h[:16], "stored_width": 400, "stored_height": 300,
                     "nsfw": int(h[16:20], 16) / 0x10000 * 0.5})
    stats = Stats()
    table_stats(stats, rows)
    write_table_part(folder, key, rows, fp, stats.to_dict())
    return stats.to_dict()


def instrument() -> None:
    import obelics_builder.extract as ext
    import obelics_builder.images.phash_groups as phash_groups
    import obelics_builder.io.parquet as iop
    import obelics_builder.optout.manifest as manifest
    import obelics_builder.pipeline as pl
    import obelics_builder.quality.langid as lid
    import obelics_builder.quality.score as score
    import obelics_builder.tasks as tasks

    ext.extract_stage = timed("extract", ext.extract_stage)
    score.text_score_stage = timed("text_scores.metrics", score.text_score_stage)
    lid.LangId.predict_with_scores = timed("text_scores.langid", lid.LangId.predict_with_scores)
    lid.LangId.predict = timed("text_scores.langid", lid.LangId.predict)
    pl.process_warc = timed("read", pl.process_warc)
    pl.filter_part = timed("decisions", pl.filter_part)
    for name in ("url_losers", "near_duplicate_losers", "dedup_part"):
        setattr(pl, name, timed("dedup", getattr(pl, name)))
    pl.image_url_plan = timed("images (synthetic)", pl.image_url_plan)
    pl._fetch_bucket = timed("images (synthetic)", _synthetic_fetch)
    phash_groups.apply_phash_groups = timed("images (synthetic)", phash_groups.apply_phash_groups)
    for name in ("finalize_part", "frequent_paragraphs", "paragraphs_part", "keep_best_losers", "_optout_lookups",
                 "_publish"):
        setattr(pl, name, timed("final passes", getattr(pl, name)))
    manifest.merge_manifests = timed("final passes", manifest.merge_manifests)
    iop.DocumentWriter.write = timed("writing", iop.DocumentWriter.write)
    iop.DocumentWriter.close = timed("writing", iop.DocumentWriter.close)
    tasks.iter_document_batches = timed_iter("reading parts", tasks.iter_document_batches)
    if hasattr(iop.DocumentWriter, "write_table"):  # row passes written as stored (issue 18)
        iop.DocumentWriter.write_table = timed("writing", iop.DocumentWriter.write_table)
        tasks.iter_row_batches = timed_iter("reading parts", tasks.iter_row_batches)
        tasks.documents_of = timed("reading parts", tasks.documents_of)


def run(warcs: list[Path], out: Path, profile: str | None) -> dict:
    from obelics_builder.engine import Engine
    from obelics_builder.pipeline import run_pipeline
    from obelics_builder.recipe import load_recipe
    from obelics_builder.sources.commoncrawl import WarcRef

    recipe = load_recipe("obelics")
    recipe.setdefault("images", {})["network"] = False
    refs = [WarcRef(uri=str(w), name=w.name) for w in warcs]
    prof = cProfile.Profile() if profile else None
    t0, w0 = time.process_time(), time.time()
    if prof:
        prof.enable()
    with Engine(scheduler="sync", progress=False, quiet=True) as engine:
        result = run_pipeline(refs, recipe, out, engine)
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    return {"cpu": time.process_time() - t0, "wall": time.time() - w0, "stats": result}


def _one_page_warc(path: Path) -> None:
    words = ("The city council met on Tuesday evening to discuss the new park, which has been planned for more than "
             "three years. Residents who attended the meeting said they were happy that the work would finally "
             "begin, and the mayor said that the first trees should be planted before the end of the summer.")
    body = (f"<html><head><title>Park</title></head><body><article><h1>The new park</h1><p>{words}</p>"
            "<p>Some people were worried about the cost of the project, but the council explained that most of the "
            "money would come from a national fund. A final vote is expected at the next meeting in two weeks.</p>"
            "</article></body></html>").encode()
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    head = ("WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://example.com/a\r\n"
            "WARC-Date: 2023-01-01T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n").encode()
    with gzip.open(path, "wb") as f:
        f.write(head + http + b"\r\n\r\n")


def _child_cpu(cmd: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S", *cmd], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    user, sys_ = r.stderr.strip().splitlines()[-1].split()
    return float(user) + float(sys_)


#: what a crawl worker imports and sets up before its first page (the extractor, scoring, decisions, tables)
IMPORTS = ("import obelics_builder.cli, obelics_builder.pipeline, obelics_builder.extract.stage, "
           "obelics_builder.quality.score, obelics_builder.quality.decide, obelics_builder.quality.final; "
           "import obelics_builder.quality.metrics as M; M.char_class_counts(['a b'])")


def startup(tmp: Path, repeat: int = 3) -> dict:
    warc = tmp / "one-page.warc.gz"
    _one_page_warc(warc)
    imp = min(_child_cpu([sys.executable, "-c", IMPORTS]) for _ in range(repeat))
    crawl = []
    for i in range(repeat):
        crawl.append(_child_cpu([sys.executable, "-m", "obelics_builder.cli", "crawl", "--warc", str(warc),
                                 "--out", str(tmp / f"one-{i}"), "--scheduler", "sync", "--no-dataset", "--no-network",
                                 "--quiet"]))
    return {"import_cpu_s": round(imp, 3), "one_page_crawl_cpu_s": round(min(crawl), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("warcs", nargs="*", type=Path)
    ap.add_argument("--profile", default=None, help="write a cProfile of the run to this file")
    ap.add_argument("--keep", type=Path, default=None, help="write the output here (kept) instead of a temp folder")
    ap.add_argument("--startup", action="store_true", help="also measure start-up CPU in subprocesses")
    args = ap.parse_args()
    warcs = args.warcs or sorted(DEV.glob("*.warc.gz"))
    if not warcs:
        ap.error(f"no WARCs given and none in {DEV} (set OBELICS_SHARED)")
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        out = args.keep or Path(tmp) / "out"
        instrument()
        r = run(warcs, out, args.profile)
        st = r["stats"]["stages"]
        pages = st["extract"]["documents_in"]
        cpu_images = TOTALS.get("images (synthetic)", 0.0)
        cpu_stages = r["cpu"] - cpu_images
        claimed = sum(v for k, v in TOTALS.items())
        per = {k: round(v / pages * 1000, 3) for k, v in sorted(TOTALS.items())}
        per["engine"] = round((r["cpu"] - claimed) / pages * 1000, 3)
        res = {"pages": pages, "documents": r["stats"]["summary"]["documents"], "cpu_s": round(r["cpu"], 3),
               "wall_s": round(r["wall"], 3), "cpu_s_per_1000_pages": per,
               "pages_per_cpu_s": round(pages / cpu_stages, 2)}
        if args.startup:
            res["startup"] = startup(Path(tmp))
    print(f"{len(warcs)} WARCs, {pages} pages, {res['documents']} documents; CPU {r['cpu']:.2f} s "
          f"(wall {r['wall']:.2f} s)")
    print("CPU-seconds per 1,000 pages:")
    for k, v in per.items():
        print(f"  {k:22s} {v:8.3f}")
    print(f"CPU stages: {res['pages_per_cpu_s']:.1f} pages per CPU-second (synthetic images excluded)")
    if "startup" in res:
        print(f"start-up: import {res['startup']['import_cpu_s']} CPU-s, one-page crawl "
              f"{res['startup']['one_page_crawl_cpu_s']} CPU-s")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
