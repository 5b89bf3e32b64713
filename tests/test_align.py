"""Image-text alignment scores (obelics_builder.align, a stage of one's own after final) with a tiny random SigLIP
saved by the tests: the contexts, the checks before any work, the columns of a crawl, `filter` with a threshold
without scoring again, the report's distribution, the card, and the stage disabled (and saying so) without a
model."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from obelics_builder.align.stage import BEST, COLUMNS, DISABLED, image_contexts, image_text
from obelics_builder.errors import ConfigError
from obelics_builder.plan.stages import check_problems
from obelics_builder.recipe import load_recipe
from obelics_builder.resources import PIPELINES_DIR
from obelics_builder.stats import StageContext, Stats

from align_fixtures import save_not_clip, save_tiny_siglip
from test_plan import changed, crawl, markers

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return save_tiny_siglip(tmp_path_factory.mktemp("siglip") / "tiny")


def _recipe(tmp: Path, model, name: str = "r") -> Path:
    data = yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text(encoding="utf-8"))
    data["image_text"]["model"] = None if model is None else str(model)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _parts(folder: Path) -> list[dict]:
    return [r for m in sorted((folder / "_done").glob("*.json"))
            for r in pq.read_table(folder / f"{m.stem}.parquet").to_pylist()]


# ---- the contexts ---------------------------------------------------------------------------------------------

def test_contexts_are_alt_caption_and_the_nearest_paragraphs():
    doc = {"texts": ["Intro.\n\nA red bicycle", None, None, "Photo: the bike at dawn\n\nMore text.", None],
           "images": [None, "http://a/1.jpg", "http://a/2.jpg", None, "http://a/3.jpg"],
           "metadata": [None, {"alt_text": "  bike  "}, {"alt_text": ""}, None, {}],
           "node_kind": [["prose", "heading"], None, None, ["caption", "prose"], None]}
    assert image_contexts(doc, 1) == {"alt": "bike", "before": "A red bicycle", "after": "Photo: the bike at dawn",
                                      "caption": "Photo: the bike at dawn"}
    # the nearest text on each side, over other images; an empty alt text is no context
    assert image_contexts(doc, 2) == {"before": "A red bicycle", "after": "Photo: the bike at dawn",
                                      "caption": "Photo: the bike at dawn"}
    assert image_contexts(doc, 4) == {"before": "More text."}  # the last paragraph before it, a prose one
    doc.pop("node_kind")  # no kinds (an older part): no caption, the rest as before
    assert "caption" not in image_contexts(doc, 1)


# ---- before any work ------------------------------------------------------------------------------------------

def test_a_bad_model_or_section_is_one_line_before_any_work(tmp_path, tiny):
    recipe = load_recipe(_recipe(tmp_path, tiny), check_extractor=False)
    assert check_problems(recipe) == []
    cases = [
        ({"model": str(tmp_path / "missing")}, "no such folder"),
        ({"model": str(save_not_clip(tmp_path / "bert"))}, "is a 'bert' model, not CLIP or SigLIP"),
        ({"model": str(tmp_path)}, "has no config.json"),
        ({"model": str(tiny / "config.json")}, "is a file"),
        ({"model": str(tiny), "batchsize": 8}, "unknown key 'batchsize' (did you mean 'batch_size'?)"),
        ({"model": str(tiny), "device": "tpu"}, "device: expected auto, cpu or cuda"),
    ]
    for section, message in cases:
        problems = check_problems({**recipe, "image_text": section})
        assert len(problems) == 1 and message in problems[0] and problems[0].startswith("image_text: "), problems
    # the filter config's section is checked like every other key
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_text:\n  min_similarity: 2\n  score: bestt\n", encoding="utf-8")
    from obelics_builder.recipe import load_filters

    with pytest.raises(ConfigError) as e:
        load_filters(bad)
    text = str(e.value)
    assert "image_text.min_similarity" in text and "did you mean 'best'" in text


def test_the_command_line_refuses_a_bad_model_before_any_work(tmp_path, capsys, repo):
    from obelics_builder.cli import main

    warc = next((repo / "obelics_builder" / "data" / "sample").rglob("*.warc.gz"))
    out = tmp_path / "out"
    assert main(["crawl", "--warc", str(warc), "--out", str(out), "--image-text-model", str(tmp_path / "nope"),
                 "--scheduler", "sync"]) == 2
    err = capsys.readouterr().err
    assert "image_text: model" in err and "no such folder" in err and "Traceback" not in err
    assert not out.exists()  # nothing started
    # the reference recipe has no such stage: the option says what to add
    assert main(["crawl", "--warc", str(warc), "--out", str(out), "--recipe", "obelics-2023",
                 "--image-text-model", str(tmp_path)]) == 2
    assert 'runs no stage \'image_text\'' in capsys.readouterr().err
    assert main(["crawl", "--warc", str(warc), "--out", str(out), "--set", "image_text"]) == 2
    assert "expected STAGE.KEY=VALUE" in capsys.readouterr().err


def test_the_option_and_set_reach_the_stage_section(tmp_path, tiny, capsys):
    """crawl --image-text-model (and --set) on the command line: the run's recipe holds them, the stage scores."""
    from obelics_builder.cli import main
    from obelics_builder.sources import commoncrawl as cc

    from test_plan import DUMP, WARCS

    mirror = Path(cc.resolve_mirror("sample"))
    warc = next(p for p in sorted((mirror / "crawl-data" / DUMP / "segments").rglob("*.warc.gz")) if WARCS[0] in p.name)
    archive = [str(p) for p in sorted((mirror / "crawl-data" / DUMP / "image-archive").glob("*.warc.gz"))]
    out = tmp_path / "out"
    assert main(["crawl", "--warc", str(warc), "--image-archive", *archive, "--out", str(out), "--scheduler", "sync",
                 "--no-network", "--no-dataset", "--quiet", "--image-text-model", str(tiny),
                 "--set", "image_text.batch_size=4", "--set", "image_text.max_text_tokens=null"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["recipe_config"]["image_text"] == {"model": str(tiny), "batch_size": 4, "device": "auto",
                                                  "threads": 1, "max_text_tokens": None}
    assert json.loads((out / "stats.json").read_text())["stages"]["image_text"]["images_scored"] > 0


def test_without_a_model_the_stage_is_disabled_and_says_so():
    ctx = StageContext("image_text", config={"model": None}, stats=Stats())
    docs = [{"texts": ["a", None], "images": [None, "http://a/1.jpg"], "metadata": [None, {}],
             "general_metadata": {}}]
    assert image_text(docs, ctx) == docs and BEST not in docs[0]
    assert ctx.stats.to_dict()["image_text"]["notes"] == [DISABLED]
    ctx = StageContext("image_text", config={}, stats=Stats(), filters={"min_similarity": 0.1})
    assert image_text(docs, ctx) == docs
    assert "decisions (min_similarity, drop_unscored) are NOT applied" in ctx.stats.to_dict()["image_text"]["notes"][1]


class _Images:
    def __init__(self, data: dict):
        self.data = data

    def get_many(self, urls):
        return {u: self.data[u] for u in urls if u in self.data}


def _jpeg(color) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 40), color).save(buf, "JPEG")
    return buf.getvalue()


