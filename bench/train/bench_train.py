"""Trainer benchmark: data-loader throughput (documents/s, packed rows/s) against the model's consumption
(rows/s of forward + backward + AdamW) at the tiny and the ~100M random-init configs, on this CPU.

    .venv/bin/python bench/train/bench_train.py                    # synthetic JPEG shards, both presets
    .venv/bin/python bench/train/bench_train.py --data OUT --presets tiny --arch idefics2

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
    a = ap.parse_args()

    import torch
    from obelics_builder.train import models as M
    from obelics_builder.train.data import RowStream, StreamConfig, batches, resolve_shards, sample_texts
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
        seq, bs = (128, 2) if preset == "tiny" else (256, 2)
        cfg = StreamConfig(shards=shards, spec=spec, tok=tok, encoder=make_encoder(tk), max_seq_len=seq,
                           max_images=5, batch_size=bs, shuffle_buffer=64,
                           separator=tuple(tk.encode("\n\n", add_special_tokens=False)))
        stream = RowStream(cfg)
        it = batches(stream, cfg)
        kept = []
        t0 = time.perf_counter()
        for _ in range(a.loader_batches):
            b = next(it)
            if len(kept) < a.steps + 1:
                kept.append(b)
        dt = time.perf_counter() - t0
        docs = stream.counts["documents"]
        rows_s = a.loader_batches * bs / dt
        opt = torch.optim.AdamW(M.parameter_groups(model, 0.1), lr=1e-4)
        times = []
        for i, b in enumerate(kept):
            tb = {k: torch.from_numpy(v) for k, v in b.items() if isinstance(v, np.ndarray)}
            labels = tb.pop("labels")
            ts = time.perf_counter()
            out = model(**tb, use_cache=False)
            loss, _, _ = lm_loss(out.logits, labels, 1e-3)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i:
                times.append(time.perf_counter() - ts)
        step_s = float(np.median(times))
        model_rows_s = bs / step_s
        r = {"params_m": round(pol.total / 1e6, 2), "trainable_m": round(pol.trainable / 1e6, 2),
             "seq_len": seq, "batch_rows": bs, "tokens_per_image": spec.tokens_per_image,
             "loader_docs_per_s": round(docs / dt, 1), "loader_rows_per_s": round(rows_s, 1),
             "model_step_s": round(step_s, 4), "model_rows_per_s": round(model_rows_s, 2),
             "loader_over_model": round(rows_s / model_rows_s, 1)}
        results[preset] = r
        print(f"{a.arch} {preset}: {r['params_m']}M params ({r['trainable_m']}M trainable); loader "
              f"{r['loader_docs_per_s']} docs/s = {r['loader_rows_per_s']} rows/s (1 process); model "
              f"{r['model_step_s']} s/step = {r['model_rows_per_s']} rows/s; loader/model = "
              f"{r['loader_over_model']}x", flush=True)
    ok = all(r["loader_over_model"] >= 5 for r in results.values())
    print(json.dumps({"bench": "train", "arch": a.arch, "threads": a.threads, "results": results,
                      "target_5x_met": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
