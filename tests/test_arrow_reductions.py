"""The in-process reductions of a small run (engine.arrow_reductions) give what the Dask graphs give, row for row."""
from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from obelics_builder.dedup.paragraphs import COUNTS_SCHEMA
from obelics_builder.engine import arrow_reductions
from obelics_builder.engine.dedup_reductions import frequent_paragraphs, keep_best_losers, unique_urls_plan
from obelics_builder.engine.reductions import fetch_bucket_urls, image_url_plan, plan_units, url_losers
from obelics_builder.optout.stage import URLS_SCHEMA
from obelics_builder.tasks import KEYS_SCHEMA, PAIRS_SCHEMA, SETS_SCHEMA


def _rows(folder, columns):
    out = []
    for f in sorted(folder.rglob("*.parquet")):
        t = pq.read_table(f, columns=columns)
        out += list(zip(*(t.column(c).to_pylist() for c in columns)))
    return sorted(out, key=repr)


@pytest.fixture
def both(monkeypatch):
    """Run ``fn`` once on Dask (the row cap below any input) and once in process; return both results."""
    def run(fn):
        monkeypatch.setattr(arrow_reductions, "IN_MEMORY_ROWS", -1)
        dask_result = fn("dask")
        monkeypatch.setattr(arrow_reductions, "IN_MEMORY_ROWS", 250_000)
        return dask_result, fn("arrow")
    return run


def _key_files(tmp_path, schema, key_name, n_parts=3, n=300, seed=0):
    rnd = random.Random(seed)
    files = []
    for p in range(n_parts):
        keys = [rnd.choice([None, "", *(f"k{i}" for i in range(40))]) for _ in range(n)]
        ranks = [rnd.choice(["2019", "2020", "2023", "2023-x"]) for _ in range(n)]  # ties on purpose
        t = pa.table({key_name: keys, "rank": ranks, "row": list(range(n)), "part": [f"p{p}"] * n}, schema=schema)
        files.append(tmp_path / f"p{p}.parquet")
        pq.write_table(t, files[-1], row_group_size=97)
    return files


def test_url_losers_same_rows(tmp_path, both):
    files = _key_files(tmp_path, KEYS_SCHEMA, "url")

    def fn(tag):
        url_losers(files + [tmp_path / "missing.parquet"], tmp_path / tag, "fp", "sync")
        return _rows(tmp_path / tag, ["part", "row"])

    a, b = both(fn)
    assert a == b and len(a) > 100


def test_image_set_losers_same_rows(tmp_path, both):
    files = _key_files(tmp_path, SETS_SCHEMA, "key", seed=1)

    def fn(tag):
        n = keep_best_losers(files, tmp_path / tag, "fp", "sync")
        return n, _rows(tmp_path / tag, ["part", "row"])

    a, b = both(fn)
    assert a == b and a[0] == len(a[1]) > 100


def test_frequent_paragraphs_same_pairs_and_buckets(tmp_path, both):
    rnd = random.Random(2)
    files = []
    for p in range(3):
        acc = {}
        for _ in range(400):
            k = (rnd.choice(["a.com", "b.org", "c.net", "d.de", "e.fr"]), rnd.randrange(2**63, 2**64))
            k = k if rnd.random() < 0.5 else (k[0], rnd.choice([1, 2, 3, 2**64 - 1]))
            acc[k] = acc.get(k, 0) + rnd.randint(1, 2)
        t = pa.table({"domain": [k[0] for k in acc], "phash": pa.array([k[1] for k in acc], pa.uint64()),
                      "n": list(acc.values())}, schema=COUNTS_SCHEMA)
        files.append(tmp_path / f"c{p}.parquet")
        pq.write_table(t, files[-1])

    def fn(tag):
        n = frequent_paragraphs(files, tmp_path / tag, "fp", "sync", min_count=3, buckets=4)
        per_bucket = {f.name: _rows(f, ["domain", "phash"]) for f in sorted((tmp_path / tag).glob("bucket=*"))}
        return n, per_bucket

    a, b = both(fn)
    assert a == b and a[0] > 0 and len(a[1]) > 1


def test_optout_url_plan_same_buckets(tmp_path, both):
    rnd = random.Random(3)
    files = []
    for p in range(2):
        urls = [rnd.choice([None, *(f"https://h{i % 7}.example/p{i}" for i in range(150))]) for _ in range(200)]
        kinds = [rnd.choice(["document", "image"]) for _ in urls]
        files.append(tmp_path / f"u{p}.parquet")
        pq.write_table(pa.table({"url": urls, "kind": kinds}, schema=URLS_SCHEMA), files[-1])

    def fn(tag):
        nb = unique_urls_plan(files, tmp_path / tag, "fp", "sync", urls_per_bucket=40)
        return nb, [_rows(tmp_path / tag / f"bucket={b}", ["url", "kind"]) for b in range(nb)]

    a, b = both(fn)
    assert a == b and a[0] > 3


def test_image_url_plan_same_units(tmp_path, both):
    rnd = random.Random(4)
    files = []
    for p in range(3):
        pairs = []
        for i in range(400):
            host = rnd.choice(["big.example"] * 6 + ["mid.example"] * 3 + [f"h{k}.example" for k in range(30)])
            img = f"https://{host}/i/{rnd.randrange(120)}.jpg" + rnd.choice(["", "", "?ad=1"])
            doc = rnd.choice([None, *(f"https://d/{k}" for k in range(30))])
            pairs.append((img if rnd.random() > 0.02 else None, doc))
        pairs += [("https://common.example/logo.png", f"https://d/{k}") for k in range(12)]
        files.append(tmp_path / f"pairs{p}.parquet")
        pq.write_table(pa.table({"image_url": [x for x, _ in pairs], "doc_url": [y for _, y in pairs]},
                                schema=PAIRS_SCHEMA), files[-1])

    def fn(tag):
        dest = tmp_path / tag
        n = image_url_plan(files, dest, "fp", 10, "sync", urls_per_partition=25, host_max_urls=60,
                           banned=("?ad=",))
        units = plan_units(dest)
        return (n, units, [fetch_bucket_urls(dest, u["bucket"]) for u in units],
                _rows(dest / "too_frequent", ["image_url"]), sorted(p.name for p in (dest / "fetch").iterdir()))

    a, b = both(fn)
    assert a == b
    n, units, urls, too, _ = a
    assert n == len(units) > 4 and any(u["shares"] > 1 for u in units)
    assert ("https://common.example/logo.png",) in too
    assert not any("?ad=" in u for bucket in urls for u in bucket)
