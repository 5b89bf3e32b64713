"""Faults on a small simulated dump (bench/dump's inputs and driver, a real LocalCluster of 2 worker processes): a
worker killed mid-run and a whole run killed then resumed give the undisturbed run's output (hash of the sorted
document keys and of the dataset shards' rows); corrupt WARCs among the others are counted and the rest complete."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench" / "dump"))

pytestmark = pytest.mark.slow

WARCS, PER_WARC, WORKERS = 16, 2, 2


@pytest.fixture(scope="module")
def dump(tmp_path_factory, shared_data):
    import bench_dump
    from gen_inputs import make_variants, page_pool  # (puts scripts/ on the path)
    from build_sample_mirror import page_image_urls

    tmp = tmp_path_factory.mktemp("dump")
    empty = tmp / "no-dev"
    empty.mkdir()
    pool = [p for p in page_pool(empty) if 1 <= len(page_image_urls(p["url"], p["body"])) <= 12]
    variants = make_variants(shared_data / "images" / "cc0-photos", 20)
    inputs = bench_dump.build_inputs(tmp / "in", pool, variants, WARCS, PER_WARC, bench_dump.paragraph_bank(pool))
    ref = bench_dump.run_crawl(inputs, tmp / "reference", WORKERS)
    hashes = bench_dump.output_hashes(tmp / "reference")
    assert ref["rc"] == 0 and hashes["documents"] > 0 and hashes["shards"] > 0, (ref, hashes)
    return bench_dump, inputs, tmp, ref, hashes


def test_a_killed_worker_does_not_change_the_output(dump):
    bench_dump, inputs, tmp, ref, hashes = dump
    # killed once a third of the WARCs are done (not on a timer: a faster run could end before it fired)
    r = bench_dump.run_crawl(inputs, tmp / "killed", WORKERS, kill_worker_after_markers=WARCS // 3)
    assert r["killed_worker"], "no worker was killed"
    assert r["rc"] == 0
    assert bench_dump.output_hashes(tmp / "killed") == hashes


def test_an_interrupted_run_resumes_to_the_same_output(dump):
    bench_dump, inputs, tmp, ref, hashes = dump
    out = tmp / "interrupted"
    first = bench_dump.run_crawl(inputs, out, WORKERS, interrupt_after_markers=WARCS // 2)
    assert first == {} and not (out / "stats.json").exists(), "the run finished before it could be interrupted"
    done = list((out / "parts").rglob("_done/*.json"))
    assert done, "nothing was done before the interruption"
    assert not (out / "stats.json").exists()
    r = bench_dump.run_crawl(inputs, out, WORKERS)
    assert r["rc"] == 0
    assert bench_dump.output_hashes(out) == hashes


def test_corrupt_warcs_are_counted_and_the_rest_complete(dump):
    bench_dump, inputs, tmp, ref, hashes = dump
    bad_dir = tmp / "corrupt-in"
    bad_dir.mkdir()
    warcs = list(inputs["warcs"])
    for j in (3, 11):
        dst = bad_dir / Path(warcs[j]).name
        dst.write_bytes(Path(warcs[j]).read_bytes())
        bench_dump.corrupt(dst)
        warcs[j] = str(dst)
    out = tmp / "corrupt"
    r = bench_dump.run_crawl({**inputs, "warcs": warcs}, out, WORKERS)
    assert r["rc"] == 0
    stats = json.loads((out / "stats.json").read_text())
    ref_stats = json.loads((tmp / "reference" / "stats.json").read_text())
    read = stats["stages"]["read"]
    assert sum(read["errors"].values()) >= 2, read["errors"]
    # every record before the cut of a corrupt WARC is kept, the other 14 WARCs are read whole
    assert 14 * PER_WARC <= read["documents_out"] < ref_stats["stages"]["read"]["documents_out"]
    assert stats["summary"]["accounted"] and stats["summary"]["documents"] > 0
