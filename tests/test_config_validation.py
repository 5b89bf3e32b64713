"""Issue 16, bad input: a filter config or a recipe with an unknown key, a misspelled check name, a wrong type or a
value out of range is refused before any work, every problem of the file at once, one line each
(``FILE: key.path: message``, with the nearest valid key); ``config check`` and ``filter --check`` check files
without running anything; every shipped file is valid."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from obelics_builder import config_schema
from obelics_builder.cli import main
from obelics_builder.errors import ConfigError
from obelics_builder.recipe import check_file, load_filters, load_recipe
from obelics_builder.resources import FILTERS_DIR, PIPELINES_DIR

REPO = Path(__file__).resolve().parents[1]
SHIPPED_FILTERS = sorted((REPO / "filters").glob("*.yaml"))
SHIPPED_RECIPES = sorted((REPO / "pipelines").glob("*.yaml"))


def _problems(tmp_path: Path, text: str, name: str = "x.yaml", kind: str = "filters") -> list[str]:
    """The problem lines of a config file holding ``text`` (loaded as a filter config or a recipe)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_filters(path) if kind == "filters" else load_recipe(path)
    assert str(e.value) == "\n".join(e.value.problems)
    for line in e.value.problems:
        assert line.startswith(f"{path}: ") and "\n" not in line, line
    return [line[len(f"{path}: "):] for line in e.value.problems]


# --------------------------------------------------------------------------------------------- filter configs

def test_unknown_key_at_the_top_level_and_nested_names_the_nearest(tmp_path):
    assert _problems(tmp_path, "nodes:\n  number_words: {min: 4}\n") == [
        "nodes: unknown key (did you mean 'node'?)"]
    assert _problems(tmp_path, "image:\n  nsfw: {treshold: 0.5}\n") == [
        "image.nsfw.treshold: unknown key (did you mean 'threshold'?)"]
    assert _problems(tmp_path, "node:\n  number_words: {min: 4, mx: 1000}\n") == [
        "node.number_words.mx: unknown key (did you mean 'max'?)"]
    assert _problems(tmp_path, "wordlists:\n  stopword: wordlists/stopwords_en.txt\n") == [
        "wordlists.stopword: unknown word list (did you mean 'stopwords'?)"]
    # nothing close: the valid keys are listed
    (line,) = _problems(tmp_path, "final:\n  zzz: 1\n")
    assert line.startswith("final.zzz: unknown key (known: dedup_images_in_document, captions_follow_images, ")
    # a parameter of one check is not a key of another
    (line,) = _problems(tmp_path, "node:\n  number_words: {n: 3}\n")
    assert line.startswith("node.number_words.n: unknown key") and "min_words" not in line


def test_misspelled_check_name(tmp_path):
    assert _problems(tmp_path, "node:\n  punctuaton: {min: 0.001}\n") == [
        "node.punctuaton: unknown check (did you mean 'punctuation'?)"]
    assert _problems(tmp_path, "doc:\n  number_image: {max: 30}\n") == [
        "doc.number_image: unknown check (did you mean 'number_images'?)"]
    # number_images is a document check only
    (line,) = _problems(tmp_path, "node:\n  number_images: {max: 30}\n")
    assert line.startswith("node.number_images: unknown check")


def test_wrong_types(tmp_path):
    assert _problems(tmp_path, "node:\n  stopwords: {min: high}\n") == [
        "node.stopwords.min: expected a ratio in [0, 1], got 'high'"]
    assert _problems(tmp_path, "node:\n  stopwords: {enabled: 'no'}\n") == [
        "node.stopwords.enabled: expected true or false, got 'no'"]
    assert _problems(tmp_path, "node:\n  number_words: {min: 4.5}\n") == [
        "node.number_words.min: expected a count (an integer >= 0), got 4.5"]
    assert _problems(tmp_path, "node: [number_words]\n") == ["node: expected a mapping, got a list"]
    # a check is a mapping or false; true would have turned it off silently
    assert _problems(tmp_path, "node:\n  common_words: true\n") == [
        "node.common_words: expected a mapping such as {enabled: true, max: 0.1} or false, got True"]
    assert _problems(tmp_path, "image:\n  formats: jpg\n") == ["image.formats: expected a list of formats, got 'jpg'"]
    assert _problems(tmp_path, "image:\n  nsfw: sometimes\n")[0].startswith("image.nsfw: expected a mapping")


