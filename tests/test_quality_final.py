"""Final cleaning (reference §3.3) and the final document rules."""
from __future__ import annotations

import copy

import pytest

from obelics_builder import schema
from obelics_builder.quality.final import final_cleaning_stage
from obelics_builder.quality.score import aligned, text_score_stage
from obelics_builder.recipe import load_filters
from obelics_builder.stats import StageContext, Stats, run_stage

from docs_helpers import img, make_doc

EOD = schema.END_OF_DOCUMENT
SPAM = "Follow us on Facebook and Twitter, share this post and subscribe to our newletter"  # 7/14 spam words
TEXT_A = "The bridge was opened in 1932 and it is still used by thousands of people every day."
TEXT_B = "Engineers checked the steel cables last spring and found them in very good condition."


@pytest.fixture(scope="module")
def cfg() -> dict:
    return load_filters("obelics")


def run(docs, cfg, stats=None):
    stats = stats or Stats()
    return run_stage(final_cleaning_stage, copy.deepcopy(docs), StageContext("final", cfg, stats)), stats


def test_spam_paragraph_removed(cfg):
    out, stats = run([make_doc(TEXT_A + "\n\n" + SPAM + "\n\n" + TEXT_B, img(1))], cfg)
    assert out[0]["texts"] == [TEXT_A + "\n\n" + TEXT_B, None]
    s = stats.stages["final"]
    assert s["nodes_removed"] == {"final:spam_paragraph": 1}
    assert s["nodes_in"] - s["nodes_out"] == 1
    # ratio exactly at the cutoff is removed (kept only if < 0.12); just below is kept
    c = copy.deepcopy(cfg)
    c["final"]["spam_word_ratio_max"] = 7 / 14
    out, _ = run([make_doc(SPAM, img(1))], c)
    assert out == []
    c["final"]["spam_word_ratio_max"] = 7 / 14 + 1e-9
    out, _ = run([make_doc(SPAM, img(1))], c)
    assert out[0]["texts"][0] == SPAM


def test_merge_adjacent_texts_and_drop_empty(cfg):
    # a text that loses all its paragraphs disappears and its neighbours merge
    doc = make_doc(TEXT_A, SPAM, "", TEXT_B, img(1), TEXT_A)
    out, stats = run([doc], cfg)
    d = out[0]
    schema.validate(d)
    assert d["texts"] == [TEXT_A + "\n\n" + TEXT_B, None, TEXT_A]
    assert d["images"] == [None, "https://img.example/1.jpg", None]


def test_end_of_document_markers(cfg):
    doc = make_doc(TEXT_A + "\n\n" + EOD + "\n\n" + EOD + "\n\n" + TEXT_B, img(1), TEXT_B + "\n\n" + EOD)
    out, stats = run([doc], cfg)
    assert out[0]["texts"] == [TEXT_A + "\n\n" + EOD + "\n\n" + TEXT_B, None, TEXT_B]
    assert stats.stages["final"]["nodes_removed"] == {"final:repeated_end_of_document": 1,
                                                      "final:trailing_end_of_document": 1}
    # repeated markers across merged texts collapse too; a trailing marker after an image stays
    doc = make_doc(TEXT_A + "\n\n" + EOD, EOD, img(1))
    out, _ = run([doc], cfg)
    assert out[0]["texts"] == [TEXT_A + "\n\n" + EOD, None]
    # a text made only of the trailing marker disappears, and the document with it if nothing else is left
    out, stats = run([make_doc(img(1), EOD)], cfg)
    assert out == [] and stats.stages["final"]["removed"] == {"final:no_text": 1}
    out, stats = run([make_doc(EOD, img(1))], cfg)
    assert out == [] and stats.stages["final"]["removed"] == {"final:only_end_of_document": 1}


def test_image_dedup_by_src_and_sha256(cfg):
    doc = make_doc(img(1, sha256="aa"), TEXT_A, img(1, sha256="aa"), TEXT_B, img(2, sha256="aa"), img(3, sha256="bb"),
                   img(4))
    out, stats = run([doc], cfg)
    d = out[0]
    schema.validate(d)
    assert d["images"] == ["https://img.example/1.jpg", None, "https://img.example/3.jpg", "https://img.example/4.jpg"]
    assert d["texts"] == [None, TEXT_A + "\n\n" + TEXT_B, None, None]
    assert stats.stages["final"]["images_removed"] == {"final:duplicate_image": 2}
    c = copy.deepcopy(cfg)
    c["final"]["dedup_images_in_document"] = False
    out, _ = run([doc], c)
    assert len(out[0]["images"]) == 7


def test_document_rules(cfg):
    docs = [
        make_doc(img(1), img(2)),  # no text
        make_doc(TEXT_A),  # no image
        make_doc(TEXT_A, *[img(i) for i in range(31)]),  # 31 images
        make_doc(TEXT_A, *[img(i) for i in range(30)]),  # 30 images: kept
        make_doc(SPAM, img(1)),  # its only text is spam
    ]
    out, stats = run(docs, cfg)
    assert len(out) == 1 and schema.n_images(out[0]) == 30
    s = stats.stages["final"]
    assert s["removed"] == {"final:no_text": 2, "final:too_few_images": 1, "final:too_many_images": 1}
    assert stats.balance_problems() == []
    c = copy.deepcopy(cfg)
    c["final"]["min_images"] = 0
    c["doc"]["number_images"]["enabled"] = False
    out, _ = run([make_doc(TEXT_A)], c)
    assert len(out) == 1
    c["final"]["max_images"] = 2
    out, stats = run([make_doc(TEXT_A, img(1), img(2), img(3))], c)
    assert out == [] and stats.stages["final"]["removed"] == {"final:too_many_images": 1}


def test_score_columns_stay_aligned(cfg):
    doc = make_doc(TEXT_A + "\n\n" + SPAM, img(1), img(1), TEXT_B + "\n\n" + EOD + "\n\n" + EOD, img(2))
    doc["image_nsfw"] = [None, 0.1, 0.2, None, 0.3]
    scored = text_score_stage([doc], StageContext("text_scores", cfg, Stats()))
    out, _ = run(scored, cfg)
    d = out[0]
    schema.validate(d)
    assert d["texts"] == [TEXT_A, None, TEXT_B + "\n\n" + EOD, None]
    assert aligned(d)
    words = scored[0]["node_words"]
    assert d["node_words"] == [[words[0][0]], None, [words[3][0], words[3][1]], None]
    assert d["image_nsfw"] == [None, 0.1, None, 0.3]
    assert d["doc_words"] == scored[0]["doc_words"]
    # merged texts concatenate their paragraph scores
    doc = make_doc(TEXT_A, SPAM, img(3), TEXT_B)
    doc["node_words"] = [[1.0], [2.0], None, [3.0]]
    out, _ = run([doc], cfg)
    # SPAM's text loses its only paragraph; TEXT_A then stands alone
    assert out[0]["node_words"] == [[1.0], None, [3.0]]
    doc = make_doc(TEXT_A, "", TEXT_B, img(3))
    doc["node_words"] = [[1.0], [], [3.0], None]
    out, _ = run([doc], cfg)
    assert out[0]["texts"][0] == TEXT_A + "\n\n" + TEXT_B
    assert out[0]["node_words"] == [[1.0, 3.0], None]
    # misaligned node columns are dropped rather than kept wrong
    doc["node_words"] = [[1.0, 9.0], [], [3.0], None]
    out, _ = run([doc], cfg)
    assert "node_words" not in out[0]
