"""Text quality metrics, following the OBELICS/BigScience definitions (reference §4.1).

All functions are pure and cheap; they are applied per paragraph ("node") and per document by
:mod:`obelics_builder.quality.score`.

Special characters (our frozen definition)
------------------------------------------
OBELICS uses ``string.punctuation + string.digits + string.whitespace``, a 191-char literal of typographic symbols
(BigScience ``ac_dc``) and the single-code-point keys of ``emoji==1.6.1``'s ``UNICODE_EMOJI["en"]``.  We do not
ship that literal nor depend on the old ``emoji`` API; instead the set is defined by Unicode categories:

* every ASCII punctuation character, ASCII digit and ASCII whitespace character (as OBELICS);
* every code point whose general category is punctuation (``Pc Pd Ps Pe Pi Pf Po``) or symbol
  (``Sm Sc Sk So``) — this covers quotes, dashes, bullets, arrows, currency, CJK/Indic punctuation and emoji
  (emoji are ``So``; skin-tone modifiers are ``Sk``);
* every space separator (``Zs``) except U+00A0 NO-BREAK SPACE, which OBELICS does *not* treat as special;
* the format characters soft hyphen (U+00AD), zero-width space (U+200B) and byte-order mark (U+FEFF);
* the parts of emoji sequences that are not symbols themselves: zero-width joiner (U+200D), variation selectors
  15/16 (U+FE0E, U+FE0F) and the combining enclosing keycap (U+20E3), so that ``"❤️"`` or ``"👍🏽"`` leave no
  residue word (emoji 1.6.1 listed such sequences only as multi-code-point keys, which never matched a char).

Known differences from the reference set: the BigScience literal also lists a handful of letters and marks
(e.g. a Cyrillic, a Greek, an Arabic letter, a few Katakana and Devanagari/Bengali vowel signs) that we do not
count, and our set contains many symbols the literal omits (any ``S*``/``P*`` code point).  On English prose
the two agree (the four test vectors of §4.3 are reproduced exactly).  Unicode data comes from the running
Python's ``unicodedata`` (Python 3.11: Unicode 14.0), so the set is fixed for a given Python minor version.
"""
from __future__ import annotations

import math
import re
import string
import sys
import unicodedata
from collections import Counter
from typing import Collection

import numpy as _np

