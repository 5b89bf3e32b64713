"""Scoring (node_*/doc_* columns) and decisions from stored scores."""
from __future__ import annotations

import copy
import json

import pytest

from obelics_builder import schema
from obelics_builder.quality import decide as decide_mod
from obelics_builder.quality import metrics as M
from obelics_builder.quality.decide import text_filter_stage
from obelics_builder.quality.perplexity import DISABLED_NOTE
from obelics_builder.quality.score import CHECKS, NODE_COLUMNS, aligned, text_score_stage
from obelics_builder.recipe import load_filters
from obelics_builder.stats import StageContext, Stats, run_stage

from docs_helpers import img, make_doc

EOD = schema.END_OF_DOCUMENT

GOOD = [
    "The city council met on Tuesday evening to discuss the new park, which has been planned for more than "
    "three years. Residents who attended the meeting said they were happy that the work would finally begin.",
    "According to the plan, the park will have a small lake, a playground for children and a long path for "
    "walking and cycling. The mayor said that the first trees should be planted before the end of the summer.",
    "Some people were worried about the cost of the project, but the council explained that most of the money "
    "would come from a national fund. A final vote is expected at the next meeting in two weeks.",
]
RUSSIAN = "Городской совет обсудил новый парк, который планировали больше трёх лет, и жители были довольны."


def ctx_for(cfg: dict, stage: str, stats: Stats | None = None) -> StageContext:
    return StageContext(stage=stage, config=cfg, stats=stats or Stats())


@pytest.fixture(scope="module")
def cfg() -> dict:
    return load_filters("obelics")


def score(docs, cfg, stats=None):
    return run_stage(text_score_stage, copy.deepcopy(docs), ctx_for(cfg, "text_scores", stats))


def decide(docs, cfg, stats=None):
    return run_stage(text_filter_stage, copy.deepcopy(docs), ctx_for(cfg, "text_filter", stats))


def test_score_columns(cfg):
    doc = make_doc("Title\u00a0here\n\n" + GOOD[0], img(1), "", GOOD[1] + "\n\n\n\n" + EOD, img(2))
    stats = Stats()
    out = score([doc], cfg, stats)
    assert len(out) == 1
    d = out[0]
    schema.validate(d)
    assert d["texts"][0].startswith("Title here\n\n")  # whitespace standardised in place
    assert "node_perplexity" not in d and "doc_perplexity" not in d
    assert "node_lang_score" not in d  # the node lang_id check is off: computed on demand (quality.lazy)
    assert stats.stages["text_scores"]["notes"] == [DISABLED_NOTE]
    assert aligned(d)
    for col in NODE_COLUMNS[:-2]:
        values = d[col]
        assert values[1] is None and values[4] is None
        assert values[2] == []
        assert [len(v) for v in (values[0], values[3])] == [2, 2]
    assert d["node_words"][0] == [2.0, float(len(M.get_words(GOOD[0])))]
    assert d["node_words"][3][1] == 1.0  # the END_OF_DOCUMENT paragraph is scored too (never dropped)
    assert d["node_char_repetition"][0][1] == M.char_repetition_ratio(GOOD[0])
    assert d["node_punctuation"][0][0] == 1.0  # < 12 tokens at node level: min_words rule
    with_lang = copy.deepcopy(cfg)
    with_lang["node"]["lang_id"]["enabled"] = True
    d_lang = score([doc], with_lang)[0]
    assert 0.8 < d_lang["node_lang_score"][0][1] <= 1.0 and aligned(d_lang)
    for check, suffix in CHECKS.items():
        if check != "perplexity":
            assert isinstance(d[f"doc_{suffix}"], float)
    assert d["general_metadata"]["language"] == "en"
    assert 0.5 < d["general_metadata"]["language_score"] <= 1.0
    # doc metrics describe the node-filtered text ("Title here" fails number_words)
    kept_text = GOOD[0] + "\n\n" + GOOD[1] + "\n\n" + EOD
    assert d["doc_words"] == len(M.get_words(kept_text))
    assert d["doc_special_characters"] == M.special_character_ratio(kept_text)
    # the Arrow round trip keeps the columns
    back = schema.from_arrow(schema.to_arrow(out))[0]
    assert back["node_words"] == d["node_words"] and back["doc_words"] == d["doc_words"]


