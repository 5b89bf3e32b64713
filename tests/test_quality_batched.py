"""The fast (batched / reused) metric paths return exactly what the per-text definitions return."""
from __future__ import annotations

import copy
import random

import pytest

from obelics_builder import schema
from obelics_builder.quality import metrics as M
from obelics_builder.quality.langid import get_langid
from obelics_builder.quality.score import CHECKS, PARAGRAPH_SEP, get_scorer, text_score_stage
from obelics_builder.recipe import load_filters
from obelics_builder.stats import StageContext, Stats

from docs_helpers import make_doc

ALPHABET = ("ab AB \n\t.,:;!?'_-é日本😀👍🏽\u200d\ufe0f\u00a0\u2009\u3000\r\x0b\x1cΣΑσ19%\ud800İ\u0301"
            "ّ" "ع" "\u00ad")


def fuzz(n: int, seed: int = 0, max_len: int = 80) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, max_len))) for _ in range(n)]


EXAMPLES = ["", "   ", "a" * 30, "ab" * 40, "The cat sat on the mat. The cat sat on the mat.", "日本語のテキストです。",
            "I ❤️ NY 👍🏽 😀😀", "!!! ... ---", "Σ ΣΑΣ σας.", "x\ud800y " * 5, "word " * 50]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return EXAMPLES + fuzz(1500) + fuzz(20, seed=1, max_len=3000)


def test_get_words_equals_definition(texts):
    for t in texts:
        assert M.get_words(t) == M.get_words_reference(t), repr(t)


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_char_repetition_ratios_equal(texts, n):
    assert M.char_repetition_ratios(texts, n) == [M.char_repetition_ratio(t, n) for t in texts]


def test_char_repetition_edge_cases():
    assert M.char_repetition_ratios([], 10) == []
    assert M.char_repetition_ratios(["abc", "a" * 12], 0) == [0.0, 0.0]
    assert M.char_repetition_ratios(["a" * 12, "abcdefghijk", "ab" * 7], 10) == [1.0, 0.0, 3 / 5]
    # lone surrogates are distinct from each other and from their neighbours
    assert M.char_repetition_ratios(["\ud800\ud801" * 3], 2) == [M.char_repetition_ratio("\ud800\ud801" * 3, 2)]


def test_char_repetition_hash_collisions_and_chunks_are_exact(texts, monkeypatch):
    """Equal keys are verified n-gram by n-gram: with a degenerate hash (every n-gram keyed by its last character,
    so most keys collide) the ratios are still exact; so are they across chunk boundaries and for a text longer
    than a chunk."""
    import numpy as np

    long_text = ("lorem ipsum dolor sit amet " * 9000)[:200_000] + "".join(texts[:50])
    sample = texts + [long_text]
    expected = [M.char_repetition_ratio(t, 10) for t in sample]
    monkeypatch.setattr(M, "CHUNK_CHARS", 5000)
    assert M.char_repetition_ratios(sample, 10) == expected
    monkeypatch.setattr(M, "_GRAM_HASH_MULT", np.uint64(0))
    assert M.char_repetition_ratios(sample, 10) == expected
    assert M.char_repetition_ratios(sample, 3) == [M.char_repetition_ratio(t, 3) for t in sample]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_word_repetition_fast_equals(texts, n):
    for t in texts:
        w = M.get_words(t)
        assert M.word_repetition_ratio_fast(w, n) == M.word_repetition_ratio(w, n)


def test_word_repetition_packed_keys_equal():
    """Long word lists (the packed-key path, both sides of its 63-bit limit, heavy and no repetition) give the
    definition's ratio."""
    rnd = random.Random(3)
    lists = [[rnd.choice("abcdefghij") for _ in range(rnd.randint(150, 900))] for _ in range(40)]
    lists += [[str(rnd.randint(0, 10 ** 6)) for _ in range(rnd.randint(150, 3000))] for _ in range(10)]
    lists += [[f"w{i}" for i in range(5000)], [f"w{i % 700}" for i in range(5000)], ["x"] * 400]
    for w in lists:
        for n in (2, 5, 8, 13):
            assert M.word_repetition_ratio_fast(w, n) == M.word_repetition_ratio(w, n)


