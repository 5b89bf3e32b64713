"""Perplexity (KenLM, CCNet normalisation) with a tiny ARPA model written here, and its use by the stages."""
from __future__ import annotations

import copy

import pytest

from obelics_builder import schema
from obelics_builder.quality.decide import text_filter_stage
from obelics_builder.quality.perplexity import DISABLED_NOTE, PerplexityModel, normalize
from obelics_builder.quality.score import aligned, text_score_stage
from obelics_builder.recipe import load_filters
from obelics_builder.stats import StageContext, Stats

# A bigram model (KenLM needs order >= 2).  log10 probabilities / backoffs chosen so that results are hand-computable.
ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.2
-0.5\t</s>\t0
-0.3\thello\t-0.1
-0.6\tworld\t-0.1

\\2-grams:
-0.2\t<s> hello
-0.25\thello world

\\end\\
"""


def test_normalize():
    assert normalize("  a\u00a0b\u3000c 12 “x” — \x07z\n y ") == 'a b c 00 "x"  -  z y'
    # digits become 0 before the punctuation map, so the table's "１" -> '"' entry never applies
    assert normalize("１ 。") == "0 ."
    assert normalize("，。、！？（）") == ",.,!?()"
    assert normalize("٣ apples") == "0 apples"  # any Unicode digit becomes 0
    assert normalize("\n\t\r") == ""
    assert normalize("Line one\nline two") == "Line oneline two"  # \n is a non-printing char: removed


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    pytest.importorskip("kenlm", reason="the optional package kenlm is not installed (pip install kenlm needs a "
                                        "C++ toolchain and Boost-free build; it is optional at runtime)")
    path = tmp_path_factory.mktemp("lm") / "tiny.arpa"
    path.write_text(ARPA, encoding="utf-8")
    return str(path)


def test_perplexity_hand_computed(arpa):
    model = PerplexityModel(arpa)
    # <s> hello: -0.2; hello world: -0.25; world </s>: backoff(world) -0.1 + p(</s>) -0.5  => -1.05 over 3 tokens
    assert model.perplexity("hello world") == round(10 ** (1.05 / 3), 1) == 2.2
    # "7" -> "0" (unknown): -0.2 + (-0.1 - 1.0) + (0 - 0.5) = -1.8 over 3 tokens
    assert model.perplexity("hello 7\n") == round(10 ** (1.8 / 3), 1) == 4.0
    assert model.perplexity("") == round(10 ** 0.7, 1)  # just </s> after <s>: backoff -0.2 + -0.5


def test_missing_model_file(tmp_path):
    pytest.importorskip("kenlm")
    with pytest.raises(FileNotFoundError):
        PerplexityModel(str(tmp_path / "nope.arpa"))


def test_sentencepiece_tokenisation(arpa, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    lines = ["hello world"] * 50 + ["world hello hello"] * 50 + ["hello there world"] * 20
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(tmp_path / "sp"), vocab_size=6,
                                   model_type="word", hard_vocab_limit=False, minloglevel=2)
    model = PerplexityModel(arpa, str(tmp_path / "sp.model"))
    pieces = model.tokenize("hello world")
    assert pieces.split() == ["▁hello", "▁world"]
    # the pieces ("▁hello") are not in the tiny LM's vocabulary: <s> <unk> <unk> </s>
    # = (backoff(<s>) -0.2 + p(<unk>) -1.0) + (0 - 1.0) + (0 - 0.5) = -2.7 over 3 tokens
    assert model.perplexity("hello world") == round(10 ** (2.7 / 3), 1) == 7.9


def _docs():
    doc = schema.new_document({"url": "https://site.example/a"})
    schema.add_text(doc, "hello world\n\nmystery words nobody knows")
    schema.add_image(doc, {"src": "https://img.example/1.jpg"})
    return [doc]


def test_stages_use_the_model(arpa):
    cfg = load_filters("obelics")
    cfg = copy.deepcopy(cfg)
    cfg["perplexity"]["model"] = arpa
    # only perplexity decides, so the outcome depends on it alone
    for level in ("node", "doc"):
        for check, c in cfg[level].items():
            if isinstance(c, dict) and "enabled" in c:
                c["enabled"] = check == "perplexity"
    cfg["node"]["perplexity"]["max"] = 3.0
    cfg["doc"]["perplexity"]["max"] = 3.0
    stats = Stats()
    scored = text_score_stage(_docs(), StageContext("text_scores", cfg, stats))
    d = scored[0]
    assert aligned(d)
    assert d["node_perplexity"][0][0] == 2.2
    assert d["node_perplexity"][0][1] > 3.0  # four unknown words
    assert d["doc_perplexity"] == 2.2  # computed on the node-filtered text
    assert stats.stage("text_scores")["notes"] == []
    out = text_filter_stage(copy.deepcopy(scored), StageContext("text_filter", cfg, stats))
    assert out[0]["texts"][0] == "hello world"
    assert stats.stages["text_filter"]["nodes_removed"] == {"node:perplexity": 1}
    # a stricter doc cutoff removes the document, from the stored scores
    cfg["doc"]["perplexity"]["max"] = 2.0
    stats = Stats()
    assert text_filter_stage(copy.deepcopy(scored), StageContext("text_filter", cfg, stats)) == []
    assert stats.stages["text_filter"]["removed"] == {"doc:perplexity": 1}


def test_enabled_without_model_is_reported_not_silent():
    cfg = load_filters("obelics")
    assert cfg["perplexity"]["model"] is None and cfg["doc"]["perplexity"]["enabled"]
    stats = Stats()
    scored = text_score_stage(_docs(), StageContext("text_scores", cfg, stats))
    assert "node_perplexity" not in scored[0] and "doc_perplexity" not in scored[0]
    assert DISABLED_NOTE in stats.stages["text_scores"]["notes"]
    text_filter_stage(scored, StageContext("text_filter", cfg, stats))
    assert any(DISABLED_NOTE in n and n.startswith("doc perplexity check skipped")
               for n in stats.stages["text_filter"]["notes"])
