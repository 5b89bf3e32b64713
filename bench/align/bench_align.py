"""Image-text alignment throughput: images/s per core of the image_text stage (obelics_builder.align) on synthetic
documents (JPEGs of photo-like noise, 640x480 to 1024x768, each with an alt text and a paragraph before and after),
one torch thread, CPU-seconds (time.process_time).

The model is siglip-base (google/siglip-base-patch16-224) when its weights are on this machine (``--model DIR``, or
the local Hugging Face cache), otherwise a tiny random SigLIP at 224 px saved here (tests/align_fixtures.py): the
output says which.  Measured: the first pass (decode, preprocess, both towers), the image tower alone, and a rerun
served by the stage's cache (what ``obelics-build filter`` costs).  Prints a table, then one JSON line.

    PYTHONPATH=$PWD .venv/bin/python bench/align/bench_align.py [--images 256] [--batch-size 32] [--model DIR]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
SIGLIP_BASE = "google/siglip-base-patch16-224"


def local_siglip_base(explicit: str | None) -> str | None:
    """A folder of siglip-base's weights on this machine (never downloaded), or None."""
    if explicit:
        return explicit
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(SIGLIP_BASE, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the local cache
        return None


def synthetic(n: int, seed: int = 0):
    from PIL import Image, ImageFilter

    rnd = random.Random(seed)
    words = "river mountain city street dog cat market bridge garden kitchen bicycle train harbour".split()
    docs, store = [], {}
    for i in range(n):
        w, h = rnd.choice([(640, 480), (800, 600), (1024, 768)])
        im = Image.effect_noise((w // 4, h // 4), 64).convert("RGB").resize((w, h)).filter(ImageFilter.BLUR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        url = f"http://img.example/{i}.jpg"
        store[url] = (buf.getvalue(), "jpeg")
        sent = lambda k: " ".join(rnd.choice(words) for _ in range(k)).capitalize() + "."  # noqa: E731
        docs.append({"texts": [sent(30), None, sent(20)], "images": [None, url, None],
                     "metadata": [None, {"src": url, "alt_text": sent(5), "sha256": f"{i:064x}"}, None],
                     "general_metadata": {"url": f"http://page.example/{i}"}})
    return docs, store


class Store:
    def __init__(self, data):
        self.data = data

    def get_many(self, urls):
        return {u: self.data[u] for u in urls if u in self.data}


def run_stage(docs, store, model, batch, cache):
    import copy

    from obelics_builder.align.stage import image_text
    from obelics_builder.stats import StageContext, Stats

    ctx = StageContext("image_text", config={"model": model, "batch_size": batch, "device": "cpu", "threads": 1},
                       stats=Stats(), resources={}, images=Store(store), cache=cache)
    batch_docs = copy.deepcopy(docs)
    c0, t0 = time.process_time(), time.perf_counter()
    image_text(batch_docs, ctx)
    return time.process_time() - c0, time.perf_counter() - t0, ctx.stats.to_dict()["image_text"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", default=None, help="a local siglip-base folder (default: the local HF cache)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from obelics_builder.align.model import load_scorer
    from obelics_builder.plan.cache import StageCache

    base = local_siglip_base(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-align-"))
    if base:
        model, which = base, f"siglip-base ({SIGLIP_BASE}, local weights at {base})"
    else:
        from align_fixtures import save_tiny_siglip

        model = str(save_tiny_siglip(tmp / "tiny", image_size=224, max_len=64, hidden=64, layers=2))
        which = ("tiny random SigLIP (224 px, patch 8, hidden 64, 2+2 layers): siglip-base's weights are not on "
                 "this machine, so these figures say what the stage's own work (decode, preprocess, batching, cache) "
                 "costs, not what siglip-base would")
    docs, store = synthetic(args.images)
    c0 = time.process_time()
    scorer = load_scorer(model, "cpu", 1, args.batch_size)
    load_cpu = time.process_time() - c0
    # warm-up (first-call allocations), on a few documents, not counted
    run_stage(docs[:4], store, model, args.batch_size, None)
    cache = StageCache(tmp / "cache", "part", "bench")
    cpu1, wall1, st1 = run_stage(docs, store, model, args.batch_size, cache)
    cpu2, wall2, st2 = run_stage(docs, store, model, args.batch_size, cache)  # every score from the cache
    # the image tower alone, on decoded images
    from obelics_builder.images.decode import open_reduced

    ims = [open_reduced(store[d["images"][1]][0], 10**9, scorer.side) for d in docs]
    c0 = time.process_time()
    scorer.image_embeddings(ims)
    tower = time.process_time() - c0
    n = args.images
    rows = [("first pass (decode + both towers)", cpu1, n / cpu1),
            ("preprocess + image tower (decoded)", tower, n / tower),
            ("rerun from the cache (filter)", cpu2, n / max(cpu2, 1e-9))]
    print(f"model: {which}")
    print(f"{n} images, {st1.get('pairs_scored', 0)} image-text pairs, batch {args.batch_size}, 1 thread; "
          f"model load {load_cpu:.2f} CPU-s")
    print(f"{'pass':38} {'CPU-s':>8} {'images/s/core':>14}")
    for name, c, r in rows:
        print(f"{name:38} {c:8.2f} {r:14.1f}")
    assert st2.get("pairs_scored", 0) == 0 and st2["pairs_cached"] == st1["pairs_scored"]
    print(json.dumps({"bench": "align", "model": "siglip-base" if base else "tiny", "model_detail": which,
                      "images": n, "pairs": st1.get("pairs_scored", 0), "batch_size": args.batch_size,
                      "images_per_s_per_core": round(n / cpu1, 1),
                      "image_tower_images_per_s_per_core": round(n / tower, 1),
                      "cached_rerun_images_per_s_per_core": round(n / max(cpu2, 1e-9), 1),
                      "model_load_cpu_s": round(load_cpu, 2), "wall_s_first_pass": round(wall1, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