def test_decisions_and_the_cache_on_a_batch(tiny, tmp_path):
    """One batch through the function: an image without bytes is unscored (and so cached: a rerun loads no model);
    the decisions read ``ctx.filters``; a rerun from the cache gives the same scores."""
    import copy

    from obelics_builder.plan.cache import StageCache

    docs = [{"texts": ["a red square", None, "blue sky", None, "end"],
             "images": [None, "http://a/red.jpg", None, "http://a/gone.jpg", None],
             "metadata": [None, {"alt_text": "red", "sha256": "1" * 64}, None, {"alt_text": "x"}, None],
             "general_metadata": {}}]
    images = _Images({"http://a/red.jpg": (_jpeg((200, 0, 0)), "jpeg")})

    def run(filters, cache):
        ctx = StageContext("image_text", config={"model": str(tiny), "batch_size": 2}, stats=Stats(),
                           filters=filters, images=images, cache=cache)
        out = image_text(copy.deepcopy(docs), ctx)
        return out[0], ctx

    cache = StageCache(tmp_path, "part", "id")
    doc, ctx = run({}, cache)
    st = ctx.stats.to_dict()["image_text"]
    assert st["images_without_bytes"] == 1 and st["images_scored"] == 1 and st["images_unscored"] == 1
    assert doc[BEST][3] is None and doc[BEST][1] == max(doc[c][1] for c in COLUMNS.values() if doc[c][1] is not None)
    assert doc["doc_align_min"] == doc["doc_align_mean"] == doc[BEST][1]
    cache.save()
    # a rerun: every pair from the cache (the unscorable image's too), no model loaded; drop_unscored drops it
    doc2, ctx2 = run({"drop_unscored": True}, StageCache(tmp_path, "part", "id"))
    assert "image_text_scorer" not in ctx2.resources
    assert doc2["images"] == [None, "http://a/red.jpg", None, None] and doc2[BEST][1] == doc[BEST][1]
    assert ctx2.stats.to_dict()["image_text"]["images_removed"] == {"image_text:unscored": 1}
    # a threshold on one context: above the alt score keeps nothing of the image
    alt = doc[COLUMNS["alt"]][1]
    doc3, ctx3 = run({"min_similarity": alt + 1e-6, "score": "alt"}, StageCache(tmp_path, "part", "id"))
    assert "http://a/red.jpg" not in doc3["images"] and doc3["doc_align_mean"] is None
    assert ctx3.stats.to_dict()["image_text"]["images_removed"] == {"image_text:below_min_similarity": 1}