def test_ratio_above_one_and_negative_count(tmp_path):
    assert _problems(tmp_path, "doc:\n  stopwords: {min: 1.5}\n") == [
        "doc.stopwords.min: out of range: expected a ratio in [0, 1], got 1.5"]
    assert _problems(tmp_path, "final:\n  spam_word_ratio_max: -0.1\n") == [
        "final.spam_word_ratio_max: out of range: expected a ratio in [0, 1], got -0.1"]
    assert _problems(tmp_path, "node:\n  number_words: {min: -1}\n") == [
        "node.number_words.min: out of range: expected a count (an integer >= 0), got -1"]
    assert _problems(tmp_path, "doc:\n  number_images: {min: -2}\n") == [
        "doc.number_images.min: out of range: expected a count (an integer >= 0), got -2"]
    assert _problems(tmp_path, "node:\n  char_repetition: {n: 0}\n") == [
        "node.char_repetition.n: out of range: expected an n-gram size (an integer >= 1), got 0"]
    assert _problems(tmp_path, "image:\n  nsfw: {threshold: 90}\n") == [
        "image.nsfw.threshold: out of range: expected a ratio in [0, 1], got 90"]


def test_min_above_max(tmp_path):
    assert _problems(tmp_path, "doc:\n  number_words: {min: 2000, max: 10}\n") == [
        "doc.number_words: min (2000) is greater than max (10): the check can never pass"]
    assert _problems(tmp_path, "image:\n  min_size: 500\n  max_size: 100\n") == [
        "image: min_size (500) is greater than max_size (100)"]
    assert _problems(tmp_path, "final:\n  min_images: 3\n  max_images: 1\n") == [
        "final: min_images (3) is greater than max_images (1)"]


def test_null_means_no_limit_where_it_can(tmp_path):
    path = tmp_path / "open.yaml"
    path.write_text("node:\n  number_words: {min: 4, max: null}\n"
                    "doc:\n  number_words: {min: 10, max: null}\n  perplexity: false\n"
                    "lang_id: {model: null}\nwordlists: {flagged_words: null}\n", encoding="utf-8")
    cfg = load_filters(path)
    assert cfg["doc"]["number_words"]["max"] is None and cfg["doc"]["perplexity"] is False
    assert _problems(tmp_path, "node:\n  stopwords: {enabled: null}\n") == [
        "node.stopwords.enabled: expected true or false, got null"]


def test_a_check_set_to_false_is_off_and_said_so():
    from obelics_builder.quality.decide import _notes

    notes = []

    class Ctx:
        def note(self, text, level=30):
            notes.append(text)

    _notes(Ctx(), {"node": {"stopwords": False}, "doc": {"number_images": False, "perplexity": False}}, [])
    assert notes == ["node checks disabled by the filter config: stopwords",
                     "doc checks disabled by the filter config: perplexity"]


def test_every_problem_of_a_file_is_reported_together(tmp_path):
    found = _problems(tmp_path, "nmae: strict\n"
                                "node:\n  punctuaton: {min: 0.001}\n  stopwords: {min: 1.5}\n"
                                "doc:\n  number_words: {min: 50, max: 5}\n  number_images: {min: -1}\n"
                                "wordlists:\n  stopwords: nowhere/stop.txt\n")
    assert found == [
        "nmae: unknown key (did you mean 'name'?)",
        "node.punctuaton: unknown check (did you mean 'punctuation'?)",
        "node.stopwords.min: out of range: expected a ratio in [0, 1], got 1.5",
        "doc.number_words: min (50) is greater than max (5): the check can never pass",
        "doc.number_images.min: out of range: expected a count (an integer >= 0), got -1",
        f"wordlists.stopwords: no such file: nowhere/stop.txt (looked for {tmp_path / 'nowhere/stop.txt'})",
    ]


def test_structure_and_kinds_keys(tmp_path):
    """Keys of the structure-aware filters (issue 16): ``node.structure`` and ``kinds`` on node checks (a
    document has no kind: ``kinds`` on a doc check is an unknown key)."""
    path = tmp_path / "structured.yaml"
    path.write_text("node:\n"
                    "  structure: {enabled: true, heading_max_words: 12, caption_max_words: 40,"
                    " headings_follow_section: true}\n"
                    "  punctuation: {min: 0.001, kinds: [prose]}\n"
                    "  number_words: {min: 4, kinds: [prose, heading, list, table, code, caption]}\n"
                    "doc:\n  stopwords: {min: 0.35}\n", encoding="utf-8")
    cfg = load_filters(path)
    assert cfg["node"]["structure"]["heading_max_words"] == 12 and cfg["node"]["punctuation"]["kinds"] == ["prose"]
    assert _problems(tmp_path, "node:\n  punctuation: {kinds: [prose, headng]}\n") == [
        "node.punctuation.kinds[1]: unknown kind 'headng' (did you mean 'heading'?)"]
    (line,) = _problems(tmp_path, "node:\n  stopwords: {kinds: [zzz]}\n")
    assert line == "node.stopwords.kinds[0]: unknown kind 'zzz' (choose from: prose, heading, list, table, code, caption)"
    assert _problems(tmp_path, "node:\n  stopwords: {kinds: prose}\n")[0].startswith(
        "node.stopwords.kinds: expected a list of kinds")
    (line,) = _problems(tmp_path, "doc:\n  stopwords: {min: 0.3, kinds: [prose]}\n")
    assert line.startswith("doc.stopwords.kinds: unknown key"), line
    assert _problems(tmp_path, "node:\n  structure: {enabled: 1, heading_max_words: 0, headings_follow: true}\n") == [
        "node.structure.enabled: expected true or false, got 1",
        "node.structure.heading_max_words: out of range: expected an integer >= 1, got 0",
        "node.structure.headings_follow: unknown key (did you mean 'headings_follow_section'?)",
    ]
    assert _problems(tmp_path, "doc:\n  structure: {enabled: true}\n")[0].startswith("doc.structure: unknown check")


