"""Perplexity with a KenLM model, CCNet/BigScience style (reference §4.1).

Configured by the filter config's ``perplexity`` section: ``model`` (a KenLM ``.arpa`` or ``.bin``) and optionally
``sentencepiece`` (the SentencePiece model the LM was trained on; e.g. the ``edugp/kenlm`` Wikipedia models).
``kenlm`` (and ``sentencepiece`` when used) are optional dependencies.  Without a model the perplexity checks are
disabled and the stage says so with ``ctx.note(DISABLED_NOTE)``: they never pass silently.

Normalisation (applied before tokenisation):
remove the code points 0–31 and 127–159 (so ``\\n`` goes too and the text becomes one line), strip, map the 11
non-ASCII whitespace-like characters to a space, every digit to ``0``, and 34 Unicode punctuation characters to
ASCII via :data:`UNICODE_PUNCTUATION` (the CCNet table); no lowercasing.
Score: for each line, KenLM ``score`` (log10, with sentence begin/end) summed, length += #tokens + 1;
perplexity = 10 ** (-Σlog / Σlength), rounded to 0.1.
"""
from __future__ import annotations

import functools
import os
import re

DISABLED_NOTE = "perplexity filter disabled: no KenLM model configured (filters: perplexity.model)"

_NON_PRINTING_RE = re.compile("[" + "".join(map(chr, list(range(0, 32)) + list(range(127, 160)))) + "]")
_DIGITS_RE = re.compile(r"\d")
#: U+2009, U+200A, U+202F, U+2005, U+3000, U+2002, U+2008, U+2003, U+FFFC, U+0084, U+00A0
_WHITESPACE_TABLE = str.maketrans({c: " " for c in "\u2009\u200a\u202f\u2005\u3000\u2002\u2008\u2003\ufffc\u0084\u00a0"})

#: The CCNet Unicode punctuation map (34 entries, applied after digits became 0, so its "１" entry never applies).
UNICODE_PUNCTUATION = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"', "」": '"',
    "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!", "（": "(", "）": ")",
    "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">",
    "【": "[", "】": "]", "％": "%", "►": "-",
}
_PUNCT_TABLE = str.maketrans(UNICODE_PUNCTUATION)


def normalize(text: str) -> str:
    """The CCNet/OBELICS normalisation used before perplexity scoring."""
    text = _NON_PRINTING_RE.sub("", text).strip()
    if not text:
        return text
    text = text.translate(_WHITESPACE_TABLE)
    text = _DIGITS_RE.sub("0", text)
    return text.translate(_PUNCT_TABLE)


class PerplexityModel:
    """A KenLM model plus an optional SentencePiece tokenizer."""

    def __init__(self, model: str, sentencepiece: str | None = None) -> None:
        try:
            import kenlm
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError("perplexity.model is set but the optional package 'kenlm' is not installed "
                               "(pip install kenlm)") from e
        if not os.path.isfile(model):
            raise FileNotFoundError(f"KenLM model not found: {model}")
        self.model = kenlm.Model(model)
        self.sp = None
        if sentencepiece:
            try:
                import sentencepiece as spm
            except ImportError as e:  # pragma: no cover
                raise RuntimeError("perplexity.sentencepiece is set but the package 'sentencepiece' is not "
                                   "installed (pip install sentencepiece)") from e
            if not os.path.isfile(sentencepiece):
                raise FileNotFoundError(f"SentencePiece model not found: {sentencepiece}")
            self.sp = spm.SentencePieceProcessor(model_file=sentencepiece)

    def tokenize(self, text: str) -> str:
        if self.sp is None:
            return text
        return " ".join(self.sp.encode(text, out_type=str))

    def perplexity(self, text: str) -> float:
        """Perplexity of ``text`` (after normalisation and tokenisation), rounded to 0.1."""
        doc = self.tokenize(normalize(text))
        log_score, length = 0.0, 0
        for line in doc.split("\n"):
            log_score += self.model.score(line)
            length += len(line.split()) + 1
        return round(10.0 ** (-log_score / length), 1)


@functools.lru_cache(maxsize=4)
def _cached(model: str, sentencepiece: str | None) -> PerplexityModel:
    return PerplexityModel(model, sentencepiece)


def from_config(config: dict) -> PerplexityModel | None:
    """The configured model (cached per process), or None when ``perplexity.model`` is not set."""
    section = config.get("perplexity") or {}
    model = section.get("model")
    if not model:
        return None
    return _cached(str(model), str(section["sentencepiece"]) if section.get("sentencepiece") else None)