def test_char_class_counts(texts):
    cc = M.char_class_counts(texts)
    for i, t in enumerate(texts):
        assert cc["length"][i] == len(t)
        assert cc["special"][i] == len(t) - len(t.translate(M._DELETE_SPECIAL))
        assert cc["punct"][i] == sum(t.count(c) for c in M.PUNCTUATION)
        assert cc["word_tokens"][i] == len(M._WORD_TOKEN_RE.findall(t))


def test_all_metrics_batch_equals(texts):
    stop, flag, common = frozenset({"the", "a", "on"}), frozenset({"cat"}), frozenset({"the", "mat", "σας"})
    for level_args in ((10, 5, 12), (3, 2, 0)):
        got = M.all_metrics_batch(texts, stop, flag, common, *level_args)
        assert got == [M.all_metrics(t, stop, flag, common, *level_args) for t in texts]


def test_standardize_whitespace_equals_translate(texts):
    table = str.maketrans({c: " " for c in M.WHITESPACE_CHARS})
    for t in texts + ["".join(map(chr, range(0x3100)))]:
        assert M.standardize_whitespace(t) == t.translate(table)


def test_language_scores_equal_full_distribution():
    lid = get_langid(None)
    texts = ["The weather is nice today and we are going to the park.", "Das Wetter ist heute schön.",
             "Le temps est beau aujourd'hui.", "今日はいい天気です。", "Сегодня хорошая погода.", "", "12345 !!!",
             "x\ud800y"]
    for langs in (["en"], ["de", "fr"], ["zh", "ja"], ["xx"]):
        got = lid.predict_with_scores(texts, langs)
        for t, (lang, prob, score) in zip(texts, got):
            full = lid._predict(t, -1)
            assert (lang, prob) == full[0]
            assert score == max((p for lab, p in full if lab in langs), default=0.0)


def _doc(*parts):
    return make_doc(*parts, url="https://site.example/x")


def test_reused_doc_metrics_equal_recomputed(shared_data):
    """Doc metrics built from paragraph counts equal those computed on the node-filtered text itself."""
    cfg = load_filters("obelics")
    gt = shared_data / "pages" / "article-extraction-benchmark" / "ground-truth.json"
    import json

    bodies = [v.get("articleBody") or "" for v in json.loads(gt.read_text(encoding="utf-8")).values()][:60]
    docs = [_doc(*[b for b in body.split("\n\n\n")], {"src": "https://img.example/1.jpg"}) for body in bodies if body]
    docs.append(_doc("Short.", {"src": "https://img.example/2.jpg"}))  # nothing survives: empty doc text
    docs.append(_doc(schema.END_OF_DOCUMENT))
    for variant in ("obelics", "loose"):
        c = copy.deepcopy(cfg)
        if variant == "loose":
            for check in c["node"].values():
                if isinstance(check, dict):
                    check["enabled"] = False
            c["doc"]["char_repetition"]["n"] = 3
            c["doc"]["word_repetition"]["n"] = 2
        ctx = StageContext(stage="text_scores", config=c, stats=Stats())
        scored = text_score_stage(copy.deepcopy(docs), ctx)
        scorer = get_scorer(ctx)
        from obelics_builder.quality.score import full_text, node_decisions, surviving_texts, text_hash

        for d in scored:
            text = full_text(surviving_texts(d, node_decisions(d, c["node"])))
            assert d["doc_scored_text_sha1"] == text_hash(text)
            expected = scorer.metrics([text], "doc")[0]
            for check, suffix in CHECKS.items():
                if check in expected:
                    assert d[f"doc_{suffix}"] == float(expected[check]), (variant, check)
            # node values are those of the per-text definitions
            paras = [p for t in d["texts"] if t is not None for p in schema.paragraphs(t)]
            p = scorer.params["node"]
            expected_nodes = [M.all_metrics(t, scorer.stopwords, scorer.flagged, scorer.common, p["char_n"],
                                            p["word_n"], p["punct_min_words"]) for t in paras]
            for check, suffix in CHECKS.items():
                if check in expected_nodes[0] if expected_nodes else False:
                    flat = [v for vals in d[f"node_{suffix}"] if vals is not None for v in vals]
                    assert flat == [float(m[check]) for m in expected_nodes], (variant, check)
    assert PARAGRAPH_SEP == "\n\n"


