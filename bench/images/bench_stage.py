"""Image stage CPU: image URLs per CPU-second with NSFW scoring on, and where the CPU goes.

    .venv/bin/python bench/images/bench_stage.py [--photos DIR] [--sample-out OUT] [--repeat 3] \
        [--rows-out rows.json] [--compare rows-before.json]

Runs the whole image stage of one partition — :func:`obelics_builder.images.ledger.fetch_rows`: archive fetch,
decode, checks (format, size, aspect), pHash, NSFW (NudeNet 320n, one onnxruntime thread) — in this process, with
``network: false``, on two URL sets:

* ``photos`` — each shared CC0 photo re-encoded at long sides 120 / 400 / 800 / 1600 px as JPEG (quality 90) and
  PNG, plus the originals: unique bytes under unique URLs on 50 hosts, served from an image archive (a WARC
  written here, cached under the system temp folder).  120 px images fail ``min_size``, wide ones the aspect rule.
* ``photos-jpg``, ``photos-png`` — the JPEG / PNG half of ``photos``.
* ``sample`` — the image URLs the bundled sample's crawl fetches (``images/plan/fetch`` of a
  ``crawl --mirror sample`` output given with ``--sample-out``; else every URL of the sample's image archive),
  served from the sample's image archive.  The sample's substitutes are 17 photos repeated under ~750 URLs
  (identical bytes), so it is not a mix of unique images.

CPU is ``time.process_time`` over the stage (every thread); the archive index and the detector are built before
(a per-process start-up cost, reported apart).  Best of ``--repeat`` runs.  The per-part split wraps the stage's
functions with thread-CPU timers (exclusive time: a part nested in another is subtracted from it): ``fetch``
(archive read), ``decode`` (decode + checks + sha256 + bookkeeping of a row), ``phash``, ``nsfw_prep`` (decode
for scoring, model input), ``nsfw_infer`` (``session.run``), ``other`` (event loop, thread pool, the rest).

``--rows-out`` writes the rows (without bytes) as JSON; ``--compare`` prints how they differ from an earlier
``--rows-out``: dimensions, format, reason, sha256, pHash (Hamming distances), NSFW (absolute differences, threshold
decisions) and the near-duplicate marks at ``phash_max_distance`` 4.  Prints a table, then one JSON line.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIDES = (120, 400, 800, 1600)
PARTS = ("fetch", "decode", "phash", "nsfw_prep", "nsfw_infer")


# ---------------------------------------------------------------------------------------------------------------
# URL sets
# ---------------------------------------------------------------------------------------------------------------

def photo_variants(photos: Path) -> list[tuple[str, bytes, str]]:
    """``(name, bytes, content type)`` of the originals and their re-encodings (see module docstring)."""
    from PIL import Image

    out = []
    for p in sorted(photos.iterdir()):
        if p.suffix.lower() not in (".png", ".jpg"):
            continue
        body = p.read_bytes()
        out.append((p.name, body, "image/png" if p.suffix.lower() == ".png" else "image/jpeg"))
        with Image.open(p) as im:
            im.load()
            base = im.convert("RGB") if im.mode not in ("RGB", "L") else im.copy()
        for side in SIDES:
            k = side / max(base.size)
            im = base.resize((max(1, round(base.width * k)), max(1, round(base.height * k))), Image.LANCZOS)
            for fmt, ext, ctype in (("JPEG", "jpg", "image/jpeg"), ("PNG", "png", "image/png")):
                buf = io.BytesIO()
                im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
                out.append((f"{p.stem}-{side}.{ext}", buf.getvalue(), ctype))
    return out


def photo_archive(photos: Path) -> tuple[list[str], object]:
    """URLs and an ImageArchive over a generated WARC of :func:`photo_variants` (cached by content)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from obelics_builder.sources.archive import ImageArchive
    from obelics_builder.sources.commoncrawl import WarcRef

    key = hashlib.sha1(repr((sorted(p.name for p in photos.iterdir()), SIDES)).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"bench-image-stage-{key}.warc.gz"
    names_path = path.with_suffix(".urls")
    if not path.exists() or not names_path.exists():
        urls = []
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            w = WARCWriter(fh, gzip=True)
            for i, (name, body, ctype) in enumerate(photo_variants(photos)):
                url = f"http://img{i % 50}.example.com/photos/{name}"
                http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))],
                                        protocol="HTTP/1.1")
                w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body),
                                                    http_headers=http))
                urls.append(url)
        tmp.rename(path)
        names_path.write_text("\n".join(urls) + "\n")
    urls = names_path.read_text().split()
    return urls, ImageArchive([WarcRef(uri=str(path), name=path.name)])


