"""MinHash signatures, LSH band keys and the run-wide near-duplicate reduction (sync and LocalCluster)."""
from __future__ import annotations

import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from obelics_builder import schema
from obelics_builder.dedup import minhash as mh
from obelics_builder.engine import Engine
from obelics_builder.engine.dedup_reductions import near_duplicate_losers, rows_to_drop
from obelics_builder.io.parquet import write_documents

VOCAB = [f"w{i}" for i in range(3000)]


def text(rng, n=120):
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def edit(rng, t, k=2):
    w = t.split()
    for _ in range(k):
        w[rng.randrange(len(w))] = f"edit{rng.randrange(10**6)}"
    return " ".join(w)


def doc(url, t, warc="crawl-data/CC-MAIN-2023-06/x.warc.gz", offset=0):
    d = schema.new_document({"url": url, "warc_filename": warc, "warc_record_offset": offset})
    schema.add_text(d, t)
    return d


def test_signature_estimates_jaccard_and_is_deterministic():
    rng = random.Random(1)
    a = text(rng, 300)
    b = edit(rng, a, 6)
    c = text(rng, 300)
    s = mh.signatures([a, b, c, a], num_perm=256)
    assert s.shape == (4, 256) and s.dtype == np.uint32
    assert (s[0] == s[3]).all()
    assert abs(mh.jaccard_estimate(s[0], s[1]) - mh.jaccard(a, b)) < 0.1
    assert mh.jaccard_estimate(s[0], s[2]) < 0.1
    # same seed -> same signature in another call (the hashes are not salted per process)
    assert (mh.signatures([a], num_perm=256)[0] == s[0]).all()
    assert not (mh.signatures([a], num_perm=256, seed=2)[0] == s[0]).all()


def test_short_and_empty_documents():
    s = mh.signatures(["", "   ", "two words", "two words", "Two, words!"], num_perm=16)
    assert mh.is_empty(s).tolist() == [True, True, False, False, False]
    assert (s[2] == s[3]).all() and (s[2] == s[4]).all()  # case and punctuation do not matter
    k = mh.band_keys(s, 4, 4)
    assert k.shape == (5, 4) and len(set(k[2].tolist())) == 4  # the band index is part of the key


def test_band_keys_reject_too_many_rows():
    with pytest.raises(ValueError):
        mh.band_keys(np.zeros((1, 8), np.uint32), 3, 3)


def test_candidate_probability_s_curve():
    assert mh.candidate_probability(0.8, 20, 6) > 0.99
    assert mh.candidate_probability(0.3, 20, 6) < 0.02


def _corpus(tmp_path):
    """Two parts: exact copies, near copies (2 edits in 120 words), a chain, uniques, an empty document."""
    rng = random.Random(7)
    base = [text(rng) for _ in range(6)]
    a = [doc("https://a/0", base[0], "crawl-data/CC-MAIN-2020-34/x"),   # 0: loses to b/0 (later crawl)
         doc("https://a/1", base[1], "crawl-data/CC-MAIN-2023-06/x"),   # 1: kept (latest of its cluster)
         doc("https://a/2", text(rng)),                                 # 2: unique
         doc("https://a/3", ""),                                        # 3: empty, never a duplicate
         doc("https://a/4", edit(rng, base[2]), "crawl-data/CC-MAIN-2021-04/x"),  # 4: near copy, loses
         doc("https://a/5", base[3], "crawl-data/CC-MAIN-2020-34/x"),   # 5: excluded (url loser) -> ignored
         ]
    b = [doc("https://b/0", base[0], "crawl-data/CC-MAIN-2023-06/x"),   # 0: kept
         doc("https://b/1", edit(rng, base[1]), "crawl-data/CC-MAIN-2020-34/x"),  # 1: loses to a/1
         doc("https://b/2", base[2], "crawl-data/CC-MAIN-2023-06/x"),   # 2: kept
         doc("https://b/3", ""),                                        # 3: empty
         doc("https://b/4", text(rng)),                                 # 4: unique
         doc("https://b/5", base[3], "crawl-data/CC-MAIN-2019-04/x"),   # 5: only copy left of base[3]: kept
         doc("https://b/6", edit(rng, base[1], 1), "crawl-data/CC-MAIN-2019-04/x"),  # 6: loses to a/1
         ]
    pa_, pb = tmp_path / "parts" / "pa.parquet", tmp_path / "parts" / "pb.parquet"
    write_documents(pa_, a)
    write_documents(pb, b)
    import pyarrow as pa

    excl = tmp_path / "url_losers"
    excl.mkdir()
    pq.write_table(pa.table({"part": ["pa"], "row": [5]}), excl / "x.parquet")
    return [pa_, pb, tmp_path / "parts" / "missing.parquet"], excl


@pytest.mark.parametrize("scheduler", ["sync", None])
def test_near_duplicate_losers(tmp_path, scheduler):
    parts, excl = _corpus(tmp_path)
    cfg = {"num_perm": 64, "bands": 16, "rows": 4, "threshold": 0.7, "band_rows_per_partition": 40,
           "edges_per_partition": 3, "verify_chunk": 2}
    with Engine(scheduler=scheduler, workers=2, quiet=True) as eng:
        dest = tmp_path / "near"
        summary = near_duplicate_losers(parts, dest, "fp1", eng.dask_scheduler, cfg, exclude_dir=excl)
        assert rows_to_drop(dest / "losers", "pa") == {0, 4}
        assert rows_to_drop(dest / "losers", "pb") == {1, 6}
        assert summary["losers"] == 4 and summary["clusters"] == 3
        assert summary["documents"] == 12
        # rerun with the same fingerprint: nothing recomputed
        (dest / "losers" / "sentinel").write_text("x")
        assert near_duplicate_losers(parts, dest, "fp1", eng.dask_scheduler, cfg, exclude_dir=excl) == summary
        assert (dest / "losers" / "sentinel").exists()


def test_near_duplicates_threshold_is_verified(tmp_path):
    """A pair that shares band keys but whose estimated Jaccard is below the threshold is not merged."""
    rng = random.Random(3)
    t = text(rng, 200)
    far = edit(rng, t, 25)  # Jaccard about 0.4
    write_documents(tmp_path / "p.parquet", [doc("https://x/0", t, offset=1), doc("https://x/1", far, offset=2)])
    cfg = {"num_perm": 128, "bands": 64, "rows": 2, "threshold": 0.8}  # very permissive banding
    s = near_duplicate_losers([tmp_path / "p.parquet"], tmp_path / "near", "fp", "sync", cfg)
    assert s["candidate_edges"] >= 1 and s["verified_edges"] == 0
    assert rows_to_drop(tmp_path / "near" / "losers", "p") == set()
