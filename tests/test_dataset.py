"""Final shards (Parquet for the Hub, WebDataset for training), convert, dataset card and funnel chart."""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from obelics_builder import schema
from obelics_builder.dataset.card import funnel_series, size_category
from obelics_builder.dataset.convert import ConvertError, convert
from obelics_builder.dataset.shards import (PUBLISHED_SCHEMA, count_tokens, image_ext, iter_tar_samples, parse_size,
                                            write_dataset)
from obelics_builder.dataset.wds import unpack_images
from obelics_builder.io.markers import write_marker
from obelics_builder.io.parquet import write_documents
from obelics_builder.stats import Stats
from obelics_builder.tasks import IMAGE_TABLE_COLUMNS, IMAGE_TABLE_SCHEMA

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ["horse.png", "microaneurysms.png", "text.png", "rocket.jpg", "coins.png"]
BROKEN = "https://img.example/broken.jpg"
N_DOCS = 30


def make_fake_out(out: Path, photos: Path, n_docs: int = N_DOCS) -> tuple[list[dict], dict[str, bytes]]:
    """A small crawl output: documents/ (2 marked parts + 1 unmarked, incomplete part), images/table/, stats.json."""
    rows, blobs = [], {}
    for n in PHOTOS:
        data = (photos / n).read_bytes()
        url = f"https://img.example/{n}"
        blobs[url] = data
        rows.append({"url": url, "status": 200, "source": "archive", "bytes": len(data), "attempts": 1,
                     "seconds": 0.01, "sha256": hashlib.sha256(data).hexdigest(), "width": 64, "height": 64,
                     "format": "jpeg" if n.endswith(".jpg") else "png", "data": data})
    rows.append({"url": BROKEN, "status": 404, "error": "http_404", "reason": "fetch_failed", "data": None})
    table = pa.table({c: [r.get(c) for r in rows] for c in IMAGE_TABLE_COLUMNS}, schema=IMAGE_TABLE_SCHEMA)
    (out / "images" / "table").mkdir(parents=True, exist_ok=True)
    pq.write_table(table.slice(0, 3), out / "images" / "table" / "part-00000.parquet")
    pq.write_table(table.slice(3), out / "images" / "table" / "part-00001.parquet")
    urls = [r["url"] for r in rows]
    docs = []
    for i in range(n_docs):
        d = schema.new_document({"url": f"https://site.example/page{i}", "warc_filename": "w.warc.gz",
                                 "warc_record_offset": i * 100, "dump": "CC-MAIN-2023-06"})
        schema.add_text(d, f"Document {i}: a first paragraph, with words.\n\nA second one — ünïcode “quotes”.")
        for k in range(1 + i % 3):
            u = urls[(i + k) % len(urls)]
            schema.add_image(d, {"src": u, "unformatted_src": u, "alt_text": f"alt {i}.{k}",
                                 "format": "jpeg" if u.endswith(".jpg") else "png"})
        schema.add_text(d, "The end.")
        d["doc_stopwords"] = 0.5
        d["node_number_words"] = [[8.0, 6.0]] + [None] * (len(d["texts"]) - 2) + [[2.0]]
        docs.append(d)
    half = n_docs * 2 // 3
    write_documents(out / "documents" / "part-00000.parquet", docs[:half])
    write_documents(out / "documents" / "part-00001.parquet", docs[half:])
    write_marker(out / "documents", "part-00000", {"fingerprint": "a", "stats": {}})
    write_marker(out / "documents", "part-00001", {"fingerprint": "b", "stats": {}})
    # a part without its completion marker (a crashed run): never published
    write_documents(out / "documents" / "part-00002.parquet", docs[:2])
    write_fake_stats(out, n_docs, sum(schema.n_images(d) for d in docs))
    return docs, blobs


