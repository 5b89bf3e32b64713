"""Node scores of checks the scoring config did not apply (lang-id, perplexity): computed on demand, never a pass."""
from __future__ import annotations

import copy

from obelics_builder.io.parquet import write_documents
from obelics_builder.quality.lazy import fill_node_scores, node_model_checks
from obelics_builder.quality.langid import get_langid
from obelics_builder.quality.score import Scorer, document_language, text_score_stage
from obelics_builder.recipe import load_filters
from obelics_builder.report.checks import scan_scored
from obelics_builder.stats import StageContext, Stats

from docs_helpers import img, make_doc

ENGLISH = ("The city council met on Tuesday evening to discuss the new park, which has been planned for more than "
           "three years. Residents who attended the meeting said they were happy that the work would finally begin.")
RUSSIAN = "Городской совет обсудил новый парк, который планировали больше трёх лет, и жители были довольны."


def _configs():
    off = load_filters("obelics-structured")
    on = copy.deepcopy(off)
    on["node"]["lang_id"].update(enabled=True, min=0.8)
    return off, on


def _score(docs, cfg):
    return text_score_stage(copy.deepcopy(docs), StageContext("text_scores", cfg, Stats()))


def test_fill_equals_scoring_with_the_check_on():
    off, on = _configs()
    assert node_model_checks(off, True) == () and node_model_checks(on, False) == ("lang_id",)
    docs = [make_doc(ENGLISH + "\n\n" + RUSSIAN, img(1), ENGLISH), make_doc(RUSSIAN, img(2))]
    lazy, fresh = _score(docs, off), _score(docs, on)
    assert all("node_lang_score" not in d for d in lazy)
    assert fill_node_scores(lazy, Scorer(on)) == ["node_lang_score"]
    assert [d["node_lang_score"] for d in lazy] == [d["node_lang_score"] for d in fresh]
    assert fill_node_scores(lazy, Scorer(on)) == []  # nothing missing any more
    assert fill_node_scores(copy.deepcopy(fresh), Scorer(off)) == []  # a config that does not apply it: nothing


def test_report_scan_computes_missing_node_scores(tmp_path):
    off, on = _configs()
    docs = [make_doc(ENGLISH + "\n\n" + RUSSIAN, img(1), ENGLISH)]
    write_documents(tmp_path / "parts" / "scored" / "w.parquet", _score(docs, off))
    results, info = scan_scored(tmp_path, on, 100, 5, 1000, [])
    lang = next(r for r in results if r.check.label == "node.lang_id")
    assert lang.check.column == "node_lang_score" and len(lang.values) == 3 and lang.removed == 1
    assert "Городской" in lang.examples[0]["text"]


def test_language_of_a_page_without_kept_text_is_computed_where_it_is_read(tmp_path):
    """A page none of whose paragraphs passes is never published: scoring stores no language for it (no second
    prediction on its whole text), the report's example of its removal shows the language of its whole text."""
    off, _ = _configs()
    menu = "Startseite\n\nÜber uns\n\nKontakt und Impressum"  # headings without a section: none is kept
    scored = _score([make_doc(menu)], off)
    assert "language" not in scored[0]["general_metadata"] and scored[0]["doc_words"] == 0
    write_documents(tmp_path / "parts" / "scored" / "w.parquet", scored)
    results, _ = scan_scored(tmp_path, off, 100, 5, 1000, [])
    examples = [e for r in results if r.check.level == "doc" for e in r.examples]
    whole = get_langid(None).predict([menu])[0][0]
    assert examples and examples[0]["language"] == whole == document_language(scored[0])[0]
