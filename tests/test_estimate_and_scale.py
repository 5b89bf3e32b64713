"""`obelics-build estimate` (commands/estimate.py) and the WARC generator of bench/scale/bench_scale.py."""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import pytest

from obelics_builder.commands import estimate as est

REPO = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    p = argparse.ArgumentParser()
    est.add_arguments(p)
    rc = est.run(p.parse_args(argv))
    return rc, capsys.readouterr()


def test_estimate_counts_sample_warcs_and_computes(capsys):
    rc, out = run(["--dump", "2023-06", "--mirror", "sample", "--pages-per-core-s", "10", "--json"], capsys)
    assert rc == 0
    data = json.loads(out.out)
    from obelics_builder.sources.commoncrawl import list_warcs

    n = len(list_warcs("2023-06", "sample"))
    assert data["warcs"] == n >= 8
    assert data["pages"] == n * est.CC_PAGES_PER_WARC
    assert data["core_hours"] == pytest.approx(n * est.CC_PAGES_PER_WARC / 10 / 3600)
    assert data["wall_hours"]["512"] == pytest.approx(data["core_hours"] / 512)
    rc, out = run(["--dump", "CC-MAIN-2023-06", "--warcs", "90000", "--pages-per-core-s", "25",
                   "--pages-per-warc", "40000", "--cores", "1000"], capsys)
    assert rc == 0
    assert "90,000" in out.out and "40,000" in out.out
    assert "40,000" in out.out and f"{90000 * 40000 / 25 / 3600:,.0f}" in out.out


def test_estimate_from_stats_and_bench_output(tmp_path, capsys):
    stats = {"run": {"warcs": ["a", "b"]},
             "stages": {"read": {"documents_in": 900, "documents_out": 400, "seconds": 0.0},
                        "extract": {"seconds": 6.0}, "text_scores": {"seconds": 4.0}}}
    f = tmp_path / "stats.json"
    f.write_text(json.dumps(stats))
    t = est.throughput_from_file(f)
    assert t["pages_per_core_s"] == pytest.approx(40.0) and t["pages_per_warc"] == 200
    rc, out = run(["--dump", "2023-06", "--warcs", "10", "--throughput-from", str(f),
                   "--pages-per-warc", "measured", "--json"], capsys)
    assert rc == 0 and json.loads(out.out)["pages"] == 2000
    b = tmp_path / "bench.txt"
    b.write_text("figures...\nmore figures\n" + json.dumps({"pages_per_core_s": 12.5, "pages_per_warc": 2000}) + "\n")
    assert est.throughput_from_file(b)["pages_per_core_s"] == 12.5
    # bad inputs: clear messages, non-zero exit, no traceback
    bad = tmp_path / "bad.json"
    bad.write_text('{"stages": {"read": {"documents_out": 0}}}')
    rc, out = run(["--dump", "2023-06", "--warcs", "10", "--throughput-from", str(bad)], capsys)
    assert rc == 2 and "cannot measure" in out.err
    rc, out = run(["--dump", "2023-99", "--warcs", "10", "--pages-per-core-s", "1"], capsys)
    assert rc == 2 and "dump" in out.err
    rc, out = run(["--dump", "2023-06", "--mirror", str(tmp_path), "--pages-per-core-s", "1"], capsys)
    assert rc == 1 and "--warcs" in out.err  # no listing there
    rc, out = run(["--dump", "2023-06", "--warcs", "5", "--pages-per-core-s", "1", "--pages-per-warc", "x"], capsys)
    assert rc == 2


def test_bench_generator_writes_valid_gzip_per_record_warcs(tmp_path):
    sys.path.insert(0, str(REPO / "bench" / "scale"))
    try:
        import bench_scale
    finally:
        sys.path.pop(0)
    from obelics_builder.sources.commoncrawl import warc_refs_from_paths
    from obelics_builder.sources.warc import iter_html_records
    from obelics_builder.stats import StageContext

    pool = [(b"<!doctype html><html><body><p>" + b"word " * 200 * (i + 1) + b"</p></body></html>",
             "text/html; charset=utf-8") for i in range(5)]
    files = bench_scale.write_warcs(pool, tmp_path, total_mb=0.2, warc_mb=0.1)
    assert len(files) >= 2
    urls = set()
    for f in files:
        raw = Path(f["path"]).read_bytes()
        assert gzip.decompress(raw).count(b"WARC/1.0\r\n") == 1 + 3 * f["pages"]  # CRCs and lengths check out
        ctx = StageContext("read")
        recs = list(iter_html_records(warc_refs_from_paths([f["path"]])[0], ctx))
        assert len(recs) == f["pages"] and ctx.stats.balance_problems() == []
        assert ctx.stats.stage("read")["errors"] == {}
        assert all(r["body"] in {b for b, _ in pool} for r in recs)
        urls.update(r["url"] for r in recs)
    assert len(urls) == sum(f["pages"] for f in files)  # every page under its own URL
