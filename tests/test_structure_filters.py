"""Structure-aware text filters (issue 16): node kinds, checks limited to kinds, headings that follow their section,
repeated paragraphs, the doc checks' text kinds, captions that follow their image — on hand-made documents."""
from __future__ import annotations

import copy

import pytest

from obelics_builder import schema
from obelics_builder.quality.decide import text_filter_stage
from obelics_builder.quality.final import final_cleaning_stage
from obelics_builder.quality.score import doc_check_text, node_decisions, text_score_stage
from obelics_builder.quality.structure import StructureConfig, document_kinds, follow_sections, node_kind
from obelics_builder.recipe import load_filters
from obelics_builder.stats import StageContext, Stats, run_stage

from docs_helpers import img, make_doc

ON = StructureConfig(enabled=True)
PROSE = ("The city council met on Tuesday evening to discuss the new park, which has been planned for more than "
         "three years. Residents who attended the meeting said they were happy that the work would finally begin.")
PROSE2 = ("According to the plan, the park will have a small lake, a playground for children and a long path for "
          "walking and cycling. The mayor said that the first trees should be planted before the end of summer.")
PROSE3 = ("Some people were worried about the cost of the project, but the council explained that most of the "
          "money would come from a national fund. A final vote is expected at the next meeting in two weeks.")


def run(stage, docs, cfg, stats=None):
    return run_stage(stage, copy.deepcopy(docs), StageContext(stage=stage.__name__, config=cfg,
                                                              stats=stats or Stats()))


def structured(**node) -> dict:
    """The packaged structured filters with node checks replaced by ``node`` (None: removed)."""
    cfg = copy.deepcopy(load_filters("obelics-structured"))
    for k, v in node.items():
        if v is None:
            cfg["node"].pop(k, None)
        else:
            cfg["node"][k] = v
    return cfg


# --- kinds -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("para, near_image, kind", [
    (PROSE, False, "prose"),
    ("Where the park will be", False, "heading"),
    ("A short sentence that ends.", False, "prose"),         # a sentence end: not a heading
    ("Apples\nPears\nPlums", False, "list"),
    ("Name | Price\nApples | 3\nPears | 4", False, "table"),
    ("def f(x):\n    return x + 1\nprint(f(2))", False, "code"),
    ("The new park seen from the hill, at dawn", True, "caption"),
    ("The new park seen from the hill, at dawn", False, "heading"),
    (PROSE, True, "prose"),                                    # a paragraph next to an image: too long for a caption
    ("Residents walk by the lake on the first day the new park opened.", True, "caption"),
])
def test_node_kind(para, near_image, kind):
    assert node_kind(para, len(para.split()), near_image, ON) == kind


def test_kinds_are_prose_when_structure_is_off():
    assert node_kind("Apples\nPears", 2, False, StructureConfig()) == "prose"


def test_document_kinds_mark_captions_at_the_image_edges_only():
    texts = ["Intro line\n\nThe lake at dawn, seen from the hill.", None, "Below the photo\n\n" + PROSE2 + "\n\nAbove the next photo", None]
    paras = [None if t is None else t.split("\n\n") for t in texts]
    words = [None if p is None else [len(x.split()) for x in p] for p in paras]
    kinds = document_kinds(texts, paras, words, ON)
    assert kinds == [["heading", "caption"], None, ["caption", "prose", "caption"], None]


def test_an_image_inside_a_sentence_has_no_caption():
    """A formula or an emoji inside a sentence: the pieces around it are the sentence's, not captions."""
    texts = ["For an arbitrary complex vector v the product", None, "is Hermitian.", None, "The lake at dawn"]
    paras = [None if t is None else [t] for t in texts]
    words = [None if p is None else [len(p[0].split())] for p in paras]
    kinds = document_kinds(texts, paras, words, ON)
    assert kinds[0] == ["heading"] and kinds[2] == ["prose"]  # image 1 is inline: no caption on either side
    assert kinds[4] == ["caption"]                              # image 3 is not


def test_headings_follow_their_section():
    kinds = [["heading", "prose", "heading", "heading", "prose", "heading"]]
    fails = [[None, "stopwords", None, None, None, None]]
    follow_sections(kinds, fails)
    # the first heading opens a dropped paragraph; the two next open a kept one; the last opens nothing
    assert fails == [["section_removed", "stopwords", None, None, None, "section_removed"]]


# --- the stages --------------------------------------------------------------------------------------------------