def write_fake_stats(out: Path, docs: int, images: int) -> dict:
    s = Stats()

    def stage(name, din, dout, iin, iout, removed=(), irem=(), errors=()):
        d = s.stage(name)
        d.update(documents_in=din, documents_out=dout, images_in=iin, images_out=iout)
        for k, v in removed:
            d["removed"][k] += v
        for k, v in irem:
            d["images_removed"][k] += v
        for k, v in errors:
            d["errors"][k] += v

    stage("read", 1000, 950, 0, 0, removed=[("not_html", 30)], errors=[("bad_gzip", 20)])
    stage("extract", 950, 900, 0, 4000, removed=[("no_content", 50)])
    stage("text_filter", 900, 300, 4000, 1500, removed=[("doc_stopwords", 600)])
    stage("url_dedup", 300, 250, 1500, 1200, removed=[("duplicate_url", 50)])
    stage("image_fetch", 700, 400, 0, 0, removed=[("fetch_failed", 300)])
    stage("images", 250, 100, 1200, 200, removed=[("no_image_left", 150)], irem=[("fetch_failed", 1000)])
    stage("final", 100, docs, 200, images, removed=[("no_text_left", 100 - docs)])
    s.note("text_filter", "perplexity filter disabled: no model configured")
    data = {"run": {"obelics_builder_version": "0.1.0", "dump": "CC-MAIN-2023-06", "warcs": ["a.warc.gz"],
                    "recipe": str(REPO / "pipelines" / "obelics.yaml"),
                    "filters": str(REPO / "filters" / "obelics.yaml"), "started": "2024-01-01T00:00:00+00:00"},
            "summary": {"records_in": 1000, "documents": docs, "images": images, "accounted": True},
            "notes": ["text_filter: perplexity filter disabled: no model configured"],
            "stages": s.to_dict()}
    (out / "stats.json").write_text(json.dumps(data), encoding="utf-8")
    return data


@pytest.fixture()
def fake_out(tmp_path, shared_data):
    out = tmp_path / "out"
    docs, blobs = make_fake_out(out, shared_data / "images" / "cc0-photos")
    return out, docs, blobs


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------------------

