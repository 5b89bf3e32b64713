"""End to end: `obelics-build crawl` on the bundled sample mirror, resume, and bad-input WARCs."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from obelics_builder import schema
from obelics_builder.io.parquet import read_documents

from conftest import crawl

pytestmark = pytest.mark.slow


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("part-*.parquet"))}


def test_sample_crawl_yields_interleaved_documents(sample_run):
    out, r = sample_run
    assert "documents" in r.stdout and "stats.json" in r.stdout
    docs = [d for f in sorted((out / "documents").glob("part-*.parquet")) for d in read_documents(f)]
    good = [d for d in docs if schema.n_images(d) >= 1 and schema.n_text_positions(d) >= 1]
    assert len(good) >= 30, f"only {len(good)} documents with an image and a text"
    for d in docs:
        schema.validate(d)
        for u in d["images"]:
            if u is not None:
                assert u.startswith(("http://", "https://")), u
        for m in d["metadata"]:
            if m is not None:
                assert {"src", "original_width", "original_height", "format", "sha256"} <= set(m)
        gm = d["general_metadata"]
        assert {"url", "warc_filename", "warc_record_offset", "warc_record_length", "dump"} <= set(gm)
    # the published columns keep their published types
    t = pq.read_table(next((out / "documents").glob("part-*.parquet")))
    import pyarrow as pa

    for c in ("images", "texts"):
        assert pa.types.is_list(t.schema.field(c).type) and t.schema.field(c).type.value_type == pa.string()
    for c in ("metadata", "general_metadata"):
        assert t.schema.field(c).type == pa.string()


def test_stats_account_for_every_record(sample_run):
    out, _ = sample_run
    stats = json.loads((out / "stats.json").read_text())
    assert stats["summary"]["accounted"], stats["summary"]["accounting_problems"]
    stages = stats["stages"]
    for name, st in stages.items():
        if name == "image_fetch":
            continue
        assert st["documents_in"] == st["documents_out"] + sum(st["removed"].values()) + sum(st["errors"].values()), name
    names = [n for n in stages if n != "image_fetch"]
    for a, b in zip(names, names[1:]):
        assert stages[a]["documents_out"] == stages[b]["documents_in"], (a, b)
    assert stages["read"]["documents_in"] > 1000  # every WARC record, HTML or not
    docs = sum(pq.read_metadata(f).num_rows for f in (out / "documents").glob("part-*.parquet"))
    last = [n for n in stages if n != "image_fetch"][-1]
    assert last == "optout"
    assert docs == stats["summary"]["documents"] == stages[last]["documents_out"]
    # the opt-out step ran, said loudly that Spawning was skipped (no key here) and left a dated manifest
    assert any("Spawning opt-out check SKIPPED" in n for n in stats["notes"])
    assert list(out.glob("optout-manifest-*.parquet"))
    # images come from the sample's archive, never from the network
    fetch = stages["image_fetch"]
    assert fetch["documents_out"] > 30
    assert any("perplexity" in n for n in stats["notes"]), "a disabled perplexity filter must be reported"


def test_sample_crawl_runs_our_extractor_and_says_so(sample_run):
    """No --recipe, no --mode: the obelics recipe with our extractor, named in run.json, stats.json and the card."""
    out, _ = sample_run
    run = json.loads((out / "run.json").read_text())
    stats_run = json.loads((out / "stats.json").read_text())["run"]
    for info in (run, stats_run):
        assert info["extract_mode"] == "default" and info["recipe_name"] == "obelics"
        assert Path(info["recipe"]).name == "obelics.yaml"
        assert info["recipe_sha256"] == hashlib.sha256(Path(info["recipe"]).read_bytes()).hexdigest()
    assert run["recipe_config"]["extract"]["mode"] == "default"
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "- extractor: `default` (obelics-builder's extractor)" in card
    assert f"- recipe: obelics (`obelics.yaml`, sha256 `{run['recipe_sha256'][:16]}`)" in card
    # page-level consent ran and the card lists what each signal removed (no sample page carries a signal: 0)
    assert run["recipe_config"]["page_consent"]["enabled"] is True
    assert "### Page-level consent" in card
    for reason in ("x-robots-tag", "meta-robots", "tdm-reservation"):
        assert f"| `consent:page:{reason}` | 0 | - |" in card
    assert "| `consent:page:noimageai` | 0 | 0 |" in card


def test_rerun_skips_finished_work_and_keeps_identical_shards(sample_run):
    out, _ = sample_run
    before = digest(out / "documents")
    r = crawl("--dump", "2023-06", "--mirror", "sample", "--out", str(out), "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert digest(out / "documents") == before
    stats = json.loads((out / "stats.json").read_text())
    assert stats["summary"]["documents"] == sum(pq.read_metadata(out / "documents" / n).num_rows for n in before)


def test_partial_files_are_not_taken_as_complete(tmp_path, shared_data):
    """A WARC part without its completion marker is recomputed, whatever file sits under its name."""
    warc = shared_data / "warc" / "commoncrawl-2020-34-excerpt" / "warcfile.warc.gz"
    out = tmp_path / "out"
    r = crawl("--warc", str(warc), "--out", str(out), "--scheduler", "sync", "--no-network", "--quiet")
    assert r.returncode == 0, r.stderr
    scored = next((out / "parts" / "scored").glob("*.parquet"))
    good = scored.read_bytes()
    scored.write_bytes(good[: len(good) // 2])  # a torn file...
    next((out / "parts" / "scored" / "_done").glob("*.json")).unlink()  # ...whose marker never got written
    r = crawl("--warc", str(warc), "--out", str(out), "--scheduler", "sync", "--no-network", "--quiet")
    assert r.returncode == 0, r.stderr
    assert pq.read_table(scored).num_rows == pq.read_table(out / "parts" / "scored" / scored.name).num_rows
    assert scored.read_bytes() == good


EDGE = ["warcio/example-trunc.warc", "warcio/example-bad-non-chunked.warc.gz", "warcio/example-wrong-chunks.warc.gz",
        "clipped.warc.gz", "block-sized-records.warc.gz", "clueweb-quirk.warc.gz", "warcio/bad.arc",
        "warcio/example.arc.gz", "warcio/example-space-in-target-uri.warc.gz", "warcio/example.warc.gz"]


def test_bad_input_warcs_are_counted_not_fatal(tmp_path, shared_data):
    paths = [str(shared_data / "warc" / "edge-cases" / p) for p in EDGE]
    paths.append(str(shared_data / "warc" / "wget-2024-samples" / "sample-0000.warc.gz"))
    out = tmp_path / "out"
    r = crawl("--warc", *paths, "--out", str(out), "--scheduler", "sync", "--no-network", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["summary"]["accounted"], stats["summary"]["accounting_problems"]
    read = stats["stages"]["read"]
    assert sum(read["errors"].values()) >= 1, read
    for ex in read["examples"]:
        assert "file" in ex and "reason" in ex
    # the good WARC beside the bad ones still produced its documents
    assert stats["stages"]["extract"]["documents_out"] >= 10


def test_stats_have_cpu_seconds_per_stage_that_sum_plausibly(sample_run):
    out, _ = sample_run
    stats = json.loads((out / "stats.json").read_text())
    stages = stats["stages"]
    for name, st in stages.items():
        assert st["cpu_seconds"] >= 0.0, name
        if name != "image_fetch":  # a document stage counts its thread's CPU: never more than its wall time
            assert st["cpu_seconds"] <= st["seconds"] + 0.05, (name, st["cpu_seconds"], st["seconds"])
    for name in ("read", "extract", "text_scores", "text_filter", "image_fetch"):
        assert stages[name]["cpu_seconds"] > 0.0, name
    assert stages["extract"]["cpu_seconds"] > stages["read"]["cpu_seconds"]
    # (no bound from run.seconds: a resumed run's stages keep the CPU of the run that did the work, from the markers)
