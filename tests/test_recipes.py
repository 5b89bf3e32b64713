"""Recipes: `obelics` (crawl's default) runs our extractor, `obelics-2023` the 2023 reference build (reference
extraction rules and thresholds) and reproduces today's reference output; `--mode` overrides either; `extract`
defaults to our extractor; run.json, stats.json and the dataset card say which recipe and extractor ran."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from obelics_builder.cli import main as cli_main
from obelics_builder.commands import crawl as crawl_cmd
from obelics_builder.commands import extract as extract_cmd
from obelics_builder.extract import extract_html, extract_stage
from obelics_builder.recipe import (ConfigError, ExtractConfig, load_recipe, packaged_recipes, recipe_provenance)
from obelics_builder.resources import FILTERS_DIR, PIPELINES_DIR
from obelics_builder.stats import StageContext, Stats

from conftest import crawl
from output_digest import output_digest

GOLDEN = Path(__file__).parent / "data" / "obelics-2023-sample.json"
#: a page on which the two extractors differ: the reference rules drop lists and tables with their text
PAGE = ("<html><body><article><h1>Making bread at home</h1><p>Bread needs only four things, and a little patience "
        "on a quiet morning.</p><ul><li>Flour, about five hundred grams of it</li><li>Water at room temperature</li>"
        "</ul><table><tr><td>Rise</td><td>two hours</td></tr></table></article></body></html>")
URL = "https://site.example/bread"


def _crawl_args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    crawl_cmd.add_arguments(p)
    return p.parse_args(["--out", "unused", *argv])


def test_packaged_recipes_and_their_modes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # found as packaged names from any directory
    assert {"obelics", "obelics-2023"} <= set(packaged_recipes())
    assert (PIPELINES_DIR / "obelics-2023.yaml").is_file()
    default, ref = load_recipe(), load_recipe("obelics-2023")
    assert default["name"] == "obelics" and default["extract"] == {"mode": "default", "page_time_budget_s": 5.0}
    assert ref["name"] == "obelics-2023" and ref["extract"] == {"mode": "obelics", "page_time_budget_s": 5.0}
    # the reference thresholds: the packaged OBELICS filter config; the default recipe: those checks fitted to
    # structured text
    assert Path(ref["filters_config"]["_path"]) == FILTERS_DIR / "obelics.yaml"
    assert Path(default["filters_config"]["_path"]) == FILTERS_DIR / "obelics-structured.yaml"
    assert "structure" not in ref["filters_config"]["node"] and default["filters_config"]["node"]["structure"]["enabled"]
    # everything but the extractor, the filter config (and the name) is the same build; the default recipe also
    # lists the image-text alignment stage (off without a model), which the pinned reference build does not
    strip = ("name", "extract", "_path", "_sha256", "filters_config", "filters", "stages", "image_text")
    assert {k: v for k, v in ref.items() if k not in strip} == {k: v for k, v in default.items() if k not in strip}
    assert [s for s in default["stages"] if isinstance(s, str)] == ref["stages"]
    assert [s for s in default["stages"] if not isinstance(s, str)] == [
        {"use": "obelics_builder.align:image_text", "after": "final"}]
    assert default["image_text"]["model"] is None and "image_text" not in ref
    prov = recipe_provenance(ref)
    assert prov == {"recipe": str(PIPELINES_DIR / "obelics-2023.yaml"), "recipe_name": "obelics-2023",
                    "recipe_sha256": hashlib.sha256((PIPELINES_DIR / "obelics-2023.yaml").read_bytes()).hexdigest(),
                    "extract_mode": "obelics"}


def test_crawl_mode_overrides_either_recipe():
    assert crawl_cmd.recipe_from_args(_crawl_args())["extract"]["mode"] == "default"
    assert crawl_cmd.recipe_from_args(_crawl_args("--recipe", "obelics-2023"))["extract"]["mode"] == "obelics"
    for recipe in ("obelics", "obelics-2023"):
        for mode in ("obelics", "default"):
            r = crawl_cmd.recipe_from_args(_crawl_args("--recipe", recipe, "--mode", mode))
            assert r["extract"]["mode"] == mode and r["name"] == recipe
            assert recipe_provenance(r)["extract_mode"] == mode
    # the override leaves the rest of the section as the recipe has it
    r = crawl_cmd.recipe_from_args(_crawl_args("--recipe", "obelics-2023", "--mode", "default"))
    assert r["extract"]["page_time_budget_s"] == 5.0


def test_extract_config_defaults_in_one_place(tmp_path):
    assert ExtractConfig() == ExtractConfig.from_mapping(None) == ExtractConfig.from_mapping({})
    assert ExtractConfig().mode == "default"
    assert ExtractConfig.from_mapping({"page_time_budget_s": 2}) == ExtractConfig("default", 2.0)
    # a recipe without an extract section runs our extractor
    bare = tmp_path / "bare.yaml"
    bare.write_text("filters: obelics\n", encoding="utf-8")
    r = load_recipe(bare)
    assert r["extract"] == {"mode": "default", "page_time_budget_s": 5.0} and r["name"] == "bare"
    # ... and so does the stage when its config says nothing
    docs = extract_stage([{"url": URL, "body": PAGE.encode()}], StageContext("extract", {}, Stats()))
    assert docs[0]["texts"] == extract_html(PAGE, URL, mode="default")["texts"]
    assert docs[0]["texts"] != extract_html(PAGE, URL, mode="obelics")["texts"]
    assert extract_html(PAGE, URL)["texts"] == docs[0]["texts"]


@pytest.mark.parametrize("text,message", [
    ("extract:\n  mod: obelics\n", "bad.yaml: extract.mod: unknown key (did you mean 'mode'?)"),
    ("extract:\n  mode: readability\n", "bad.yaml: extract.mode: unknown value 'readability'"),
    ("extract:\n  page_time_budget_s: soon\n", "extract.page_time_budget_s: expected seconds"),
    ("extract: obelics\n", "extract: expected a mapping"),
    ("extract: [unclosed\n", "not valid YAML"),
])
def test_recipe_mistakes_are_one_clear_message(tmp_path, capsys, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipe(bad)
    rc = cli_main(["crawl", "--out", str(tmp_path / "o"), "--warc", str(tmp_path / "x.warc.gz"), "--recipe", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_unknown_recipe_name_lists_the_packaged_ones(tmp_path, capsys):
    rc = cli_main(["crawl", "--out", str(tmp_path / "o"), "--warc", str(tmp_path / "x.warc.gz"), "--recipe",
                   "obelics-2022"])
    err = capsys.readouterr().err
    assert rc == 2 and "no recipe 'obelics-2022'" in err and "obelics-2023" in err


def test_extract_command_defaults_to_our_extractor(tmp_path, capsys):
    p = argparse.ArgumentParser()
    extract_cmd.add_arguments(p)
    page = tmp_path / "bread.html"
    page.write_text(PAGE, encoding="utf-8")
    rows = {}
    for mode in (None, "default", "obelics"):
        args = p.parse_args([str(page), "--url", URL] + (["--mode", mode] if mode else []))
        assert extract_cmd.run(args) == 0
        rows[mode] = json.loads(capsys.readouterr().out.splitlines()[0])["texts"]
    assert p.parse_args([str(page)]).mode == "default"
    assert rows[None] == rows["default"] == extract_html(PAGE, URL, mode="default")["texts"]
    assert rows["obelics"] == extract_html(PAGE, URL, mode="obelics")["texts"] != rows[None]


@pytest.mark.slow
def test_obelics_2023_reproduces_the_reference_build(tmp_path):
    """`crawl --recipe obelics-2023` on the sample gives, row for row and count for count, what `crawl` gave before
    our extractor became the default (tests/data/obelics-2023-sample.json, taken from that code's output)."""
    out = tmp_path / "out"
    r = crawl("--dump", "2023-06", "--mirror", "sample", "--recipe", "obelics-2023", "--out", str(out),
              "--workers", "2", "--quiet", "--no-webdataset")
    assert r.returncode == 0, r.stdout + r.stderr
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    golden.pop("_produced_by")
    got = output_digest(out)
    assert got["stages"] == golden["stages"]
    assert got["summary"] == golden["summary"]
    assert got["documents"] == golden["documents"]
    # the output says what produced it
    path = PIPELINES_DIR / "obelics-2023.yaml"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    stats_run = json.loads((out / "stats.json").read_text(encoding="utf-8"))["run"]
    for info in (run, stats_run):
        assert (info["recipe_name"], info["extract_mode"], info["recipe_sha256"]) == ("obelics-2023", "obelics", sha)
        assert os.path.samefile(info["recipe"], path)
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert f"- recipe: obelics-2023 (`obelics-2023.yaml`, sha256 `{sha[:16]}`)" in card
    assert "- extractor: `obelics` (the OBELICS reference extraction rules" in card
