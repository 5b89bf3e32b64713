"""Test fixtures for the trainer tests: small WebDataset / Parquet shards built from the CC0 photos."""
from __future__ import annotations

import io
import json
import random
from pathlib import Path

WORDS = ("the a photo of red blue green small large old new house tree river cat dog car city street sky cloud "
         "sun moon people man woman child book table chair window door garden flower field mountain road bridge "
         "boat water light dark morning evening").split()


def _photos(shared_data: Path, size: int = 96) -> list[bytes]:
    from PIL import Image

    out = []
    for p in sorted((shared_data / "images" / "cc0-photos").iterdir()):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        im = Image.open(p).convert("RGB")
        im.thumbnail((size, size))
        b = io.BytesIO()
        im.save(b, format="JPEG", quality=85)
        out.append(b.getvalue())
    return out


def make_docs(n_docs: int, seed: int = 0, photos: int = 10) -> list[dict]:
    """Documents as {"texts", "images", "image_idx"}: 1-4 images, texts of 5-60 words."""
    rnd = random.Random(seed)
    docs = []
    for d in range(n_docs):
        texts, images, idx = [], [], []
        for _ in range(rnd.randint(2, 7)):
            if rnd.random() < 0.4:
                texts.append(None)
                images.append(f"https://example.org/{d}/{len(images)}.jpg")
                idx.append(rnd.randrange(photos))
            else:
                texts.append(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 60))).capitalize() + ".")
                images.append(None)
                idx.append(None)
        if all(i is None for i in idx):
            texts.insert(1, None)
            images.insert(1, f"https://example.org/{d}/x.jpg")
            idx.insert(1, rnd.randrange(photos))
        docs.append({"texts": texts, "images": images, "image_idx": idx})
    return docs


def write_wds(out_dir: Path, docs: list[dict], photos: list[bytes], per_shard: int = 20,
              missing_every: int = 0) -> list[Path]:
    import webdataset as wds

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(0, len(docs), per_shard):
        path = out_dir / f"train-{s // per_shard:05d}.tar"
        with wds.TarWriter(str(path)) as w:
            for i, doc in enumerate(docs[s:s + per_shard], start=s):
                sample = {"__key__": f"d{i:07d}",
                          "json": json.dumps({"texts": doc["texts"], "images": doc["images"],
                                              "metadata": [None] * len(doc["texts"]),
                                              "general_metadata": {"url": f"https://example.org/{i}"}}).encode()}
                for pos, k in enumerate(doc["image_idx"]):
                    if k is None or (missing_every and (i + pos) % missing_every == 0):
                        continue
                    sample[f"{pos}.jpg"] = photos[k % len(photos)]
                w.write(sample)
        paths.append(path)
    return paths


def write_parquet(path: Path, docs: list[dict], photos: list[bytes], embed: bool = True) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {"images": [d["images"] for d in docs], "metadata": ["[]"] * len(docs),
            "general_metadata": ["{}"] * len(docs), "texts": [d["texts"] for d in docs]}
    if embed:
        cols["image_bytes"] = [[photos[k % len(photos)] if k is not None else None for k in d["image_idx"]]
                               for d in docs]
    pq.write_table(pa.table(cols), path, row_group_size=7)
    return path


def crawl_out(tmp: Path, shared_data: Path, n_docs: int = 60, per_shard: int = 20) -> Path:
    """A fake crawl output folder OUT with OUT/dataset/webdataset/train-NNNNN.tar."""
    photos = _photos(shared_data)
    write_wds(tmp / "dataset" / "webdataset", make_docs(n_docs), photos, per_shard=per_shard, missing_every=7)
    return tmp
