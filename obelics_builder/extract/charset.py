"""Bytes -> str for HTML payloads: declared charsets first, then detection, never an exception.

Order (:func:`decode_html`): byte-order mark; HTTP ``Content-Type`` charset; ``WARC-Identified-Content-Charset``;
``<meta charset>`` / ``<meta http-equiv="content-type" content="...charset=...">`` in the first 4 KB; then
detection: pure ASCII and strict UTF-8 first (the fast path), then :func:`detect_charset`; else UTF-8 with
replacement characters.

Detection reads the page's words that hold non-ASCII bytes, outside tags, scripts and styles (:func:`text_sample`),
in each candidate charset (Western, Central European, Cyrillic, Greek, Turkish, Baltic, Hebrew, Arabic, Thai code
pages, KOI8-R, GB18030, Shift-JIS, EUC-JP, Big5, EUC-KR) and keeps the reading that looks most like text
(:func:`implausibility`: replacement characters, C1 controls, symbols inside words, two scripts in a word, Latin
letters no language uses together, inverted Cyrillic case, Han outside the candidate's common set...), plus a small
prior per charset for near-ties; charset_normalizer's guess is scored too when every reading is poor.

A declared charset is used only if it decodes the body strictly.  Two corrections browsers also make in practice:

* labels are mapped as browsers map them (``latin-1``/``iso-8859-1``/``ascii`` -> ``cp1252``, ``shift_jis`` ->
  ``cp932``, ``gb2312``/``gbk`` -> ``gb18030``, ``euc-kr`` -> ``cp949``, ``tis-620`` -> ``cp874``...); a ``<meta>``
  declaring UTF-16 means UTF-8 (the page could not have been read as ASCII otherwise); unknown labels are ignored;
* a body declared in a single-byte legacy charset that is valid UTF-8 *and* contains multi-byte sequences is
  decoded as UTF-8 (mis-declared UTF-8 pages are common; real Latin-1 text is practically never valid UTF-8).

A declared charset that fails strict decoding falls through to the next source and finally to detection.  A
declared single-byte charset that decodes strictly is still checked: when its reading is clearly implausible (KOI8-R
declared windows-1251, GBK declared ISO-8859-1) and the best detected reading costs at most a quarter of its
penalty, the detected charset is used; correct declarations read as plausible text and are honoured.
"""
from __future__ import annotations

import codecs
import math
import re
import unicodedata

