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
    assert data["cpu_stages_core_hours"] == pytest.approx(n * est.CC_PAGES_PER_WARC / 10 / 3600)
    # the image stage from the shipped figures, added to the total
    img = data["images"]
    assert img["source"].startswith("shipped figures") and img["image_urls"] == pytest.approx(
        data["pages"] * img["image_urls_per_page"])
    assert data["image_core_hours"] == pytest.approx(img["image_urls"] * img["cpu_s_per_image_url"] / 3600)
    assert data["core_hours"] == pytest.approx(data["cpu_stages_core_hours"] + data["image_core_hours"])
    assert data["wall_hours"]["512"] == pytest.approx(data["core_hours"] / 512)
    rc, out = run(["--dump", "CC-MAIN-2023-06", "--warcs", "90000", "--pages-per-core-s", "25",
                   "--pages-per-warc", "40000", "--image-urls-per-page", "0", "--cores", "1000"], capsys)
    assert rc == 0
    assert "90,000" in out.out and "40,000" in out.out
    assert f"{90000 * 40000 / 25 / 3600:,.0f}" in out.out


def test_estimate_needs_no_more_than_the_dump(monkeypatch, capsys):
    """``estimate --dump D`` answers from the shipped per-stage figures; offline, the typical WARC count (said so)."""
    def unreachable(dump, mirror):
        raise OSError("network is unreachable")

    monkeypatch.setattr(est, "count_warcs", unreachable)
    rc, out = run(["--dump", "2023-06", "--json"], capsys)
    assert rc == 0, out.err
    data = json.loads(out.out)
    assert data["warcs"] == est.CC_TYPICAL_WARCS and "could not be read" in data["warcs_source"]
    by = data["core_hours_by_stage"]
    for group in ("read", "extract", "text scores", "decisions", "dedup", "final passes", "image"):
        assert by.get(group, 0) > 0, group
    assert data["core_hours"] == pytest.approx(sum(by.values()))
    assert data["throughput_source"].startswith("shipped figures")
    # a benchmark's pages say nothing of a dump's image URLs per page: OBELICS's published figure is used
    assert data["images"]["image_urls_per_page"] == pytest.approx(est.costs.DUMP_IMAGE_URLS_PER_PAGE)
    assert "OBELICS" in data["images"]["image_urls_per_page_source"]
    rc, out = run(["--dump", "2023-06"], capsys)
    assert rc == 0 and "text scores" in out.out and "image" in out.out and "core-hours" in out.out
    # the shipped figures are a bench/pipeline JSON line, read through the same code as a user's own
    prof = est.costs.shipped_profile()
    assert prof.pages_per_cpu_s > 0 and prof.image_url_cpu_s > 0 and prof.image_urls_per_page > 0


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
    # a stats.json with cpu_seconds: those, per stage, and the image stage per unique URL
    stats["stages"].update({"extract": {"seconds": 9.0, "cpu_seconds": 2.0}, "text_scores": {"cpu_seconds": 2.0},
                            "text_filter": {"cpu_seconds": 0.4},
                            "image_fetch": {"documents_in": 100, "cpu_seconds": 1.5}})
    f.write_text(json.dumps(stats))
    prof = est.costs.profile_from_file(f)
    assert prof.page_cpu_s["extract"] == pytest.approx(2.0 / 400) and prof.page_cpu_s["decisions"] == pytest.approx(0.001)
    assert prof.image_url_cpu_s == pytest.approx(0.015) and prof.image_urls_per_page == pytest.approx(0.25)
    rc, out = run(["--dump", "2023-06", "--warcs", "10", "--throughput-from", str(f), "--pages-per-warc", "400",
                   "--json"], capsys)
    data = json.loads(out.out)
    assert data["core_hours_by_stage"]["image"] == pytest.approx(4000 * 0.25 * 0.015 / 3600)
    assert data["images"]["source"].startswith(str(f))
    b = tmp_path / "bench.txt"
    b.write_text("figures...\nmore figures\n" + json.dumps({"pages_per_core_s": 12.5, "pages_per_warc": 2000}) + "\n")
    assert est.throughput_from_file(b)["pages_per_core_s"] == 12.5
    bp = tmp_path / "pipeline.txt"
    bp.write_text("table\n" + json.dumps({"bench": "pipeline", "pages": 1000, "image_urls": 500,
                                           "groups_cpu_s": {"read": 1.0, "extract": 3.0, "image": 10.0}}) + "\n")
    prof = est.costs.profile_from_file(bp)
    assert prof.pages_per_cpu_s == pytest.approx(250.0) and prof.image_url_cpu_s == pytest.approx(0.02)
    # bad inputs: clear messages, non-zero exit, no traceback
    bad = tmp_path / "bad.json"
    bad.write_text('{"stages": {"read": {"documents_out": 0}}}')
    rc, out = run(["--dump", "2023-06", "--warcs", "10", "--throughput-from", str(bad)], capsys)
    assert rc == 2 and "cannot measure" in out.err
    rc, out = run(["--dump", "2023-06", "--warcs", "10", "--throughput-from", str(tmp_path / "missing.json")], capsys)
    assert rc == 2 and "missing.json" in out.err
    rc, out = run(["--dump", "2023-99", "--warcs", "10", "--pages-per-core-s", "1"], capsys)
    assert rc == 2 and "dump" in out.err
    rc, out = run(["--dump", "2023-06", "--mirror", str(tmp_path), "--pages-per-core-s", "1"], capsys)
    assert rc == 1 and "--warcs" in out.err  # a named mirror without a listing is an error, not a default
    rc, out = run(["--dump", "2023-06", "--warcs", "5", "--pages-per-core-s", "1", "--pages-per-warc", "x"], capsys)
    assert rc == 2
    rc, out = run(["--dump", "2023-06", "--warcs", "5", "--pages-per-core-s", "0"], capsys)
    assert rc == 2 and "> 0" in out.err


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