def sample_archive(sample_out: str | None) -> tuple[list[str], object]:
    from obelics_builder.sources.archive import ImageArchive
    from obelics_builder.sources.commoncrawl import WarcRef

    base = ROOT / "obelics_builder/data/sample/crawl-data/CC-MAIN-2023-06"
    import gzip

    names = gzip.decompress((base / "image-archive.paths.gz").read_bytes()).decode().split()
    root = ROOT / "obelics_builder/data/sample"
    archive = ImageArchive([WarcRef(uri=str(root / n), name=n) for n in names])
    if sample_out:
        import pyarrow.parquet as pq

        urls = []
        for f in sorted(Path(sample_out, "images", "plan", "fetch").rglob("*.parquet")):
            urls += pq.read_table(f).column(0).to_pylist()
        urls = sorted(set(urls))
    else:
        urls = [u for u in archive.urls() if not u.endswith("/robots.txt")]
    return urls, archive


# ---------------------------------------------------------------------------------------------------------------
# Per-part CPU: exclusive thread-CPU timers around the stage's functions
# ---------------------------------------------------------------------------------------------------------------

class Split:
    def __init__(self) -> None:
        self.cpu: Counter = Counter()
        self.calls: Counter = Counter()
        self.local = threading.local()
        self.lock = threading.Lock()
        self.undo: list = []

    def wrap(self, fn, part: str):
        split = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            stack = getattr(split.local, "stack", None)
            if stack is None:
                stack = split.local.stack = []
            t0 = time.thread_time()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                nested = stack.pop()
                spent = time.thread_time() - t0
                with split.lock:
                    split.cpu[part] += spent - nested
                    split.calls[part] += 1
                if stack:
                    stack[-1] += spent

        return timed

    def patch(self, obj, name: str, part: str) -> None:
        if obj is None or not hasattr(obj, name):
            return
        orig = getattr(obj, name)
        setattr(obj, name, self.wrap(orig, part))
        self.undo.append((obj, name, orig))

    def restore(self) -> None:
        for obj, name, orig in reversed(self.undo):
            setattr(obj, name, orig)
        self.undo.clear()


class _TimedSession:
    def __init__(self, session, split: Split) -> None:
        self._s = session
        self.run = split.wrap(session.run, "nsfw_infer")

    def __getattr__(self, name):
        return getattr(self._s, name)


def install(split: Split, detector) -> None:
    import obelics_builder.images.decode as decode
    import obelics_builder.images.fetch as fetch
    import obelics_builder.images.ledger as ledger
    import obelics_builder.images.nsfw as nsfw
    import obelics_builder.images.phash as phash
    import obelics_builder.images.table as table

    split.patch(fetch.Fetcher, "_from_archive", "fetch")
    split.patch(table, "row_from_fetch", "decode")
    split.patch(table, "judge", "decode")
    for mod in (phash, decode, table, nsfw):
        split.patch(mod, "phash_hex", "phash")
    split.patch(nsfw, "open_for_scoring", "nsfw_prep")
    for mod in (decode, table, nsfw):  # the reduced decode for the model (nested in `decode` since it is shared)
        split.patch(mod, "open_reduced", "nsfw_prep")
        split.patch(mod, "scoring_image", "nsfw_prep")
    for mod in (nsfw, ledger):  # their own (batching) time counts with the model input
        split.patch(mod, "score_rows", "nsfw_prep")
    split.patch(getattr(nsfw, "BatchScorer", None), "score", "nsfw_prep")
    split.patch(type(detector), "preprocess", "nsfw_prep")
    split.patch(type(detector), "score", "nsfw_prep")
    detector.session = _TimedSession(detector.session, split)
    split.undo.append((detector, "session", detector.session._s))


