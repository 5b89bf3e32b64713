"""Doc checks that read the document's prose (``doc.prose``, issue 16): a page of items is not judged as prose,
junk prose still is; and the code rule that keeps a list of references out of ``code`` -- on hand-made documents."""
from __future__ import annotations

import copy

import pytest

from obelics_builder import config_schema
from obelics_builder.quality.decide import text_filter_stage
from obelics_builder.quality.prose import WORDS_COLUMN, prose_column
from obelics_builder.quality.score import text_score_stage
from obelics_builder.quality.structure import StructureConfig, node_kind
from obelics_builder.recipe import load_filters
from obelics_builder.stats import StageContext, Stats, run_stage

from docs_helpers import make_doc

PROSE = ("The city council met on Tuesday evening to discuss the new park, which has been planned for more than "
         "three years. Residents who attended the meeting said they were happy that the work would finally begin.")
#: product cards: each a list whose labels and phrases repeat from card to card
NAMES = ["Eddyline Sandpiper", "Oru Bay", "Perception Pescador", "Old Town Loon", "Wilderness Aspire", "Pelican Maxim",
         "Sea Eagle Razorlite", "Advanced Elements Airfusion", "Hobie Passport", "Necky Manitou", "Dagger Stratos",
         "Delta Seventeen", "Current Designs Solstice", "Point65 Martini", "Bote Zeppelin", "Intex Excursion",
         "Jackson Tripper", "Riot Edge", "Stellar Intrepid", "Tahe Marine", "Aquaglide Chinook", "Driftsun Rover",
         "Lifetime Tamarack", "Vibe Sea Ghost", "Feelfree Juntos"]
CARDS = ["\n".join([f"{name} Kayak", f"${100 + 7 * n}.00", "4 reviews with an average rating of 4.8 out of 5 stars",
                    "Length:", f"{10 + n} feet", "Weight Capacity:", f"{300 + n} lbs.",
                    "Free shipping for members on orders of $50 or more"]) for n, name in enumerate(NAMES)]


def run(stage, docs, cfg, stats=None):
    return run_stage(stage, copy.deepcopy(docs), StageContext(stage=stage.__name__, config=cfg,
                                                              stats=stats or Stats()))


def structured(**prose) -> dict:
    cfg = copy.deepcopy(load_filters("obelics-structured"))
    cfg["doc"]["prose"].update(prose)
    return cfg


def without_prose() -> dict:
    cfg = copy.deepcopy(load_filters("obelics-structured"))
    del cfg["doc"]["prose"]
    return cfg


def kept(docs, cfg, stats=None):
    return run(text_filter_stage, run(text_score_stage, docs, cfg), cfg, stats)


def test_a_page_of_item_cards_is_not_judged_as_prose():
    page = make_doc("Kayaks", *CARDS)
    (scored,) = run(text_score_stage, [page], structured())
    assert scored[WORDS_COLUMN] == 0.0  # no prose: headings and lists only
    assert scored["doc_word_repetition"] > 0.7  # the cards read as one text repeat their labels
    assert len(kept([page], structured())) == 1
    stats = Stats()
    assert kept([page], without_prose(), stats) == []  # read as prose, the cards fail word repetition
    assert dict(stats.stages["text_filter_stage"]["removed"]) == {"doc:word_repetition": 1}


def test_junk_prose_is_still_judged():
    spam = " ".join(["Book now and save big on every order today."] * 12)  # 108 words of prose, repeated
    page = make_doc("Deals", spam, *CARDS[:3])
    (scored,) = run(text_score_stage, [page], structured())
    assert scored[WORDS_COLUMN] >= 50 and scored[prose_column("word_repetition")] > 0.7
    assert kept([page], structured()) == []
    # a paragraph of names (no stop word, no punctuation) is the node rules' to judge: dropped, the prose stays
    soup = " ".join(f"Kayak{n} Paddle{n} Canoe{n}" for n in range(100))
    (out,) = kept([make_doc("Deals", soup, PROSE)], structured())
    assert out["texts"] == [PROSE]


