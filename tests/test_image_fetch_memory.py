"""A fetch task's memory does not grow with its unit (issue 19): the rows go to the spool as they are final and
the table part is assembled from the spool files (a k-way merge by URL, bounded row groups), with the same content
as the in-memory build; an interrupted part resumes from its spool."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from obelics_builder.images import partition
from obelics_builder.images.ledger import content_fingerprint, fetch_rows
from obelics_builder.io.image_table import IMAGE_TABLE_COLUMNS
from obelics_builder.io.markers import read_marker

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench" / "pipeline"))

#: the side of the test images (noise PNGs of ~77 KB)
NOISE_SIDE = 160


def _variants(n: int, seed: int = 0) -> list[tuple[str, bytes, str]]:
    """``n`` distinct PNGs of noise (incompressible: ~77 KB each), big enough for the image rules."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    out = []
    for k in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.randint(0, 256, (NOISE_SIDE, NOISE_SIDE, 3), dtype=np.uint8)).save(buf, format="PNG")
        out.append((f"{k:04d}.png", buf.getvalue(), "image/png"))
    return out


def _archive(folder: Path, n: int, variants: int = 24) -> list[str]:
    from gen_inputs import write_image_archive

    urls = [f"https://site{i // 5}.mem.example.org/img/{i:05d}.png" for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    write_image_archive(urls, _variants(variants), folder / "images.warc.gz", 0.0)
    (folder / "urls.json").write_text(json.dumps(urls))
    return urls


def _recipe(checkpoint: int) -> dict:
    return {"images": {"checkpoint_urls": checkpoint, "network": False},
            "filters_config": {"image": {"nsfw": {"enabled": False}}}}


def _image_archive(folder: Path):
    from obelics_builder.sources.archive import ImageArchive
    from obelics_builder.sources.commoncrawl import WarcRef

    return ImageArchive([WarcRef(uri=str(folder / "images.warc.gz"), name="images.warc.gz")])


def _part_rows(out: Path, index: int = 0) -> list[dict]:
    return pq.read_table(out / "images" / "table" / f"part-{index:05d}.parquet").to_pylist()


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


#: run in a fresh interpreter: one fetch task over the folder's first N URLs (after a warm-up task of 20, so that
#: the modules the fetch imports are loaded); prints its VmHWM growth (MB)
CHILD = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import test_image_fetch_memory as t
from obelics_builder.images.partition import fetch_table_part

def mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

folder, n = Path(sys.argv[1]), int(sys.argv[3])
urls = json.loads((folder / "urls.json").read_text())
archive = t._image_archive(folder)
fetch_table_part(9, urls[-20:], t._recipe(100), str(folder / f"warm{n}"), archive, {}, archive_names=["a"])
base = mb("VmRSS")
stats = fetch_table_part(0, urls[:n], t._recipe(100), str(folder / f"out{n}"), archive, {}, archive_names=["a"])
print(json.dumps({"growth_mb": mb("VmHWM") - base, "out": stats["image_fetch"]["documents_out"]}))
"""


def _growth(folder: Path, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(Path(__file__).parent), str(n)], env=env,
                         cwd=str(REPO), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fetch_task_peak_does_not_grow_with_its_unit(tmp_path):
    """300 then 1,500 URLs of ~77 KB images (each URL read as its own bytes: ~90 MB more bodies), each in a fresh
    process: the task that held every row, bytes included, then the whole table and the Parquet write grew by
    ~250 MB more for the larger unit; the streaming one holds a checkpoint (100 rows) and a few row groups."""
    urls = _archive(tmp_path, 1500)
    small, large = _growth(tmp_path, 300), _growth(tmp_path, 1500)
    assert small["out"] == 300 and large["out"] == len(urls)  # every image usable: every row holds its bytes
    assert large["growth_mb"] - small["growth_mb"] < 60, (small, large)
    pf = pq.ParquetFile(tmp_path / "out1500" / "images" / "table" / "part-00000.parquet")
    assert pf.metadata.num_rows == len(urls) and pf.metadata.num_row_groups > 1


def test_the_streamed_part_is_the_in_memory_build(tmp_path, monkeypatch):
    """Many spool files (a checkpoint every 40 URLs), merged in passes (fan-in 3): the part has the rows the
    in-memory build gives, in URL order, and the marker the content fingerprint of those rows."""
    monkeypatch.setattr(partition, "MERGE_FAN_IN", 3)
    monkeypatch.setattr(partition, "ROW_GROUP_ROWS", 64)
    urls = _archive(tmp_path, 300, variants=8)
    recipe = _recipe(40)
    archive = _image_archive(tmp_path)
    partition.fetch_table_part(0, urls, recipe, str(tmp_path / "out"), archive, {})
    rows = _part_rows(tmp_path / "out")
    ref, _ = fetch_rows(sorted(urls), archive, recipe["images"], recipe["filters_config"])
    ref = sorted(({c: r.get(c) for c in IMAGE_TABLE_COLUMNS} for r in ref), key=lambda r: r["url"])
    assert [r["url"] for r in rows] == sorted(urls)
    assert _strip(rows) == _strip(ref)
    path = tmp_path / "out" / "images" / "table" / "part-00000.parquet"
    marker = read_marker(path.parent, "part-00000")
    assert marker["fingerprint"] == content_fingerprint(marker["input_fingerprint"], pq.read_table(path))
    assert marker["stats"]["image_fetch"]["documents_in"] == 300
    assert pq.ParquetFile(path).metadata.num_row_groups >= 300 // 64
    assert not (path.parent / "_partial").exists() or not any((path.parent / "_partial").iterdir())


def test_an_interrupted_part_resumes_from_its_spool(tmp_path, monkeypatch):
    """The task dies after three checkpoints (and a merge pass left half done); the rerun fetches only the rest,
    sorts a spool file an older version wrote unsorted, and writes the part a fresh run writes."""
    urls = _archive(tmp_path, 200, variants=6)
    recipe = _recipe(25)
    archive = _image_archive(tmp_path)
    real = partition.Spool.save
    saves = []

    def dying(self, rows):
        if len(saves) == 3:
            raise RuntimeError("the worker died")
        saves.append(len(rows))
        real(self, rows)

    monkeypatch.setattr(partition.Spool, "save", dying)
    with pytest.raises(RuntimeError, match="the worker died"):
        partition.fetch_table_part(0, urls, recipe, str(tmp_path / "out"), archive, {})
    monkeypatch.setattr(partition.Spool, "save", real)
    spool = tmp_path / "out" / "images" / "table" / "_partial" / "part-00000"
    files = sorted(spool.glob("*.parquet"))
    assert len(files) == 3
    saved = {u for f in files for u in pq.read_table(f, columns=["url"]).column("url").to_pylist()}
    # an older version's spool file (unsorted) and a merge pass cut by the crash
    first = pq.read_table(files[0])
    pq.write_table(first.take(pa.array(list(range(first.num_rows))[::-1])), files[0])
    (spool / "_merge").mkdir()
    (spool / "_merge" / "000000.parquet").write_bytes(b"cut")
    asked = []
    real_fetch = partition.fetch_rows

    def counting(todo, *a, **k):
        asked.extend(todo)
        return real_fetch(todo, *a, **k)

    monkeypatch.setattr(partition, "fetch_rows", counting)
    partition.fetch_table_part(0, urls, recipe, str(tmp_path / "out"), archive, {})
    assert set(asked) == set(urls) - saved and len(saved) == 75
    assert not spool.exists()
    partition.fetch_table_part(0, urls, recipe, str(tmp_path / "fresh"), archive, {})
    assert _strip(_part_rows(tmp_path / "out")) == _strip(_part_rows(tmp_path / "fresh"))


def test_the_streamed_content_fingerprint_is_the_table_one(tmp_path):
    from obelics_builder.images.ledger import content_fingerprint_of_file

    t = pa.table({"url": ["b", "a", None, "c\u00e9"], "reason": [None, "too_small", "x", None],
                  "nsfw": pa.array([0.1234567, None, float("nan"), 1.0], pa.float32()),
                  "image_near_duplicate": [True, None, False, False], "stored_width": [1, 2, None, 4],
                  "data": [b"1", None, b"3", b"4"]})
    pq.write_table(t, tmp_path / "p.parquet", row_group_size=3)
    assert content_fingerprint_of_file("fp", tmp_path / "p.parquet", batch_rows=2) == content_fingerprint("fp", t)
    empty = t.slice(0, 0)
    pq.write_table(empty, tmp_path / "e.parquet")
    assert content_fingerprint_of_file("fp", tmp_path / "e.parquet") == content_fingerprint("fp", empty)


def test_the_readers_of_a_part_go_row_group_by_row_group(tmp_path, monkeypatch):
    """A part in many row groups: the pHash apply rewrites it one row group at a time and the dataset's byte
    scatter reads it one row group at a time with a small buffer (many fragments per bucket): the same results."""
    from obelics_builder.dataset.image_bytes import BytesConfig, ImageBytes
    from obelics_builder.images import join, phash_groups
    from obelics_builder.images.ledger import write_table_part
    from obelics_builder.io import image_table

    monkeypatch.setattr(image_table, "ROW_GROUP_ROWS", 16)
    rng = np.random.RandomState(3)
    urls = sorted(f"https://h{i % 7}.example/{i}.jpg" for i in range(200))
    rows = [{c: None for c in IMAGE_TABLE_COLUMNS} | {"url": u, "data": rng.bytes(int(rng.randint(1, 500))),
                                                         "format": "jpeg", "sha256": f"{i:064x}"}
            for i, u in enumerate(urls)]
    folder = tmp_path / "images" / "table"
    write_table_part(folder, "part-00000", [dict(r) for r in rows], "fp", {})
    path = folder / "part-00000.parquet"
    assert pq.ParquetFile(path).metadata.num_row_groups == 200 // 16 + 1
    marks = {u: (f"g{i % 3}", i % 3 == 1) for i, u in enumerate(urls)}
    pieces = phash_groups.with_marks(path, marks)
    assert not isinstance(pieces, list)
    marked = pa.concat_tables(list(pieces)).to_pylist()
    assert [(r["phash_group"], r["image_near_duplicate"]) for r in marked] == [marks[u] for u in urls]
    assert [r["data"] for r in marked] == [r["data"] for r in rows]
    cfg = BytesConfig(bucket_bytes=8000, row_group_bytes=500)
    with ImageBytes(tmp_path, None, cfg) as store:
        whole = store.get_many(urls)
    real = join.scatter_batches
    monkeypatch.setattr("obelics_builder.dataset.image_bytes.scatter_batches",
                        lambda *a, **k: real(*a, **{**k, "max_bytes": 2000}))
    with ImageBytes(tmp_path, None, cfg) as store:
        frags = list((store.folder / "_scatter").rglob("*.parquet"))
        assert store.get_many(urls) == whole == {r["url"]: (r["data"], "jpeg") for r in rows}
    assert not frags  # (gathered and removed: the buffer's write-outs are checked by the lookups above)