def test_node_and_doc_decisions(cfg):
    junk = "Buy now! " * 8  # char repetition 0.34
    doc = make_doc("Home\n\n" + GOOD[0] + "\n\n" + junk, img(1), "Menu", GOOD[1] + "\n\n" + EOD + "\n\n" + GOOD[2])
    fine = make_doc(GOOD[0], img(2))
    short = make_doc("Only a few words here today.", img(3))  # passes the node checks, < 10 words as a document
    stats = Stats()
    scored = score([doc, fine, short], cfg)
    scored[0]["node_other_stage"] = [[1.0, 2.0, 3.0], None, [4.0], [5.0, 6.0, 7.0]]  # another stage's node column
    scored[1]["node_broken"] = [[1.0, 2.0], None]  # not per paragraph: dropped, never left misaligned
    out = decide(scored, cfg, stats)
    s = stats.stages["text_filter"]
    assert s["nodes_removed"] == {"node:char_repetition": 1, "node:number_words": 2}
    assert s["removed"] == {"doc:number_words": 1}
    assert len(out) == 2
    d = out[0]
    schema.validate(d)
    assert d["texts"] == [GOOD[0], None, GOOD[1] + "\n\n" + EOD + "\n\n" + GOOD[2]]
    assert aligned(d)
    assert d["node_words"][0] == [float(len(M.get_words(GOOD[0])))]
    assert d["node_words"][2][1] == 1.0
    assert d["node_other_stage"] == [[2.0], None, [5.0, 6.0, 7.0]]
    assert "node_broken" not in out[1] and aligned(out[1])
    assert stats.balance_problems() == []
    assert any(DISABLED_NOTE in n for n in s["notes"])


def test_doc_metrics_are_those_of_the_node_filtered_text(cfg):
    noise = ("Price: $$$ 100% off ### 2023-01-01 *** sale 12:30 >>> €50 now ||| 99.9% +++ deal $$$ 100%, 200%, "
             "300%, 400%, 500%, 600%, 700%, 800%; 900%, 1000%, 1100%! 1200%, 1300%?")
    doc = make_doc(noise, img(1), "\n\n".join(GOOD))
    full = M.special_character_ratio(M.standardize_whitespace(noise + "\n\n" + "\n\n".join(GOOD)))
    assert full > cfg["doc"]["special_characters"]["max"]  # the unfiltered page would fail
    stats = Stats()
    out = decide(score([doc], cfg), cfg, stats)
    assert len(out) == 1 and out[0]["texts"] == [None, "\n\n".join(GOOD)]
    assert out[0]["doc_special_characters"] == pytest.approx(M.special_character_ratio("\n\n".join(GOOD)))
    assert stats.stages["text_filter"]["nodes_removed"] == {"node:special_characters": 1}


def _corpus(shared_data) -> list[dict]:
    gt = json.loads((shared_data / "pages" / "article-extraction-benchmark" / "ground-truth.json").read_text())
    docs = []
    for i, (key, v) in enumerate(sorted(gt.items())[:40]):
        paras = v["articleBody"].split("\n\n")
        half = len(paras) // 2
        docs.append(make_doc("\n\n".join(paras[:half]), img(i), "\n\n".join(paras[half:]) + "\n\nRead more\n\n" + EOD,
                             url=v["url"]))
    docs.append(make_doc("Home\n\n" + "\n\n".join(GOOD), img(99), RUSSIAN))
    return docs


def _strict(cfg: dict) -> dict:
    b = copy.deepcopy(cfg)
    b["node"]["number_words"]["min"] = 12
    b["node"]["stopwords"]["min"] = 0.4
    b["node"]["lang_id"]["enabled"] = True
    b["doc"]["number_words"]["min"] = 150
    b["doc"]["common_words"]["min"] = 0.95
    return b