#: WHATWG-style label corrections (after lower-casing); values must be Python codec names.
_ALIASES = {
    "latin1": "cp1252", "latin-1": "cp1252", "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "iso_8859-1": "cp1252",
    "l1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252", "ansi_x3.4-1968": "cp1252", "windows-1252": "cp1252",
    "x-cp1252": "cp1252", "cp819": "cp1252", "ibm819": "cp1252",
    "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874", "windows-874": "cp874",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "chinese": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
    "windows-31j": "cp932", "csshiftjis": "cp932", "euc-kr": "cp949", "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso8859-8", "x-mac-roman": "mac-roman", "macintosh": "mac-roman", "x-mac-cyrillic": "mac-cyrillic",
    "x-user-defined": None, "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8",
    "big5": "big5hkscs", "x-euc-jp": "euc_jp", "koi8_r": "koi8-r",
}
_SINGLE_BYTE = {"cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874",
                "iso8859-2", "iso8859-15", "koi8-r", "koi8-u", "mac-roman", "latin_1", "iso8859-8"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([^\s\"';,]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:\-]+)", re.I)
_NON_ASCII = re.compile(rb"[\x80-\xff]")
#: bytes handed to the statistical detector (enough for a reliable guess, bounded cost)
DETECT_BYTES = 256 * 1024


def normalize_charset(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None for an unknown / useless label."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if not label:
        return None
    if label in _ALIASES:
        return _ALIASES[label]
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name in ("latin-1", "iso8859-1", "ascii"):  # codecs' own names for the same labels
        return "cp1252"
    if name.startswith("utf-7"):  # never honoured by browsers (XSS vector)
        return None
    return name


def charset_from_content_type(value: str | None) -> str | None:
    m = _CT_CHARSET.search(value or "")
    return m.group(1) if m else None


def charset_from_meta(body: bytes) -> str | None:
    """The charset of the first ``<meta ... charset=...>`` in the first 4 KB (both meta forms)."""
    m = _META_CHARSET.search(body[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _is_utf8_with_multibyte(body: bytes) -> bool:
    if not _NON_ASCII.search(body):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- detection: candidates scored by how plausible their text is --------------------------------------------------

#: the candidates tried when nothing usable is declared, in order of preference (ties go to the first);
#: ISO-8859-15 differs from cp1252 only where cp1252 gives symbols (¤ ¦ ¨ ´ ¸ ¼ ½ ¾) or C1 controls
CANDIDATES = ("cp1252", "gb18030", "cp932", "cp1251", "iso8859-15", "koi8-r", "euc_jp", "big5hkscs", "cp949",
              "koi8-u", "cp1250", "iso8859-2", "cp1253", "cp1254", "cp1257", "cp1255", "cp1256", "cp874")
#: penalty points added to a candidate's reading: how much rarer than cp1252 it is on the web (breaks near-ties,
#: e.g. one Icelandic "ý" that windows-1254 reads as a Turkish "ı")
PRIOR = {"cp1252": 0.0, "gb18030": 0.0, "cp932": 0.0, "cp1251": 0.0, "iso8859-15": 0.25, "cp1250": 1.0,
         "koi8-u": 0.75, "iso8859-2": 1.25,
         "koi8-r": 0.5, "euc_jp": 0.5, "big5hkscs": 0.5, "cp949": 0.5, "cp1253": 1.5, "cp1254": 1.5, "cp1257": 2.0,
         "cp1255": 2.0, "cp1256": 2.0, "cp874": 2.0}
_MULTI_BYTE = {"gb18030", "cp932", "euc_jp", "big5hkscs", "cp949", "shift_jis", "euc-kr", "big5", "gbk", "gb2312"}
#: the non-ASCII letters of Latin-script languages (lower case): a text decoded with the right code page uses the
#: letters of one (or a few) of them; a wrong Latin code page mixes letters no language uses together
_ALPHABETS = tuple(frozenset(a) for a in (
    "àâæçéèêëîïôœùûüÿ",  # French
    "äöüßéàèáó",  # German (with common loans)
    "áéíñóúüàèïòç",  # Spanish, Catalan
    "áâãàçéêíóôõúü",  # Portuguese
    "àèéìíîòóùú",  # Italian
    "éëïöüèáóúä",  # Dutch
    "æøåéäöü",  # Danish, Norwegian, Swedish, Finnish
    "áéíóúýþæöð",  # Icelandic
    "ąćęłńóśźż",  # Polish
    "áčďéěíňóřšťúůýž",  # Czech
    "áäčďéíĺľňóôŕšťúýž",  # Slovak
    "áéíóöőúüű",  # Hungarian
    "ăâîșțşţ",  # Romanian
    "čćđšžé",  # Croatian, Slovenian, Bosnian
    "çğıöşüâîû",  # Turkish
    "ąčęėįšųūžāēģīķļņõäöü",  # Baltic
))
#: non-ASCII punctuation and symbols normal in text (anything else costs a little, more inside a word)
_ALPHABET_PAIRS = tuple(a | b for i, a in enumerate(_ALPHABETS) for b in _ALPHABETS[i:])
_COMMON_SYMBOLS = frozenset("«»„“”‚‘’‹›–—…•·°§€£¥©®™¡¿№ªºµ±×÷²³¹\u00a0\u00ad\u2009\u200b\u202f¢†‰′″←→↑↓"
                            "、。，．・：；？！「」『』（）〈〉《》【】〔〕｛｝［］～‐―〜＿／＼｜＆＃＊＠＋＝＜＞％＄")
_BAD_CHARS = re.compile("[\ufffd\x80-\x9f]")
#: non-letters normal between two letters of a word (apostrophes, Catalan "l·l", soft hyphen, CJK punctuation)
_IN_WORD = frozenset("’‘·–—‐‑…×\u00ad\u200b\u200c\u200d・ー〜、。，．：；？！「」『』（）【】《》")
#: -log2 of the letter frequencies of Russian text (per cent: о 10.97, е 8.45, а 8.01 ... ъ 0.04); letters of
#: other Cyrillic alphabets (і ї є ґ ў ј љ њ ...) count as 1 %
_CYR_FREQ = {"о": 10.97, "е": 8.45, "а": 8.01, "и": 7.35, "н": 6.70, "т": 6.26, "с": 5.47, "р": 4.73, "в": 4.54,
             "л": 4.40, "к": 3.49, "м": 3.21, "д": 2.98, "п": 2.81, "у": 2.62, "я": 2.01, "ы": 1.90, "ь": 1.74,
             "г": 1.70, "з": 1.65, "б": 1.59, "ч": 1.44, "й": 1.21, "х": 0.97, "ж": 0.94, "ш": 0.73, "ю": 0.64,
             "ц": 0.48, "щ": 0.36, "э": 0.32, "ф": 0.26, "ъ": 0.04, "ё": 0.04}
_CYR_BITS = {ch: -math.log2(f / 100) for ch, f in _CYR_FREQ.items()}
_CYR_RARE = -math.log2(0.01)
#: mean bits per Cyrillic letter above which a reading pays the excess per letter (Russian text: ~4.5,
#: Ukrainian and Bulgarian ~4.8; Hebrew or Greek read as windows-1251 and KOI8-R <-> windows-1251: 5.1-5.9)
CYR_BITS_MAX = 5.0
_GREEK = re.compile("[\u0386-\u03ce]")
_TONOS = re.compile("[άέήίόύώΐΰΆΈΉΊΌΎΏ]")
_RUN = re.compile(r"\S*[^\x00-\x7f]\S*")
_STRIP = re.compile(rb"<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->|<[^>]*>", re.I | re.S)
#: bytes of text (markup stripped) the scorer reads at most
SAMPLE_BYTES = 8 * 1024
#: bytes of the body the sample is taken from at most
SCAN_BYTES = 1024 * 1024
_HIGH_WORD = re.compile(rb"[^\s<>]*[\x80-\xff][^\s<>]*")
_SCRIPT_RANGES = ((0x0041, 0x024F, "Latin"), (0x0370, 0x03FF, "Greek"), (0x0400, 0x052F, "Cyrillic"),
                  (0x0590, 0x05FF, "Hebrew"), (0x0600, 0x06FF, "Arabic"), (0x0E00, 0x0E7F, "Thai"),
                  (0x1100, 0x11FF, "Hangul"), (0x1E00, 0x1EFF, "Latin"), (0x3040, 0x30FF, "Kana"),
                  (0x3130, 0x318F, "Hangul"), (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"),
                  (0xAC00, 0xD7AF, "Hangul"), (0xF900, 0xFAFF, "Han"), (0xFF21, 0xFF5A, "Latin"),
                  (0xFF66, 0xFF9F, "HalfKana"))
_CJK = {"Han", "Kana", "Hangul", "HalfKana"}
_SCRIPT_CACHE: dict = {}
_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_NON_ASCII_CHAR = re.compile(r"[^\x00-\x7f]")


def _script(ch: str) -> str:
    name = _SCRIPT_CACHE.get(ch)
    if name is None:
        o = ord(ch)
        name = "Latin" if o < 0x80 else next((n for lo, hi, n in _SCRIPT_RANGES if lo <= o <= hi), "Other")
        if len(_SCRIPT_CACHE) < 65536:
            _SCRIPT_CACHE[ch] = name
    return name


def text_sample(body: bytes, limit: int = SAMPLE_BYTES) -> bytes:
    """The words of the page's text that hold non-ASCII bytes, space-separated, at most ``limit`` bytes.

    Scripts, styles, comments and tags are removed first (from the first :data:`SCAN_BYTES` of the body); when no
    non-ASCII byte is left outside them, the raw body's words are used.  Markup delimiters and white space are
    ASCII and never a trail byte of the CJK encodings, so no character is cut (except at the sample's end).
    """
    return _sample(body, limit)[0]


def _sample(body: bytes, limit: int = SAMPLE_BYTES) -> tuple[bytes, float]:
    """:func:`text_sample` and the share of the text's words that hold non-ASCII bytes (in the part read)."""
    head = body[:SCAN_BYTES]
    out: list = []
    n = pos = n_words = 0
    for m in _STRIP.finditer(head):  # lazily: stop as soon as the sample is full
        if m.start() > pos:
            chunk = head[pos:m.start()]
            high = _HIGH_WORD.findall(chunk)
            if high:
                out += high
                n += sum(len(w) + 1 for w in high)
                n_words += len(chunk.split())
                if n >= limit:
                    return b" ".join(out)[:limit], len(out) / n_words
            elif not chunk.isspace():
                n_words += len(chunk.split())
        pos = m.end()
    tail = head[pos:]
    out += _HIGH_WORD.findall(tail)
    n_words += len(tail.split())
    if not out:
        out = _HIGH_WORD.findall(head)
        n_words = len(head.split())
    return b" ".join(out)[:limit], len(out) / max(1, n_words)


def implausibility(text: str, encoding: str = "", bound: float = math.inf) -> float:
    """Penalty points of a decoded text: the larger, the less it looks like text in any language.

    Costs: replacement characters and C1 controls 4, private-use characters 3, unusual symbols 0.5 (2 inside a
    word), letters of two alphabetic scripts in one word 2 per non-ASCII letter, Latin words made mostly of
    non-ASCII letters (other scripts read as Latin) 1.5 per letter, Latin letters no pair of languages uses together
    1 (and 0.5 for those no single language uses), a Cyrillic capital after a small letter 1 and inverted
    Cyrillic case (KOI8-R read as windows-1251 and back: more capitals than small letters, and capitals after
    small ones) 0.5 per capital, half-width katakana 1, Han characters outside the common set of ``encoding`` 1 (GB2312, Big5
    level 1; JIS level 1 at 0.5), Hanja in a Korean reading 1 and Hangul outside KS X 1001 1, Japanese without
    kana 0.5 per Han, Greek without accents 0.2 per letter, Cyrillic without small letters 0.1 per letter and far
    from Russian letter frequencies the excess bits per letter, final forms (ς, ך ם ן ף ץ) inside a word 2.
    Each distinct white-space separated word is scored once; scoring stops (``inf``) once the penalty reaches
    ``bound`` (every cost is positive).
    """
    pen = 0.0
    latin: dict = {}
    cyr: dict = {}
    cyr_lower = cyr_upper = cyr_turns = han = kana = short_han = 0
    rare_check = _rare_han_check(encoding)
    runs: dict = {}
    for run in _RUN.findall(text):
        runs[run] = runs.get(run, 0) + 1
    for run, k in runs.items():
        r_pen, r_latin, r_cyr, r_up, r_turns, r_han, r_kana = _run_stats(run, rare_check, encoding)
        pen += k * r_pen
        if pen >= bound:
            return math.inf
        cyr_turns += k * r_turns
        cyr_upper += k * r_up
        han += k * r_han
        kana += k * r_kana
        if r_han <= 4:
            short_han += k * r_han
        for ch, n in r_latin.items():
            latin[ch] = latin.get(ch, 0) + k * n
        for ch, n in r_cyr.items():
            cyr[ch] = cyr.get(ch, 0) + k * n
    if cyr:
        n_cyr = sum(cyr.values())
        cyr_lower = n_cyr - cyr_upper
        if n_cyr >= 20:  # letters of another alphabet read as Cyrillic: far from Russian letter frequencies
            bits = sum(n * _CYR_BITS.get(ch, _CYR_RARE) for ch, n in cyr.items()) / n_cyr
            pen += max(0.0, bits - CYR_BITS_MAX) * n_cyr
            if cyr_lower < 0.05 * n_cyr:
                pen += 0.1 * n_cyr  # no small letters: Hebrew or Greek read as KOI8-R (text in capitals is rare)
    if encoding in ("cp1253", "iso8859-7"):
        n_greek = len(_GREEK.findall(text))
        if n_greek >= 20 and len(_TONOS.findall(text)) < 0.03 * n_greek:
            pen += 0.2 * n_greek  # Greek without accents (about 1 letter in 10): Cyrillic or Hebrew read as Greek
    if latin:
        total = sum(latin.values())
        single = max(sum(n for ch, n in latin.items() if ch in a) for a in _ALPHABETS)
        pair = max(sum(n for ch, n in latin.items() if ch in a) for a in _ALPHABET_PAIRS)
        pen += (total - pair) + 0.5 * (total - single)
    if cyr_upper > cyr_lower and cyr_upper + cyr_lower >= 20 and cyr_turns >= 3:
        pen += 0.5 * cyr_upper  # inverted case; text in capitals has no "пРИВЕТ" words
    if han:
        if encoding in ("gb18030", "big5hkscs") and han >= 20 and short_han > 0.6 * han:
            pen += 0.5 * short_han  # Han in words of 1-4 characters: Korean (EUC-KR) read as Chinese
        if encoding == "cp949":
            pen += han  # Hanja: rare in modern Korean text, common in Chinese read as Korean
        if encoding in ("cp932", "euc_jp") and han >= 20 and kana < 0.05 * han:
            pen += 0.5 * han  # Japanese without kana
    return pen


def _run_stats(run: str, rare_check, encoding: str) -> tuple:
    """(penalty, non-ASCII Latin letters, Cyrillic letters (lower-cased), Cyrillic capitals, Cyrillic capitals
    after a small letter, Han, kana) of one word."""
    pen = 0.0
    latin: dict = {}
    cyr: dict = {}
    scripts = set()
    n_alpha_ext = 0
    n_nonascii = n_nonascii_latin = cyr_upper = cyr_turns = han = kana = 0
    n_letters = len(_ASCII_LETTERS.findall(run))
    if n_letters:
        scripts.add("Latin")
    last = len(run) - 1
    for m in _NON_ASCII_CHAR.finditer(run):
        i = m.start()
        ch = run[i]
        o = ord(ch)
        n_nonascii += 1
        if o == 0xFFFD or 0x80 <= o <= 0x9F:
            pen += 4
            continue
        if 0xE000 <= o <= 0xF8FF:
            pen += 3
            continue
        if ch.isalpha():
            sc = _script(ch)
            n_letters += 1
            if sc == "Latin":
                if ch not in "ªº":
                    n_nonascii_latin += 1
                    low = ch.lower()
                    latin[low] = latin.get(low, 0) + 1
            elif sc == "Cyrillic":
                low = ch.lower()
                cyr[low] = cyr.get(low, 0) + 1
                if ch.islower():
                    scripts.add(sc)
                    continue
                cyr_upper += 1
                if i and run[i - 1].islower() and _script(run[i - 1]) == "Cyrillic":  # "пРИВЕТ"
                    pen += 1
                    cyr_turns += 1
            elif sc == "Han":
                han += 1
                if rare_check is not None and rare_check(ch):
                    pen += 0.5 if encoding in ("cp932", "euc_jp") else 1
            elif sc == "Kana":
                kana += 1
                if encoding in ("gb18030", "big5hkscs"):
                    pen += 1  # kana in a Chinese reading (Thai, Korean read as GB2312)
            elif sc == "Hangul":
                if rare_check is not None and rare_check(ch):
                    pen += 1
            elif sc == "HalfKana":
                pen += 1
            elif ch in "ςךםןףץ" and i < last and run[i + 1].isalpha():
                pen += 2  # a final letter inside a word (Hebrew read as Greek, KOI8-R capitals read as Hebrew)
            if ch not in "ªº":
                scripts.add(sc)
                if sc not in _CJK:
                    n_alpha_ext += 1
            continue
        if ch.isspace():
            continue
        if unicodedata.category(ch).startswith("M"):  # combining marks (Thai vowels, cp1258) follow a consonant
            prev = run[i - 1] if i else " "
            if 0x0E31 <= o <= 0x0E4E:  # Thai vowel and tone marks: after a Thai consonant or another mark
                ok = "\u0e01" <= prev <= "\u0e2e" or "\u0e31" <= prev <= "\u0e4e"
            else:
                ok = prev.isalpha() or unicodedata.category(prev).startswith("M")
            if not ok:
                pen += 2
            continue
        inside = 0 < i < last and run[i - 1].isalpha() and run[i + 1].isalpha() and ch not in _IN_WORD
        # (non-ASCII digits between letters too: Thai digits in KOI8-R capitals read as windows-874)
        if inside:  # "Za¿ó³æ": a symbol between two letters
            pen += 2
        elif not (ch.isdigit() or ch in _COMMON_SYMBOLS or 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF60):
            pen += 0 if ch in "¼½¾" else 0.5
    if scripts & _CJK:
        pen += 2 * n_alpha_ext  # Greek, Cyrillic, accented Latin letters inside a CJK word
    elif len(scripts - {"Other"}) > 1:
        pen += 2 * max(1, n_nonascii)
    if n_nonascii_latin >= 3 and n_nonascii_latin > 0.75 * n_letters:
        pen += 1.5 * n_nonascii_latin
    return pen, latin, cyr, cyr_upper, cyr_turns, han, kana


#: charset -> (codec of its common set, first and last byte pair of the common block, or None: the whole codec)
_COMMON_HAN = {
    "gb18030": ("gb2312", None),
    "big5hkscs": ("big5", (b"\xa4\x40", b"\xc6\x7e")),
    "cp949": ("euc-kr", None),  # Hangul outside KS X 1001's 2,350 syllables
    "cp932": ("cp932", (b"\x88\x9f", b"\x98\x72")),
    "euc_jp": ("cp932", (b"\x88\x9f", b"\x98\x72")),
}


def _rare_han_check(encoding: str):
    """A predicate "this Han character is outside the common set of ``encoding``", or None."""
    common = _COMMON_HAN.get(encoding)
    if common is None:
        return None
    codec, block = common

    def rare(ch: str) -> bool:
        try:
            b = ch.encode(codec)
        except UnicodeEncodeError:
            return True
        return block is not None and not (block[0] <= b <= block[1])
    return rare


def _score(sample: bytes, encoding: str, bound: float = float("inf")) -> float:
    """:func:`implausibility` of ``sample`` read in ``encoding``; ``inf`` when it surely costs ``bound`` or more
    (replacement characters and C1 controls alone)."""
    try:
        text = sample.decode(encoding, errors="replace")
    except LookupError:
        return float("inf")
    if 4 * len(_BAD_CHARS.findall(text)) >= bound:
        return float("inf")
    return implausibility(text, encoding, bound)


def detect_charset(body: bytes, extra: tuple[str, ...] = (), sample: bytes | None = None,
                   density: float = 1.0) -> tuple[str | None, float]:
    """The most plausible candidate for a body that is neither ASCII nor UTF-8, with its penalty.

    Every candidate (:data:`CANDIDATES`, then ``extra``) decodes the page's text (``sample``, default
    :func:`text_sample`) and is
    scored by :func:`implausibility`; the lowest penalty wins, ties go to the earlier candidate.  When even the
    best costs more than 0.3 points per non-ASCII byte, charset_normalizer's guess is scored as well.
    """
    if sample is None:
        sample, density = _sample(body)
    if not sample:
        return None, 0.0
    # a text of ASCII words with a few non-ASCII ones (English with curly quotes, x and ÷, a French name) is in
    # a Western code page: every other reading pays 2 more
    bump = 2.0 if density < 0.05 else 0.0
    best, best_pen = None, float("inf")
    order = CANDIDATES
    if len(_NON_ASCII.findall(sample)) > 0.6 * len(sample):  # CJK-dense: the multi-byte readings first
        order = tuple(sorted(CANDIDATES, key=lambda e: e not in _MULTI_BYTE))
    for enc in (*order, *extra):
        prior = PRIOR.get(enc, 2.0) + (0.0 if enc in ("cp1252", "iso8859-15") else bump)
        if best_pen <= prior:  # cannot win
            continue
        pen = _score(sample, enc, best_pen - prior) + prior
        if pen < best_pen:
            best, best_pen = enc, pen
    n_high = len(_NON_ASCII.findall(sample))
    if best_pen > 0.3 * max(1, n_high):
        guess = _charset_normalizer(sample)
        if guess and guess != best:
            pen = _score(sample, guess) + PRIOR.get(guess, 2.0) + bump
            if pen < best_pen:
                best, best_pen = guess, pen
    return best, best_pen


def _charset_normalizer(sample: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - declared dependency
        return None
    try:
        best = from_bytes(sample).best()
    except Exception:
        return None
    return normalize_charset(best.encoding) if best is not None else None


def _declared_is_implausible(body: bytes, enc: str) -> str | None:
    """For a single-byte declaration that decodes strictly: a better charset when the evidence is strong, else None.

    Browsers honour declarations, so the bar is high: the declared reading must cost at least 6 points and 0.25
    per non-ASCII byte of the text, and the best detected reading at most a quarter of that.
    """
    sample, density = _sample(body)
    if not sample:
        return None
    declared = _score(sample, enc)
    n_high = len(_NON_ASCII.findall(sample))
    if declared < max(6.0, 0.25 * n_high):
        return None
    best, pen = detect_charset(body, sample=sample, density=density)
    if best and best != enc and pen <= 0.25 * declared:
        return best
    return None


def decode_html(body: bytes, http_headers: dict | None = None, warc_charset: str | None = None) -> tuple[str, str]:
    """Decode an HTML payload; returns ``(text, encoding_used)``.  Never raises for any bytes."""
    text, enc, _ = decode_html_lossless(body, http_headers, warc_charset)
    return text, enc


def decode_html_lossless(body: bytes, http_headers: dict | None = None,
                         warc_charset: str | None = None) -> tuple[str, str, bool]:
    """:func:`decode_html`, and whether ``text.encode("utf-8") == body`` (a strict UTF-8 or ASCII decoding of the
    whole payload): then a parser can read ``body`` itself instead of the text encoded again."""
    if isinstance(body, str):
        return body, "str", False
    body = bytes(body)
    for bom, enc in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(enc, errors="replace"), enc, False

    declared = []
    headers = http_headers or {}
    ctype = headers.get("content-type") or headers.get("Content-Type")
    for label, from_meta in ((charset_from_content_type(ctype), False), (warc_charset, False),
                             (charset_from_meta(body), True)):
        enc = normalize_charset(label)
        if enc and from_meta and enc.startswith("utf-16"):
            enc = "utf-8"
        if enc and enc not in declared:
            declared.append(enc)

    for enc in declared:
        if enc in _SINGLE_BYTE and _is_utf8_with_multibyte(body):
            return body.decode("utf-8"), "utf-8", True
        text = _strict(body, enc)
        if text is not None:
            if enc in _SINGLE_BYTE and _NON_ASCII.search(body):
                better = _declared_is_implausible(body, enc)
                if better:
                    fixed = _decode_guess(body, better)
                    if fixed is not None:
                        return fixed, better, False
            return text, enc, enc == "utf-8"

    if not _NON_ASCII.search(body):
        return body.decode("ascii"), "ascii", True
    text = _strict(body, "utf-8")
    if text is not None:
        return text, "utf-8", True
    enc, _ = detect_charset(body)
    if enc:
        text = _decode_guess(body, enc)
        if text is not None:
            return text, enc, False
    return body.decode("utf-8", errors="replace"), "utf-8", False


def _decode_guess(body: bytes, enc: str) -> str | None:
    """``body`` in a detected charset: strictly, or with replacements when the damage is small (a guess that fails
    later in the body); None otherwise."""
    text = _strict(body, enc)
    if text is not None:
        return text
    try:
        text = body.decode(enc, errors="replace")
    except LookupError:
        return None
    return text if text.count("\ufffd") <= max(2, len(text) // 1000) else None
