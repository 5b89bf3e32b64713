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
Python's ``unicodedata`` (Python 3.11: Unicode 14.0), so the set is fixed for a given Python minor version.  The
scan of every code point costs ~0.3 CPU-s per process, so its result for one Unicode version ships as
:mod:`._codepoints` (ranges; ``python -m obelics_builder.quality.metrics`` regenerates it, a test compares it with
the scan); under another Unicode version the scan runs at import.
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


def build_codepoint_ranges() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The definitions, scanned over every code point (~0.3 CPU-s): the special characters and the ``[\\w']``
    word characters as flat (start, end) pairs of half-open code-point ranges.  :mod:`._codepoints` holds their
    output for one Unicode version (``python -m obelics_builder.quality.metrics`` writes it); another Python's
    Unicode data is scanned here instead, at import."""
    size = sys.maxunicode + 1
    special = _np.zeros(size, dtype=_np.bool_)
    special[[ord(c) for c in string.punctuation + string.digits + string.whitespace + _EXTRA_SPECIAL]] = True
    category = unicodedata.category
    special[[cp for cp in range(size) if category(chr(cp)) in _SPECIAL_CATEGORIES]] = True  # (surrogates: Cs)
    special[[ord(c) for c in _NOT_SPECIAL]] = False
    every = "".join(map(chr, range(size)))  # lone surrogates included: the regex sees them as non-word
    word = _np.zeros(size, dtype=_np.bool_)
    word[[m.start() for m in re.finditer(r"[\w']", every)]] = True
    return _ranges(special), _ranges(word)


def _ranges(mask: _np.ndarray) -> tuple[int, ...]:
    edges = _np.diff(_np.concatenate(([0], mask.astype(_np.int8), [0])))
    starts, ends = _np.nonzero(edges == 1)[0], _np.nonzero(edges == -1)[0]
    return tuple(int(x) for pair in zip(starts, ends) for x in pair)


def _codepoint_ranges() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The generated ranges when they were made from this Python's Unicode data, else a scan."""
    try:
        from . import _codepoints as generated
    except ImportError:  # pragma: no cover - the module ships with the package
        generated = None
    if generated is not None and generated.UNIDATA_VERSION == unicodedata.unidata_version \
            and generated.MAXUNICODE == sys.maxunicode:
        return generated.SPECIAL, generated.WORD
    return build_codepoint_ranges()


def _chars(ranges: tuple[int, ...]) -> frozenset[str]:
    return frozenset(chr(cp) for a, b in zip(ranges[::2], ranges[1::2]) for cp in range(a, b))


_SPECIAL_RANGES, _WORD_RANGES = _codepoint_ranges()

#: The special-character set (see the module docstring for the exact definition).
SPECIAL_CHARACTERS: frozenset[str] = _chars(_SPECIAL_RANGES)

#: ``str.translate`` table deleting every special character (for counting them quickly).
_DELETE_SPECIAL = dict.fromkeys(map(ord, SPECIAL_CHARACTERS))

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
# batch at once in tables indexed by code point; character n-grams are counted by sorting hashed keys, every
# equal key verified code point by code point; word n-grams as tuples.  Every batched function returns exactly
# what its per-text counterpart returns (tests).

#: Texts are processed in chunks of at most this many characters: it bounds the memory of the numpy arrays, and
#: arrays that stay in the CPU caches (1 MB of uint64 per chunk) make these passes ~1.7x faster than 2M-char chunks.
CHUNK_CHARS = 1 << 17
#: ... and of at most this many texts.
CHUNK_TEXTS = 1 << 20

_TABLES: dict[str, _np.ndarray] = {}


def _table(ranges: tuple[int, ...]) -> _np.ndarray:
    table = _np.zeros(sys.maxunicode + 1, dtype=_np.bool_)
    for a, b in zip(ranges[::2], ranges[1::2]):
        table[a:b] = True
    return table


def _tables() -> dict[str, _np.ndarray]:
    """Lookup tables over every code point: special, word character (``[\\w']``), punctuation token."""
    if not _TABLES:
        punct = _np.zeros(sys.maxunicode + 1, dtype=_np.bool_)
        punct[[ord(c) for c in PUNCTUATION]] = True
        _TABLES.update(special=_table(_SPECIAL_RANGES), word=_table(_WORD_RANGES), punct=punct)
    return _TABLES


def _codepoints(text: str) -> _np.ndarray:
    return _np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _chunks(lengths: list[int]) -> list[tuple[int, int]]:
    """Consecutive index ranges whose total length stays under CHUNK_CHARS (a longer text is a chunk alone)."""
    out, start, size = [], 0, 0
    for i, n in enumerate(lengths):
        if size and size + n > CHUNK_CHARS or i - start >= CHUNK_TEXTS:
            out.append((start, i))
            start, size = i, 0
        size += n
    if start < len(lengths):
        out.append((start, len(lengths)))
    return out


#: Multiplier of the polynomial n-gram hash (odd; arithmetic wraps modulo 2**64).
_GRAM_HASH_MULT = _np.uint64(0x9E3779B97F4A7C15)
#: Its inverse modulo 2**64.
_GRAM_HASH_INV = _np.uint64(pow(int(_GRAM_HASH_MULT), -1, 1 << 64))
#: (M**t, M**-t) for t < len, modulo 2**64, grown on demand (one tuple, replaced whole).
_POWERS: tuple = (_np.ones(1, dtype=_np.uint64), _np.ones(1, dtype=_np.uint64))


def _powers(size: int) -> tuple[_np.ndarray, _np.ndarray]:
    global _POWERS
    if len(_POWERS[0]) < size:
        size = max(size, 2 * len(_POWERS[0]), CHUNK_CHARS)
        out = []
        for base in (_GRAM_HASH_MULT, _GRAM_HASH_INV):
            p = _np.full(size, base, dtype=_np.uint64)
            p[0] = 1
            out.append(_np.cumprod(p, out=p))  # (wraps modulo 2**64)
        _POWERS = tuple(out)
    return _POWERS


#: Buckets of the pre-count that spares the sort the n-grams that occur once (a power of two).
_BUCKETS = 1 << 20
#: Bits of an n-gram key taken by the text's index within a chunk (a chunk holds at most CHUNK_TEXTS texts).
_TID_SHIFT = _np.uint64(40)


def char_repetition_ratios(texts: list[str], n: int = 10) -> list[float]:
    """:func:`char_repetition_ratio` of each text, exactly equal but batched.

    For a chunk of texts, every character n-gram gets a key: the text's index in the chunk (high 24 bits) and 40
    bits of a polynomial hash of its code points.  A count of the keys in 2**20 buckets sets apart the keys alone in
    their bucket (unique in the chunk: n-grams seen once, 83% of the 14.2M of the dev paragraphs); one sort of the
    other keys (with their positions) finds the texts with no two equal keys: their n-grams are all distinct (equal
    n-grams have equal keys), so their ratio is 0 with no further work.  The n-grams of the other texts, taken
    from the same sorted order (a sub-sequence stays sorted), are the candidate groups: runs of equal keys, and
    every group is verified code point by code point, so a hash collision is never counted as a repetition: a text
    where a group holds two different n-grams is counted exactly, n-gram by n-gram, by the definition.  Group sizes
    are the n-gram counts; the top-k sum per text is taken with vectorised ranks.
    """
    out = [0.0] * len(texts)
    if n <= 0:
        return out
    lengths = [len(t) for t in texts]
    for a, b in _chunks(lengths):
        for i, v in _char_repetition_chunk(texts[a:b], lengths[a:b], n).items():
            out[a + i] = v
    return out


def _char_repetition_chunk(texts: list[str], lengths: list[int], n: int) -> dict[int, float]:
    """Non-zero char-repetition ratios of a chunk of texts, by index in the chunk."""
    lens = _np.array(lengths, dtype=_np.int64)
    totals = _np.maximum(lens - n + 1, 0)
    n_grams = int(totals.sum())
    if n_grams < 2:
        return {}
    cp = _codepoints("".join(texts)).astype(_np.uint64)
    starts = _np.zeros(len(lens), dtype=_np.int64)
    _np.cumsum(lens[:-1], out=starts[1:])
    m = len(cp) - n + 1
    # polynomial hash sum_j cp[i+j] * M**j of cp[i:i+n] at every position i of the concatenation, from one prefix
    # sum of cp[t] * M**t (a window's difference, times M**-i: M is odd, so invertible modulo 2**64): four passes
    # over the chunk whatever n
    fwd, inv = _powers(len(cp))
    q = _np.zeros(len(cp) + 1, dtype=_np.uint64)
    _np.cumsum(cp * fwd[:len(cp)], out=q[1:])
    h = q[n:] - q[:m]
    h *= inv[:m]
    h ^= h >> _np.uint64(30)  # splitmix64's finaliser: every input bit reaches the top 40 bits kept below
    h *= _np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> _np.uint64(27)
    h *= _np.uint64(0x94D049BB133111EB)
    h ^= h >> _np.uint64(31)
    # the n-grams that lie inside one text: position and text index
    tid = _np.repeat(_np.arange(len(lens), dtype=_np.int64), totals)
    first = _np.zeros(len(lens), dtype=_np.int64)
    _np.cumsum(totals[:-1], out=first[1:])
    pos = _np.arange(n_grams, dtype=_np.int64) + (starts - first)[tid]
    hk = h[pos] >> _np.uint64(24)
    keys = (tid.astype(_np.uint64) << _TID_SHIFT) | hk
    # a key alone in its bucket (hash bits mixed with the text index) is unique in the chunk: a distinct n-gram
    # seen once, which cannot repeat; only the others (repeats and bucket collisions) are sorted
    bucket = ((hk ^ (tid.astype(_np.uint64) * _GRAM_HASH_MULT)) & _np.uint64(_BUCKETS - 1)).astype(_np.intp)
    cand = _np.bincount(bucket, minlength=_BUCKETS)[bucket] > 1
    ck = keys[cand]
    order = _np.argsort(ck)  # one sort: the texts with repeats are then a sub-sequence, still in key order
    sorted_keys = ck[order]
    dup = sorted_keys[1:] == sorted_keys[:-1]
    if not dup.any():
        return {}
    has_dup = _np.zeros(len(lens), dtype=_np.bool_)
    has_dup[(sorted_keys[1:][dup] >> _TID_SHIFT).astype(_np.int64)] = True
    sel = has_dup[(sorted_keys >> _TID_SHIFT).astype(_np.int64)]
    sk, sp = sorted_keys[sel], pos[cand][order[sel]]
    new = _np.ones(len(sk), dtype=_np.bool_)
    new[1:] = sk[1:] != sk[:-1]
    same = _np.nonzero(~new)[0]  # each element equal in key to the one before it: verify the n-grams
    here, before = sp[same], sp[same - 1]
    collided = _np.zeros(len(same), dtype=_np.bool_)
    for j in range(n):
        collided |= cp[here + j] != cp[before + j]
    bad = set((sk[same[collided]] >> _TID_SHIFT).astype(_np.int64).tolist())
    gstart = _np.nonzero(new)[0]
    sizes = _np.diff(_np.append(gstart, len(sk)))
    gtid = (sk[gstart] >> _TID_SHIFT).astype(_np.int64)
    distinct = _np.bincount(gtid, minlength=len(lens)) + _np.bincount(tid[~cand], minlength=len(lens))
    rep = sizes > 1
    r_tid, r_size = gtid[rep], sizes[rep]
    n_rep = _np.bincount(r_tid, minlength=len(lens))
    root = _np.floor(_np.sqrt(distinct.astype(_np.float64))).astype(_np.int64)
    root += (root + 1) * (root + 1) <= distinct
    root -= root * root > distinct
    k = _np.minimum(root, n_rep)
    o2 = _np.lexsort((-r_size, r_tid))  # by text, largest counts first
    r_tid, r_size = r_tid[o2], r_size[o2]
    block = _np.zeros(len(lens), dtype=_np.int64)
    _np.cumsum(n_rep[:-1], out=block[1:])
    take = (_np.arange(len(r_tid)) - block[r_tid]) < k[r_tid]
    top = _np.bincount(r_tid[take], weights=r_size[take].astype(_np.float64), minlength=len(lens))
    out = {}
    for i in _np.nonzero(has_dup)[0].tolist():
        if i in bad:
            out[i] = char_repetition_ratio(texts[i], n)
        elif k[i] > 0:
            out[i] = float(top[i]) / float(totals[i])
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


#: From this many word n-grams on, :func:`word_repetition_ratio_fast` counts them as packed integer keys (numpy)
#: instead of tuples: about 2x faster on documents (~800 words), slower on short paragraphs.
_PACKED_MIN_GRAMS = 200


def word_repetition_ratio_fast(words: list[str], n: int = 5) -> float:
    """:func:`word_repetition_ratio` for words without spaces (as :func:`get_words` returns them).

    Long texts: each word gets the index of its first occurrence (``b`` bits for the text's distinct words), an
    n-gram the ``n`` indices packed in one 64-bit integer (when ``n * b <= 63``; else tuples, as for short texts):
    equal n-grams are exactly equal keys, so the counts, and the ratio, are the same."""
    total = len(words) - n + 1
    if total <= 0 or n <= 0:
        return 0.0
    if total >= _PACKED_MIN_GRAMS and n > 1:
        index = {w: i for i, w in enumerate(dict.fromkeys(words))}
        bits = max(1, (len(index) - 1).bit_length())
        if bits * n <= 63:
            return _packed_repetition(_np.fromiter(map(index.__getitem__, words), dtype=_np.uint64,
                                                   count=len(words)), n, bits, total)
    grams = list(zip(*(words[i:] for i in range(n)))) if n > 1 else words
    if len(set(grams)) == total:
        return 0.0
    return sum(c for c in Counter(grams).values() if c > 1) / total


def _packed_repetition(codes: _np.ndarray, n: int, bits: int, total: int) -> float:
    """The word repetition ratio from word indices (``bits`` bits each): n-grams as packed keys, sorted, counted."""
    key = codes[:total].copy()
    shift = _np.uint64(bits)
    for i in range(1, n):
        key <<= shift
        key |= codes[i:i + total]
    key.sort()
    new = _np.empty(total, dtype=_np.bool_)
    new[0] = True
    _np.not_equal(key[1:], key[:-1], out=new[1:])
    if new.all():
        return 0.0
    sizes = _np.diff(_np.append(_np.flatnonzero(new), total))
    return int(sizes[sizes > 1].sum()) / total


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


def write_generated(path: str | None = None) -> str:
    """Write :mod:`._codepoints` (the scanned ranges of this Python's Unicode data); returns its path."""
    import os

    special, word = build_codepoint_ranges()
    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "_codepoints.py")

    def rows(values: tuple[int, ...]) -> str:
        return "".join("    " + ", ".join(f"0x{v:X}" for v in values[i:i + 12]) + ",\n" for i in range(0, len(values), 12))

    with open(path, "w", encoding="utf-8") as f:
        f.write(f'''"""Generated by ``python -m obelics_builder.quality.metrics`` (do not edit): the special characters and the
``[\\\\w']`` word characters of :mod:`obelics_builder.quality.metrics` as flat (start, end) pairs of half-open
code-point ranges, scanned from Unicode {unicodedata.unidata_version}.  Another Unicode version is scanned at import instead.
"""
UNIDATA_VERSION = "{unicodedata.unidata_version}"
MAXUNICODE = {sys.maxunicode}
SPECIAL = (
{rows(special)})
WORD = (
{rows(word)})
''')
    return path


if __name__ == "__main__":
    print(write_generated())
