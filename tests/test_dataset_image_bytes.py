"""The dataset's image bytes by a keyed lookup (dataset/image_bytes.py) give what a full in-memory index gave."""
import random

import pyarrow as pa
import pyarrow.parquet as pq

from obelics_builder.dataset.image_bytes import BytesConfig, ImageBytes


def _tables(tmp_path):
    rnd = random.Random(5)
    folder = tmp_path / "images" / "table"
    folder.mkdir(parents=True)
    urls = [f"https://h{i % 9}.example/{i}.jpg" for i in range(300)]
    parts = []
    for k in range(3):
        rows = []
        for u in rnd.sample(urls, 120):  # some URLs in several parts: the first part's row counts
            data = None if rnd.random() < 0.15 else (b"" if rnd.random() < 0.05 else rnd.randbytes(rnd.randint(1, 900)))
            rows.append({"url": u, "data": data, "format": rnd.choice(["JPEG", "PNG", None])})
        rows.append({"url": None, "data": b"orphan", "format": None})
        parts.append(rows)
        cols = {"url": pa.array([r["url"] for r in rows], pa.string()),
                "data": pa.array([r["data"] for r in rows], pa.binary())}
        if k != 1:  # a part written before the format column existed
            cols["format"] = pa.array([r["format"] for r in rows], pa.string())
        else:
            for r in rows:
                r["format"] = None
        pq.write_table(pa.table(cols), folder / f"part-{k:05d}.parquet")
    pq.write_table(pa.table({"url": ["https://x.example/nodata.jpg"]}), folder / "part-00009.parquet")
    return urls, parts


def _naive(parts):
    first = {}
    for rows in parts:
        for r in rows:
            if r["url"] is not None and r["url"] not in first:
                first[r["url"]] = r
    return {u: (r["data"], r["format"]) for u, r in first.items() if r["data"]}


def test_lookup_matches_a_full_index(tmp_path):
    urls, parts = _tables(tmp_path)
    want = _naive(parts)
    cfg = BytesConfig(bucket_bytes=4000, row_group_bytes=600)  # many buckets, many row groups
    with ImageBytes(tmp_path, None, cfg) as store:
        assert store.reader.buckets > 10
        batch = urls[:40] + ["https://nowhere.example/a.jpg", "", None]
        got = store.get_many(batch)
        assert got == {u: want[u] for u in urls[:40] if u in want}
        assert store.get_many(urls) == want
        # a lookup reads the row groups that can hold its URLs, not the buckets
        before = store.reader.rows
        store.get_many(urls[:3])
        assert store.reader.rows - before < 40
    assert not (tmp_path / "images" / "_bytes_by_url_hash").exists()


def test_one_bucket_and_no_table(tmp_path):
    urls, parts = _tables(tmp_path)
    with ImageBytes(tmp_path) as store:
        assert store.reader.buckets == 1 and store.get_many(urls) == _naive(parts)
    with ImageBytes(tmp_path / "empty") as store:
        assert store.get_many(urls) == {}


def test_a_bucket_fed_by_one_sorted_part(tmp_path):
    """One URL-sorted table part (a run of one fetch unit): the buckets keep its order without moving the bytes,
    and give the same bytes as the index; an unsorted part beside it still sorts."""
    rnd = random.Random(9)
    folder = tmp_path / "images" / "table"
    folder.mkdir(parents=True)
    urls = sorted(f"https://h{i % 7}.example/{i}.jpg" for i in range(200))
    rows = [{"url": u, "data": rnd.randbytes(rnd.randint(1, 500)), "format": "JPEG"} for u in urls]
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    for cfg in (BytesConfig(), BytesConfig(bucket_bytes=3000, row_group_bytes=500)):
        with ImageBytes(tmp_path, None, cfg) as store:
            assert store.get_many(urls) == _naive([rows])
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    pq.write_table(pa.Table.from_pylist(shuffled[:50]), folder / "part-00001.parquet")
    with ImageBytes(tmp_path) as store:
        assert store.get_many(urls) == _naive([rows, shuffled[:50]])