def test_checks_apply_to_their_kinds_and_headings_follow_sections():
    cfg = structured(number_words={"enabled": True, "min": 4, "kinds": ["prose"]},
                     stopwords={"enabled": True, "min": 0.3, "kinds": ["prose"]})
    doc = make_doc("Park plans\n\n" + PROSE + "\n\nBudget\n\nxyz qwe rty uio asd fgh jkl zxc vbn mnb.\n\n"
                   "Oak\nBirch\nPine\n\nToo short.")
    scored = run(text_score_stage, [doc], cfg)
    assert scored[0]["node_kind"] == [["heading", "prose", "heading", "prose", "list", "prose"]]
    decisions = node_decisions(scored[0], cfg["node"])
    assert decisions == [[None, None, "section_removed", "stopwords", None, "number_words"]]
    stats = Stats()
    (out,) = run(text_filter_stage, scored, cfg, stats)
    assert out["texts"] == ["Park plans\n\n" + PROSE + "\n\nOak\nBirch\nPine"]
    assert out["node_kind"] == [["heading", "prose", "list"]]  # kinds stay aligned with the kept paragraphs
    removed = stats.stages["text_filter_stage"]["nodes_removed"]
    assert dict(removed) == {"node:section_removed": 1, "node:stopwords": 1, "node:number_words": 1}
    # the 3-word list is kept although number_words min is 4: that check is for prose only
    assert "Oak\nBirch\nPine" in out["texts"][0]


def test_reference_filters_judge_every_paragraph_as_prose():
    cfg = load_filters("obelics")
    doc = make_doc("Park plans\n\n" + PROSE)
    (scored,) = run(text_score_stage, [doc], cfg)
    assert "node_kind" not in scored and "node_repeated" not in scored
    assert node_decisions(scored, cfg["node"]) == [["number_words", None]]


def test_repeated_paragraphs_and_templated_sentences():
    cfg = structured()
    templated = [f"Regarding item {n}, " + PROSE for n in (11111, 22222)]
    doc = make_doc(PROSE + "\n\n" + PROSE2 + "\n\nMeal 1\n\nMeal 2", img(1),
                   PROSE + "\n\n" + templated[0] + "\n\n" + templated[1] + "\n\n" + PROSE3)
    (scored,) = run(text_score_stage, [doc], cfg)
    # exact copies count, and long sentences that differ only in their numbers; short lines with other numbers
    # ("Meal 1", "Meal 2") are different paragraphs
    assert scored["node_repeated"] == [[0.0, 0.0, 0.0, 0.0], None, [1.0, 0.0, 1.0, 0.0]]
    (out,) = run(text_filter_stage, [scored], cfg)
    assert out["texts"][2] == templated[0] + "\n\n" + PROSE3


def test_repeated_is_kind_limited_like_any_check():
    cfg = structured(repeated={"enabled": True, "max": 0, "kinds": ["prose"]})
    code = "for x in range(3):\n    print(x)\nprint('done')"
    doc = make_doc(PROSE + "\n\n" + code + "\n\n" + PROSE2 + "\n\n" + code + "\n\n" + PROSE3)
    (scored,) = run(text_score_stage, [doc], cfg)
    assert scored["node_kind"][0][1] == "code" and scored["node_repeated"][0][3] == 1.0
    (out,) = run(text_filter_stage, [scored], cfg)
    assert out["texts"][0].count(code) == 2  # the repeated code block is judged by its own rules: kept


def test_doc_checks_read_their_text_kinds_only():
    cfg = structured()
    code = "\n".join(["SELECT a, b, c FROM t WHERE a > 1 AND b < 2;", "  -- {x: [1, 2, 3]} #$%&*", "END;"] * 6)
    doc = make_doc(PROSE + "\n\n" + code + "\n\n" + PROSE2)
    (scored,) = run(text_score_stage, [doc], cfg)
    assert scored["node_kind"] == [["prose", "code", "prose"]]
    assert doc_check_text(scored, frozenset(cfg["doc"]["text_kinds"])) == PROSE + "\n\n" + PROSE2
    # the doc metrics describe the prose: the code's symbols do not count against the document
    reference = copy.deepcopy(cfg)
    del reference["doc"]["text_kinds"]
    (all_kinds,) = run(text_score_stage, [doc], reference)
    assert scored["doc_special_characters"] < all_kinds["doc_special_characters"]
    assert scored["doc_words"] == all_kinds["doc_words"]  # the document's length counts its code too
    stats = Stats()
    out = run(text_filter_stage, [scored], cfg, stats)
    assert len(out) == 1 and code in out[0]["texts"][0]  # the code stays in the document
    assert not [n for n in stats.stages["text_filter_stage"]["notes"] if "recomputed" in n]