def test_parse_size_and_helpers():
    assert parse_size("500MB") == 500 * 10**6
    assert parse_size("1.5GB") == 1_500_000_000
    assert parse_size("64MiB") == 64 * 2**20
    assert parse_size("1000") == 1000
    for bad in ("", "-1MB", "12XB", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert image_ext("jpeg") == "jpg" and image_ext("PNG") == "png" and image_ext("webp") == "webp"
    assert image_ext(None, b"\x89PNG\r\n\x1a\nrest") == "png"
    assert image_ext(None, b"\xff\xd8\xff\xe0") == "jpg"
    assert image_ext(None, b"????") == "bin"
    assert count_tokens(["Hello, world!", None, "a b"]) == 6
    assert size_category(0) == "n<1K" and size_category(141_047_697) == "100M<n<1B"


def test_parquet_shards_published_schema_loadable_with_datasets(fake_out, tmp_path):
    datasets = pytest.importorskip("datasets")
    out, docs, _ = fake_out
    result = write_dataset(out, shard_size_bytes="5kB", webdataset=False)
    data = out / "dataset" / "data"
    files = sorted(p.name for p in data.iterdir())
    m = len(files)
    assert m >= 2, files  # sized by the target
    assert files == [f"train-{i:05d}-of-{m:05d}.parquet" for i in range(m)]
    assert not list((out / "dataset").rglob("*.tmp"))
    for f in data.iterdir():
        assert pq.read_schema(f).remove_metadata() == PUBLISHED_SCHEMA  # exactly the four OBELICS columns
    assert result["documents"] == N_DOCS  # the unmarked part-00002 is not included
    assert sum(s["rows"] for s in result["parquet"]) == N_DOCS

    ds = datasets.load_dataset("parquet", data_files=str(data / "train-*.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert ds.column_names == ["images", "metadata", "general_metadata", "texts"]
    assert len(ds) == N_DOCS
    for row, doc in zip(ds, docs):
        assert row["texts"] == doc["texts"]
        assert row["images"] == doc["images"]  # URL strings, None at text positions
        assert json.loads(row["metadata"]) == doc["metadata"]
        assert json.loads(row["general_metadata"]) == doc["general_metadata"]

    # a rerun with a larger target replaces the shards: no stale train-*-of-OLD file survives
    write_dataset(out, shard_size_bytes="500MB", webdataset=False)
    assert sorted(p.name for p in data.iterdir()) == ["train-00000-of-00001.parquet"]


def test_embedded_image_bytes_column(fake_out):
    out, docs, blobs = fake_out
    result = write_dataset(out, embed_images=True, webdataset=False)
    table = pq.read_table(out / "dataset" / result["parquet"][0]["path"])
    assert table.schema.names == ["images", "metadata", "general_metadata", "texts", "image_bytes"]
    assert table.schema.field("image_bytes").type == pa.list_(pa.binary())
    n_with = 0
    for doc, row in zip(docs, table.column("image_bytes").to_pylist()):
        assert len(row) == len(doc["texts"])
        for text, url, b in zip(doc["texts"], doc["images"], row):
            if text is not None or url == BROKEN:
                assert b is None
            else:
                assert b == blobs[url]
                n_with += 1
    assert n_with == result["images_with_bytes"] > 0
    assert result["images"] > n_with  # the broken URL's positions have no bytes


def test_webdataset_tars_read_with_webdataset_library(fake_out):
    wds = pytest.importorskip("webdataset")
    out, docs, blobs = fake_out
    result = write_dataset(out, shard_size_bytes="100kB", webdataset=True)
    tars = sorted((out / "dataset" / "webdataset").glob("*.tar"))
    assert len(tars) == len(result["webdataset"]) >= 2
    assert [t.name for t in tars] == [f"train-{i:05d}.tar" for i in range(len(tars))]
    samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False, empty_check=False))
    assert len(samples) == N_DOCS
    for i, (sample, doc) in enumerate(zip(samples, docs)):
        key = sample["__key__"]
        assert key == f"d{i:07d}" and "." not in key
        assert {k for k in sample if not k.startswith("__")} == {"json", "images.tar"}  # the same in every sample
        meta = json.loads(sample["json"])
        assert meta == {"texts": json.dumps(doc["texts"], ensure_ascii=False, separators=(",", ":")),
                        "images": json.dumps(doc["images"], ensure_ascii=False, separators=(",", ":")),
                        "metadata": json.dumps(doc["metadata"], ensure_ascii=False, separators=(",", ":")),
                        "general_metadata": json.dumps(doc["general_metadata"], ensure_ascii=False,
                                                       separators=(",", ":"))}
        files = unpack_images(sample["images.tar"])
        for pos, url in enumerate(doc["images"]):
            if url is None:
                continue
            ext = "jpg" if url.endswith(".jpg") else "png"
            if url == BROKEN:
                assert pos not in files  # listed in json, no file
            else:
                assert files[pos] == (blobs[url], ext)
    # our own reader agrees
    assert [k for k, _, _ in iter_tar_samples(out / "dataset")] == [s["__key__"] for s in samples]


def test_output_is_deterministic(fake_out, tmp_path):
    out, _, _ = fake_out
    write_dataset(out, shard_size_bytes="100kB", embed_images=True)
    first = _tree_hashes(out / "dataset")
    write_dataset(out, shard_size_bytes="100kB", embed_images=True)
    assert _tree_hashes(out / "dataset") == first
    assert {"README.md", "funnel.png", "shards.json"} <= set(first)


def test_convert_round_trips_without_loss(fake_out, tmp_path):
    out, _, _ = fake_out
    write_dataset(out, shard_size_bytes="100kB", embed_images=True, webdataset=False)
    src = out / "dataset" / "data"
    original = pa.concat_tables(pq.read_table(p) for p in sorted(src.glob("*.parquet")))

    r1 = convert(src, tmp_path / "wds")  # parquet -> webdataset (direction detected)
    assert r1["to"] == "webdataset" and r1["documents"] == N_DOCS and r1["image_files"] > 0
    r2 = convert(tmp_path / "wds", tmp_path / "pq", shard_size="50kB")  # webdataset -> parquet
    assert r2["to"] == "parquet"
    back = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "pq").glob("*.parquet")))
    assert back.schema.remove_metadata() == original.schema.remove_metadata()
    assert back.to_pylist() == original.to_pylist()

    # and the other way: webdataset -> parquet -> webdataset gives the same samples
    convert(tmp_path / "pq", tmp_path / "wds2")
    assert list(iter_tar_samples(tmp_path / "wds2")) == list(iter_tar_samples(tmp_path / "wds"))

    with pytest.raises(ConvertError):
        convert(tmp_path / "nothing-here", tmp_path / "x")
    write_dataset(out, shard_size_bytes="100kB")
    with pytest.raises(ConvertError, match="--to"):
        convert(out / "dataset", tmp_path / "y")  # both formats present: ambiguous


