"""The prose of a document: the text the prose-statistics doc checks read (``doc.prose``), stored as columns.

The doc checks that measure how a text reads as sentences -- character and word repetition, special characters,
stop words, punctuation, common words -- were written for prose.  A page of items (a product grid, a list of
books, a table of results) holds its content in lists, tables and headings, whose repetition across cards
("4.8 out of 5 stars", "Length:") and whose names, numbers and prices are structure, not spam: read as prose,
they fail those checks, and the whole document is lost.  With ``doc.prose`` those checks read the document's
prose instead (its kept paragraphs of ``kinds``), when it has at least ``min_words`` words of it; a document with
less prose is not judged by them (there is nothing to judge): its lists, tables and headings have been judged by
their node rules, and its language, flagged words and length by the other doc checks, which read the whole text.

Columns (only with ``doc.prose``): ``doc_prose_words`` and ``doc_prose_<check>`` for every ratio check
(:data:`PROSE_CHECKS`), computed by the scoring stage on the prose of the node-filtered text; the decision stage
reads them (``kinds`` change the text, so a changed ``kinds`` makes it recompute them, as changed node
thresholds do; ``checks`` and ``min_words`` are decisions).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import PARAGRAPH_SEP, paragraphs
from .columns import CHECKS

#: the doc checks that can read the prose (word and character statistics; not length, language or perplexity)
PROSE_CHECKS = ("char_repetition", "word_repetition", "special_characters", "stopwords", "flagged_words",
                "punctuation", "common_words")
WORDS_COLUMN = "doc_prose_words"


def prose_column(check: str) -> str:
    return f"doc_prose_{CHECKS[check]}"


def prose_columns() -> list[str]:
    return [WORDS_COLUMN, *(prose_column(c) for c in PROSE_CHECKS)]


@dataclass(frozen=True)
class ProseConfig:
    """``doc.prose`` of a filter config; these defaults are the only ones.  Absent from the config: the doc checks
    all read ``doc.text_kinds`` (the reference's behaviour)."""

    #: the node kinds whose kept paragraphs are the document's prose
    kinds: tuple[str, ...] = ("prose", "caption")
    #: a document with fewer words of prose is not judged by ``checks``
    min_words: int = 50
    #: the doc checks that read the prose instead of the doc checks' text
    checks: tuple[str, ...] = ("char_repetition", "word_repetition", "special_characters", "stopwords",
                               "punctuation", "common_words")

    @classmethod
    def from_config(cls, cfg: dict | None) -> "ProseConfig | None":
        section = ((cfg or {}).get("doc") or {}).get("prose")
        if not isinstance(section, dict):
            return None
        out = cls()
        return cls(kinds=tuple(section.get("kinds", out.kinds)), min_words=int(section.get("min_words", out.min_words)),
                   checks=tuple(section.get("checks", out.checks)))


def prose_text(doc: dict, kinds: list[list[str] | None], prose: ProseConfig) -> str:
    """The document's prose: its paragraphs of ``prose.kinds``, joined by a blank line."""
    wanted = frozenset(prose.kinds)
    return PARAGRAPH_SEP.join(p for t, ks in zip(doc["texts"], kinds) if t
                              for p, k in zip(paragraphs(t), ks) if k in wanted)


def store_prose_metrics(doc: dict, values: dict[str, float] | None) -> None:
    """Write (``values``: the metrics of the prose, keyed by check) or remove (None) the prose columns."""
    if values is None:
        for c in prose_columns():
            doc.pop(c, None)
        return
    doc[WORDS_COLUMN] = float(values["number_words"])
    for check in PROSE_CHECKS:
        doc[prose_column(check)] = float(values[check])


def doc_check_values(doc: dict, checks, prose: ProseConfig | None) -> dict:
    """The values the doc checks compare with their thresholds: ``doc_<check>``, and with ``prose`` the prose
    values for its checks (None -- not judged -- when the document has fewer than ``min_words`` words of prose)."""
    values = {check: doc.get(f"doc_{suffix}") for check, suffix in checks.items()}
    if prose is not None:
        enough = (doc.get(WORDS_COLUMN) or 0.0) >= prose.min_words
        for check in prose.checks:
            values[check] = doc.get(prose_column(check)) if enough else None
    return values
