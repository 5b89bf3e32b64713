"""Trainer benchmark: data-loader throughput (documents/s, packed rows/s) against the model's consumption
(rows/s of forward + backward + AdamW) at the tiny and the ~100M random-init configs, on this CPU.

    .venv/bin/python bench/train/bench_train.py                    # synthetic JPEG shards, both presets
    .venv/bin/python bench/train/bench_train.py --data OUT --presets tiny --arch idefics2 --image-splitting on
    .venv/bin/python bench/train/bench_train.py --image-splitting off  # Idefics3 without tiles (the A/B)

Images go through the arch's own image processor (transformers' PIL classes); Idefics3 splits them into tiles of the
vision tower's size after resizing to --image-longest-edge (default 4 tiles), so a row holds up to --max-images x 17
crops and long rows (--seq-len, default 256 tiny / 1024 ~100M with splitting) keep whole tile grids.  Loader and
model are measured in wall seconds and CPU seconds (loader: one process; model: --threads threads).
Prints figures, then one final JSON line.  Target: loader rows/s >= 5 x model rows/s.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def synthetic_shards(root: Path, n_docs: int, per_shard: int, seed: int = 0) -> Path:
    """WebDataset shards like a crawl's: 1-4 JPEG photos-sized images (320x240) and 20-200-word texts per doc."""
    import webdataset as wds
    from PIL import Image

    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    words = "the of and a to in is photo city river house street garden light water old new red blue".split()
    imgs = []
    for _ in range(16):
        base = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        im = Image.fromarray(base).resize((320, 240), Image.BICUBIC)
        b = io.BytesIO()
        im.save(b, format="JPEG", quality=85)
        imgs.append(b.getvalue())
    out = root / "dataset" / "webdataset"
    out.mkdir(parents=True)
    for s in range(0, n_docs, per_shard):
        with wds.TarWriter(str(out / f"train-{s // per_shard:05d}.tar")) as w:
            for i in range(s, min(n_docs, s + per_shard)):
                texts, images, sample = [], [], {"__key__": f"d{i:07d}"}
                for pos in range(rnd.randint(3, 8)):
                    if pos % 2 == 1 and rnd.random() < 0.8:
                        texts.append(None)
                        images.append(f"https://example.org/{i}/{pos}.jpg")
                        sample[f"{pos}.jpg"] = imgs[rnd.randrange(len(imgs))]
                    else:
                        texts.append(" ".join(rnd.choice(words) for _ in range(rnd.randint(20, 200))))
                        images.append(None)
                sample["json"] = json.dumps({"texts": texts, "images": images, "metadata": [None] * len(texts),
                                             "general_metadata": {}}).encode()
                w.write(sample)
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="crawl output or shards (default: synthetic shards)")
    ap.add_argument("--arch", default="idefics3", choices=["idefics", "idefics2", "idefics3"])
    ap.add_argument("--presets", nargs="+", default=["tiny", "100m"])
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--loader-batches", type=int, default=60)
    ap.add_argument("--steps", type=int, default=4, help="timed model steps per preset (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-splitting", choices=["on", "off"], default=None,
                    help="default: the arch's (idefics3 on, idefics2 off)")
    ap.add_argument("--image-longest-edge", type=int, default=None, help="idefics3 (default 4 tiles)")
    ap.add_argument("--max-images", type=int, default=5, help="full images per row (the crop cap is x crops/image)")
    ap.add_argument("--seq-len", type=int, nargs=2, default=None, metavar=("TINY", "100M"))
    a = ap.parse_args()

    import torch
    from obelics_builder.train import models as M
    from obelics_builder.train.data import RowStream, StreamConfig, batches, resolve_shards, sample_texts
    from obelics_builder.train.images import ImagePrep, default_image_processor
    from obelics_builder.train.loop import lm_loss
    from obelics_builder.train.tokenizer import make_encoder, token_ids, train_tiny_tokenizer

    torch.set_num_threads(a.threads)
    tmp = tempfile.TemporaryDirectory()
    data = a.data or str(synthetic_shards(Path(tmp.name), a.docs, 100))
    shards = resolve_shards(data)
    results = {}
    for preset in a.presets:
        p = M.PRESETS[preset]
        tk = train_tiny_tokenizer(sample_texts(shards), vocab_size=p["vocab"])
        tok = token_ids(tk)
        torch.manual_seed(0)
        model, spec = M.build_random(a.arch, preset, tok)
        pol = M.apply_policy(model, a.arch, "frozen", tok.base_vocab)
        splitting = None if a.image_splitting is None else a.image_splitting == "on"
        prep = ImagePrep(spec, default_image_processor(spec, a.image_longest_edge if a.arch == "idefics3" else None,
                                                       splitting))
        split = prep.max_crops_per_image > 1
        seqs = a.seq_len or ((256, 1024) if split else (128, 256))
        seq, bs = (seqs[0], 2) if preset == "tiny" else (seqs[1], 2)
        cfg = StreamConfig(shards=shards, spec=spec, tok=tok, encoder=make_encoder(tk), max_seq_len=seq,
                           max_images=a.max_images * prep.max_crops_per_image, batch_size=bs, shuffle_buffer=64,
                           prep=prep)
        stream = RowStream(cfg)
        it = batches(stream, cfg)
        kept = []
        crops = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.loader_batches):
            b = next(it)
            crops += int(b["n_crops"])
            if len(kept) < a.steps + 1:
                kept.append(b)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        docs = stream.counts["documents"]
        rows_s = a.loader_batches * bs / dt
        opt = torch.optim.AdamW(M.parameter_groups(model, 0.1), lr=1e-4)
        times, cpus = [], []
        for i, b in enumerate(kept):
            tb = {k: torch.from_numpy(v) for k, v in b.items() if isinstance(v, np.ndarray)}
            labels = tb.pop("labels")
            ts, cs = time.perf_counter(), time.process_time()
            out = model(**tb, use_cache=False)
            loss, _, _ = lm_loss(out.logits, labels, 1e-3)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i:
                times.append(time.perf_counter() - ts)
                cpus.append(time.process_time() - cs)
        step_s = float(np.median(times))
        model_rows_s = bs / step_s
        r = {"params_m": round(pol.total / 1e6, 2), "trainable_m": round(pol.trainable / 1e6, 2),
             "seq_len": seq, "batch_rows": bs, "tokens_per_crop": spec.tokens_per_image,
             "image_splitting": split, "tile_px": prep.tile, "longest_edge_px": prep.longest_edge,
             "crops_per_row": round(crops / (a.loader_batches * bs), 2),
             "loader_docs_per_s": round(docs / dt, 1), "loader_rows_per_s": round(rows_s, 1),
             "loader_cpu_s_per_row": round(dc / (a.loader_batches * bs), 5),
             "model_step_s": round(step_s, 4), "model_cpu_s_per_step": round(float(np.median(cpus)), 4),
             "model_rows_per_s": round(model_rows_s, 2),
             "loader_over_model": round(rows_s / model_rows_s, 1),
             "loader_over_model_cpu": round((float(np.median(cpus)) / bs) / (dc / (a.loader_batches * bs)), 1)}
        results[preset] = r
        print(f"{a.arch} {preset} (splitting {'on' if split else 'off'}, {r['crops_per_row']} crops/row, "
              f"seq {seq}): {r['params_m']}M params ({r['trainable_m']}M trainable); loader "
              f"{r['loader_docs_per_s']} docs/s = {r['loader_rows_per_s']} rows/s (1 process); model "
              f"{r['model_step_s']} s/step = {r['model_rows_per_s']} rows/s; loader/model = "
              f"{r['loader_over_model']}x (CPU-s: {r['loader_over_model_cpu']}x)", flush=True)
    ok = all(r["loader_over_model"] >= 5 and r["loader_over_model_cpu"] >= 5 for r in results.values())
    print(json.dumps({"bench": "train", "arch": a.arch, "threads": a.threads, "results": results,
                      "target_5x_met": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