def test_estimate_from_bench_dump_output(tmp_path, capsys):
    """bench/dump's JSON line: its largest run's CPU of every process, the image stage per URL apart."""
    line = {"runs": [{"warcs": 100, "pages": 300, "cpu_s_per_page": 0.3, "driver_peak_rss_mb": 400.0,
                      "worker_peak_rss_mb": 600.0, "tasks": 6000, "wall_s": 80.0},
                     {"warcs": 500, "pages": 1500, "cpu_s_per_page": 0.2, "driver_peak_rss_mb": 420.0,
                      "worker_peak_rss_mb": 640.0, "tasks": 30000, "wall_s": 300.0}],
            "projection": {"warcs": 90000, "cpu_s_per_page_less_images": 0.15, "cpu_s_per_image_url": 0.05,
                           "image_urls_per_page": 1.1}}
    f = tmp_path / "dump.txt"
    f.write_text("[100 WARCs] ...\n" + json.dumps({"details": []}) + "\n" + json.dumps(line) + "\n")
    prof = est.costs.profile_from_file(f)
    assert prof.page_cpu_s == {"all but images": 0.15} and prof.image_url_cpu_s == 0.05
    assert "500 WARCs" in prof.source and not prof.image_urls_measured_on_crawl
    rc, out = run(["--dump", "2023-06", "--warcs", "10", "--throughput-from", str(f), "--pages-per-warc", "1000",
                   "--image-urls-per-page", "0.5", "--json"], capsys)
    data = json.loads(out.out)
    assert rc == 0 and data["core_hours_by_stage"]["all but images"] == pytest.approx(10_000 * 0.15 / 3600)
    assert data["core_hours_by_stage"]["image"] == pytest.approx(10_000 * 0.5 * 0.05 / 3600)
    line["projection"].pop("cpu_s_per_page_less_images")
    f.write_text(json.dumps(line))
    rc, out = run(["--dump", "2023-06", "--warcs", "10", "--throughput-from", str(f)], capsys)
    assert rc == 2 and "cpu_s_per_page_less_images" in out.err
