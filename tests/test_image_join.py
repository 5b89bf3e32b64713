"""The final step's keyed image join (:mod:`obelics_builder.images.join`): the same rows as the old scan of every
table part, reading only the buckets (and row groups) a part's URLs fall in, and resumed by the plan's rule."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from obelics_builder.images.join import (MARKER, BucketReader, JoinConfig, bucket_images, bucket_path, url_bucket)
from obelics_builder.io.image_table import IMAGE_TABLE_SCHEMA
from obelics_builder.io.markers import read_marker, write_marker
from obelics_builder.tasks import load_image_rows

from conftest import crawl


def _part_urls(out: Path) -> dict[str, set[str]]:
    """Every document part's image URLs (what its final task asks the table for)."""
    found = {}
    for f in sorted((out / "parts" / "url_dedup").glob("*.parquet")):
        if f.name.endswith(".pairs.parquet"):
            continue
        images = pq.read_table(f, columns=["images"]).column("images").to_pylist()
        found[f.stem] = {u for imgs in images for u in (imgs or []) if u}
    return found


def test_keyed_join_equals_the_scan_on_the_sample(sample_run, tmp_path):
    out, _ = sample_run
    parts = _part_urls(out)
    assert len(parts) > 1 and sum(map(len, parts.values())) > 100
    readers = {"run's": BucketReader.of(out / "images" / "by_url_hash")}
    for cfg in (JoinConfig(buckets=7, row_group_rows=16), JoinConfig(rows_per_bucket=50, row_group_rows=4)):
        dest = tmp_path / f"b{cfg.buckets}-{cfg.rows_per_bucket}"
        marker = bucket_images(out / "images" / "table", dest, "fp", cfg)
        assert marker["buckets"] == cfg.count(marker["rows"]) > 1
        readers[str(cfg)] = BucketReader.of(dest)
    joined = 0
    for key, urls in parts.items():
        scan = load_image_rows(str(out), urls)
        joined += len(scan)
        for name, reader in readers.items():
            assert reader.lookup(urls) == scan, (key, name)
    assert joined > 100


def _table_part(folder: Path, index: int, rows: int) -> list[str]:
    urls = [f"https://h{(index * 7 + i) % 13}.example/img/{index}/{i}.jpg" for i in range(rows)]
    cols = {f.name: pa.nulls(rows, f.type) for f in IMAGE_TABLE_SCHEMA}
    cols.update(url=pa.array(urls), status=pa.array([200] * rows, pa.int32()),
                sha256=pa.array([f"{index}-{i}" for i in range(rows)]), data=pa.array([b"x"] * rows))
    pq.write_table(pa.table(cols, schema=IMAGE_TABLE_SCHEMA), folder / f"part-{index:05d}.parquet")
    write_marker(folder, f"part-{index:05d}", {"fingerprint": f"f{index}"})
    return urls


def test_a_part_reads_only_the_buckets_and_row_groups_it_needs(tmp_path):
    """200 table parts: the scan reads all of them; the join opens one bucket per bucket the URLs fall in."""
    table = tmp_path / "table"
    table.mkdir()
    every = [u for i in range(200) for u in _table_part(table, i, 50)]  # 10,000 rows
    dest = tmp_path / "buckets"
    marker = bucket_images(table, dest, "fp", JoinConfig(rows_per_bucket=500, row_group_rows=64))
    assert marker == {"fingerprint": "fp", "buckets": 20, "rows": 10_000}
    assert not (dest / "_scatter").exists() and len(list(dest.glob("bucket-*.parquet"))) == 20
    assert "data" not in pq.ParquetFile(bucket_path(dest, 0)).schema_arrow.names
    wanted = set(every[1234:1284])  # one "document part": 50 image URLs
    reader = BucketReader.of(dest)
    rows = reader.lookup(wanted)
    assert set(rows) == wanted and rows == _scan(table, wanted)
    needed = {url_bucket(u, 20) for u in wanted}
    assert reader.files == len(needed) <= 20
    assert reader.rows <= reader.row_groups * 64 and reader.row_groups <= len(wanted)
    assert reader.rows <= len(wanted) * 64 < 10_000  # the scan reads all 10,000 rows of 200 files
    few = BucketReader.of(dest)
    assert len(few.lookup(set(every[:3]))) == 3 and few.files <= 3 and few.rows <= 3 * 64
    # a second batch of the same part reuses the open buckets
    reader.lookup(set(every[1234:1240]))
    assert reader.files == len(needed)


def _scan(table: Path, urls: set[str]) -> dict:
    out = table.parent / "scan"
    (out / "images").mkdir(parents=True, exist_ok=True)
    if not (out / "images" / "table").exists():
        (out / "images" / "table").symlink_to(table)
    return load_image_rows(str(out), urls)


