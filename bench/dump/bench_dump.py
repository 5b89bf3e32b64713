#!/usr/bin/env python3
"""A simulated Common Crawl dump through the whole pipeline: cost per page, memory and tasks as the WARC count grows.

1. Inputs, per size (``--warcs 100 500 2000``): ``N`` small WARCs of ``--pages-per-warc`` pages (default 2) each,
   Common Crawl-shaped (request / response / metadata records, gzip per record; ``bench/pipeline/gen_inputs``'s
   writers).  The pages are the real HTML of the bundled sample mirror (its WARCs and ``../shared/data/pages``) and
   of ``../shared/eval/dev`` (``gen_inputs.page_pool``) with 1 to ``--max-images`` image URLs, 70% of them among
   those the recipe keeps to the end (``--kept-share``; one crawl of the pool finds them), drawn at random and put under new URLs on generated hosts (about four pages per host, the host count growing with the
   dump), plus 3% exact copies on mirror hosts, 3% near copies and 1% re-crawls (``gen_inputs.plan_records``).  Every
   image URL the pages yield but 4% is answered by a generated image archive (``gen_inputs.write_image_archive``:
   real JPEG/PNG variants cut from ``../shared/data/images/cc0-photos``), so the image stage does its real work
   (archive lookup, decode, checks, pHash, NSFW) with no network.
2. The run: ``obelics-build crawl --warc ... --image-archive ... --no-network --workers W`` (the real recipe, every
   stage, the dataset shards too) in a driver subprocess (this file with ``--drive``) on a LocalCluster.  The
   driver records its own CPU (``getrusage(RUSAGE_SELF)``: the pipeline, the Dask scheduler and the nannies live
   there) and peak RSS (``VmHWM``), the worker processes' CPU (``RUSAGE_CHILDREN`` once the cluster has closed
   and joined them: every worker, a restarted one too), each live worker's peak RSS (``VmHWM``, asked before the
   cluster closes) and, through a scheduler plugin, how many tasks ran and the most the scheduler held at once.
3. Figures per run: CPU-seconds per page read (driver + workers, everything: not stats.json's ``cpu_seconds``,
   which are the stages' own and leave out the run-wide reductions and the engine), driver and worker peak RSS,
   tasks, wall time; then a projection to ``--project-warcs`` (90,000) WARCs: tasks per WARC and driver RSS
   extrapolated linearly from the smallest and largest runs, CPU from the largest run's per-page figure.

Faults (``--faults``, at the smallest size): the undisturbed run, a run with one worker killed (SIGKILL) mid-run,
a run whose driver (and cluster) is killed mid-run then rerun to completion, compared by the hash of the sorted
document keys and of the dataset shards' rows; and a run with ``--corrupt`` WARCs truncated (their read errors
counted, every other WARC completing).

    .venv/bin/python bench/dump/bench_dump.py --warcs 100 500 2000
    .venv/bin/python bench/dump/bench_dump.py --warcs 30 --faults

Prints one line per run (stderr), a JSON line ``{"details": [...]}`` (every figure of every run), with
``--faults`` a JSON line ``{"faults": {...}}``, and last one JSON line ``{"runs": [...], "projection": {...}}``.  Inputs and outputs go under ``--tmp`` (deleted unless ``--keep``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared"
for _p in (REPO, REPO / "bench" / "pipeline"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
os.environ["PYTHONPATH"] = str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")

MB = 2 ** 20


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------

def paragraph_bank(pages: list[dict], min_words: int = 25) -> list[str]:
    """The text of every ``<p>`` of ``pages`` with at least ``min_words`` words (HTML-escaped), first seen kept."""
    import html

    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    seen: dict[str, None] = {}
    for p in pages:
        for node in HTMLParser(p["body"]).css("p"):
            text = " ".join(node.text(separator=" ").split())
            if len(text.split()) >= min_words:
                seen.setdefault(html.escape(text), None)
    return list(seen)


def vary(body: bytes, rng: random.Random, bank: list[str], words: int) -> bytes:
    """The page with about ``words`` words of bank paragraphs put in front of its content (after ``<body ...>``):
    two copies of one pool page are then no near duplicates of each other (each has its own mix), as two pages of
    a dump are not, while the page keeps its layout, links and images."""
    out, n = [], 0
    while n < words:
        para = bank[rng.randrange(len(bank))]
        out.append(f"<p>{para}</p>")
        n += para.count(" ") + 1
    block = ('<div class="story">' + "".join(out) + "</div>").encode()
    low = body[:200_000].lower()
    i = low.find(b"<body")
    j = body.find(b">", i) + 1 if i >= 0 else 0
    return body[:j] + block + body[j:]


def dump_pages(pool: list[dict], n: int, seed: int, bank: list[str], words: int = 600) -> list[dict]:
    """``n`` pool pages under new URLs on ``~n/4`` generated hosts ({url, body, ctype}), each with its own
    ``words`` words of bank paragraphs (:func:`vary`)."""
    rng = random.Random(seed)
    hosts = max(8, n // 4)
    out = []
    for k in range(n):
        p = pool[rng.randrange(len(pool))]
        path = p["url"].split("://", 1)[1].partition("/")[2]
        h = rng.randrange(hosts)
        out.append({**p, "url": f"https://site{h}.dump{h % 7}.example.org/{k}/{path}",
                    "body": vary(p["body"], rng, bank, words)})
    return out


def build_inputs(folder: Path, pool: list[dict], variants: list, warcs: int, per_warc: int, bank: list[str],
                 seed: int = 0) -> dict:
    """``folder/warcs/*.warc.gz`` (``warcs`` files) and ``folder/images.warc.gz``; returns a summary."""
    from gen_inputs import plan_records, record_image_urls, write_image_archive, write_page_warcs

    t0 = time.perf_counter()
    # the copies come on top of the unique pages: fewer unique ones so that each WARC holds ``per_warc`` records
    unique = int(warcs * per_warc / 1.07)
    records = plan_records(dump_pages(pool, unique, seed, bank), exact=0.03, near=0.03, recrawl=0.01, seed=seed)
    records = records[:warcs * per_warc]
    records += records[:warcs * per_warc - len(records)]  # (rounding) top up to whole WARCs
    paths = write_page_warcs(records, folder / "warcs", per_warc, prefix="DUMP")
    archive = write_image_archive(record_image_urls(records), variants, folder / "images.warc.gz", 0.04, seed)
    return {"warcs": [str(p) for p in paths], "image_archive": str(folder / "images.warc.gz"),
            "records": len(records), "hosts": len({r["url"].split("/")[2] for r in records}),
            "warc_mb": round(sum(p.stat().st_size for p in paths) / 1e6, 1), **archive,
            "build_s": round(time.perf_counter() - t0, 1)}


def load_pool(max_images: int, variants: list, tmp: Path, workers: int,
              kept_share: float) -> tuple[list[dict], list[str]]:
    """The pool's pages with 1 to ``max_images`` image URLs; a ``kept_share`` of the draws comes from those the
    real recipe keeps to the end (found by one crawl of the pool under its own URLs), the rest from those it
    removes (text filters, too few images...), so that every stage has work at every size.  And the paragraph
    bank (:func:`paragraph_bank`) of the kept pages."""
    from gen_inputs import page_pool, record_image_urls, write_image_archive, write_page_warcs  # (scripts/ on the path)
    from build_sample_mirror import page_image_urls

    pool = [p for p in page_pool(SHARED / "eval" / "dev")
            if 1 <= len(page_image_urls(p["url"], p["body"])) <= max_images and len(p["body"]) <= 300_000]
    if not pool:
        raise SystemExit("no pages with images found in the sample mirror and ../shared/eval/dev")
    folder = tmp / "pool"
    records = [{**p, "kind": "unique"} for p in pool]
    inputs = {"warcs": [str(w) for w in write_page_warcs(records, folder / "warcs", 50, prefix="POOL")],
              "image_archive": str(folder / "images.warc.gz")}
    write_image_archive(record_image_urls(records), variants, folder / "images.warc.gz", 0.0)
    run_crawl(inputs, folder / "out", workers)
    kept = set(document_keys(folder / "out"))
    shutil.rmtree(folder, ignore_errors=True)
    good, other = [p for p in pool if p["url"] in kept], [p for p in pool if p["url"] not in kept]
    if not good:
        raise SystemExit("bench_dump: the recipe keeps none of the pool's pages")
    n = len(good) if not other else min(len(good) / kept_share, len(other) / (1 - kept_share)) if kept_share < 1 else len(good)
    mix = good[:round(n * kept_share)] + other[:round(n * (1 - kept_share))]
    print(f"page pool: {len(pool)} pages with 1-{max_images} image URLs, {len(good)} kept by the recipe; "
          f"{len(mix)} drawn from ({kept_share:.0%} of them kept ones)", file=sys.stderr)
    bank = paragraph_bank(good)
    print(f"paragraph bank: {len(bank)} paragraphs of the kept pages", file=sys.stderr)
    return mix, bank


def corrupt(path: Path) -> None:
    """Cut a WARC in the middle of a gzip member (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\x00garbage")


# ---------------------------------------------------------------------------------------------------------------
# The driver (a subprocess: its own and its workers' rusage)
# ---------------------------------------------------------------------------------------------------------------

def _task_counter(scheduler):
    from distributed.diagnostics.plugin import SchedulerPlugin

    class TaskCounter(SchedulerPlugin):
        """Tasks that ran on a worker, and the most tasks the scheduler held at once."""

        name = "bench-dump-task-counter"

        def __init__(self, scheduler):
            self.ran = 0
            self.peak = 0
            self.by_prefix: dict[str, int] = {}
            self.scheduler = scheduler

        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "memory" and start == "processing":
                from dask.utils import key_split

                self.ran += 1
                name = key_split(key)
                self.by_prefix[name] = self.by_prefix.get(name, 0) + 1
            if self.scheduler is not None:
                self.peak = max(self.peak, len(self.scheduler.tasks))

    return TaskCounter(scheduler)


def _worker_pids(dask_worker=None) -> int:
    return os.getpid()


def proc_status_mb(field: str) -> float:
    """A size field of this process's /proc/self/status (``VmHWM``, ``VmRSS``...) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def peak_rss_mb(_dask_worker=None) -> float:
    """This process's own peak RSS: ``VmHWM`` of /proc/self/status.  Not ``ru_maxrss``: Linux keeps that across
    ``execve``, so a process started by fork + exec reports its parent's RSS at the fork when it never grew past it."""
    return proc_status_mb("VmHWM")


def drive(spec_file: str) -> int:
    """``crawl`` in this process (the driver) with a task counter on the scheduler; writes the result file."""
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    import obelics_builder.cli as cli
    from obelics_builder.engine import executor

    counter = None
    killed: list[int] = []
    enter, leave = executor.Engine.__enter__, executor.Engine.__exit__
    workers_rss: dict[str, float] = {}

    def kill_one_worker(engine) -> None:
        # work done, work left: a timer would depend on the machine's speed and load (a fast run ended before one)
        while markers_done(Path(spec["out"])) < spec["kill_worker_after_markers"]:
            time.sleep(0.05)
        try:
            pids = sorted(engine.client.run(_worker_pids).values())
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        except Exception as exc:  # (reported, not hidden: the fault run then says nothing was killed)
            print(f"bench_dump: could not kill a worker: {exc!r}", file=sys.stderr)

    def entered(self):
        nonlocal counter
        enter(self)
        counter = _task_counter(self.cluster.scheduler)
        self.cluster.scheduler.add_plugin(counter)
        if spec.get("kill_worker_after_markers") is not None:
            threading.Thread(target=kill_one_worker, args=(self,), daemon=True).start()
        return self

    def left(self, *exc):
        try:  # every live worker's peak (a killed one is gone: its successor is measured)
            workers_rss.update(self.client.run(peak_rss_mb))
        finally:
            return leave(self, *exc)

    executor.Engine.__enter__, executor.Engine.__exit__ = entered, left

    # the driver's peak before and after its two steps that hold a whole run's images in this process
    import obelics_builder.dataset as dataset
    import obelics_builder.images.phash_groups as phash_groups

    marks: dict[str, float] = {}

    def marked(module, name: str):
        fn = getattr(module, name)

        def wrapper(*a, **k):
            marks.setdefault(f"before_{name}", peak_rss_mb())
            try:
                return fn(*a, **k)
            finally:
                marks[f"after_{name}"] = peak_rss_mb()
        setattr(module, name, wrapper)

    marked(phash_groups, "apply_phash_groups")
    marked(dataset, "write_dataset")
    t0 = time.perf_counter()
    args = ["crawl", "--warc", *spec["warcs"], "--image-archive", spec["image_archive"], "--out", spec["out"],
            "--workers", str(spec["workers"]), "--no-network", "--quiet"]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(args)
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(spec["result"]).write_text(json.dumps({
        "rc": rc, "wall_s": wall,
        "driver_cpu_s": me.ru_utime + me.ru_stime, "driver_peak_rss_mb": peak_rss_mb(),
        "workers_cpu_s": kids.ru_utime + kids.ru_stime, "worker_peak_rss_mb": max(workers_rss.values(), default=0.0),
        "tasks": counter.ran, "peak_scheduler_tasks": counter.peak, "killed_worker": killed,
        "tasks_by_prefix": dict(sorted(counter.by_prefix.items(), key=lambda kv: -kv[1])),
        "driver_peak_rss_marks_mb": {k: round(v, 1) for k, v in marks.items()},
    }), encoding="utf-8")
    return 0


def markers_done(out: Path) -> int:
    """The completion markers under ``OUT/parts`` (every step's, so far)."""
    return len(list((out / "parts").glob("*/_done/*.json")))


def run_crawl(inputs: dict, out: Path, workers: int, interrupt_after_markers: int | None = None,
              kill_worker_after_markers: int | None = None) -> dict:
    """One driver subprocess.  With ``interrupt_after_markers`` its whole process group is killed as soon as that
    many completion markers exist under ``OUT/parts`` and ``{}`` returned (also ``{}`` when the run ended before,
    which the caller can tell by ``OUT/stats.json``); with ``kill_worker_after_markers`` the driver kills one worker
    (SIGKILL) at that many markers.  Work done and work left, not a timer, which depends on the machine's load."""
    from gen_inputs import compile_package

    spec = {"warcs": inputs["warcs"], "image_archive": inputs["image_archive"], "out": str(out), "workers": workers,
            "result": str(out) + ".result.json", "kill_worker_after_markers": kill_worker_after_markers}
    spec_file = Path(str(out) + ".spec.json")
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    compile_package(REPO)  # the driver and every worker would otherwise compile the package in every run
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--drive", str(spec_file)],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if interrupt_after_markers is not None:
        while p.poll() is None:
            if markers_done(out) >= interrupt_after_markers:
                os.killpg(p.pid, signal.SIGKILL)  # the driver, its scheduler and every worker: a crash, no cleanup
                p.wait()
                return {}
            time.sleep(0.1)
    _, err = p.communicate()
    if p.returncode != 0 or not Path(spec["result"]).exists():
        raise SystemExit(f"bench_dump: the crawl driver failed (exit {p.returncode}):\n{err[-4000:]}")
    return json.loads(Path(spec["result"]).read_text(encoding="utf-8"))


def document_keys(out: Path) -> list[str]:
    """The URL of every document in ``OUT/documents``."""
    import pyarrow.parquet as pq

    keys = []
    for f in sorted((out / "documents").glob("*.parquet")):
        keys += [json.loads(m)["url"] for m in pq.read_table(f, columns=["general_metadata"]).column(0).to_pylist()]
    return keys


def output_hashes(out: Path) -> dict:
    """sha256 of the sorted document keys (``OUT/documents``) and of the dataset shards' rows, with counts."""
    import pyarrow.parquet as pq

    keys = document_keys(out)
    shards = hashlib.sha256()
    files = sorted((out / "dataset" / "data").glob("*.parquet"))
    for f in files:
        shards.update(f.name.encode())
        for row in pq.read_table(f).to_pylist():
            shards.update(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8"))
    return {"documents": len(keys), "keys_sha256": hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest(),
            "shards": len(files), "shards_sha256": shards.hexdigest()}


# ---------------------------------------------------------------------------------------------------------------
# Runs, figures, projection
# ---------------------------------------------------------------------------------------------------------------

def figures(inputs: dict, res: dict, out: Path) -> dict:
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    pages = int(stats["stages"]["read"]["documents_out"])  # HTML responses read (records_in counts every record)
    cpu = res["driver_cpu_s"] + res["workers_cpu_s"]
    image_cpu = float(stats["stages"].get("image_fetch", {}).get("cpu_seconds") or 0.0)  # the fetch tasks' process CPU
    return {
        "warcs": len(inputs["warcs"]), "pages": pages,
        "cpu_s_per_page": round(cpu / pages, 5) if pages else None,
        "driver_peak_rss_mb": round(res["driver_peak_rss_mb"], 1),
        "worker_peak_rss_mb": round(res["worker_peak_rss_mb"], 1),
        "tasks": res["tasks"], "wall_s": round(res["wall_s"], 1),
        "cpu_s": round(cpu, 1), "driver_cpu_s": round(res["driver_cpu_s"], 1),
        "workers_cpu_s": round(res["workers_cpu_s"], 1), "peak_scheduler_tasks": res["peak_scheduler_tasks"],
        "tasks_by_prefix": res["tasks_by_prefix"],
        "driver_peak_rss_marks_mb": res.get("driver_peak_rss_marks_mb", {}),
        "documents": stats["summary"]["documents"], "unique_image_urls": stats["summary"]["unique_image_urls"],
        "image_urls_usable": stats["summary"]["image_urls_usable"], "image_fetch_cpu_s": round(image_cpu, 2),
        "stage_cpu_s": {k: round(float(v.get("cpu_seconds") or 0.0), 2) for k, v in stats["stages"].items()},
        "load_1min": round(os.getloadavg()[0], 2),
    }


def projection(runs: list[dict], warcs: int) -> dict:
    from obelics_builder.commands.estimate import CC_PAGES_PER_WARC

    a, b = min(runs, key=lambda r: r["warcs"]), max(runs, key=lambda r: r["warcs"])
    span = b["warcs"] - a["warcs"]
    rss_slope = (b["driver_peak_rss_mb"] - a["driver_peak_rss_mb"]) / span if span else 0.0
    pages_per_warc = b["pages"] / b["warcs"]
    out = {
        "warcs": warcs, "from_runs": [a["warcs"], b["warcs"]],
        "tasks": round(b["tasks"] / b["warcs"] * warcs),
        "driver_peak_rss_mb": round(b["driver_peak_rss_mb"] + rss_slope * (warcs - b["warcs"]), 1),
        "driver_rss_mb_per_1000_warcs": round(rss_slope * 1000, 2),
        "cpu_s_per_page": b["cpu_s_per_page"],
        # for ``obelics-build estimate --throughput-from`` (costs.from_bench_dump): the image stage apart, per URL
        "cpu_s_per_page_less_images": round((b["cpu_s"] - b["image_fetch_cpu_s"]) / b["pages"], 5),
        "cpu_s_per_image_url": (round(b["image_fetch_cpu_s"] / b["unique_image_urls"], 5)
                                if b["unique_image_urls"] else None),
        "image_urls_per_page": round(b["unique_image_urls"] / b["pages"], 4),
        "bench_pages": round(pages_per_warc * warcs),
        "bench_core_hours": round(b["cpu_s_per_page"] * pages_per_warc * warcs / 3600, 2),
        # an upper bound: the bench's figure per page carries the engine's per-WARC cost of 2-page WARCs
        "cc_pages": round(CC_PAGES_PER_WARC * warcs),
        "cc_core_hours_upper_bound": round(b["cpu_s_per_page"] * CC_PAGES_PER_WARC * warcs / 3600),
    }
    if span:
        out["cpu_s_per_page_ratio"] = round(b["cpu_s_per_page"] / a["cpu_s_per_page"], 3)
        out["driver_rss_ratio"] = round(b["driver_peak_rss_mb"] / a["driver_peak_rss_mb"], 3)
        out["peak_scheduler_tasks"] = round(b["peak_scheduler_tasks"] / b["warcs"] * warcs)
    fit = cpu_fit(runs)
    if fit is not None:  # CPU = fixed + per_page x pages over the runs: the cost per page without the start-up
        out["cpu_fit"] = fit
        net = {r["warcs"]: (r["cpu_s"] - fit["fixed_cpu_s"]) / r["pages"] for r in runs}
        out["net_cpu_s_per_page"] = {str(k): round(v, 5) for k, v in net.items()}
        out["net_cpu_s_per_page_ratio"] = round(net[b["warcs"]] / net[a["warcs"]], 3)
    out["targets"] = {
        "cpu_per_page_within_15pct": (abs(out.get("cpu_s_per_page_ratio", 1.0) - 1) <= 0.15) if span else None,
        "net_cpu_per_page_within_15pct": (abs(out["net_cpu_s_per_page_ratio"] - 1) <= 0.15) if fit else None,
        "driver_rss_under_1gb": b["driver_peak_rss_mb"] < 1024,
        "driver_rss_within_1_5x": (out["driver_rss_ratio"] <= 1.5) if span else None,
        "worker_rss_under_2gb": max(r["worker_peak_rss_mb"] for r in runs) < 2048,
    }
    return out


def cpu_fit(runs: list[dict]) -> dict | None:
    """Least squares of CPU-seconds on pages over the runs (None with fewer than two sizes): ``fixed_cpu_s`` is
    what a run costs whatever its size (imports, models, cluster start-up), ``cpu_s_per_page`` the rest."""
    if len({r["pages"] for r in runs}) < 2:
        return None
    xs, ys = [r["pages"] for r in runs], [r["cpu_s"] for r in runs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return {"fixed_cpu_s": round(my - slope * mx, 2), "cpu_s_per_page": round(slope, 5)}


def final_line(runs: list[dict], project_warcs: int) -> dict:
    return {"runs": [{k: r[k] for k in ("warcs", "pages", "cpu_s_per_page", "driver_peak_rss_mb",
                                        "worker_peak_rss_mb", "tasks", "wall_s")} for r in runs],
            "projection": projection(runs, project_warcs)}


def fault_runs(inputs: dict, tmp: Path, workers: int, reference: dict, corrupt_n: int,
               folder: Path) -> dict:
    """Kill a worker; kill and resume the whole run; a few corrupt WARCs.  Each compared with ``reference``."""
    res = {"reference": reference}
    out = tmp / "fault-kill-worker"
    r = run_crawl(inputs, out, workers, kill_worker_after_markers=max(1, len(inputs["warcs"]) // 3))
    res["kill_worker"] = {**output_hashes(out), "killed": r["killed_worker"], "wall_s": round(r["wall_s"], 1)}
    res["kill_worker"]["equal"] = _same(res["kill_worker"], reference)
    out = tmp / "fault-interrupt"
    first = run_crawl(inputs, out, workers, interrupt_after_markers=max(2, len(inputs["warcs"]) // 2))
    r = run_crawl(inputs, out, workers)
    res["interrupt_resume"] = {**output_hashes(out), "interrupted": not first, "resume_wall_s": round(r["wall_s"], 1)}
    res["interrupt_resume"]["equal"] = _same(res["interrupt_resume"], reference)
    if corrupt_n:
        bad_inputs = dict(inputs)
        bad_dir = folder / "corrupt"
        bad_dir.mkdir(exist_ok=True)
        bad = []
        warcs = list(inputs["warcs"])
        for i in range(corrupt_n):
            j = (i + 1) * len(warcs) // (corrupt_n + 1)
            dst = bad_dir / Path(warcs[j]).name
            shutil.copyfile(warcs[j], dst)
            corrupt(dst)
            warcs[j] = str(dst)
            bad.append(dst.name)
        bad_inputs["warcs"] = warcs
        out = tmp / "fault-corrupt"
        r = run_crawl(bad_inputs, out, workers)
        stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
        read = stats["stages"]["read"]
        res["corrupt"] = {"corrupt_warcs": bad, "rc": r["rc"], "read_errors": read.get("errors", {}),
                          "pages_read": read["documents_out"], "documents": stats["summary"]["documents"],
                          "reference_pages_read": reference.get("pages_read"),
                          "completed": (out / "documents").exists() and r["rc"] == 0}
    return res


def _same(a: dict, b: dict) -> bool:
    return a["keys_sha256"] == b["keys_sha256"] and a["shards_sha256"] == b["shards_sha256"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warcs", type=int, nargs="+", default=[100, 500, 2000], help="dump sizes in WARCs")
    p.add_argument("--pages-per-warc", type=int, default=2)
    p.add_argument("--max-images", type=int, default=12, help="pages with 1 to this many image URLs (default 12)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kept-share", type=float, default=0.7,
                   help="share of the drawn pages the recipe keeps to the end (default 0.7)")
    p.add_argument("--project-warcs", type=int, default=90_000)
    p.add_argument("--faults", action="store_true", help="at the smallest size: kill a worker, interrupt + resume, "
                   "corrupt WARCs; outputs compared with the undisturbed run")
    p.add_argument("--corrupt", type=int, default=2, help="corrupt WARCs in the fault runs (default 2)")
    p.add_argument("--tmp", default="/tmp")
    p.add_argument("--keep", action="store_true", help="keep the inputs and outputs")
    p.add_argument("--reproject", metavar="OUTPUT", help="print the final JSON line again from the details line of "
                   "an earlier run's output (e.g. with another --project-warcs); runs nothing")
    p.add_argument("--drive", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.drive:
        return drive(args.drive)
    if args.reproject:
        lines = [json.loads(x) for x in Path(args.reproject).read_text(encoding="utf-8").splitlines()
                 if x.startswith('{"details"')]
        if not lines:
            raise SystemExit(f"{args.reproject}: no details line (the output of bench_dump.py)")
        print(json.dumps(final_line(lines[-1]["details"], args.project_warcs)))
        return 0
    if any(n < 1 for n in args.warcs) or args.pages_per_warc < 1:
        raise SystemExit("--warcs and --pages-per-warc must be positive")
    from gen_inputs import make_variants

    tmp = Path(tempfile.mkdtemp(prefix="bench-dump-", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        variants = make_variants(SHARED / "data" / "images" / "cc0-photos", 120)
        pool, bank = load_pool(args.max_images, variants, tmp, args.workers, args.kept_share)
        print(f"inputs ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        runs, faults = [], None
        for n in sorted(args.warcs):
            folder = tmp / f"in-{n}"
            inputs = build_inputs(folder, pool, variants, n, args.pages_per_warc, bank)
            out = tmp / f"out-{n}"
            load = os.getloadavg()[0]
            res = run_crawl(inputs, out, args.workers)
            fig = figures(inputs, res, out)
            fig["load_1min_before"] = round(load, 2)
            fig["image_urls_in_archive"] = inputs["in_archive"]
            fig["hosts"] = inputs["hosts"]
            if runs:  # the cost of the pages added since the previous size (fixed start-up costs cancel out)
                prev = runs[-1]
                fig["marginal_cpu_s_per_page"] = round((fig["cpu_s"] - prev["cpu_s"]) / (fig["pages"] - prev["pages"]), 5)
            runs.append(fig)
            print(f"[{n} WARCs] {fig['pages']:,} pages, {fig['documents']:,} documents, "
                  f"{fig['unique_image_urls']:,} image URLs: {fig['cpu_s']:,.1f} CPU-s (driver {fig['driver_cpu_s']}, "
                  f"workers {fig['workers_cpu_s']}) = {fig['cpu_s_per_page']:.4f} CPU-s/page; driver peak RSS "
                  f"{fig['driver_peak_rss_mb']:.0f} MB, worker peak RSS {fig['worker_peak_rss_mb']:.0f} MB; "
                  f"{fig['tasks']:,} tasks (peak {fig['peak_scheduler_tasks']:,} held); {fig['wall_s']:.0f} s wall; "
                  f"load {load:.1f} -> {fig['load_1min']:.1f}", file=sys.stderr, flush=True)
            if args.faults and faults is None:
                ref = {**output_hashes(out), "pages_read": fig["pages"]}
                faults = fault_runs(inputs, tmp, args.workers, ref, args.corrupt, folder)
                for name, f in faults.items():
                    print(f"[faults] {name}: {json.dumps(f)}", file=sys.stderr, flush=True)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(out, ignore_errors=True)
        result = final_line(runs, args.project_warcs)
        print(json.dumps({"details": runs}))
        if faults is not None:
            print(json.dumps({"faults": faults}))
        print(json.dumps(result))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept: {tmp}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
