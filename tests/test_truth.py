"""Issue 17, "output that tells the truth": the crawl summary table lines up, an empty crawl says so and cannot be
published, the `[all]` extra, `extract` without `--url`, the card's NSFW line, and `filter` keeping OUT/dataset in
step.  Every input is built here; CLI runs are checked for their exit code and message, and for no traceback."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from obelics_builder.cli import main
from obelics_builder.commands.crawl import format_table, print_summary


@pytest.fixture(autouse=True)
def _private_notes(monkeypatch):
    from obelics_builder import stats

    monkeypatch.setattr(stats, "_LOGGED_NOTES", set())


def write_warc(path: Path, pages: list[tuple[str, str]]) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for url, html in pages:
            h = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(html.encode()), http_headers=h))
    return path


def _stage(name: str, din: int, dout: int, removed: dict | None = None) -> dict:
    return {"documents_in": din, "documents_out": dout, "removed": removed or {}, "errors": {},
            "nodes_removed": {}, "images_removed": {}}


def _result(stages: dict, documents: int) -> dict:
    return {"summary": {"documents": documents, "images": 0, "paragraphs": 0, "records_in": 5, "accounted": True},
            "run": {"warcs": ["w.warc.gz"]}, "stages": stages, "notes": []}


# -- the summary table -------------------------------------------------------------------------------------------

def test_summary_columns_line_up_for_every_stage_name(capsys):
    stages = {"read": _stage("read", 5, 5),
              "a_very_long_stage_name_indeed": _stage("x", 1234567890, 123456789, {"too_short": 3}),
              "x": _stage("x", 3, 3)}
    print_summary(_result(stages, 3), "out")
    lines = capsys.readouterr().out.splitlines()
    table = lines[1:1 + 1 + len(stages)]
    header = table[0]
    assert header.startswith("stage ")
    # the "docs in" and "docs out" numbers end where their headings end, on every row
    in_end, out_end = header.index("docs in") + len("docs in"), header.index("docs out") + len("docs out")
    for ln, (name, st) in zip(table[1:], stages.items()):
        assert ln.startswith(name + " ")
        assert ln[:in_end].endswith(" " + str(st["documents_in"])), ln
        assert ln[:out_end].endswith(" " + str(st["documents_out"])), ln
    assert "too_short 3" in table[2]


def test_format_table_widths():
    text = format_table(("a", "n", "t"), [("longer_name", "1", "x"), ("b", "12345", "")])
    assert text.splitlines() == ["a               n  t", "longer_name     1  x", "b           12345"]


# -- an empty crawl ----------------------------------------------------------------------------------------------

def test_zero_document_crawl_says_so_and_publish_refuses(tmp_path, capsys, monkeypatch):
    warc = write_warc(tmp_path / "tiny.warc.gz", [("https://a.example/x", "<html><body><p>hi</p></body></html>")])
    out = tmp_path / "out"
    rc = main(["crawl", "--warc", str(warc), "--out", str(out), "--scheduler", "sync", "--no-network", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "Traceback" not in cap.err
    assert cap.out.startswith("0 documents")
    loud = [ln for ln in cap.err.splitlines() if ln.startswith("crawl: WARNING: 0 documents")]
    assert len(loud) == 1, cap.err
    assert "EMPTY" in loud[0] and "'text_filter' removed the last 1 document(s)" in loud[0]

    monkeypatch.delenv("HF_TOKEN", raising=False)
    for extra in (["--dry-run"], []):
        rc = main(["publish", str(out), "--repo-id", "me/empty", *extra])
        cap = capsys.readouterr()
        assert rc == 2, cap.err
        assert "Traceback" not in cap.err
        assert "refusing to publish" in cap.err and "holds 0 documents: nothing to publish" in cap.err
        assert "upload" not in cap.out.lower()


def test_non_empty_crawl_has_no_empty_warning(capsys):
    print_summary(_result({"read": _stage("read", 2, 2)}, 2), "out", quiet=True)
    assert "0 documents" not in capsys.readouterr().err


# -- the [all] extra ---------------------------------------------------------------------------------------------

def test_all_extra_installs_every_optional_feature(repo):
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert "all" in extras
    features = set(extras) - {"all", "dev"}
    covered: set[str] = set()
    for text in extras["all"]:
        req = Requirement(text)
        if req.name == project["name"]:
            assert req.extras <= set(extras), f"[all] names an extra that does not exist: {req.extras - set(extras)}"
            covered |= req.extras
        else:  # a package listed directly must belong to some feature extra
            assert any(Requirement(r).name == req.name for f in features for r in extras[f]), text
    assert covered == features, f"[all] misses {sorted(features - covered)}"


# -- extract without --url ---------------------------------------------------------------------------------------

PAGE = """<html><head><title>T</title></head><body><article><h1>Title of the page</h1>
<p>This is a long enough paragraph of text with many words in it so that the extractor keeps it in the document.</p>
{img}
<p>Another paragraph follows the image, also with a fair number of words for the extractor to keep around.</p>
<img src="https://cdn.example/abs.png" width="300" height="200">
</article></body></html>"""


@pytest.mark.parametrize("src", ["img/photo.jpg", "/root/photo.jpg", "//cdn.example/photo.jpg"])
def test_extract_html_without_url_refuses_relative_images(tmp_path, capsys, src):
    page = tmp_path / "page.html"
    page.write_text(PAGE.format(img=f'<img src="{src}" alt="a photo" width="300" height="200">'), encoding="utf-8")
    other = tmp_path / "plain.html"
    other.write_text(PAGE.format(img=""), encoding="utf-8")
    for argv in ([str(page)], [str(other), str(page)]):  # refused before any document is printed
        rc = main(["extract", *argv])
        cap = capsys.readouterr()
        assert rc == 2 and cap.out == "", cap.err
        assert "Traceback" not in cap.err
        line, = [ln for ln in cap.err.splitlines() if ln.startswith("obelics-build: error: ")]
        assert f"{page} has 1 relative image URL(s) ({src})" in line and "--url" in line
    # with the page's address the image is kept, resolved
    assert main(["extract", str(page), "--url", "https://site.example/a/b.html"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    kept = [u for u in row["images"] if u]
    assert len(kept) == 2 and kept[1] == "https://cdn.example/abs.png"
    assert kept[0].startswith("https://") and kept[0].endswith("/photo.jpg")


def test_extract_html_without_url_and_absolute_images_still_works(tmp_path, capsys):
    page = tmp_path / "plain.html.gz"
    page.write_bytes(gzip.compress(PAGE.format(img="").encode()))
    assert main(["extract", str(page)]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["url"] == page.resolve().as_uri() and [u for u in row["images"] if u] == ["https://cdn.example/abs.png"]


# -- the card's NSFW line ----------------------------------------------------------------------------------------

def _card_nsfw_line(out: Path) -> str:
    from obelics_builder.dataset.shards import write_dataset

    write_dataset(out, shard_size_bytes="1MB", webdataset=False)
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    lines = [ln for ln in card.splitlines() if "nsfw" in ln.lower() and not ln.startswith(("- ", "|"))]
    assert len(lines) == 1, lines  # one statement (the notes list and the funnel table may name it too)
    return lines[0]


def test_card_states_nsfw_filtering_as_it_ran(tmp_path, shared_data):
    from test_dataset import make_fake_out

    out = tmp_path / "out"
    make_fake_out(out, shared_data / "images" / "cc0-photos", n_docs=4)
    stats_path = out / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8"))

    # the config enables it and the run applied it
    stats["stages"]["final"]["removed"]["nsfw"] = 2
    stats_path.write_text(json.dumps(stats), encoding="utf-8")
    line = _card_nsfw_line(out)
    assert line.startswith("**NSFW filtering**: applied") and "2 document(s) removed" in line

    # the config enables it but the detector was missing: the card says DISABLED, never "enabled"
    note = ("image_fetch: NSFW filtering DISABLED: the NudeNet detector needs onnxruntime: "
            "pip install 'obelics-builder[nsfw]'")
    stats["notes"] = sorted(stats["notes"] + [note])
    stats_path.write_text(json.dumps(stats), encoding="utf-8")
    line = _card_nsfw_line(out)
    assert "DISABLED in this run" in line and "onnxruntime" in line
    assert "enabled" not in line.replace("DISABLED", "").lower().replace("disabled", "")
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "'enabled': True" not in card

    # disabled by the config (the run's own note is gone): said as such
    cfg = tmp_path / "off.yaml"
    cfg.write_text("image:\n  nsfw: {enabled: false}\n", encoding="utf-8")
    stats["notes"] = [n for n in stats["notes"] if n != note]
    stats["run"]["filters"] = str(cfg)
    stats_path.write_text(json.dumps(stats), encoding="utf-8")
    assert "**disabled** by the filter config" in _card_nsfw_line(out)


# -- filter keeps OUT/dataset in step ----------------------------------------------------------------------------

SAMPLE_WARC = "crawl-data/CC-MAIN-2023-06/segments/sample/warc/wget-2024-sample-0000.warc.gz"


def _dataset_documents(out: Path) -> int:
    return json.loads((out / "dataset" / "shards.json").read_text(encoding="utf-8"))["documents"]


def _stats_documents(out: Path) -> int:
    return json.loads((out / "stats.json").read_text(encoding="utf-8"))["summary"]["documents"]


def test_filter_rebuilds_the_dataset_or_marks_it_stale(tmp_path, capsys, monkeypatch):
    import yaml

    from obelics_builder.dataset.publish import check_complete
    from obelics_builder.resources import FILTERS_DIR

    out = tmp_path / "out"
    rc = main(["crawl", "--dump", "2023-06", "--mirror", "sample", "--warc", SAMPLE_WARC, "--out", str(out),
               "--scheduler", "sync", "--no-network", "--no-webdataset", "--shard-size", "20kB", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    before = _dataset_documents(out)
    assert before > 1 and before == _stats_documents(out)
    shards_before = json.loads((out / "dataset" / "shards.json").read_text(encoding="utf-8"))

    # stricter thresholds: filter rewrites OUT/documents and rebuilds OUT/dataset with the same options
    cfg = yaml.safe_load((FILTERS_DIR / "obelics-structured.yaml").read_text(encoding="utf-8"))
    cfg["doc"]["number_words"].update(min=10**6, max=None)  # (min above max would be refused as a mistake)
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    rc = main(["filter", str(out), "--config", str(strict), "--scheduler", "sync", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0 and "Traceback" not in cap.err, cap.err
    assert _stats_documents(out) == 0 == _dataset_documents(out)  # rebuilt, not the old shards
    assert "0 documents, the dataset is EMPTY" in cap.err
    shards = json.loads((out / "dataset" / "shards.json").read_text(encoding="utf-8"))
    assert shards["shard_size_bytes"] == shards_before["shard_size_bytes"] and shards["webdataset"] == []
    assert not (out / "dataset" / "STALE").exists()
    assert "| documents | 0 |" in (out / "dataset" / "README.md").read_text(encoding="utf-8")  # the card too
    assert not list((out / "dataset" / "webdataset").glob("*.tar"))

    # --no-dataset: the old dataset stays, marked STALE; publish refuses it, status reports it
    rc = main(["filter", str(out), "--config", "obelics-structured", "--scheduler", "sync", "--quiet", "--no-dataset"])
    cap = capsys.readouterr()
    assert rc == 0 and "Traceback" not in cap.err, cap.err
    assert _stats_documents(out) == before and _dataset_documents(out) == 0
    assert (out / "dataset" / "STALE").is_file()
    assert f"{out / 'dataset'} is STALE, not rebuilt (--no-dataset)" in cap.err
    monkeypatch.delenv("HF_TOKEN", raising=False)
    rc = main(["publish", str(out), "--repo-id", "me/ds", "--dry-run"])
    cap = capsys.readouterr()
    assert rc == 2 and "Traceback" not in cap.err and "is STALE (OUT/documents were rewritten by `filter" in cap.err
    assert main(["status", str(out)]) == 0
    assert "is STALE" in capsys.readouterr().out
    assert main(["status", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"]["stale"] is True

    # `shards` rebuilds it and clears the mark
    assert main(["shards", str(out), "--shard-size", "20kB", "--no-webdataset"]) == 0
    capsys.readouterr()
    assert _dataset_documents(out) == before and not (out / "dataset" / "STALE").exists()
    assert check_complete(out) == []
    assert main(["status", str(out)]) == 0
    assert "in step with the documents" in capsys.readouterr().out
