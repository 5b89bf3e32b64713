"""Word lists shipped in filters/wordlists and the fastText language identifier."""
from __future__ import annotations

import hashlib
import json

import pytest

from obelics_builder.quality import langid
from obelics_builder.quality.metrics import get_words, word_ratio
from obelics_builder.quality.wordlists import config_wordlist, load_wordlist
from obelics_builder.recipe import load_filters
from obelics_builder.resources import WORDLISTS_DIR


def test_packaged_lists_sizes_and_format():
    cfg = load_filters("obelics")
    sizes = {key: len(config_wordlist(cfg, key)) for key in cfg["wordlists"]}
    assert sizes["stopwords"] == 301
    assert sizes["flagged_words"] == 67
    assert sizes["url_ban_words"] == 8
    assert sizes["spam_words"] == 40
    assert sizes["common_words"] > 50_000
    for key, path in cfg["wordlists"].items():
        lines = open(path, encoding="utf-8").read().split("\n")
        assert lines[-1] == ""  # newline-terminated
        assert all(line and line == line.strip() for line in lines[:-1]), key
    assert {"newletter", "sign-up", "cookies", "click"} <= config_wordlist(cfg, "spam_words")
    assert (WORDLISTS_DIR / "SOURCE.md").is_file() and (WORDLISTS_DIR / "LICENSE.apache-2.0").is_file()


def test_lists_match_shared_reference(shared_data):
    ref = json.loads((shared_data / "wordlists" / "obelics_wordlists.json").read_text(encoding="utf-8"))
    assert load_wordlist(WORDLISTS_DIR / "stopwords_en.txt") == frozenset(ref["STOPWORDS"])
    # compared by digest so that a failure never prints the (offensive) flagged words
    digest = lambda words: hashlib.sha256("\n".join(sorted(words)).encode()).hexdigest()  # noqa: E731
    assert digest(load_wordlist(WORDLISTS_DIR / "flagged_words_en.txt")) == digest(ref["FLAGGED_WORDS"])
    assert load_wordlist(WORDLISTS_DIR / "url_ban_words.txt") == frozenset(ref["URL_BAN_WORDS"])


def test_load_wordlist_cached_and_comments(tmp_path):
    p = tmp_path / "w.txt"
    p.write_text("# a comment\nfoo\n\n  bar  \n", encoding="utf-8")
    words = load_wordlist(p)
    assert words == frozenset({"foo", "bar"})
    assert load_wordlist(str(p)) is words  # cached per resolved path
    with pytest.raises(ValueError):
        config_wordlist({"wordlists": {}}, "stopwords")


def test_common_words_cover_english_prose(shared_data):
    common = load_wordlist(WORDLISTS_DIR / "common_words_en.txt")
    gt = json.loads((shared_data / "pages" / "article-extraction-benchmark" / "ground-truth.json").read_text())
    bodies = [v["articleBody"] for v in gt.values() if v.get("articleBody")]
    english = [b for b, (lang, p) in zip(bodies, langid.predict_lang(bodies)) if lang == "en" and p > 0.8]
    assert len(english) > 100
    ratios = sorted(word_ratio(get_words(b), common) for b in english)
    assert ratios[len(ratios) // 2] > 0.95
    assert sum(r >= 0.9 for r in ratios) / len(ratios) > 0.95
    # other languages stay below the node threshold (0.8)
    assert word_ratio(get_words("Das ist ein ganz normaler deutscher Satz über das Wetter."), common) < 0.8
    assert word_ratio(get_words("Сегодня прекрасная погода, и мы идём в парк."), common) < 0.5


def test_predict_lang():
    texts = ["The weather is lovely today and we are going to the park.",
             "Сегодня прекрасная погода, и мы идём в парк.",
             "今日はとても良い天気なので公園に行きます。",
             "Line one of an English text\nand line two of the same English text",
             ""]
    out = langid.predict_lang(texts)
    assert [lang for lang, _ in out[:4]] == ["en", "ru", "ja", "en"]
    assert all(0.0 <= p <= 1.0 for _, p in out)
    assert out[0][1] > 0.8
    # lowercasing: same answer for upper-case input
    assert langid.predict_lang([texts[0].upper()])[0] == pytest.approx(out[0])


def test_scores_for_configured_languages():
    model = langid.get_langid()
    (lang, prob, score_en), = model.predict_with_scores(["Сегодня прекрасная погода"], ["en"])
    assert lang == "ru" and prob > 0.5 and 0.0 <= score_en < 0.1
    (lang, prob, score), = model.predict_with_scores(["Сегодня прекрасная погода"], ["en", "ru"])
    assert score == prob


def test_langid_model_path(tmp_path):
    path = langid.default_model_path()
    assert path.endswith("lid.176.ftz")
    assert langid.LangId(path).predict(["hello my friend, how are you"])[0][0] == "en"
    with pytest.raises(FileNotFoundError):
        langid.LangId(str(tmp_path / "missing.ftz"))
