"""Benchmark: MinHash near-duplicate dedup at scale on a LocalCluster, with known mutations.

Generates N synthetic documents (streaming, written as parquet parts of --part-docs rows, never all in RAM) from the
paragraphs of the shared test pages (article-extraction-benchmark ground truth):

* unique (60%):  4 paragraph *variants* (each pool paragraph has 32 variants with 20% of words replaced), so two
  unique documents practically never share more than one paragraph;
* exact copy (15%): the text of a recent unique document (ring buffer of 20k), another URL and crawl;
* near copy (25%): the same with 1-3 word edits (substitution, deletion or insertion): Jaccard about 0.85-0.95.

Then runs ``engine.dedup_reductions.near_duplicate_losers`` on a fresh LocalCluster (``--workers`` processes, one
thread each), samples worker RSS every 0.5 s (psutil via ``client.run``) plus each worker's ``ru_maxrss`` at the end,
and scores the clusters against the known families:
  recall(near) = near copies in the same cluster as their source / near copies (same for exact copies);
  precision = clustered (doc, cluster label doc) pairs of the same family / all such pairs.
Prints one JSON line per size and a final JSON line with all sizes.

    .venv/bin/python bench/dedup/bench_dedup.py --sizes 1000000 5000000 --out /tmp/bench-dedup
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from obelics_builder.dedup.minhash import jaccard  # noqa: E402
from obelics_builder.engine.dedup_reductions import near_duplicate_losers  # noqa: E402

UNIQUE, EXACT, NEAR = 0, 1, 2


def load_paragraphs(pages: Path) -> list[str]:
    gt = json.loads((pages / "article-extraction-benchmark" / "ground-truth.json").read_text())
    paras = [p.strip() for v in gt.values() for p in (v.get("articleBody") or "").split("\n\n")]
    return [p for p in paras if len(p.split()) >= 8]


def variants(paras: list[str], k: int, rate: float, rng: random.Random) -> list[str]:
    out = []
    for p in paras:
        words = p.split()
        for _ in range(k):
            w = list(words)
            for i in range(len(w)):
                if rng.random() < rate:
                    w[i] = "v%x" % rng.getrandbits(40)
            out.append(" ".join(w))
    return out


def edit_text(t: str, rng: random.Random) -> str:
    w = t.split(" ")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(w))
        op = rng.random()
        if op < 0.5:
            w[i] = "e%x" % rng.getrandbits(32)
        elif op < 0.75 and len(w) > 10:
            del w[i]
        else:
            w.insert(i, "i%x" % rng.getrandbits(32))
    return " ".join(w)


def generate(n: int, out: Path, pool: list[str], part_docs: int, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    ring: list[tuple[str, int]] = []
    files = []
    doc = 0
    part = 0
    while doc < n:
        m = min(part_docs, n - doc)
        texts, gms, fam, kind, jac = [], [], [], [], []
        for r in range(m):
            x = rng.random()
            if x < 0.6 or len(ring) < 100:
                t = "\n\n".join(rng.choice(pool) for _ in range(4))
                f, k = doc, UNIQUE
                if len(ring) < 20_000:
                    ring.append((t, f))
                else:
                    ring[rng.randrange(20_000)] = (t, f)
            else:
                src, f = ring[rng.randrange(len(ring))]
                if x < 0.75:
                    t, k = src, EXACT
                else:
                    t, k = edit_text(src, rng), NEAR
            # true 5-gram Jaccard with the source, for one near copy in 10 (stratified recall)
            jac.append(jaccard(t, src) if k == NEAR and doc % 10 == 0 else float("nan"))
            texts.append([t])
            gms.append('{"url":"https://site%d.example/p/%d","warc_filename":"crawl-data/CC-MAIN-20%02d-%02d/w.warc.gz",'
                       '"warc_record_offset":%d}' % (doc % 997, doc, rng.randint(13, 24), rng.randint(1, 50), doc))
            fam.append(f)
            kind.append(k)
            doc += 1
        path = out / f"part-{part:05d}.parquet"
        table = pa.table({"images": pa.array([[None]] * m, pa.list_(pa.string())),
                          "metadata": pa.array(["[null]"] * m), "general_metadata": pa.array(gms),
                          "texts": pa.array(texts, pa.list_(pa.string()))})
        pq.write_table(table, path, compression="zstd")
        pq.write_table(pa.table({"family": pa.array(fam, pa.int64()), "kind": pa.array(kind, pa.int8()),
                                 "jaccard": pa.array(jac, pa.float64())}),
                       out / f"truth-{part:05d}.parquet")
        files.append(path)
        part += 1
    return files


def _rss():
    import psutil

    return psutil.Process().memory_info().rss


def _maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def evaluate(data: Path, dest: Path, n_parts: int) -> dict:
    fam = [pq.read_table(data / f"truth-{i:05d}.parquet") for i in range(n_parts)]
    jac_stats: dict = {}
    sizes = [t.num_rows for t in fam]
    offsets = np.cumsum([0] + sizes)
    family = np.concatenate([t.column("family").to_numpy() for t in fam])
    kind = np.concatenate([t.column("kind").to_numpy() for t in fam])

    def flat(ids):
        return offsets[ids >> 32] + (ids & 0xFFFFFFFF)

    # the family id is the flat index of the source document
    label = np.arange(family.size, dtype=np.int64)  # singletons label themselves (flat index)
    # (node, label) of the clustered documents: cc/labels/ (partitioned tables), else the last cc/labels-N/ (Dask)
    cc = [dest / "cc" / "labels"] if (dest / "cc" / "labels").is_dir() else sorted((dest / "cc").glob("labels-*"))
    if cc:
        t = pq.read_table(cc[-1])
        nodes = flat(t.column("node").to_numpy())
        labs = flat(t.column("label").to_numpy())
        label[nodes] = labs
    clustered = label != np.arange(family.size)
    jac = np.concatenate([t.column("jaccard").to_numpy(zero_copy_only=False) for t in fam])
    for lo, hi in ((0.8, 1.01), (0.0, 0.8)):
        sel = (kind == NEAR) & (jac >= lo) & (jac < hi)
        hit = label[sel] == label[family[sel]]
        out_j = f"recall_near_true_jaccard_{lo:g}_{min(hi, 1):g}"
        jac_stats[out_j] = round(float(hit.mean()), 5) if sel.any() else None
        jac_stats[out_j + "_sample"] = int(sel.sum())
    out = {}
    for name, k in (("near", NEAR), ("exact", EXACT)):
        sel = kind == k
        hit = label[sel] == label[family[sel]]
        out[f"recall_{name}"] = round(float(hit.mean()), 5) if sel.any() else None
        out[f"{name}_copies"] = int(sel.sum())
    pairs = np.flatnonzero(clustered)
    correct = family[pairs] == family[label[pairs]]
    out["precision"] = round(float(correct.mean()), 5) if pairs.size else None
    out["clustered_pairs"] = int(pairs.size)
    # documents that should go: every copy whose family source exists; losers = clustered docs minus one per cluster
    out["expected_losers"] = int((kind != UNIQUE).sum())
    out.update(jac_stats)
    return out


def run_size(n: int, args, pool) -> dict:
    from dask.distributed import Client, LocalCluster

    base = Path(args.out) / f"n{n}"
    data, dest = base / "data", base / "dedup"
    shutil.rmtree(base, ignore_errors=True)
    t0 = time.time()
    files = generate(n, data, pool, args.part_docs, seed=n)
    gen_s = time.time() - t0
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit=args.memory_limit, silence_logs=40)
    client = Client(cluster)
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                for w, r in client.run(_rss).items():
                    peaks[w] = max(peaks.get(w, 0), r)
            except Exception:  # noqa: BLE001 - sampling is best effort
                pass
            stop.wait(0.5)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    cfg = {"num_perm": 128, "bands": 20, "rows": 6, "threshold": 0.8, "ngram": 5}
    cpu0 = sum(client.run(_cpu_s).values()) + _cpu_s()
    t1 = time.time()
    summary = near_duplicate_losers(files, dest, f"bench-{n}", "distributed", cfg)
    dedup_s = time.time() - t1
    stop.set()
    th.join()
    cpu_s = sum(client.run(_cpu_s).values()) + _cpu_s() - cpu0
    maxrss = client.run(_maxrss)
    client.close()
    cluster.close()
    quality = evaluate(data, dest, len(files))
    res = {"documents": n, "parts": len(files), "generate_s": round(gen_s, 1), "dedup_s": round(dedup_s, 1),
           "docs_per_s": round(n / dedup_s, 1), "workers": args.workers,
           "cpu_s": round(cpu_s, 1), "docs_per_cpu_s": round(n / cpu_s, 1),
           "peak_rss_sampled_gb": round(max(peaks.values()) / 2**30, 3) if peaks else None,
           "peak_rss_maxrss_gb": round(max(maxrss.values()) / 2**30, 3),
           "peak_rss_per_worker_gb": {w.split(":")[-1]: round(v / 2**30, 3) for w, v in maxrss.items()},
           **quality, "summary": summary, "config": cfg}
    print(json.dumps(res), flush=True)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--out", default="/tmp/bench-dedup")
    ap.add_argument("--pages", default=str(REPO.parent / "shared" / "data" / "pages"))
    ap.add_argument("--part-docs", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="4GB", help="per worker (Dask spills/pauses before this)")
    ap.add_argument("--keep", action="store_true", help="keep generated data and outputs")
    args = ap.parse_args(argv)
    rng = random.Random(12345)
    pool = variants(load_paragraphs(Path(args.pages)), 32, 0.2, rng)
    results = [run_size(n, args, pool) for n in args.sizes]
    final = {"bench": "dedup", "results": [{k: r[k] for k in ("documents", "docs_per_s", "dedup_s", "docs_per_cpu_s",
                                                               "peak_rss_maxrss_gb", "peak_rss_sampled_gb",
                                                               "recall_near", "recall_near_true_jaccard_0.8_1",
                                                               "recall_exact", "precision")}
                                           for r in results]}
    print(json.dumps(final), flush=True)


if __name__ == "__main__":
    main()
