"""Text metrics (reference §4.1) on hand-computed examples and the reference test vectors (§4.3)."""
from __future__ import annotations

import pytest

from obelics_builder.quality import metrics as M
from obelics_builder.quality.wordlists import load_wordlist
from obelics_builder.resources import WORDLISTS_DIR

STOP = load_wordlist(WORDLISTS_DIR / "stopwords_en.txt")

# (text, words, charrep, wordrep, special, stop, punct(min 12), punct(doc)) — produced by the reference functions.
VECTORS = [
    # the reference row is "Buy now! " x 8; its special ratio 0.3239 = 23/71 is that of the stripped text
    # (all other columns are the same with or without the trailing space).
    (("Buy now! " * 8).strip(), 16, 0.3387, 1.0, 0.3239, 0.0, 0.3333, 0.3333),
    ("The quick brown fox jumps over the lazy dog. It was not amused, and it said so.",
     17, 0.0, 0.0, 0.2405, 0.5294, 0.15, 0.15),
    ("Click here to subscribe — 50% off!!! www.example.com #deal #sale", 8, 0.0, 0.0, 0.3125, 0.25, 0.3125, 0.3125),
    ("“Hello,” she said… (really) — it’s 10:30am.", 6, 0.0, 0.0, 0.4651, 0.3333, 1.0, 0.2727),
]


@pytest.mark.parametrize("row", VECTORS, ids=[f"row{i}" for i in range(len(VECTORS))])
def test_reference_vectors(row):
    text, nwords, charrep, wordrep, special, stop, punct12, punct0 = row
    words = M.get_words(text)
    assert len(words) == nwords
    assert M.char_repetition_ratio(text, 10) == pytest.approx(charrep, abs=5e-5)
    assert M.word_repetition_ratio(words, 5) == pytest.approx(wordrep, abs=5e-5)
    assert M.special_character_ratio(text) == pytest.approx(special, abs=5e-5)
    assert M.word_ratio(words, STOP) == pytest.approx(stop, abs=5e-5)
    assert M.punctuation_ratio(text, 12) == pytest.approx(punct12, abs=5e-5)
    assert M.punctuation_ratio(text, 0) == pytest.approx(punct0, abs=5e-5)


def test_reference_vector_unstripped_buy_now():
    text = "Buy now! " * 8
    words = M.get_words(text)
    assert len(words) == 16
    assert M.word_repetition_ratio(words) == 1.0
    assert M.special_character_ratio(text) == pytest.approx(24 / 72)


def test_words_examples():
    assert M.get_words("10:30am.") == ["am"]
    assert M.get_words("50% — off") == ["off"]
    assert M.get_words("it’s It's") == ["it’s", "it's"]
    assert M.get_words("  Hello\tWORLD\n\nfoo  ") == ["hello", "world", "foo"]
    assert M.get_words("") == []
    assert M.get_words("!!! ... ---") == []
    # only space, \n and \t split; other whitespace is special, so it is stripped at the ends only
    assert M.get_words("a\u3000b") == ["a\u3000b"]
    assert M.get_words("\u3000ab\u2009") == ["ab"]


def test_special_character_set():
    for ch in "!5 \n—–“”‘’…•€£©®°±→←《》。、「」।♥😀👍🏽\u00ad\u200b\ufeff\ufe0f\u3000":
        assert M.is_special(ch), repr(ch)
    for ch in "aZéßЯж日本語の\u00a0ا":
        assert not M.is_special(ch), repr(ch)
    # standardize_whitespace turns NBSP (not special) into a space (special)
    assert M.special_character_ratio("a\u00a0b") == 0.0
    assert M.special_character_ratio(M.standardize_whitespace("a\u00a0b")) == pytest.approx(1 / 3)


def test_empty_text():
    assert M.get_words("") == []
    assert M.char_repetition_ratio("") == 0.0
    assert M.word_repetition_ratio([]) == 0.0
    assert M.special_character_ratio("") == 0.0
    assert M.word_ratio([], STOP) == 0.0
    assert M.punctuation_ratio("", 0) == 0.0
    assert M.punctuation_ratio("", 12) == 1.0  # fewer tokens than the minimum: always passes


def test_punctuation_only():
    text = "!!! ... ,,"
    assert M.get_words(text) == []
    assert M.special_character_ratio(text) == 1.0
    assert M.punctuation_ratio(text) == 1.0  # 8 tokens, all punctuation
    assert M.punctuation_ratio(text, 12) == 1.0
    assert M.punctuation_ratio("— “” …") == 0.0  # no token at all