def test_scoring_inputs_follow_score_parameters_not_thresholds(tmp_path):
    import shutil

    from obelics_builder.quality.score import scoring_inputs

    cfg = load_filters("obelics")
    base = scoring_inputs(cfg)
    c = copy.deepcopy(cfg)
    c["node"]["stopwords"]["min"] = 0.9
    c["doc"]["lang_id"]["enabled"] = False
    assert scoring_inputs(c) == base  # thresholds and switches: no rescoring
    moved = shutil.copy(cfg["wordlists"]["stopwords"], tmp_path / "stop.txt")
    c["wordlists"]["stopwords"] = str(moved)
    assert scoring_inputs(c) == base  # same list under another path
    c["doc"]["char_repetition"]["n"] = 7
    assert scoring_inputs(c) != base
    (tmp_path / "stop.txt").write_text("the\n", encoding="utf-8")
    c2 = copy.deepcopy(cfg)
    c2["wordlists"]["stopwords"] = str(moved)
    assert scoring_inputs(c2) != base


def test_batch_scores_equal_scoring_each_document_alone():
    """Paragraphs repeated across (and within) the documents of a batch are scored once; every column and the
    document language equal those of the document scored alone."""
    cfg = load_filters("obelics")
    menu = "Home | About | Contact"
    share = "Share this article on Facebook, Twitter and by e-mail."
    body = ("The committee met on Tuesday to discuss the new budget, which includes funding for schools, roads "
            "and the public library that was damaged in last year's flood.")
    german = ("Der Ausschuss traf sich am Dienstag, um über den neuen Haushalt zu sprechen, der Mittel für Schulen, "
              "Straßen und die öffentliche Bibliothek vorsieht, die bei der Überschwemmung beschädigt wurde.")
    docs = [
        _doc(menu, body, {"src": "https://img.example/1.jpg"}, share),
        _doc(menu + "\n\n" + share, "Der Ausschuss traf sich am Dienstag, um über den neuen Haushalt zu sprechen, "
             "der Mittel für Schulen und Straßen vorsieht.", {"src": "https://img.example/2.jpg"}, menu),
        _doc(share, share, body + "\n\n" + body),
        _doc(menu, {"src": "https://img.example/3.jpg"}),  # nothing survives the node checks
        _doc(*[german] * 3, body),
    ]
    ctx = StageContext(stage="text_scores", config=cfg, stats=Stats())
    together = text_score_stage(copy.deepcopy(docs), ctx)
    alone = [text_score_stage([copy.deepcopy(d)], StageContext(stage="text_scores", config=cfg, stats=Stats()))[0]
             for d in docs]
    assert together == alone
    lid = get_langid(None)
    from obelics_builder.quality.score import full_text, node_decisions, surviving_texts

    from obelics_builder.quality.score import document_language

    for d in together:
        text = full_text(surviving_texts(d, node_decisions(d, cfg["node"])))
        lang, prob = lid.predict([text if text.strip() else full_text(d["texts"])])[0]
        if text.strip():
            assert d["general_metadata"]["language"] == lang
            assert d["general_metadata"]["language_score"] == round(prob, 4)
        else:  # never published: not predicted while scoring, computed where it is read
            assert "language" not in d["general_metadata"] and "language_score" not in d["general_metadata"]
        assert document_language(d) == (lang, round(prob, 4))
    # the language is that of the published (node-filtered) text: the German paragraphs fail the English node
    # checks, so a mostly German page with one kept English paragraph is "en"
    whole = full_text(together[4]["texts"])
    assert lid.predict([whole])[0][0] == "de" and together[4]["general_metadata"]["language"] == "en"
    assert not full_text(surviving_texts(together[3], node_decisions(together[3], cfg["node"])))