def test_a_clip_model_scores_too(tmp_path, tiny):
    from obelics_builder.align.model import load_scorer

    from align_fixtures import save_tiny_clip

    folder = save_tiny_clip(tmp_path / "clip")
    assert check_problems({**load_recipe("obelics", check_extractor=False), "image_text": {"model": str(folder)}}) == []
    docs = [{"texts": ["a red square", None], "images": [None, "http://a/red.jpg"],
             "metadata": [None, {"alt_text": "red"}], "general_metadata": {}}]
    ctx = StageContext("image_text", config={"model": str(folder)}, stats=Stats(),
                       images=_Images({"http://a/red.jpg": (_jpeg((200, 0, 0)), "jpeg")}))
    doc = image_text(docs, ctx)[0]
    assert ctx.resources["image_text_scorer"].kind == "clip" and load_scorer(str(folder)).side == 32
    assert -1 <= doc[COLUMNS["alt"]][1] <= 1 and doc[COLUMNS["before"]][1] is not None
    assert load_scorer(str(tiny)).side == 32  # images are decoded down to the processor's size (SigLIP's too)


# ---- a crawl --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny):
    tmp = tmp_path_factory.mktemp("align")
    out = tmp / "out"
    stats = crawl(out, _recipe(tmp, tiny))
    return out, stats