def test_char_repetition_hand_computed():
    assert M.char_repetition_ratio("a" * 12, 10) == 1.0  # 3 identical 10-grams
    assert M.char_repetition_ratio("abcdefghijk", 10) == 0.0  # 2 distinct 10-grams, none repeated
    assert M.char_repetition_ratio("abc", 10) == 0.0  # shorter than n
    # "abab..." (14 chars): 5 n-grams: abababab ab(x3: starting 0,2,4) and bababa..(x2) -> distinct 2, k = 1
    assert M.char_repetition_ratio("ab" * 7, 10) == pytest.approx(3 / 5)
    # 4 distinct 2-grams of "aabbaab": aa x2, ab x2, bb x1, ba x1 -> k = min(2, 2) = 2 -> 4/6
    assert M.char_repetition_ratio("aabbaab", 2) == pytest.approx(4 / 6)


def test_word_repetition_hand_computed():
    words = "a b c d e a b c d e".split()
    assert M.word_repetition_ratio(words, 5) == pytest.approx(2 / 6)
    assert M.word_repetition_ratio(["x"] * 4, 5) == 0.0
    assert M.word_repetition_ratio(["x"] * 6, 5) == 1.0
    assert M.word_repetition_ratio("a b a b c".split(), 2) == pytest.approx(2 / 4)


def test_non_latin_scripts():
    # CJK: no spaces, one word; the full stop is stripped and counts as special
    text = "日本語のテキストです。"
    assert M.get_words(text) == ["日本語のテキストです"]
    assert M.special_character_ratio(text) == pytest.approx(1 / 11)
    assert M.punctuation_ratio(text) == 0.0  # "。" is not one of , ; : ? ! .
    # Cyrillic: words lowercased, comma/exclamation stripped
    text = "Привет, Мир! Как дела?"
    assert M.get_words(text) == ["привет", "мир", "как", "дела"]
    assert M.special_character_ratio(text) == pytest.approx(6 / 22)
    assert M.punctuation_ratio(text) == pytest.approx(3 / 7)  # \w matches Cyrillic letters
    assert M.word_ratio(M.get_words(text), {"мир", "дела"}) == 0.5


def test_emoji():
    text = "I ❤️ NY 👍🏽 😀😀"
    assert M.get_words(text) == ["i", "ny"]
    # every char except I, N, Y is special (spaces, emoji, VS16, skin tone)
    assert M.special_character_ratio(text) == pytest.approx((len(text) - 3) / len(text))
    assert M.special_character_ratio("😀") == 1.0


def test_standardize_whitespace():
    src = "a\u00a0b\u2009c\u3000d\u202fe\ufffcf\u0084g\nh\ti"
    assert M.standardize_whitespace(src) == "a b c d e f g\nh\ti"
    assert len(M.WHITESPACE_CHARS) == 12


def test_word_ratio():
    words = ["the", "cat", "the", "zzzq"]
    assert M.word_ratio(words, STOP) == 0.5
    assert M.word_ratio(words, frozenset()) == 0.0


def test_generated_codepoint_tables_equal_the_definitions():
    """The shipped ranges (quality/_codepoints.py, read at import) are what a scan of this Python's Unicode data
    gives (the scan is also what another Unicode version runs at import), and that scan is the definition: every
    character of a P*/S*/Zs category, the ASCII punctuation, digits and whitespace, the emoji-sequence parts, not
    NBSP; word characters are those of the regex ``[\\w']``."""
    import re
    import string
    import sys
    import unicodedata

    from obelics_builder.quality import _codepoints as G

    special, word = M.build_codepoint_ranges()
    if G.UNIDATA_VERSION == unicodedata.unidata_version:
        assert (G.SPECIAL, G.WORD) == (special, word) == (M._SPECIAL_RANGES, M._WORD_RANGES)
    cats = {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs"}
    expected = {chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) in cats}
    expected |= set(string.punctuation + string.digits + string.whitespace + "\u00ad\u200b\ufeff\u200d\ufe0e\ufe0f\u20e3")
    expected.discard("\u00a0")
    assert M._chars(special) == expected == M.SPECIAL_CHARACTERS
    t = M._tables()
    for cp in list(range(0, 0x3000, 7)) + [0x1F600, 0xD800, 0x10FFFF, ord("'"), ord("_")]:
        ch = chr(cp)
        assert bool(t["special"][cp]) == (ch in expected)
        assert bool(t["word"][cp]) == bool(re.fullmatch(r"[\w']", ch)), hex(cp)
