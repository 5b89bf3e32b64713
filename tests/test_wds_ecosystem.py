"""Our WebDataset tars read the same documents as the Parquet shards with (1) ``datasets.load_dataset("webdataset")``
offline, (2) the ``webdataset`` package and (3) the trainer's reader (issue 17, ecosystem fit)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from obelics_builder import schema
from obelics_builder.dataset.convert import convert
from obelics_builder.dataset.shards import iter_parquet_rows, iter_tar_samples, write_dataset
from obelics_builder.dataset.wds import unpack_images
from obelics_builder.io.parquet import write_documents
from obelics_builder.tasks import IMAGE_TABLE_COLUMNS, IMAGE_TABLE_SCHEMA
from obelics_builder.train.data import iter_shard, resolve_shards

PHOTOS = ["horse.png", "rocket.jpg", "coins.png", "text.png"]
BROKEN = "https://img.example/broken.jpg"
#: images per document: the first six have none (the first 5 samples are what `datasets` infers the columns from),
#: then 1..4, with the broken URL (no bytes) in some
N_IMAGES = [0, 0, 0, 0, 0, 0, 1, 3, 0, 2, 4, 1, 0, 2]


def _build(out: Path, photos: Path) -> None:
    rows = []
    for n in PHOTOS:
        data = (photos / n).read_bytes()
        rows.append({"url": f"https://img.example/{n}", "status": 200, "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest(), "format": "jpeg" if n.endswith(".jpg") else "png",
                     "data": data})
    rows.append({"url": BROKEN, "status": 404, "error": "http_404", "reason": "fetch_failed", "data": None})
    (out / "images" / "table").mkdir(parents=True)
    pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in IMAGE_TABLE_COLUMNS}, schema=IMAGE_TABLE_SCHEMA),
                   out / "images" / "table" / "part-00000.parquet")
    urls = [r["url"] for r in rows]
    docs = []
    for i, k in enumerate(N_IMAGES):
        d = schema.new_document({"url": f"https://site.example/{i}", "warc_filename": "w.warc.gz",
                                 "warc_record_offset": i, "dump": "CC-MAIN-2023-06"})
        schema.add_text(d, f"Document {i}, ünïcode “quotes” and a paragraph.")
        for j in range(k):
            u = urls[(i + j) % len(urls)]
            schema.add_image(d, {"src": u, "alt_text": f"alt {i}.{j}", "format": "jpeg" if u.endswith("jpg") else "png"})
            if j % 2:
                schema.add_text(d, f"Between images {j}.")
        schema.add_text(d, "The end.")
        docs.append(d)
    write_documents(out / "documents" / "part-00000.parquet", docs)


@pytest.fixture()
def built(tmp_path, shared_data):
    out = tmp_path / "out"
    _build(out, shared_data / "images" / "cc0-photos")
    write_dataset(out, shard_size_bytes="60kB", embed_images=True, card=False)
    tars = sorted((out / "dataset" / "webdataset").glob("*.tar"))
    assert len(tars) >= 2
    return out, tars


def _expected(out: Path) -> list[dict]:
    """The documents as the Parquet shards hold them: the four columns, and the image bytes by position."""
    docs = []
    for row in iter_parquet_rows(out / "dataset"):
        images = {i: hashlib.sha256(b).hexdigest() for i, b in enumerate(row["image_bytes"]) if b is not None}
        docs.append({"texts": row["texts"], "images": row["images"], "metadata": row["metadata"],
                     "general_metadata": row["general_metadata"], "image_sha256": images})
    assert [sum(u is not None for u in d["images"]) for d in docs] == N_IMAGES
    assert any(len(d["image_sha256"]) < sum(u is not None for u in d["images"]) for d in docs)  # broken URL
    return docs


def _from_sample(doc_json: dict, images_tar: bytes) -> dict:
    files = unpack_images(images_tar)
    return {"texts": json.loads(doc_json["texts"]), "images": json.loads(doc_json["images"]),
            "metadata": doc_json["metadata"], "general_metadata": doc_json["general_metadata"],
            "image_sha256": {pos: hashlib.sha256(b).hexdigest() for pos, (b, _ext) in files.items()}}


HF_SCRIPT = r"""
import json, sys
import datasets
assert datasets.config.HF_DATASETS_OFFLINE and datasets.config.HF_HUB_OFFLINE
ds = datasets.load_dataset("webdataset", data_files=sys.argv[1:], split="train", cache_dir=CACHE)
print(json.dumps({"features": {k: repr(v) for k, v in ds.features.items()},
                  "rows": [{"key": r["__key__"], "json": r["json"], "images_tar": r["images.tar"].hex()}
                           for r in ds]}))