# ---------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------

def filters_config() -> dict:
    from obelics_builder.recipe import load_filters

    return load_filters("obelics")


def run_set(name: str, urls: list[str], archive, repeat: int) -> tuple[dict, list[dict]]:
    from obelics_builder.images.ledger import fetch_rows
    from obelics_builder.images.nsfw import load_detector, nsfw_config

    fcfg = filters_config()
    fetch_cfg = {"network": False}
    c0 = time.process_time()
    len(archive)  # build the index
    index_cpu = time.process_time() - c0
    c0 = time.process_time()
    detector = load_detector(nsfw_config(fcfg))
    detector_cpu = time.process_time() - c0
    fetch_rows(urls[:8], archive, fetch_cfg, fcfg)  # warm-up (imports, first model run)
    best, rows, best_split = None, [], None
    for _ in range(repeat):
        split = Split()
        install(split, detector)
        try:
            c0, t0 = time.process_time(), time.perf_counter()
            rows, note = fetch_rows(urls, archive, fetch_cfg, fcfg)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        finally:
            split.restore()
        if note:
            raise SystemExit(f"NSFW scoring is off ({note}): this benchmark measures the stage with NSFW on")
        if best is None or cpu < best[0]:
            best, best_split = (cpu, wall), split
    cpu, wall = best
    n = len(urls)
    usable = sum(1 for r in rows if not r.get("reason"))
    scored = sum(1 for r in rows if r.get("nsfw") is not None)
    per_part = {p: round(best_split.cpu[p] / n * 1000, 3) for p in PARTS}
    per_part["other"] = round(max(0.0, cpu - sum(best_split.cpu.values())) / n * 1000, 3)
    res = {
        "set": name, "urls": n, "usable": usable, "scored": scored,
        "distinct_bodies": len({r["sha256"] for r in rows if r.get("sha256")}),
        "reasons": dict(Counter(r.get("reason") or "usable" for r in rows).most_common()),
        "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "image_urls_per_cpu_s": round(n / cpu, 1), "ms_cpu_per_url": round(cpu / n * 1000, 2),
        "ms_cpu_per_usable": round(cpu / usable * 1000, 2) if usable else None,
        "ms_per_url": per_part, "model_runs": best_split.calls["nsfw_infer"],
        "startup_cpu_s": {"archive_index": round(index_cpu, 3), "detector": round(detector_cpu, 3)},
    }
    return res, rows


def compact(rows: list[dict]) -> dict:
    keys = ("reason", "sha256", "width", "height", "format", "phash", "nsfw", "stored_width", "stored_height")
    return {r["url"]: {k: r.get(k) for k in keys} for r in rows}