_SPECIAL_CATEGORIES = frozenset({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs"})
_EXTRA_SPECIAL = "\u00ad\u200b\ufeff\u200d\ufe0e\ufe0f\u20e3"
_NOT_SPECIAL = "\u00a0"


def _build_special_characters() -> frozenset[str]:
    chars = set(string.punctuation + string.digits + string.whitespace + _EXTRA_SPECIAL)
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if unicodedata.category(ch) in _SPECIAL_CATEGORIES:
            chars.add(ch)
    for ch in _NOT_SPECIAL:
        chars.discard(ch)
    return frozenset(chars)


#: The special-character set (see the module docstring for the exact definition).
SPECIAL_CHARACTERS: frozenset[str] = _build_special_characters()

#: ``str.translate`` table deleting every special character (for counting them quickly).
_DELETE_SPECIAL = {ord(c): None for c in SPECIAL_CHARACTERS}

#: The 12 characters OBELICS maps to a space when standardising whitespace (§4.1).
WHITESPACE_CHARS = "\u2009\u200a\u202f\u2005\u3000\u2002\u2008\u2003\ufffc\u0084\u00a0 "
_WHITESPACE_RE = re.compile("[" + re.escape(WHITESPACE_CHARS.replace(" ", "")) + "]")

#: The punctuation tokens of the punctuation ratio.
PUNCTUATION = ",;:?!."

_WORD_SPLIT_RE = re.compile(r" |\n|\t")
_WORD_TOKEN_RE = re.compile(r"[\w']+")
#: Whitespace that str.split() splits on but the word split (space, newline, tab) does not.
_OTHER_WHITESPACE_RE = re.compile(r"[^\S \n\t]")


def is_special(ch: str) -> bool:
    """True if ``ch`` (one character) is a special character."""
    return ch in SPECIAL_CHARACTERS


def standardize_whitespace(text: str) -> str:
    """Map the 12 OBELICS whitespace-like characters (incl. NBSP, thin and ideographic spaces) to a space."""
    return _WHITESPACE_RE.sub(" ", text)  # a regex scan: far faster than str.translate on non-ASCII text


def _strip_special(token: str) -> str:
    special = SPECIAL_CHARACTERS
    start, end = 0, len(token)
    while start < end and token[start] in special:
        start += 1
    while end > start and token[end - 1] in special:
        end -= 1
    return token[start:end]


def get_words(text: str) -> list[str]:
    """The filter words: split on space/newline/tab, lowercase, strip special characters from both ends.

    ``"10:30am."`` -> ``["am"]``; ``"50%"`` and ``"—"`` vanish; ``"it’s"`` stays ``"it’s"``.
    """
    # Lowercasing the whole text equals lowercasing each token: the only context-dependent mapping (final sigma)
    # never looks across a space, newline or tab.  Without other whitespace, str.split() splits exactly there.
    text = text.lower()
    tokens = _WORD_SPLIT_RE.split(text) if _OTHER_WHITESPACE_RE.search(text) else text.split()
    special = SPECIAL_CHARACTERS
    words = [t if (t[0] not in special and t[-1] not in special) else _strip_special(t) for t in tokens if t]
    if len(words) != len(tokens) or "" in words:
        words = [w for w in words if w]
    return words


def get_words_reference(text: str) -> list[str]:
    """:func:`get_words`, written token by token (the definition; kept for tests)."""
    special = SPECIAL_CHARACTERS
    words = []
    for token in _WORD_SPLIT_RE.split(text):
        if not token:
            continue
        token = token.lower()
        if token[0] in special or token[-1] in special:
            token = _strip_special(token)
            if not token:
                continue
        words.append(token)
    return words


def char_repetition_ratio(text: str, n: int = 10) -> float:
    """Share of the character n-grams taken by the k most frequent ones, k = min(⌊√distinct⌋, #repeated)."""
    total = len(text) - n + 1
    if total <= 0 or n <= 0:
        return 0.0
    counts = Counter(text[i:i + n] for i in range(total))
    distinct = len(counts)
    repeated = sorted((c for c in counts.values() if c > 1), reverse=True)
    k = min(math.isqrt(distinct), len(repeated))
    if k <= 0:
        return 0.0
    return sum(repeated[:k]) / total


def word_repetition_ratio(words: list[str], n: int = 5) -> float:
    """Share of word n-grams that occur more than once (counting every occurrence)."""
    total = len(words) - n + 1
    if total <= 0 or n <= 0:
        return 0.0
    counts = Counter(" ".join(words[i:i + n]) for i in range(total))
    return sum(c for c in counts.values() if c > 1) / total


def special_character_ratio(text: str) -> float:
    """Share of the characters of ``text`` that are special characters; 0 for an empty text."""
    if not text:
        return 0.0
    return (len(text) - len(text.translate(_DELETE_SPECIAL))) / len(text)


def word_ratio(words: list[str], wordset: Collection[str]) -> float:
    """Share of ``words`` found in ``wordset`` (stop words, flagged words, common words, spam words)."""
    if not words:
        return 0.0
    return sum(map(wordset.__contains__, words)) / len(words)


def punctuation_ratio(text: str, min_nb_words: int = 0) -> float:
    """(# punctuation tokens) / (# tokens), tokens = ``[\\w']+`` runs or one of ``, ; : ? ! .``.

    Returns 0 without tokens; returns 1.0 (always passes) when ``min_nb_words > 0`` and there are fewer tokens.
    """
    n_punct = sum(text.count(c) for c in PUNCTUATION)
    n_tokens = len(_WORD_TOKEN_RE.findall(text)) + n_punct
    if min_nb_words > 0 and n_tokens < min_nb_words:
        return 1.0
    if n_tokens == 0:
        return 0.0
    return n_punct / n_tokens


def all_metrics(text: str, stopwords: Collection[str], flagged: Collection[str], common: Collection[str],
                char_n: int = 10, word_n: int = 5, punct_min_words: int = 0) -> dict[str, float]:
    """Every word/character metric of one text, keyed by the check name used in the filter config."""
    words = get_words(text)
    return {
        "number_words": float(len(words)),
        "char_repetition": char_repetition_ratio(text, char_n),
        "word_repetition": word_repetition_ratio(words, word_n),
        "special_characters": special_character_ratio(text),
        "stopwords": word_ratio(words, stopwords),
        "flagged_words": word_ratio(words, flagged),
        "punctuation": punctuation_ratio(text, punct_min_words),
        "common_words": word_ratio(words, common),
    }


# ---------------------------------------------------------------------------------------------------------------
# Batched implementations (exactly equal to the per-text functions above; used by the scoring stage)
# ---------------------------------------------------------------------------------------------------------------
#
# Character classes (special characters, ``[\w']`` word characters, the punctuation tokens) are looked up for a whole
# batch at once in tables indexed by code point; character n-grams are counted as UTF-32 byte strings cut by numpy;
# word n-grams as tuples.  Every batched function returns exactly what its per-text counterpart returns (tests).

#: Texts are processed in chunks of at most this many characters (bounds the memory of the numpy arrays).
CHUNK_CHARS = 1 << 21

_TABLES: dict[str, _np.ndarray] = {}


def _tables() -> dict[str, _np.ndarray]:
    """Lookup tables over every code point: special, word character (``[\\w']``), punctuation token."""
    if not _TABLES:
        size = sys.maxunicode + 1
        special = _np.zeros(size, dtype=_np.bool_)
        special[_np.fromiter(map(ord, SPECIAL_CHARACTERS), dtype=_np.int64)] = True
        every = "".join(map(chr, range(size)))  # lone surrogates included: the regex sees them as non-word
        word = _np.zeros(size, dtype=_np.bool_)
        word[[m.start() for m in re.finditer(r"[\w']", every)]] = True
        punct = _np.zeros(size, dtype=_np.bool_)
        punct[[ord(c) for c in PUNCTUATION]] = True
        _TABLES.update(special=special, word=word, punct=punct)
    return _TABLES


def _codepoints(text: str) -> _np.ndarray:
    return _np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _chunks(lengths: list[int]) -> list[tuple[int, int]]:
    """Consecutive index ranges whose total length stays under CHUNK_CHARS (a longer text is a chunk alone)."""
    out, start, size = [], 0, 0
    for i, n in enumerate(lengths):
        if size and size + n > CHUNK_CHARS:
            out.append((start, i))
            start, size = i, 0
        size += n
    if start < len(lengths):
        out.append((start, len(lengths)))
    return out


def _repetition_from_counts(counts: Counter, total: int) -> float:
    distinct = len(counts)
    if distinct == total:  # nothing repeated (the usual case for a paragraph)
        return 0.0
    repeated = sorted((c for c in counts.values() if c > 1), reverse=True)
    k = min(math.isqrt(distinct), len(repeated))
    return sum(repeated[:k]) / total if k > 0 else 0.0


def char_repetition_ratios(texts: list[str], n: int = 10) -> list[float]:
    """:func:`char_repetition_ratio` of each text, exactly equal but faster.

    The n-grams are counted as fixed-width UTF-32 byte strings taken from a strided numpy view of the encoded
    text (``surrogatepass`` keeps lone surrogates distinct), which is injective, so the counts are the same.
    """
    out = []
    dtype = _np.dtype(f"V{4 * n}") if n > 0 else None
    for text in texts:
        total = len(text) - n + 1
        if total <= 0 or n <= 0:
            out.append(0.0)
            continue
        buf = text.encode("utf-32-le", "surrogatepass")
        grams = _np.ndarray(shape=(total,), dtype=dtype, buffer=buf, strides=(4,)).tolist()
        if len(set(grams)) == total:  # no repeated n-gram (a set is much cheaper than a Counter)
            out.append(0.0)
        else:
            out.append(_repetition_from_counts(Counter(grams), total))
    return out


def char_class_counts(texts: list[str]) -> dict[str, list[int]]:
    """Per text: ``length``, ``special`` (special characters), ``punct`` (``, ; : ? ! .`` characters) and
    ``word_tokens`` (``[\\w']+`` runs), exactly as the per-text metrics count them."""
    tables = _tables()
    out: dict[str, list[int]] = {"length": [], "special": [], "punct": [], "word_tokens": []}
    lengths = [len(s) for s in texts]
    for a, b in _chunks(lengths):
        lens = _np.array(lengths[a:b], dtype=_np.int64)
        cp = _codepoints("".join(texts[a:b]))
        bounds = _np.zeros(len(lens) + 1, dtype=_np.int64)
        _np.cumsum(lens, out=bounds[1:])
        word = tables["word"][cp]
        run_start = word.copy()
        run_start[1:] &= ~word[:-1]
        run_start[bounds[:-1][lens > 0]] = word[bounds[:-1][lens > 0]]  # a text's first char starts a run
        for name, mask in (("special", tables["special"][cp]), ("punct", tables["punct"][cp]),
                           ("word_tokens", run_start)):
            cs = _np.zeros(len(cp) + 1, dtype=_np.int64)
            _np.cumsum(mask, out=cs[1:])
            out[name] += (cs[bounds[1:]] - cs[bounds[:-1]]).tolist()
        out["length"] += lengths[a:b]
    return out


def word_repetition_ratio_fast(words: list[str], n: int = 5) -> float:
    """:func:`word_repetition_ratio` for words without spaces (as :func:`get_words` returns them)."""
    total = len(words) - n + 1
    if total <= 0 or n <= 0:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(n)))) if n > 1 else words
    if len(set(grams)) == total:
        return 0.0
    return sum(c for c in Counter(grams).values() if c > 1) / total


