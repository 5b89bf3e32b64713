"""The run-wide pHash marks as waves over files (images/phash_groups.py) give the in-memory grouping's marks."""
import random

import pyarrow.parquet as pq
import pytest

from obelics_builder.images.ledger import write_table_part
from obelics_builder.images.phash import near_duplicate_groups
from obelics_builder.images.phash_groups import PhashPlanConfig, apply_phash_groups
from obelics_builder.io.markers import read_marker


def _rows(seed: int, n_parts: int):
    rnd = random.Random(seed)
    base = [rnd.getrandbits(64) for _ in range(40)]
    parts = [[] for _ in range(n_parts)]
    i = 0
    for b in base:
        for _ in range(rnd.randint(1, 4)):
            v = b
            for bit in rnd.sample(range(64), rnd.randint(0, 7)):
                v ^= 1 << bit
            # some rows share a sha256 (same bytes under another URL), some have none, some no pHash
            sha = None if rnd.random() < 0.1 else f"s{rnd.randint(0, 150):04d}"
            ph = None if rnd.random() < 0.05 else f"{v:016x}"
            parts[rnd.randrange(n_parts)].append({"url": f"https://h{i % 7}.example/{i}.jpg", "sha256": sha,
                                                  "phash": ph, "data": b"x" * (i % 5)})
            i += 1
    return parts


def _write(folder, parts):
    keys = []
    for k, rows in enumerate(parts):
        key = f"part-{k:05d}"
        write_table_part(folder, key, rows, f"in{k}", {"image_fetch": {}})
        keys.append(key)
    return keys


def _marks(folder, keys):
    return {r["url"]: (r["phash_group"], r["image_near_duplicate"])
            for k in keys for r in pq.read_table(folder / f"{k}.parquet").to_pylist()}


@pytest.mark.parametrize("distance", [4, 0, 7, -1])
def test_waves_give_the_in_memory_marks(tmp_path, distance):
    parts = _rows(3, 4)
    folder = tmp_path / "images" / "table"
    keys = _write(folder, parts)
    # tiny partitions: several band and group partitions, so rows meet only through the files
    info = apply_phash_groups(folder, keys, distance, cfg=PhashPlanConfig(band_rows_per_partition=40,
                                                                          rows_per_partition=25))
    want = near_duplicate_groups(((r["url"], r["sha256"], r["phash"]) for rows in parts for r in rows), distance)
    got = _marks(folder, keys)
    assert got == {u: want.get(u, (None, None)) for u in got}
    assert info["groups"] == sum(not d for _, d in want.values())  # one representative per group
    assert info["near_duplicates"] == sum(d for _, d in want.values())
    assert info["parts_rewritten"] == len(keys)
    assert not (tmp_path / "images" / "phash" / "_work").exists()
    if distance > 0:
        assert info["near_duplicates"] > 0
    # stable: a second run changes nothing (same content fingerprints)
    fps = [read_marker(folder, k)["fingerprint"] for k in keys]
    assert apply_phash_groups(folder, keys, distance)["parts_rewritten"] == 0
    assert [read_marker(folder, k)["fingerprint"] for k in keys] == fps


def test_partitioning_does_not_change_the_bytes(tmp_path):
    out = {}
    for tag, cfg in (("one", PhashPlanConfig()), ("many", PhashPlanConfig(band_rows_per_partition=10,
                                                                          rows_per_partition=7))):
        folder = tmp_path / tag / "images" / "table"
        keys = _write(folder, _rows(11, 3))
        apply_phash_groups(folder, keys, 4, cfg=cfg)
        out[tag] = [(folder / f"{k}.parquet").read_bytes() for k in keys]
    assert out["one"] == out["many"]


def test_unfinished_parts_are_left_out(tmp_path):
    parts = _rows(5, 2)
    folder = tmp_path / "images" / "table"
    keys = _write(folder, parts)
    (folder / "_done" / "part-00001.json").unlink()
    before = (folder / "part-00001.parquet").read_bytes()
    apply_phash_groups(folder, keys, 4)
    assert (folder / "part-00001.parquet").read_bytes() == before
    want = near_duplicate_groups(((r["url"], r["sha256"], r["phash"]) for r in parts[0]), 4)
    got = _marks(folder, ["part-00000"])
    assert got == {u: want.get(u, (None, None)) for u in got}