def test_card_header_counts_funnel_and_chart(fake_out):
    from PIL import Image

    out, docs, _ = fake_out
    (out / "optout-manifest-2024-03-01.parquet").write_bytes(b"")
    result = write_dataset(out, webdataset=True)
    text = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "other" and header["language"] == ["en"]
    assert header["size_categories"] == ["n<1K"]
    assert header["configs"] == [{"config_name": "default",
                                  "data_files": [{"split": "train", "path": "data/train-*"}]}]
    info = header["dataset_info"]
    assert [f["name"] for f in info["features"]] == ["images", "metadata", "general_metadata", "texts"]
    assert info["features"][0] == {"name": "images", "list": "string"}
    assert info["splits"][0]["num_examples"] == N_DOCS
    assert info["download_size"] == sum(f["bytes"] for f in result["parquet"])
    n_images = sum(schema.n_images(d) for d in docs)
    tokens = count_tokens(t for d in docs for t in d["texts"])
    body = text.split("---\n", 2)[2]
    assert f"| documents | {N_DOCS} |" in body and f"| images (image positions) | {n_images} |" in body
    assert f"| tokens | {tokens:,} |" in body and "regex word tokenizer" in body
    assert "| text_filter | 900 | 300 |" in body and "doc_stopwords 600" in body and "bad_gzip 20" in body
    assert "2024-03-01" in body
    assert "perplexity filter disabled" in body
    assert "| number_words | min=4, max=1000 | min=10, max=2000 |" in body  # thresholds from the filter config
    img = Image.open(out / "dataset" / "funnel.png")
    assert img.format == "PNG" and img.size[0] >= 800
    labels, docs_series, images_series = funnel_series(json.loads((out / "stats.json").read_text())["stages"])
    assert "image_fetch" not in labels and docs_series[0] == 1000 and docs_series[-1] == N_DOCS

    # with --embed-images the card lists the extra feature
    write_dataset(out, embed_images=True, webdataset=False)
    header = yaml.safe_load((out / "dataset" / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert header["dataset_info"]["features"][-1] == {"name": "image_bytes", "list": "binary"}


def test_shards_command_and_empty_output(tmp_path, capsys):
    from obelics_builder.commands import shards as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    assert cmd.run(p.parse_args([str(tmp_path / "missing")])) == 2
    assert cmd.run(p.parse_args([str(tmp_path), "--shard-size", "lots"])) == 2
    (tmp_path / "documents").mkdir()
    write_fake_stats(tmp_path, 0, 0)
    assert cmd.run(p.parse_args([str(tmp_path), "--no-webdataset"])) == 0
    assert "0 documents" in capsys.readouterr().out
    only = tmp_path / "dataset" / "data" / "train-00000-of-00001.parquet"
    assert pq.read_table(only).num_rows == 0 and pq.read_schema(only).remove_metadata() == PUBLISHED_SCHEMA
    assert (tmp_path / "dataset" / "README.md").exists()


def test_convert_command(fake_out, tmp_path, capsys):
    from obelics_builder.commands import convert as cmd

    out, _, _ = fake_out
    write_dataset(out, embed_images=True, webdataset=False)
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    assert cmd.run(p.parse_args([str(out / "dataset"), str(tmp_path / "w")])) == 0
    assert f"{N_DOCS} documents" in capsys.readouterr().out
    assert cmd.run(p.parse_args([str(tmp_path / "w"), str(tmp_path / "p"), "--to", "parquet"])) == 0
    assert cmd.run(p.parse_args([str(tmp_path / "none"), str(tmp_path / "q")])) == 2
    assert "no such file" in capsys.readouterr().err


def test_funnel_chart_is_drawn_without_matplotlib(tmp_path):
    """The chart (Pillow): the same series give the same bytes, each panel's bars in its colour, and drawing it
    does not import matplotlib (whose import and layout cost ~0.7 CPU-s of every crawl)."""
    import subprocess
    import sys

    from PIL import Image

    from obelics_builder.dataset.funnel_chart import COLORS, HEIGHT, WIDTH, draw_funnel, nice_ticks

    series = (["read (input)", "read", "extract", "text_filter"], [1341, 496, 495, 329], [0, 0, 1240, 844])
    a, b = draw_funnel(series, tmp_path / "a.png"), draw_funnel(series, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()
    img = Image.open(a).convert("RGB")
    assert img.size == (WIDTH, HEIGHT)
    colors = {c: n for n, c in img.getcolors(WIDTH * HEIGHT)}
    rgb = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in COLORS]
    assert colors[rgb[0]] > 20_000 and colors[rgb[1]] > 20_000  # the bars of both panels
    assert nice_ticks(1.15) == [0, 1] and nice_ticks(1542.15) == [0, 250, 500, 750, 1000, 1250, 1500]
    code = ("import sys; from obelics_builder.dataset.funnel_chart import draw_funnel; "
            f"draw_funnel(({series!r}), {str(tmp_path / 'c.png')!r}); print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False" and (tmp_path / "c.png").read_bytes() == a.read_bytes()
