"""The report's scan of scored parts follows the text filter's own node rule (node kinds, checks limited to kinds,
repeated paragraphs, headings dropped with their section): its per-check removal counts are the filter's."""
from __future__ import annotations

import copy
import json
import re

import pytest

from obelics_builder.io.parquet import write_documents
from obelics_builder.quality.decide import text_filter_stage
from obelics_builder.quality.score import text_score_stage
from obelics_builder.recipe import load_filters
from obelics_builder.report import build_report
from obelics_builder.report.build import checks_from_config, scan_scored
from obelics_builder.stats import StageContext, Stats, run_stage

from docs_helpers import make_doc

PROSE = ("The city council met on Tuesday evening to discuss the new park, which has been planned for more than "
         "three years. Residents who attended the meeting said they were happy that the work would finally begin.")
PROSE2 = ("According to the plan, the park will have a small lake, a playground for children and a long path for "
          "walking and cycling. The mayor said that the first trees should be planted before the end of summer.")
GIBBERISH = "Xyzzy qwerty uiop asdf ghjk zxcv bnmq wertz uiopa sdfgh jklz xcvbn mqwe rtyu iopas dfgh jklzx."


def _doc(n: int, *parts) -> dict:
    return make_doc(*parts, url=f"https://site{n}.example/page")


def _docs() -> list[dict]:
    return [
        # heading + prose kept; heading whose section (gibberish prose) fails: section_removed; a 2-word list
        # (number_words applies to lists); a longer list kept; a repeated paragraph
        _doc(1, "Park plans\n\n" + PROSE + "\n\nBudget\n\n" + GIBBERISH + "\n\nOak\nBirch\n\n"
             "Apples and pears\nPlums and figs\nCherries in June\n\n" + PROSE),
        _doc(2, PROSE2, {"src": "https://img.example/1.jpg"}, "The new lake seen from the hill",
             "What comes next\n\n" + PROSE + "\n\nThe end"),
        _doc(3, "Only a heading"),
    ]


def _run(stage, docs, cfg, stats):
    return run_stage(stage, copy.deepcopy(docs), StageContext(stage=stage.__name__, config=cfg, stats=stats))


@pytest.fixture()
def scored_out(tmp_path):
    cfg = load_filters("obelics-structured")
    scored = _run(text_score_stage, _docs(), cfg, Stats())
    stats = Stats()
    _run(text_filter_stage, scored, cfg, stats)
    out = tmp_path / "OUT"
    write_documents(out / "parts" / "scored" / "w1-00000000.parquet", scored)
    removed = dict(stats.stages["text_filter_stage"]["nodes_removed"])
    (out / "stats.json").write_text(json.dumps({
        "run": {"filters": cfg["_path"]},
        "stages": {"text_filter": {"documents_in": 3, "documents_out": 3, "nodes_removed": removed}},
    }), encoding="utf-8")
    return out, cfg, scored, removed


def test_report_counts_equal_the_text_filter(scored_out):
    out, cfg, scored, removed = scored_out
    assert scored[0]["node_kind"][0] == ["heading", "prose", "heading", "prose", "list", "list", "prose"]
    # the documents exercise a kind-limited check, the repeated check and headings following their section
    assert {"node:section_removed", "node:repeated", "node:number_words"} <= set(removed)
    build_report(out, sample=0)
    page = (out / "report" / "removals.html").read_text(encoding="utf-8")
    shown = {k: int(v.replace(",", "")) for k, v in re.findall(r'data-check="node\.([a-z_]+)">([\d,]+)<', page)}
    assert {f"node:{k}": v for k, v in shown.items() if v} == removed
    # a check's kinds next to its threshold, and its ``and`` bounds
    assert "keep if ≥ 0.02; removed only when also punctuation &lt; 0.001 (prose)" in page
    assert "keep if ≥ 3 (list)" in page
    section = page[page.index('id="node-section_removed"'):]
    section = section[:section.index("</section>")]
    n = removed["node:section_removed"]
    assert "Budget" in section and "Only a heading" in section and f"text_filter/node:section_removed: {n}" in section
    # nothing is shown twice (the stats.json reason is matched by the report's own row)
    assert "Other removals" in page and page.count("node:section_removed") == 1


def test_values_are_those_of_the_kinds_a_check_judges(scored_out):
    out, cfg, scored, _ = scored_out
    results, info = scan_scored(out, cfg, 100, 5, 10_000, [])
    by = {r.check.name: r for r in results if r.check.level == "node"}
    kinds = [k for d in scored for ks in d["node_kind"] if ks for k in ks]
    assert info["documents"] == 3 and info["paragraphs"] == len(kinds)
    assert len(by["stopwords"].values) == kinds.count("prose")        # kinds: [prose]
    assert len(by["number_words"].values) == kinds.count("list")      # kinds: [list]
    assert len(by["flagged_words"].values) == len(kinds)              # no kinds: every paragraph
    assert by["number_words"].check.kinds == ["list"] and by["flagged_words"].check.kinds is None
    assert info["node_other"]["section_removed"].removed >= 1


def test_checks_from_config_skips_settings():
    cfg = load_filters("obelics-structured")
    cols = ["node_structure", "node_standardize_whitespace", "doc_text_kinds", "node_words", "node_stopwords",
            "node_repeated", "doc_words"]
    names = [c.label for c in checks_from_config(cfg, cols)]
    assert "node.structure" not in names and "doc.text_kinds" not in names
    assert "node.standardize_whitespace" not in names
    assert {"node.repeated", "node.number_words", "node.stopwords", "doc.number_words"} <= set(names)
