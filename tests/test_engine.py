"""The Dask engine: task mapping and the run-wide reductions (sync scheduler and a real LocalCluster)."""
from __future__ import annotations

from pathlib import Path

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


def test_reductions_read_small_part_files_in_groups(tmp_path):
    """Many small per-part files make a few partitions (a reduction's graph is O(bytes), not O(parts)); the rows
    and dtypes are dd.read_parquet's, and url_losers finds the same losers either way."""
    import dask.dataframe as dd

    from obelics_builder.engine import parts

    files = []
    for i in range(40):
        f = tmp_path / f"p{i}.keys.parquet"
        write_keys(f, f"p{i}", [(f"u{i % 7}", f"20{10 + i % 13}"), (f"v{i}", "2020")])
        files.append(str(f))
    sizes = {f: Path(f).stat().st_size for f in files}
    target = sum(sizes.values()) // 4 + 1
    groups = parts.file_groups(files, target)
    assert 4 <= len(groups) <= 5 and [f for g in groups for f in g] == files
    assert all(sum(sizes[f] for f in g) <= target for g in groups)
    assert len(parts.file_groups(files, 1)) == 40  # each bigger than the target: one each
    cols = ["url", "rank", "row", "part"]
    grouped = parts.read_parts(files, cols)
    assert grouped.npartitions == 1
    a = dd.read_parquet(files, columns=cols).compute(scheduler="sync").reset_index(drop=True)
    b = grouped.compute(scheduler="sync").reset_index(drop=True)
    assert a.equals(b) and a.dtypes.to_dict() == b.dtypes.to_dict()
    url_losers([tmp_path / f"p{i}.keys.parquet" for i in range(40)], tmp_path / "losers", "fp", "sync")
    # u0..u6 each in 5-6 parts: all but the best-ranked capture of each lose
    expected = {(f"p{i}", 0) for i in range(40)} - {
        (f"p{max((j for j in range(40) if j % 7 == k), key=lambda j: (f'20{10 + j % 13}', j))}", 0) for k in range(7)}
    got = losers_of(tmp_path / "losers")
    assert len(got) == len(expected) == 33