def test_a_page_with_little_prose_keeps_its_language_and_length_checks():
    foreign = make_doc("Kajaks", *[c.replace("reviews with an average rating of", "Bewertungen mit einer "
                                             "durchschnittlichen Bewertung von") for c in CARDS[:4]],
                       "Diese Seite zeigt alle Kajaks, die wir im Moment auf Lager haben, mit ihren Preisen.")
    stats = Stats()
    assert kept([foreign], structured(), stats) == []
    assert "doc:lang_id" in stats.stages["text_filter_stage"]["removed"]


def test_prose_thresholds_are_decisions_reapplied_from_the_stored_columns():
    page = make_doc(PROSE, *CARDS[:5])
    cfg = structured()
    (scored,) = run(text_score_stage, [page], cfg)
    assert scored[WORDS_COLUMN] == float(len(PROSE.split()))
    stricter = structured(min_words=10)  # now the prose checks judge this page's 36 words of prose
    stricter["doc"]["stopwords"]["min"] = 0.9
    stats = Stats()
    assert run(text_filter_stage, [scored], stricter, stats) == []
    notes = stats.stages["text_filter_stage"]["notes"]
    assert not [n for n in notes if "recomputed" in n]  # min_words and checks are decisions: no recomputation
    # the prose's kinds change the text the prose checks read: recomputed, as a fresh scoring gives
    other = structured(kinds=["prose", "list"])
    stats = Stats()
    (out,) = run(text_filter_stage, [scored], other, stats)
    assert [n for n in stats.stages["text_filter_stage"]["notes"] if "recomputed" in n]
    (fresh,) = run(text_score_stage, [page], other)
    assert out[WORDS_COLUMN] == fresh[WORDS_COLUMN] > scored[WORDS_COLUMN]


@pytest.mark.parametrize("bad, message", [
    ({"kinds": ["prose", "paragraph"]}, "unknown kind"),
    ({"checks": ["stopword"]}, "unknown check"),
    ({"min_words": -1}, "doc.prose.min_words"),
    ({"min_word": 10}, "min_words"),
])
def test_prose_config_is_validated(bad, message):
    cfg = structured()
    cfg["doc"]["prose"] = {**cfg["doc"]["prose"], **bad}
    problems = config_schema.problems(cfg, "filters")
    assert problems and any(message in p for p in problems), problems


ON = StructureConfig(enabled=True)


@pytest.mark.parametrize("para, kind", [
    # a list of references: long lines ending in ")" are sentences
    ("\n".join(f"Illustrated catalogue of hardware and tools for the building trade, volume {n} (Hall, Kimbark "
               f"& Co., 187{n}) (page images at HathiTrust)" for n in range(5)), "list"),
    ("Senate resolves to:\nObserve a minute silence in honour of the departed souls.", "list"),  # no code symbols
    ("x = compute(a, b);\ny = x * 2;\nreturn y;", "code"),
    ("    lower_bound    │     upper_bound\n ───────┼────────\n 1.25 │ 7.41", "code"),  # preformatted output
])
def test_code_needs_code_symbols_or_indentation(para, kind):
    assert node_kind(para, len(para.split()), False, ON) == kind


# --- a node check with ``and``: neither stop words nor punctuation --------------------------------------------------

NAMES_LINE = "Shang Zhu, Federico Bianchi, Wai Tong Chung, Zain Hasan, Rupert Wu, Ce Zhang, James Zou, Ben Athiwaratkun"
SCORES = "Palm Bay: Tolivert 25 points. Davis 17 points. Burgher 10 points. Bozeman 10 points. Moore 3 points."
NO_STOP = ("Trail running shoes kayaks paddles tents headlamps sleeping bags stoves water bottles backpacks jackets "
           "gloves hats socks maps compasses")