def test_a_partial_config_is_checked_as_written_and_merged_over_the_base(tmp_path):
    """A file that sets a few thresholds is valid; the keys it leaves out keep the base's values (the merged
    result is not checked again: a min above the base's max is what ``filter`` uses to drop every document)."""
    base = load_filters("obelics")
    partial = tmp_path / "partial.yaml"
    partial.write_text("doc:\n  number_words: {min: 100000}\n", encoding="utf-8")
    merged = load_filters(partial, over=base)
    assert merged["doc"]["number_words"] == {**base["doc"]["number_words"], "min": 100000}
    assert merged["node"] == base["node"] and merged["_path"] == str(partial)


def test_the_schema_knows_every_check_of_the_scores():
    from obelics_builder.quality.score import CHECKS, NODE_CHECKS

    schema = config_schema.filters_schema()
    assert set(schema.keys["node"].keys) == {*NODE_CHECKS, "standardize_whitespace", "structure"}
    assert set(schema.keys["doc"].keys) == {*CHECKS, "number_images", "text_kinds", "prose"}


# ------------------------------------------------------------------------------------------------------ recipes

def test_recipe_unknown_keys_and_bad_values(tmp_path):
    assert _problems(tmp_path, "filters: obelics\nnear_dedupe: {enabled: true}\n", kind="recipe") == [
        "near_dedupe: unknown key (did you mean 'near_dedup'?)"]
    assert _problems(tmp_path, "near_dedup: {treshold: 0.8}\n", kind="recipe") == [
        "near_dedup.treshold: unknown key (did you mean 'threshold'?)"]
    assert _problems(tmp_path, "images: {concurency: 8}\n", kind="recipe") == [
        "images.concurency: unknown key (did you mean 'concurrency'?)"]
    assert _problems(tmp_path, "optout:\n  spawning: {on_unchecked: drop}\n", kind="recipe") == [
        "optout.spawning.on_unchecked: unknown value 'drop' (choose from: keep, remove)"]
    assert _problems(tmp_path, "near_dedup: {threshold: 1.2, bands: 30}\n", kind="recipe") == [
        "near_dedup.threshold: out of range: expected a similarity in (0, 1], got 1.2",
        "near_dedup: bands * rows (30 * 6 = 180) is more than num_perm (128)",
    ]
    assert _problems(tmp_path, "paragraph_dedup: {min_count: -3}\nread: {batch_size: 0}\n", kind="recipe") == [
        "paragraph_dedup.min_count: out of range: expected an integer >= 1, got -3",
        "read.batch_size: out of range: expected an integer >= 1, got 0",
    ]  # in the file's order
    assert _problems(tmp_path, "extract: {mode: trafilatur}\n", kind="recipe") == [
        "extract.mode: unknown value 'trafilatur' (did you mean 'trafilatura'?)"]