def test_a_page_of_tables_is_not_short():
    """number_words counts every kept paragraph (a book list in a table), the prose checks read the text kinds."""
    cfg = structured()
    table = "\n".join(f"Title number {n} of the list | Author {n} | {1990 + n}" for n in range(30))
    (scored,) = run(text_score_stage, [make_doc("Books on hardware", img(1), PROSE + "\n\n" + table)], cfg)
    assert scored["node_kind"] == [["caption"], None, ["prose", "table"]]
    assert scored["doc_words"] > 100
    (out,) = run(text_filter_stage, [scored], cfg)
    assert out["texts"][2] == PROSE + "\n\n" + table
    # a changed decision (tables dropped) recomputes the length from the kept text, as a fresh scoring does
    changed = copy.deepcopy(cfg)
    changed["node"]["number_words"] = {"enabled": True, "min": 1000, "kinds": ["table"]}
    changed["doc"]["number_words"]["min"] = 60  # the table held most of the words
    stats = Stats()
    assert run(text_filter_stage, [scored], changed, stats) == []
    assert dict(stats.stages["text_filter_stage"]["removed"]) == {"doc:number_words": 1}


def test_decisions_reuse_the_stored_doc_metrics_exactly():
    """Scoring and decisions apply the same node rule (kinds, repeats, headings): the doc metrics' text hash
    matches, so nothing is recomputed, and a changed decision key (here kinds) is recomputed and noted."""
    cfg = structured(number_words={"enabled": True, "min": 4, "kinds": ["prose"]})
    docs = [make_doc("Heading one\n\n" + PROSE + "\n\nBad.\n\n" + PROSE, img(1), "Caption of it\n\n" + PROSE2),
            make_doc("Only a heading")]
    scored = run(text_score_stage, docs, cfg)
    stats = Stats()
    run(text_filter_stage, scored, cfg, stats)
    assert not [n for n in stats.stages["text_filter_stage"]["notes"] if "recomputed" in n]
    changed = copy.deepcopy(cfg)
    changed["node"]["number_words"]["kinds"] = ["prose", "heading"]
    stats = Stats()
    out = run(text_filter_stage, scored, changed, stats)
    assert [n for n in stats.stages["text_filter_stage"]["notes"] if "recomputed" in n]
    fresh = run(text_filter_stage, run(text_score_stage, docs, changed), changed)
    assert [d["texts"] for d in out] == [d["texts"] for d in fresh]
    assert [d["doc_words"] for d in out] == [d["doc_words"] for d in fresh]


def test_captions_follow_their_image():
    cfg = structured()
    cfg["final"]["captions_follow_images"] = True  # (off in the packaged config: see filters/README.md)
    cfg["final"]["min_images"] = 0
    cfg["doc"]["number_images"]["enabled"] = False
    doc = make_doc(PROSE + "\n\nThe lake at dawn", img(1), "The playground, seen from the path\n\n" + PROSE2,
                   img(2), "The new trees by the gate")
    (scored,) = run(text_score_stage, [doc], cfg)
    assert scored["node_kind"] == [["prose", "caption"], None, ["caption", "prose"], None, ["caption"]]
    (kept,) = run(text_filter_stage, [scored], cfg)
    # the image stage removed image 1 (a fetch failure, say): its two captions go with it; image 2 keeps its own
    schema.keep_positions(kept, [True, False, True, True, True])
    stats = Stats()
    (out,) = run(final_cleaning_stage, [kept], cfg, stats)
    assert out["texts"] == [PROSE + "\n\n" + PROSE2, None, "The new trees by the gate"]
    assert dict(stats.stages["final_cleaning_stage"]["nodes_removed"]) == {"final:orphan_caption": 2}
    off = copy.deepcopy(cfg)
    off["final"]["captions_follow_images"] = False
    (out,) = run(final_cleaning_stage, [kept], off)
    assert "The lake at dawn" in out["texts"][0]


def test_node_kind_survives_parquet():
    cfg = structured()
    (scored,) = run(text_score_stage, [make_doc("Title\n\n" + PROSE, img(1), "Apples\nPears")], cfg)
    table = schema.to_arrow([scored])
    assert str(table.schema.field("node_kind").type) == "list<item: list<item: string>>"
    assert schema.from_arrow(table)[0]["node_kind"] == [["heading", "prose"], None, ["list"]]