def test_a_url_in_two_table_parts_keeps_the_later_row_as_the_scan_did(tmp_path):
    table = tmp_path / "table"
    table.mkdir()
    _table_part(table, 0, 5)
    _table_part(table, 1, 5)
    t = pq.read_table(table / "part-00000.parquet")
    t = t.set_column(t.schema.get_field_index("sha256"), "sha256", pa.array(["later"] * 5))
    pq.write_table(t, table / "part-00002.parquet")  # the URLs of part 0 again, in a later part
    bucket_images(table, tmp_path / "b", "fp", JoinConfig(buckets=3, row_group_rows=2))
    urls = set(t.column("url").to_pylist()) | {"https://nowhere.example/x.jpg"}
    rows = BucketReader.of(tmp_path / "b").lookup(urls)
    assert rows == _scan(table, urls) and {r["sha256"] for r in rows.values()} == {"later"}


def test_bucketing_skips_when_done_and_reruns_on_a_new_fingerprint(tmp_path):
    table = tmp_path / "table"
    table.mkdir()
    _table_part(table, 0, 20)
    dest = tmp_path / "b"
    bucket_images(table, dest, "fp1", JoinConfig(buckets=4))
    before = {p.name: p.stat().st_mtime_ns for p in dest.glob("bucket-*")}
    _table_part(table, 1, 20)
    assert bucket_images(table, dest, "fp1", JoinConfig(buckets=4))["rows"] == 20  # done: not rebuilt
    assert {p.name: p.stat().st_mtime_ns for p in dest.glob("bucket-*")} == before
    assert bucket_images(table, dest, "fp2", JoinConfig(buckets=4))["rows"] == 40


def _plan(out: Path) -> dict:
    from obelics_builder.cli import main
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["plan", "--out", str(out), "--json"]) == 0
    return {s["step"]: s for s in json.loads(buf.getvalue())["steps"]}


def test_the_plan_skips_the_bucketing_when_done_and_reruns_it_when_the_fetch_output_changes(sample_run, tmp_path):
    src, _ = sample_run
    out = tmp_path / "out"
    shutil.copytree(src, out, symlinks=True)
    steps = _plan(out)
    assert steps["image_buckets"]["skip"] == 1 and steps["image_buckets"]["reads"]
    assert steps["final"]["skip"] == steps["final"]["units"]
    # what the fetch wrote changes (as a --retry-failed refetch would): a table part and its content fingerprint
    table = out / "images" / "table"
    part = sorted(table.glob("part-*.parquet"))[0]
    t = pq.read_table(part)
    failed = [i for i, r in enumerate(t.column("reason").to_pylist()) if r]
    assert failed, "the sample has failed image rows"
    url = t.column("url")[failed[0]].as_py()
    t = t.set_column(t.schema.get_field_index("error"), "error",
                     pa.array([("changed" if i == failed[0] else e) for i, e in enumerate(t.column("error").to_pylist())],
                              pa.string()))
    pq.write_table(t, part)
    marker = read_marker(table, part.stem)
    write_marker(table, part.stem, {**marker, "fingerprint": marker["fingerprint"] + "-refetched"})
    steps = _plan(out)
    assert steps["image_fetch"]["skip"] == steps["image_fetch"]["units"]
    assert steps["image_buckets"]["skip"] == 0 and steps["final"]["skip"] == 0
    before = read_marker(out / "images" / "by_url_hash", MARKER)
    r = crawl("--dump", "2023-06", "--mirror", "sample", "--out", str(out), "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    after = read_marker(out / "images" / "by_url_hash", MARKER)
    assert after["fingerprint"] != before["fingerprint"]
    assert BucketReader.of(out / "images" / "by_url_hash").lookup({url})[url]["error"] == "changed"
    steps = _plan(out)
    assert steps["image_buckets"]["skip"] == 1 and steps["final"]["skip"] == steps["final"]["units"]


def test_the_bucket_count_comes_from_one_typed_config():
    from obelics_builder.config_schema import problems

    assert JoinConfig.from_recipe({}) == JoinConfig()
    assert JoinConfig.from_recipe({"image_join": {"buckets": None, "rows_per_bucket": 10}}) == JoinConfig(rows_per_bucket=10)
    assert JoinConfig(rows_per_bucket=10).count(0) == 1 and JoinConfig(rows_per_bucket=10).count(101) == 11
    assert JoinConfig(buckets=5).count(10**9) == 5
    assert problems({"image_join": {"buckets": 0}}, "recipe") == ["image_join.buckets: out of range: expected an "
                                                                 "integer >= 1, got 0"]
    assert url_bucket("https://a.example/x.jpg", 1000) == url_bucket("https://a.example/x.jpg", 1000) < 1000