def test_the_crawl_output_has_the_alignment_columns(scored):
    out, stats = scored
    assert stats["summary"]["accounted"], stats["summary"]["accounting_problems"]
    s = stats["stages"]["image_text"]
    assert s["images_scored"] > 20 and s["pairs_scored"] > s["images_embedded"] > 0 and s.get("pairs_cached") == 0
    assert s["images_in"] == s["images_out"]  # no threshold: nothing dropped
    assert not any("disabled" in n for n in stats["notes"] if n.startswith("image_text"))
    docs = _parts(out / "parts" / "image_text")
    kinds_seen = set()
    for d in docs:
        for col in (*COLUMNS.values(), BEST):
            assert len(d[col]) == len(d["texts"])
        meta = json.loads(d["metadata"])
        for i, url in enumerate(d["images"]):
            if url is None:
                assert d[BEST][i] is None
                continue
            got = {k: d[c][i] for k, c in COLUMNS.items() if d[c][i] is not None}
            kinds_seen |= set(got)
            assert all(-1.0 <= v <= 1.0 for v in got.values())
            if got:
                assert d[BEST][i] == max(got.values())
                assert meta[i]["image_text_similarity"] == {k: round(v, 6) for k, v in got.items()}
        best = [v for v in d[BEST] if v is not None]
        if best:
            assert d["doc_align_min"] == min(best) and abs(d["doc_align_mean"] - sum(best) / len(best)) < 1e-9
    assert {"alt", "before", "after"} <= kinds_seen
    # the published documents carry them too (score columns and the images' metadata)
    published = [r for p in sorted((out / "documents").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert all(BEST in r for r in published)
    assert any("image_text_similarity" in (m or {}) for r in published for m in json.loads(r["metadata"]))


def test_filter_with_a_threshold_drops_the_expected_images_without_scoring_again(scored, tmp_path):
    from obelics_builder.cli import main

    out, _ = scored
    first = _parts(out / "parts" / "image_text")
    values = sorted(v for d in first for v in d[BEST] if v is not None)
    threshold = values[len(values) // 2]
    expected = sum(1 for v in values if v < threshold)
    overlay = tmp_path / "thresholds.yaml"
    overlay.write_text(f"image_text:\n  min_similarity: {threshold!r}\n", encoding="utf-8")
    before = markers(out)
    assert main(["filter", str(out), "--config", str(overlay), "--scheduler", "sync", "--no-dataset",
                 "--quiet"]) == 0
    rerun = changed(before, markers(out))
    assert "parts/scored" not in rerun and "parts/final" not in rerun and "images/table" not in rerun
    assert "parts/image_text" in rerun
    stats = json.loads((out / "stats.json").read_text())
    s = stats["stages"]["image_text"]
    assert s["images_removed"] == {"image_text:below_min_similarity": expected} and expected > 0
    assert s.get("pairs_scored", 0) == 0 and "images_embedded" not in s  # every score from the cache
    assert s["cache_hits"] == s["pairs_cached"] > 0
    assert stats["summary"]["accounted"], stats["summary"]["accounting_problems"]
    kept = [v for d in _parts(out / "parts" / "image_text") for v in d[BEST] if v is not None]
    assert len(kept) == len(values) - expected and min(kept) >= threshold
    # the report shows the scores' distribution with the cutoff
    from obelics_builder.report.build import build_report

    html = (build_report(out).parent / "distributions.html").read_text(encoding="utf-8")
    section = html[html.index("Stages of your own"):]
    assert "image_text:below_min_similarity: " + f"{expected:,}" in section
    assert f'aria-label="{BEST} ({len(kept):,} values) histogram"' in section
    chart = section[section.index(f'aria-label="{BEST} ('):]
    assert 'class="cutoff"' in chart[:chart.index("</svg>")]  # the cutoff line, in that chart
    # and the card says what the stage did
    from obelics_builder.dataset.card import render_card

    card = render_card(out, {}, chart=False)
    assert "`image_text` (`obelics_builder.align:image_text`" in card and "image_text:below_min_similarity" in card


def test_another_model_scores_again(scored, tmp_path):
    """The cache is the model's: another model's folder (a new section) starts an empty one."""
    out, stats0 = scored
    other = save_tiny_siglip(tmp_path / "other", seed=1)
    stats = crawl(out, _recipe(tmp_path, other, "other"))
    s = stats["stages"]["image_text"]
    assert s["pairs_scored"] == stats0["stages"]["image_text"]["pairs_scored"] and s.get("pairs_cached") == 0
    assert s["images_removed"] == {}  # the recipe's filter config has no threshold


def test_the_disabled_stage_is_in_stats_report_and_card(tmp_path):
    out = tmp_path / "out"
    stats = crawl(out, _recipe(tmp_path, None))
    assert f"image_text: {DISABLED}" in stats["notes"]
    s = stats["stages"]["image_text"]
    assert s["documents_in"] == s["documents_out"] == stats["stages"]["final"]["documents_out"] > 0
    assert not any(BEST in d for d in _parts(out / "parts" / "image_text"))
    from obelics_builder.dataset.card import render_card
    from obelics_builder.report.build import build_report

    import html as _html

    index = _html.unescape(build_report(out).read_text(encoding="utf-8"))
    assert DISABLED in index
    assert DISABLED in render_card(out, {}, chart=False)