def test_reapplied_decisions_equal_fresh_run(cfg, shared_data):
    docs = _corpus(shared_data)
    strict = _strict(cfg)
    scored_default = score(docs, cfg)

    s_re, s_fresh = Stats(), Stats()
    reapplied = decide(scored_default, strict, s_re)
    fresh = decide(score(docs, strict), strict, s_fresh)

    def removals(stats):
        st = stats.stages["text_filter"]
        return st["removed"], st["nodes_removed"], st["documents_out"], st["nodes_out"]

    assert removals(s_re) == removals(s_fresh)
    assert any("doc metrics recomputed" in n for n in s_re.stages["text_filter"]["notes"])
    assert not any("doc metrics recomputed" in n for n in s_fresh.stages["text_filter"]["notes"])
    assert s_re.stages["text_filter"]["removed"]  # the strict config removes documents
    assert s_re.stages["text_filter"]["nodes_removed"]["node:lang_id"] >= 1
    # node lang-id scores were not stored (the check was off at scoring): computed on demand, never a pass
    assert all("node_lang_score" not in d for d in scored_default)
    assert any("computed on demand" in n and "node_lang_score" in n for n in s_re.stages["text_filter"]["notes"])
    assert [d["general_metadata"]["url"] for d in reapplied] == [d["general_metadata"]["url"] for d in fresh]
    for a, b in zip(reapplied, fresh):
        assert a["texts"] == b["texts"] and a["images"] == b["images"]
        assert sorted(k for k in a if k.startswith(("node_", "doc_"))) == \
            sorted(k for k in b if k.startswith(("node_", "doc_")))
        for col in (k for k in b if k.startswith(("node_", "doc_"))):
            assert a[col] == b[col], col


def test_same_thresholds_need_no_recomputation(cfg, monkeypatch):
    docs = score([make_doc("Home\n\n" + "\n\n".join(GOOD), img(1), "Contact us"), make_doc(GOOD[0], img(2))], cfg)

    def boom(ctx):
        raise AssertionError("doc metrics recomputed although the node thresholds did not change")

    monkeypatch.setattr(decide_mod, "get_scorer", boom)
    stats = Stats()
    out = decide(docs, cfg, stats)
    assert len(out) == 2
    assert out[0]["doc_words"] == docs[0]["doc_words"]
    assert stats.stages["text_filter"]["nodes_removed"] == {"node:number_words": 2}


def test_misaligned_and_unscored_documents_are_rejected(cfg):
    scored = score([make_doc("\n\n".join(GOOD), img(1)), make_doc(GOOD[0], img(2))], cfg)
    scored[0]["texts"][0] += "\n\nAn extra paragraph appeared after scoring, so the scores no longer match it."
    unscored = make_doc("\n\n".join(GOOD), img(3))
    stats = Stats()
    out = decide(scored + [unscored], cfg, stats)
    assert len(out) == 1
    s = stats.stages["text_filter"]
    assert s["errors"] == {"node_scores_misaligned": 1, "not_scored": 1}
    assert stats.balance_problems() == []


def test_lang_id_node_check_and_disabled_notes(cfg):
    c = copy.deepcopy(cfg)
    for check in ("number_words", "stopwords", "common_words", "punctuation"):
        c["node"][check]["enabled"] = False
    c["node"]["lang_id"]["enabled"] = True
    doc = make_doc(GOOD[0] + "\n\n" + RUSSIAN + "\n\n" + GOOD[1], img(1))
    stats = Stats()
    out = decide(score([doc], c), c, stats)
    s = stats.stages["text_filter"]
    assert s["nodes_removed"] == {"node:lang_id": 1}
    assert out[0]["texts"][0] == GOOD[0] + "\n\n" + GOOD[1]
    assert any("node checks disabled" in n and "common_words" in n for n in s["notes"])
    assert any("perplexity" in n for n in s["notes"])


def test_empty_batch_and_image_only_document(cfg):
    assert score([], cfg) == [] and decide([], cfg) == []
    stats = Stats()
    out = decide(score([make_doc(img(1), img(2))], cfg), cfg, stats)
    assert out == []
    assert stats.stages["text_filter"]["removed"] == {"doc:number_words": 1}