"""


def test_hf_datasets_webdataset_loader_reads_our_tars_offline(built, tmp_path):
    out, tars = built
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    script = HF_SCRIPT.replace("CACHE", repr(str(tmp_path / "hf-cache")))
    r = subprocess.run([sys.executable, "-c", script, *map(str, tars)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    feats = got["features"]
    assert set(feats) == {"json", "images.tar", "__key__", "__url__"}
    for name in ("texts", "images", "metadata", "general_metadata"):  # strings whatever the first samples hold
        assert f"'{name}': Value('string')" in feats["json"]
    assert "binary" in feats["images.tar"]
    rows = got["rows"]
    assert [row["key"] for row in rows] == [f"d{i:07d}" for i in range(len(N_IMAGES))]
    assert [_from_sample(row["json"], bytes.fromhex(row["images_tar"])) for row in rows] == _expected(out)


def test_webdataset_package_reads_our_tars(built):
    wds = pytest.importorskip("webdataset")
    out, tars = built
    samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False, empty_check=False))
    assert all({k for k in s if not k.startswith("__")} == {"json", "images.tar"} for s in samples)
    assert [_from_sample(json.loads(s["json"]), s["images.tar"]) for s in samples] == _expected(out)
    decoded = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False, empty_check=False).decode())
    assert [_from_sample(s["json"], s["images.tar"]) for s in decoded] == _expected(out)


def test_trainer_reader_gets_the_parquet_documents(built):
    out, tars = built
    assert resolve_shards(str(out)) == [str(t) for t in tars]  # the trainer picks the tars
    from_tars, counts = [], Counter()
    for t in tars:
        from_tars += [d.items for d in iter_shard(str(t), 0, counts)]
    from_parquet, pcounts = [], Counter()
    for p in sorted((out / "dataset" / "data").glob("*.parquet")):
        from_parquet += [d.items for d in iter_shard(str(p), 0, pcounts)]
    assert from_tars == from_parquet and len(from_tars) == len(N_IMAGES)
    assert counts == pcounts and counts["image_missing"] > 0  # the broken URL, counted the same way
    expected = []
    for d in _expected(out):
        expected.append([("text", t) if t else ("image", d["image_sha256"][i])
                         for i, t in enumerate(d["texts"]) if t or i in d["image_sha256"]])
    assert [[(k, hashlib.sha256(v).hexdigest() if k == "image" else v) for k, v in items]
            for items in from_tars] == expected


def test_convert_round_trip_keeps_the_layout(built, tmp_path):
    out, tars = built
    convert(out / "dataset" / "data", tmp_path / "wds")
    mine = list(iter_tar_samples(out / "dataset"))
    assert list(iter_tar_samples(tmp_path / "wds")) == mine
    convert(tmp_path / "wds", tmp_path / "pq")
    back = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "pq").glob("*.parquet")))
    original = pa.concat_tables(pq.read_table(p) for p in sorted((out / "dataset" / "data").glob("*.parquet")))
    assert back.to_pylist() == original.to_pylist()


def test_readers_accept_the_earlier_layout(tmp_path):
    """Tars written before this layout (native JSON values, ``KEY.<pos>.<ext>`` members) still read and convert."""
    import io
    import tarfile

    path = tmp_path / "old" / "train-00000.tar"
    path.parent.mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    with tarfile.open(path, "w") as tar:
        for name, data in [("d0.json", json.dumps({"texts": ["a", None], "images": [None, "u"],
                                                   "metadata": [None, {"format": "png"}],
                                                   "general_metadata": {"url": "x"}}).encode()),
                           ("d0.1.png", png), ("d1.txt", b"no json")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    counts = Counter()
    [(key, row, images)] = list(iter_tar_samples(path, counts))
    assert counts == {"sample_without_json": 1}
    assert row == {"texts": ["a", None], "images": [None, "u"], "metadata": '[null,{"format":"png"}]',
                   "general_metadata": '{"url":"x"}'} and images == {1: (png, "png")}
    assert [d.items for d in iter_shard(str(path), 0, Counter())][0] == [("text", "a"), ("image", png)]
    r = convert(path.parent, tmp_path / "pq")
    assert r["skipped"] == {"sample_without_json": 1} and r["image_files"] == 1


def test_card_snippet_loads_the_tars_offline(built, tmp_path):
    """The card's WebDataset example runs as written (from the dataset folder, offline)."""
    out, _ = built
    write_dataset(out, shard_size_bytes="60kB", embed_images=True)  # with the card this time
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "`KEY.images.tar`" in card and "each a string" in card
    blocks = [b.split("\n", 1)[1] for b in card.split("```python")[1:]]
    snippet = next(b.split("```")[0] for b in blocks if "\"webdataset\"" in b)
    snippet = snippet.replace('split="train")', f'split="train", cache_dir={str(tmp_path / "c")!r})')
    snippet += "print(json.dumps([texts, images, sorted(image_bytes)]))\n"
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    r = subprocess.run([sys.executable, "-c", snippet], cwd=out / "dataset", env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    first = _expected(out)[0]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [first["texts"], first["images"],
                                                             sorted(first["image_sha256"])]


def test_a_file_that_is_not_a_tar_is_one_clear_error(tmp_path, capsys):
    from obelics_builder.cli import main

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train-00000.tar").write_bytes(b"not a tar at all")
    assert main(["convert", str(tmp_path / "bad"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "train-00000.tar: not a readable tar shard" in err and "Traceback" not in err


def test_a_corrupt_images_tar_is_counted_not_fatal(tmp_path):
    import io
    import tarfile

    from obelics_builder.dataset.wds import encode_sample

    path = tmp_path / "train-00000.tar"
    good = encode_sample({"texts": ["a", None], "images": [None, "u"], "metadata": "[]", "general_metadata": "{}"},
                         {1: (b"\x89PNG\r\n\x1a\n....", "png")})
    with tarfile.open(path, "w") as tar:
        for key, members in [("d0", good), ("d1", {**good, "images.tar": b"garbage" * 100})]:
            for suffix, data in members.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    counts = Counter()
    assert [k for k, _, _ in iter_tar_samples(path, counts)] == ["d0"] and counts == {"bad_images_tar": 1}
    tcounts = Counter()
    docs = list(iter_shard(str(path), 0, tcounts))
    assert [len(d.items) for d in docs] == [2, 0] and tcounts["bad_images_tar"] == 1
