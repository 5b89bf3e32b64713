"""Partitioned tables, star edges and the union-find of the near-duplicate reduction; its resume and partition
independence."""
from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from obelics_builder.dedup import lsh_tables as lt
from obelics_builder.engine import near_dedup
from obelics_builder.engine.dedup_reductions import near_duplicate_losers, rows_to_drop
from obelics_builder.io.markers import marker_path

from test_dedup_near import _corpus


def test_partitioned_file_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    rows = np.empty(1000, dtype=lt.BAND)
    rows["key"] = rng.integers(0, 2**63, 1000, dtype=np.uint64)
    rows["doc"] = np.arange(1000)
    part = (rows["key"] % np.uint64(16)).astype(np.int64)
    lt.write_partitioned(tmp_path / "t.bin", rows, part, 16)
    got = np.concatenate([lt.read_partitions(tmp_path / "t.bin", lt.BAND, lo, min(16, lo + 3))
                          for lo in range(0, 16, 3)])
    assert sorted(got["doc"].tolist()) == list(range(1000))
    mid = lt.read_partitions(tmp_path / "t.bin", lt.BAND, 5, 9)
    assert set((mid["key"] % np.uint64(16)).tolist()) <= {5, 6, 7, 8} and mid.size == int(((part >= 5) & (part < 9)).sum())
    assert lt.read_partitions(tmp_path / "absent.bin", lt.BAND, 0, 4).size == 0
    assert not list(tmp_path.glob(".*tmp"))


def test_bucket_edges_are_stars_from_the_smallest_doc():
    keys = np.array([5, 5, 5, 7, 9, 9, 9, 9], dtype=np.uint64)
    docs = np.array([30, 10, 20, 40, 50, 50, 60, 10], dtype=np.int64)
    a, b = lt.bucket_edges(keys, docs)
    assert list(zip(a.tolist(), b.tolist())) == [(10, 20), (10, 30), (10, 50), (10, 60)]


def _components(n, edges):
    adj = defaultdict(list)
    for x, y in edges:
        adj[x].append(y)
        adj[y].append(x)
    label = list(range(n))
    seen = set()
    for s in range(n):
        if s in seen:
            continue
        comp, stack = [], [s]
        seen.add(s)
        while stack:
            x = stack.pop()
            comp.append(x)
            for y in adj[x]:
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        for x in comp:
            label[x] = min(comp)
    return label


@pytest.mark.parametrize("seed", range(8))
def test_union_find_gives_the_smallest_id_of_each_component(seed):
    rng = random.Random(seed)
    n = rng.randrange(2, 400)
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randrange(1, 600))]
    parent = lt.parent_array(n)
    for lo in range(0, len(edges), 37):  # streamed in chunks, as over the verified files
        chunk = np.array(edges[lo:lo + 37], dtype=np.int64)
        lt.union_edges(parent, chunk[:, 0], chunk[:, 1])
    labels = lt.final_labels(parent)
    assert labels.tolist() == _components(n, edges)
    ref = _components(n, edges)
    sizes = defaultdict(int)
    for x in ref:
        sizes[x] += 1
    assert lt.members(labels).tolist() == [sizes[ref[x]] > 1 for x in range(n)]


def _losers(dest):
    return {k: rows_to_drop(dest / "losers", k) for k in ("pa", "pb")}


def test_many_partitions_same_losers_as_one(tmp_path):
    parts, excl = _corpus(tmp_path)
    base = {"num_perm": 64, "bands": 16, "rows": 4, "threshold": 0.7}
    one = near_duplicate_losers(parts, tmp_path / "one", "fp", "sync", base, exclude_dir=excl)
    many_cfg = {**base, "band_partitions": 64, "edge_partitions": 32, "band_rows_per_partition": 7,
                "edges_per_partition": 1, "ranks_per_partition": 1, "verify_chunk": 1}
    many = near_duplicate_losers(parts, tmp_path / "many", "fp", "sync", many_cfg, exclude_dir=excl)
    assert _losers(tmp_path / "one") == _losers(tmp_path / "many") == {"pa": {0, 4}, "pb": {1, 6}}
    assert many["edge_tasks"] > 1 and many["verify_tasks"] > 1 and many["loser_tasks"] > 1
    assert {k: one[k] for k in ("clusters", "losers", "verified_edges", "candidate_edges")} == \
        {k: many[k] for k in ("clusters", "losers", "verified_edges", "candidate_edges")}


def test_resume_skips_finished_units(tmp_path, monkeypatch):
    parts, excl = _corpus(tmp_path)
    cfg = {"num_perm": 64, "bands": 16, "rows": 4, "threshold": 0.7, "band_rows_per_partition": 40,
           "edges_per_partition": 3, "ranks_per_partition": 2}
    dest = tmp_path / "near"
    first = near_duplicate_losers(parts, dest, "fp", "sync", cfg, exclude_dir=excl)
    # interrupted after the components: the run marker, the ranked and loser units are gone
    marker_path(dest, "near_losers").unlink()
    for f in (dest / "ranked" / "_done").glob("*.json"):
        f.unlink()
    for f in (dest / "losers").glob("*.parquet"):
        f.unlink()
    calls = {"sig": 0, "cc": 0}
    import obelics_builder.dedup.minhash as mh

    orig_sig, orig_union = mh.signatures, near_dedup.union_edges

    def count_sig(*a, **k):
        calls["sig"] += 1
        return orig_sig(*a, **k)

    def count_union(*a, **k):
        calls["cc"] += 1
        return orig_union(*a, **k)

    monkeypatch.setattr(mh, "signatures", count_sig)
    monkeypatch.setattr(near_dedup, "union_edges", count_union)
    again = near_duplicate_losers(parts, dest, "fp", "sync", cfg, exclude_dir=excl)
    assert again == first and calls == {"sig": 0, "cc": 0}
    assert _losers(dest) == {"pa": {0, 4}, "pb": {1, 6}}
    # another fingerprint recomputes everything, and a stale loser file of the earlier run does not survive
    (dest / "losers" / "99999.parquet").write_bytes((dest / "losers" / "00000.parquet").read_bytes())
    near_duplicate_losers(parts, dest, "fp2", "sync", {**cfg, "ranks_per_partition": 100}, exclude_dir=excl)
    assert calls["sig"] > 0 and calls["cc"] > 0
    assert sorted(f.name for f in (dest / "losers").glob("*.parquet")) == ["00000.parquet"]
    assert _losers(dest) == {"pa": {0, 4}, "pb": {1, 6}}


def test_no_band_rows_no_tasks(tmp_path):
    from obelics_builder import schema
    from obelics_builder.io.parquet import write_documents

    d = schema.new_document({"url": "https://x/0"})
    schema.add_text(d, "")
    write_documents(tmp_path / "p.parquet", [d])
    s = near_duplicate_losers([tmp_path / "p.parquet"], tmp_path / "near", "fp", "sync", {})
    assert s["band_rows"] == 0 and s["losers"] == 0 and s["edge_tasks"] == 0
    assert rows_to_drop(tmp_path / "near" / "losers", "p") == set()