def test_a_recipe_and_its_filter_config_are_reported_together(tmp_path):
    (tmp_path / "mine.yaml").write_text("doc:\n  stopwords: {min: 2}\n", encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("filters: mine.yaml\nwrte: {compression: zstd}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_recipe(recipe)
    assert e.value.problems == [
        f"{recipe}: wrte: unknown key (did you mean 'write'?)",
        f"{tmp_path / 'mine.yaml'}: doc.stopwords.min: out of range: expected a ratio in [0, 1], got 2",
    ]
    recipe.write_text("filters: nowhere\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"recipe.yaml: filters: no filter config 'nowhere'"):
        load_recipe(recipe)


# ------------------------------------------------------------------------------------------------ shipped files

@pytest.mark.parametrize("path", SHIPPED_FILTERS, ids=lambda p: p.name)
def test_every_shipped_filter_config_is_valid(path):
    assert config_schema.problems(__import__("yaml").safe_load(path.read_text(encoding="utf-8")), "filters") == []
    assert check_file(path) == "filters"
    assert load_filters(path.stem)["_path"] == str(FILTERS_DIR / path.name)


@pytest.mark.parametrize("path", SHIPPED_RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_is_valid(path):
    assert config_schema.problems(__import__("yaml").safe_load(path.read_text(encoding="utf-8")), "recipe") == []
    assert check_file(path) == "recipe"
    assert load_recipe(path.stem, check_extractor=False)["_path"] == str(PIPELINES_DIR / path.name)


def test_shipped_files_exist():
    assert SHIPPED_FILTERS and SHIPPED_RECIPES


# --------------------------------------------------------------------------------------------- command line

BAD = "node:\n  punctuaton: {min: 0.001}\n  stopwords: {min: 1.5}\n"


def test_config_check_prints_ok_or_every_problem(tmp_path, capsys):
    ok = [str(p) for p in (*SHIPPED_FILTERS, *SHIPPED_RECIPES)]
    assert main(["config", "check", *ok]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{p}: OK ({'recipe' if 'pipelines' in p else 'filter config'})" for p in ok]

    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    assert main(["config", "check", str(SHIPPED_FILTERS[0]), str(bad), str(tmp_path / "gone.yaml")]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{SHIPPED_FILTERS[0]}: OK (filter config)",
        f"{bad}: node.punctuaton: unknown check (did you mean 'punctuation'?)",
        f"{bad}: node.stopwords.min: out of range: expected a ratio in [0, 1], got 1.5",
        f"{tmp_path / 'gone.yaml'}: no such file",
    ]
    assert "Traceback" not in captured.err


def test_config_check_tells_recipes_from_filter_configs(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("filters: obelics\nextract: {mode: obelics}\nnear_dedup: {enabeld: true}\n", encoding="utf-8")
    assert main(["config", "check", str(recipe)]) == 1
    assert capsys.readouterr().out.strip() == f"{recipe}: near_dedup.enabeld: unknown key (did you mean 'enabled'?)"
    odd = tmp_path / "odd.yaml"
    odd.write_text("name: nothing else\n", encoding="utf-8")
    assert main(["config", "check", str(odd)]) == 1
    assert "cannot tell whether this is a recipe or a filter config" in capsys.readouterr().out
    assert main(["config", "check", "--kind", "filters", str(odd)]) == 0
    assert capsys.readouterr().out.strip() == f"{odd}: OK (filter config)"


def test_filter_check(tmp_path, capsys):
    assert main(["filter", "--check", str(SHIPPED_FILTERS[0])]) == 0
    assert capsys.readouterr().out.strip() == f"{SHIPPED_FILTERS[0]}: OK (filter config)"
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    assert main(["filter", "--check", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{bad}: node.punctuaton: unknown check (did you mean 'punctuation'?)")
    # a recipe is not a filter config
    assert main(["filter", "--check", str(SHIPPED_RECIPES[0])]) == 1
    assert "read: unknown key" in capsys.readouterr().out
    assert main(["filter"]) == 2
    assert "give OUT --config FILE" in capsys.readouterr().err


def test_real_command_line_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "obelics_builder.cli", "config", "check", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    assert f"{bad}: node.punctuaton: unknown check (did you mean 'punctuation'?)" in r.stdout


@pytest.fixture
def no_work(monkeypatch):
    """Any pipeline run or dataset marking fails the test: a bad config must stop a command before them."""
    from obelics_builder import pipeline
    from obelics_builder.dataset import stale

    def refuse(*a, **k):
        raise AssertionError("work started despite a bad config")

    monkeypatch.setattr(pipeline, "run_pipeline", refuse)
    monkeypatch.setattr(stale, "mark_stale", refuse)


def test_crawl_refuses_a_bad_config_before_any_work(tmp_path, capsys, no_work):
    out = tmp_path / "out"
    base = ["crawl", "--dump", "2023-06", "--mirror", "sample", "--out", str(out), "--scheduler", "sync"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    assert main(base + ["--filters", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "obelics-build: error: 2 problems in the configuration:",
        f"  {bad}: node.punctuaton: unknown check (did you mean 'punctuation'?)",
        f"  {bad}: node.stopwords.min: out of range: expected a ratio in [0, 1], got 1.5",
    ]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("filters: obelics\nnear_dedup: {num_perm: -1}\n", encoding="utf-8")
    assert main(base + ["--recipe", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"obelics-build: error: {recipe}: near_dedup.num_perm: out of range: expected an "
                           "integer >= 1, got -1")
    assert not out.exists()  # not even the output folder


def test_filter_refuses_a_bad_config_before_any_work(tmp_path, capsys, no_work):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"not": "read"}), encoding="utf-8")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    bad = tmp_path / "bad.yaml"
    bad.write_text("doc:\n  number_words: {min: 100, max: 10}\n", encoding="utf-8")
    assert main(["filter", str(out), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"obelics-build: error: {bad}: doc.number_words: min (100) is greater than max (10): "
                           "the check can never pass")
    assert "Traceback" not in err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before
