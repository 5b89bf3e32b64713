"""bench/pipeline's helpers: generated WARCs and image archive, the CPU probes, the per-stage accounting."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench" / "pipeline"))

import bench_pipeline  # noqa: E402
import gen_inputs  # noqa: E402
import probes  # noqa: E402


@pytest.fixture(autouse=True)
def _unprobe():
    """Undo every probe and stage mark a test installed (they rebind names across obelics_builder modules)."""
    yield
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith("obelics_builder"):
            continue
        for k, v in list(vars(mod).items()):
            inner = v
            while callable(inner) and getattr(inner, "__probe__", None):
                inner = inner.__wrapped__
            if inner is not v:
                setattr(mod, k, inner)


def _page(i: int) -> dict:
    imgs = "".join(f'<img src="/img/{i}-{k}.jpg">' for k in range(3))
    body = (f"<!doctype html><html><head><title>p{i}</title></head><body><p>{'word ' * (50 + 40 * i)}</p>{imgs}"
            "</body></html>").encode()
    return {"url": f"https://site{i}.example.org/a/{i}.html", "body": body, "ctype": "text/html; charset=utf-8"}


def test_pages_duplicates_warcs_and_image_archive(tmp_path, shared_data):
    from obelics_builder.sources.archive import ImageArchive
    from obelics_builder.sources.commoncrawl import warc_refs_from_paths
    from obelics_builder.sources.warc import iter_html_records
    from obelics_builder.stats import StageContext

    pool = [_page(i) for i in range(40)]
    pages, rest = gen_inputs.select_pages(pool, 20, mean_kb=1.0)
    assert len(pages) == 20 and len(rest) == 20
    assert sum(len(p["body"]) for p in pages) / 20 < sum(len(p["body"]) for p in pool) / 40  # the mean is pulled down
    recs = gen_inputs.plan_records(pages, exact=0.1, near=0.1, recrawl=0.05)
    kinds = [r["kind"] for r in recs]
    assert kinds.count("unique") == 20 and kinds.count("exact") == 2 and kinds.count("near") == 2
    assert kinds.count("recrawl") == 1
    near = [r for r in recs if r["kind"] == "near"]
    assert all(b"Updated on" in r["body"] and "print=" in r["url"] for r in near)
    warcs = gen_inputs.write_page_warcs(recs, tmp_path / "warcs", per_warc=10)
    assert len(warcs) == 3
    got = []
    for ref in warc_refs_from_paths([str(p) for p in warcs]):
        ctx = StageContext("read")
        got += list(iter_html_records(ref, ctx))
        assert ctx.stats.balance_problems() == [] and ctx.stats.stage("read")["errors"] == {}
    assert sorted(r["url"] for r in got) == sorted(r["url"] for r in recs)

    urls = gen_inputs.record_image_urls(recs)
    assert "https://site0.example.org/img/0-0.jpg" in urls
    variants = gen_inputs.make_variants(shared_data / "images" / "cc0-photos", 6)
    assert len({v[1] for v in variants}) == 6
    info = gen_inputs.write_image_archive(urls, variants, tmp_path / "images.warc.gz", missing=0.0)
    assert info["in_archive"] == len(urls)
    archive = ImageArchive(warc_refs_from_paths([str(tmp_path / "images.warc.gz")]))
    hit = archive.lookup(urls[0])
    assert hit is not None and hit.status == 200 and hit.body in {v[1] for v in variants}


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_probes_nest_exclusively_and_mark_the_stage(monkeypatch):
    import types

    mod = types.ModuleType("obelics_builder._probe_test")

    def inner():
        _spin(0.03)

    def outer():
        _spin(0.02)
        mod.inner()

    def reader():
        for i in range(2):
            _spin(0.01)
            yield i

    mod.inner, mod.outer, mod.reader = inner, outer, reader
    monkeypatch.setitem(sys.modules, "obelics_builder._probe_test", mod)
    monkeypatch.setattr(probes, "TOTALS", {})
    missing = probes.install({"obelics_builder._probe_test:inner": "in", "obelics_builder._probe_test:outer": "out",
                              "obelics_builder._probe_test:reader": "rd", "obelics_builder._probe_test:gone": "x"})
    assert missing == ["obelics_builder._probe_test:gone"]
    mod.outer()
    assert list(mod.reader()) == [0, 1]
    t = probes.snapshot()
    assert 0.025 <= t["in"] < 0.045 and 0.015 <= t["out"] < 0.03 and 0.015 <= t["rd"] < 0.035

    from obelics_builder.stats import StageContext, run_stage

    probes.install_stage_markers()
    import obelics_builder.stats as st

    st.run_stage(lambda docs, c: (mod.inner(), docs)[1], [], StageContext("text_scores"))
    assert probes.snapshot().get("in@text_scores", 0) >= 0.025
    assert run_stage is not st.run_stage


def test_breakdown_rows_sum_to_the_process_cpu():
    stages = {"read": {"cpu_seconds": 1.0, "documents_out": 100}, "extract": {"cpu_seconds": 5.0},
              "text_scores": {"cpu_seconds": 7.0}, "text_filter": {"cpu_seconds": 1.0},
              "url_dedup": {"cpu_seconds": 0.5}, "image_fetch": {"cpu_seconds": 10.0, "documents_in": 200},
              "final": {"cpu_seconds": 1.0}}
    probe = {"lang-id@text_scores": 4.0, "image decode": 3.0, "image pHash": 1.0, "image NSFW@image_fetch": 5.0,
             "dedup: MinHash": 1.5, "writing: parts": 2.0, "part reads": 1.0, "writing: parts@image_table": 0.5}
    ours = {"stats": {"stages": stages}, "probes": probe, "cpu": 40.0}
    b = bench_pipeline.breakdown(ours)
    rows = {name: v for _, name, v in b["rows"]}
    assert rows["text scores: lang-id"] == 4.0 and rows["text scores: metrics (the rest)"] == 3.0
    assert rows["image: fetch (archive, consent, table)"] == pytest.approx(1.0)
    assert rows["image: NSFW"] == 5.0
    assert rows["image: table writes (Parquet with the bytes)"] == 0.5
    assert sum(rows.values()) == pytest.approx(40.0)
    assert b["groups"]["image"] == pytest.approx(10.5) and b["groups"]["dedup"] == pytest.approx(2.0)
    assert rows["engine: the rest of the process"] == pytest.approx(40 - 1 - 5 - 7 - 1 - 2 - 10 - 0.5 - 1 - 3)


def test_a_probed_function_can_also_carry_a_stage_mark(monkeypatch):
    import obelics_builder.images.ledger as ledger

    monkeypatch.setattr(probes, "TOTALS", {})
    probes.install({"obelics_builder.images.ledger:write_table_part": "image: table write"})
    probes.install_stage_markers()
    assert getattr(ledger.write_table_part, "__probe__", None) == "stage"
    assert getattr(ledger.write_table_part.__wrapped__, "__probe__", None) == "image: table write"


def test_the_fetch_checkpoints_in_the_decode_pool_are_image_work(monkeypatch, tmp_path):
    """Spool.save runs in the image fetch's decode threads (inside the fetch's process CPU): its Parquet write is
    marked image_fetch there, not counted again as 'writing: parts' of the CPU stages."""
    import threading

    import obelics_builder.images.partition as partition
    import obelics_builder.io.parquet as parquet

    monkeypatch.setattr(probes, "TOTALS", {})
    monkeypatch.setattr(partition.Spool, "save", partition.Spool.save)  # restored after the test
    monkeypatch.setattr(partition, "write_table_atomic", parquet.write_table_atomic)
    probes.install({"obelics_builder.io.parquet:write_table_atomic": "writing: parts"})
    probes.install_stage_markers()
    spool = partition.Spool(tmp_path / "spool", "fp")
    t = threading.Thread(target=spool.save, args=([{"url": "https://i/1", "data": b"x" * 1000}],))
    t.start()
    t.join()
    got = probes.snapshot()
    assert "writing: parts@image_fetch" in got and "writing: parts" not in got
    assert len(list((tmp_path / "spool").glob("fp-*.parquet"))) == 1


def test_a_missing_peer_is_said_and_skipped(tmp_path):
    res = bench_pipeline.run_peer(str(tmp_path / "no-python"), tmp_path, tmp_path, "lid.176.ftz", 5.0)
    assert "skipped" in res and "not found" in res["skipped"]
    res = bench_pipeline.run_peer(sys.executable, tmp_path, tmp_path, "lid.176.ftz", 5.0)  # no datatrove here
    assert "skipped" in res and "not usable" in res["skipped"]