def test_a_prose_paragraph_goes_when_it_has_neither_stop_words_nor_punctuation():
    cfg = load_filters("obelics-structured")
    assert cfg["node"]["stopwords"]["and"] == {"punctuation": {"min": 0.001}}
    doc = make_doc(PROSE + "\n\n" + NAMES_LINE + "\n\n" + SCORES + "\n\n" + NO_STOP)
    (scored,) = run(text_score_stage, [doc], cfg)
    assert scored["node_kind"] == [["prose"] * 4]
    assert [v < 0.02 for v in scored["node_stopwords"][0]] == [False, True, True, True]
    stats = Stats()
    (out,) = run(text_filter_stage, [scored], cfg, stats)
    # the names and the box score have punctuation: kept; the run of nouns has neither: dropped
    assert out["texts"] == [PROSE + "\n\n" + NAMES_LINE + "\n\n" + SCORES]
    assert dict(stats.stages["text_filter_stage"]["nodes_removed"]) == {"node:stopwords": 1}
    # ``and`` is a decision on the stored node columns: without it, the stop-word bound alone drops all three (the
    # doc metrics then follow the new surviving text, as with any changed node threshold)
    alone = copy.deepcopy(cfg)
    del alone["node"]["stopwords"]["and"]
    (out,) = run(text_filter_stage, [scored], alone)
    assert out["texts"] == [PROSE]


def test_an_and_bound_on_a_model_check_is_computed_or_rescues_nothing():
    """``and: {lang_id: ...}`` needs the node language scores: the config that names it gets them computed; a bound
    whose column is absent (perplexity without a model) never turns a failing check into a pass."""
    from obelics_builder.quality.lazy import node_model_checks
    from obelics_builder.quality.score import compile_checks, node_decisions

    cfg = copy.deepcopy(load_filters("obelics-structured"))
    assert "lang_id" not in node_model_checks(cfg, True)
    cfg["node"]["stopwords"]["and"] = {"lang_id": {"min": 0.5}}
    assert "lang_id" in node_model_checks(cfg, True)
    cfg["node"]["stopwords"]["and"] = {"perplexity": {"max": 1e9}}
    assert node_model_checks(cfg, False) == ()
    (scored,) = run(text_score_stage, [make_doc(PROSE + "\n\n" + NO_STOP)], load_filters("obelics-structured"))
    assert "node_perplexity" not in scored or scored["node_perplexity"] is None
    decisions = node_decisions(scored, cfg["node"], checks=compile_checks(cfg["node"]))
    assert decisions == [[None, "stopwords"]]


@pytest.mark.parametrize("bad, message", [
    ({"punctuation": {"min": 1.5}}, "stopwords.and.punctuation.min"),
    ({"punctuaton": {"min": 0.001}}, "punctuation"),
    ({"stopwords": {"min": 0.1}}, "stopwords.and"),  # a check is not combined with itself
])
def test_and_is_validated(bad, message):
    cfg = copy.deepcopy(load_filters("obelics-structured"))
    cfg["node"]["stopwords"]["and"] = bad
    problems = config_schema.problems(cfg, "filters")
    assert problems and any(message in p for p in problems), problems


def test_documents_scored_without_doc_prose_get_its_columns_when_filtered_with_it():
    page = make_doc(PROSE, *CARDS)
    (old,) = run(text_score_stage, [page], without_prose())
    assert WORDS_COLUMN not in old
    stats = Stats()
    (out,) = run(text_filter_stage, [old], structured(), stats)  # kept: the cards are not judged as prose
    assert [n for n in stats.stages["text_filter_stage"]["notes"] if "recomputed" in n]
    (fresh,) = kept([page], structured())
    assert {k: v for k, v in out.items() if k.startswith("doc_prose")} == \
        {k: v for k, v in fresh.items() if k.startswith("doc_prose")}
    assert run(text_filter_stage, [old], without_prose()) == []  # the reference reading still removes it