def compare(before: dict, after: dict, threshold: float = 0.9, max_distance: int = 4) -> dict:
    from obelics_builder.images.phash import near_duplicate_groups

    out: dict = {"urls_before": len(before), "urls_after": len(after)}
    common = sorted(set(before) & set(after))
    diff = Counter()
    ham: Counter = Counter()
    nsfw_d: list[float] = []
    flips = 0
    for u in common:
        b, a = before[u], after[u]
        for k in ("width", "height", "format", "sha256", "reason", "stored_width", "stored_height"):
            if b.get(k) != a.get(k):
                diff[k] += 1
        bu, au = not b.get("reason"), not a.get("reason")
        if bu and au and b.get("phash") and a.get("phash"):
            d = (int(b["phash"], 16) ^ int(a["phash"], 16)).bit_count()
            ham[d] += 1
        elif bu != au or bool(b.get("phash")) != bool(a.get("phash")):
            diff["phash_presence"] += 1
        if bu and au and b.get("nsfw") is not None and a.get("nsfw") is not None:
            nsfw_d.append(abs(b["nsfw"] - a["nsfw"]))
            flips += (b["nsfw"] > threshold) != (a["nsfw"] > threshold)
        elif (b.get("nsfw") is None) != (a.get("nsfw") is None):
            diff["nsfw_presence"] += 1
    out["field_changes"] = dict(diff)
    out["phash_hamming_usable"] = {str(k): v for k, v in sorted(ham.items())}
    if nsfw_d:
        nsfw_d.sort()
        out["nsfw_abs_diff"] = {"n": len(nsfw_d), "max": round(nsfw_d[-1], 4),
                                "mean": round(sum(nsfw_d) / len(nsfw_d), 5),
                                "p95": round(nsfw_d[int(0.95 * (len(nsfw_d) - 1))], 4),
                                "threshold_flips": flips}

    def marks(rows: dict, usable_only: bool) -> dict:
        return near_duplicate_groups(((u, r["sha256"], r["phash"]) for u, r in rows.items()
                                      if not (usable_only and r.get("reason"))), max_distance)

    mb_all, ma = marks(before, False), marks(after, True)
    mb_usable = marks(before, True)
    usable = [u for u in common if not before[u].get("reason") and not after[u].get("reason")]
    out["near_duplicate_changes"] = {
        # today's table (groups over every hashed row) vs the new table, on usable images
        "vs_before": sum(1 for u in usable if mb_all.get(u, (None, None))[1] != ma.get(u, (None, None))[1]),
        # the same usable rows grouped in both: what the pHash values alone change
        "pHash_only": sum(1 for u in usable if mb_usable.get(u, (None, None))[1] != ma.get(u, (None, None))[1]),
        "groups_before": len({g for g, _ in mb_all.values()}), "groups_after": len({g for g, _ in ma.values()}),
        "usable": len(usable),
    }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=str(ROOT.parent / "shared/data/images/cc0-photos"))
    ap.add_argument("--sample-out", help="a `crawl --mirror sample` output folder (its image plan = the URL list)")
    ap.add_argument("--sets", default="photos,photos-jpg,photos-png,sample")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows-out")
    ap.add_argument("--compare")
    args = ap.parse_args(argv)
    results, all_rows = [], {}
    for name in args.sets.split(","):
        base, _, ext = name.partition("-")  # photos-jpg / photos-png: one format of the photo set
        urls, archive = photo_archive(Path(args.photos)) if base == "photos" else sample_archive(args.sample_out)
        if ext:
            urls = [u for u in urls if u.endswith("." + ext)]
        res, rows = run_set(name, urls, archive, args.repeat)
        results.append(res)
        all_rows[name] = compact(rows)
    print(f"{'set':<11}{'URLs':>6}{'usable':>7}{'scored':>7}{'URLs/CPU-s':>11}{'ms/URL':>8}  "
          + "".join(f"{p:>11}" for p in (*PARTS, "other")))
    for r in results:
        print(f"{r['set']:<11}{r['urls']:>6}{r['usable']:>7}{r['scored']:>7}{r['image_urls_per_cpu_s']:>11}"
              f"{r['ms_cpu_per_url']:>8}  " + "".join(f"{r['ms_per_url'][p]:>11}" for p in (*PARTS, "other")))
    summary: dict = {"sets": results}
    if args.rows_out:
        Path(args.rows_out).write_text(json.dumps(all_rows))
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        summary["compare"] = {k: compare(before[k], all_rows[k]) for k in all_rows if k in before}
        for k, v in summary["compare"].items():
            print(f"compare {k}: {json.dumps(v)}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