def ratios_from_counts(length: int, special: int, punct: int, word_tokens: int, punct_min_words: int) -> tuple:
    """(special_character_ratio, punctuation_ratio) from :func:`char_class_counts` values."""
    special_ratio = special / length if length else 0.0
    n_tokens = word_tokens + punct
    if punct_min_words > 0 and n_tokens < punct_min_words:
        punct_ratio = 1.0
    elif n_tokens == 0:
        punct_ratio = 0.0
    else:
        punct_ratio = punct / n_tokens
    return special_ratio, punct_ratio


def all_metrics_batch(texts: list[str], stopwords: Collection[str], flagged: Collection[str],
                      common: Collection[str], char_n: int = 10, word_n: int = 5,
                      punct_min_words: int = 0) -> list[dict[str, float]]:
    """:func:`all_metrics` of each text (batched; exactly equal)."""
    cc = char_class_counts(texts)
    crep = char_repetition_ratios(texts, char_n)
    out = []
    for i, text in enumerate(texts):
        words = get_words(text)
        nw = len(words)
        sp, pu = ratios_from_counts(cc["length"][i], cc["special"][i], cc["punct"][i], cc["word_tokens"][i],
                                    punct_min_words)
        out.append({
            "number_words": float(nw),
            "char_repetition": crep[i],
            "word_repetition": word_repetition_ratio_fast(words, word_n),
            "special_characters": sp,
            "stopwords": sum(map(stopwords.__contains__, words)) / nw if nw else 0.0,
            "flagged_words": sum(map(flagged.__contains__, words)) / nw if nw else 0.0,
            "punctuation": pu,
            "common_words": sum(map(common.__contains__, words)) / nw if nw else 0.0,
        })
    return out
