"""Image fetching benchmark: our fetcher vs img2dataset 1.47 on a loopback server; NSFW scoring speed.

    python bench/images/bench_images.py --photos ../shared/data/images/cc0-photos --n 600 --latency-ms 50 \
        --fail-rate 0.05 --concurrency 32 [--img2dataset /tmp/i2d_venv/bin/img2dataset]

A server process (started here, 127.0.0.1, random port) serves the photos under N distinct URLs with a fixed
latency per response; a deterministic ``--fail-rate`` share of URLs always answers 503.  Each client runs in its
own subprocess on the same URL list at the same concurrency; we measure wall time, CPU seconds of the client
(user + sys, children included), images/s, images per CPU-second ("per core"), success rate and peak RSS.
img2dataset (if given) runs with 1 process x ``--concurrency`` threads, no resizing or re-encoding.
Then the whole image stage with NSFW on (``bench_stage.py``'s photo set from a generated archive): image URLs per
CPU-second and ms per URL by part.  Prints the figures, then one final JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path


def serve(photos: str, latency_ms: float, fail_rate: float, port_file: str) -> None:
    from aiohttp import web

    files = [p.read_bytes() for p in sorted(Path(photos).iterdir()) if p.suffix.lower() in (".png", ".jpg")]

    async def handler(request):
        i = int(request.match_info["i"])
        await asyncio.sleep(latency_ms / 1000)
        if (zlib.crc32(str(i).encode()) % 10000) < fail_rate * 10000:
            return web.Response(status=503, text="unavailable")
        body = files[i % len(files)]
        return web.Response(body=body, content_type="image/png")

    async def main():
        app = web.Application()
        app.router.add_get("/img/{i}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        Path(port_file).write_text(str(port))
        await asyncio.Event().wait()

    asyncio.run(main())


def run_ours(url_file: str, concurrency: int) -> None:
    from obelics_builder.images.table import build_image_table

    urls = Path(url_file).read_text().split()
    cfg = {"allow_addresses": ["127.0.0.1"], "concurrency": concurrency, "per_host": concurrency, "retries": 0,
           "timeout_s": 20, "respect_robots": True}
    filt = {"image": {"min_size": 1, "max_aspect_ratio": 0, "formats": ["png", "jpeg", "jpg", "webp"]}}
    t0 = time.perf_counter()
    rows = build_image_table(urls, None, cfg, filt)
    wall = time.perf_counter() - t0
    ok = sum(1 for r in rows if r["reason"] is None)
    errors: dict = {}
    for r in rows:
        if r["reason"]:
            errors[r["reason"]] = errors.get(r["reason"], 0) + 1
    print(json.dumps({"ok": ok, "n": len(rows), "wall": wall, "errors": errors}))


def _child(cmd: list[str], env=None) -> tuple[subprocess.CompletedProcess, float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu, after.ru_maxrss  # KiB, the max over children so far


def bench_nsfw(photos: str) -> dict:
    from PIL import Image

    from obelics_builder.images.nsfw import NSFW_DEFAULTS, detector_or_reason

    det, why = detector_or_reason(dict(NSFW_DEFAULTS))
    if det is None:
        return {"nsfw_disabled": why}
    ims = [Image.open(p).convert("RGB") for p in sorted(Path(photos).iterdir()) if p.suffix in (".png", ".jpg")]
    ims = (ims * 4)[:64]
    det.score(ims[:4])  # warm-up
    t0 = time.perf_counter()
    c0 = time.process_time()
    det.score(ims)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"nsfw_images": len(ims), "nsfw_images_per_s": round(len(ims) / wall, 1),
            "nsfw_images_per_cpu_s": round(len(ims) / cpu, 1)}


def bench_stage_photos(photos: str) -> dict:
    """The whole image stage (archive fetch, decode, checks, pHash, NSFW) on the photo set of bench_stage.py."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_stage import photo_archive, run_set

    urls, archive = photo_archive(Path(photos))
    try:
        res, _ = run_set("photos", urls, archive, repeat=1)
    except SystemExit as exc:  # NSFW scoring unavailable: the figure is only meaningful with it on
        return {"image_stage_disabled": str(exc)}
    return {"image_stage_urls": res["urls"], "image_urls_per_cpu_s": res["image_urls_per_cpu_s"],
            "image_stage_ms_per_url": res["ms_per_url"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=str(Path(__file__).resolve().parents[3] / "shared/data/images/cc0-photos"))
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--fail-rate", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--img2dataset", default="/tmp/i2d_venv/bin/img2dataset")
    ap.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--run-ours", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.photos, float(args.serve[0]), float(args.serve[1]), args.serve[2])
        return 0
    if args.run_ours:
        run_ours(args.run_ours, args.concurrency)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-images-"))
    port_file = tmp / "port"
    server = subprocess.Popen([sys.executable, __file__, "--photos", args.photos, "--serve", str(args.latency_ms),
                               str(args.fail_rate), str(port_file)])
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.1)
        port = int(port_file.read_text())
        urls = [f"http://127.0.0.1:{port}/img/{i}" for i in range(args.n)]
        expected_ok = sum(1 for i in range(args.n) if (zlib.crc32(str(i).encode()) % 10000) >= args.fail_rate * 10000)
        (tmp / "urls.txt").write_text("\n".join(urls) + "\n")
        result: dict = {"n": args.n, "latency_ms": args.latency_ms, "fail_rate": args.fail_rate,
                        "concurrency": args.concurrency, "reachable": expected_ok}

        proc, wall, cpu, rss = _child([sys.executable, __file__, "--concurrency", str(args.concurrency),
                                       "--run-ours", str(tmp / "urls.txt")])
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        ours = json.loads(proc.stdout.strip().splitlines()[-1])
        result["ours"] = {"ok": ours["ok"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                          "images_per_s": round(ours["ok"] / wall, 1),
                          "images_per_cpu_s": round(ours["ok"] / cpu, 1) if cpu else None,
                          "success_rate": round(ours["ok"] / args.n, 4), "peak_rss_mb": round(rss / 1024, 1),
                          "errors": ours["errors"]}

        if args.img2dataset and Path(args.img2dataset).exists():
            outdir = tmp / "i2d"
            env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
            cmd = [args.img2dataset, "--url_list", str(tmp / "urls.txt"), "--output_folder", str(outdir),
                   "--processes_count", "1", "--thread_count", str(args.concurrency), "--resize_mode", "no",
                   "--output_format", "files", "--disable_all_reencoding", "True", "--timeout", "20",
                   "--retries", "0", "--enable_wandb", "False", "--number_sample_per_shard", str(args.n + 1),
                   "--distributor", "multiprocessing"]
            proc, wall, cpu, rss2 = _child(cmd, env)
            ok = 0
            for f in outdir.glob("*_stats.json"):
                ok += json.loads(f.read_text()).get("successes", 0)
            result["img2dataset"] = {"ok": ok, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                     "images_per_s": round(ok / wall, 1),
                                     "images_per_cpu_s": round(ok / cpu, 1) if cpu else None,
                                     "success_rate": round(ok / args.n, 4),
                                     "peak_rss_mb_max_child": round(rss2 / 1024, 1), "returncode": proc.returncode}
            if proc.returncode != 0:
                result["img2dataset"]["stderr_tail"] = proc.stderr[-500:]
        result.update(bench_nsfw(args.photos))
        result.update(bench_stage_photos(args.photos))
    finally:
        server.terminate()
        server.wait(10)
    for k in ("ours", "img2dataset"):
        if k in result:
            r = result[k]
            print(f"{k:<12} ok {r['ok']}/{args.n} (reachable {result['reachable']})  {r['images_per_s']} img/s  "
                  f"{r['images_per_cpu_s']} img/CPU-s  wall {r['wall_s']} s  cpu {r['cpu_s']} s")
    if "nsfw_images_per_s" in result:
        print(f"nsfw         {result['nsfw_images_per_s']} img/s ({result['nsfw_images_per_cpu_s']} img/CPU-s)")
    if "image_urls_per_cpu_s" in result:
        print(f"image stage  {result['image_urls_per_cpu_s']} image URLs/CPU-s (NSFW on; {result['image_stage_urls']} "
              f"photo URLs from an archive; ms per URL {result['image_stage_ms_per_url']})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
