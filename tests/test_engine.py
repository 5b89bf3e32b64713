"""The Dask engine: task mapping and the run-wide reductions (sync scheduler and a real LocalCluster)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from obelics_builder.engine import Engine
from obelics_builder.engine.reductions import fetch_bucket_urls, image_url_plan, url_losers
from obelics_builder.tasks import KEYS_SCHEMA, PAIRS_SCHEMA, warc_key


def _square(x, add=0):
    return x * x + add


def _fail_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


def write_keys(path, part, rows):
    t = pa.table({"url": [r[0] for r in rows], "rank": [r[1] for r in rows],
                  "row": list(range(len(rows))), "part": [part] * len(rows)}, schema=KEYS_SCHEMA)
    pq.write_table(t, path)


def losers_of(folder):
    out = set()
    for f in folder.glob("*.parquet"):
        t = pq.read_table(f)
        out.update(zip(t.column("part").to_pylist(), t.column("row").to_pylist()))
    return out


@pytest.mark.parametrize("scheduler", ["sync", None])
def test_map_and_url_losers(tmp_path, scheduler):
    with Engine(scheduler=scheduler, workers=2, quiet=True) as eng:
        assert eng.map(_square, [1, 2, 3], add=1) == [2, 5, 10]
        write_keys(tmp_path / "a.keys.parquet", "a", [("u1", "2020"), ("u2", "2020"), ("u3", "2023")])
        write_keys(tmp_path / "b.keys.parquet", "b", [("u1", "2023"), ("u2", "2019"), ("u4", "2020")])
        dest = tmp_path / "losers"
        url_losers([tmp_path / "a.keys.parquet", tmp_path / "b.keys.parquet", tmp_path / "missing.parquet"],
                   dest, "fp1", eng.dask_scheduler)
        assert losers_of(dest) == {("a", 0), ("b", 1)}
        # completed work is reused for the same fingerprint, recomputed for another
        (dest / "sentinel").write_text("x")
        url_losers([tmp_path / "a.keys.parquet"], dest, "fp1", eng.dask_scheduler)
        assert (dest / "sentinel").exists()
        url_losers([tmp_path / "a.keys.parquet"], dest, "fp2", eng.dask_scheduler)
        assert losers_of(dest) == set()


def test_map_reports_failures_after_finishing_the_rest():
    with Engine(scheduler="sync", quiet=True) as eng:
        with pytest.raises(ValueError):
            eng.map(_fail_on_three, [1, 3])


def test_image_url_plan_counts_documents_per_url(tmp_path):
    rows = {"image_url": [], "doc_url": []}
    for i in range(12):  # "common" is in 12 documents, "rare" in 2 (twice in one of them)
        rows["image_url"].append("https://x/common.jpg")
        rows["doc_url"].append(f"https://p/{i}")
    rows["image_url"] += ["https://x/rare.jpg"] * 3
    rows["doc_url"] += ["https://p/0", "https://p/0", "https://p/1"]
    pq.write_table(pa.table(rows, schema=PAIRS_SCHEMA), tmp_path / "a.pairs.parquet")
    dest = tmp_path / "plan"
    n = image_url_plan([tmp_path / "a.pairs.parquet"], dest, "fp", 10, "sync")
    assert n == 1
    too = pq.read_table(next((dest / "too_frequent").glob("*.parquet"))).column("image_url").to_pylist()
    assert too == ["https://x/common.jpg"]
    assert fetch_bucket_urls(dest, 0) == ["https://x/rare.jpg"]


def test_warc_key_is_safe_and_unique():
    a = warc_key("crawl-data/CC-MAIN-2023-06/segments/1/warc/CC-MAIN-1.warc.gz")
    b = warc_key("crawl-data/CC-MAIN-2023-06/segments/2/warc/CC-MAIN-1.warc.gz")
    assert a != b and "/" not in a and a.startswith("CC-MAIN-1-")
