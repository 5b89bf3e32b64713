"""Node kinds: what each paragraph of an extracted document is (prose, heading, list, table, code, caption), read
off its text and its neighbours, so the text filters can judge structured text by rules that fit it.

The extractors write structure into the text: a paragraph per block, lines of a list or table joined by ``"\\n"``
inside one paragraph, table cells separated by ``" | "``, ``<pre>`` code with its line breaks and indentation.
The kind is derived from that text alone (every mode's output, trafilatura's included, and documents scored
before this module existed), by :func:`node_kind`:

``table``    a paragraph most of whose lines hold a cell separator ``" | "``
``code``     a paragraph of several lines that reads as code: mostly indented lines, or, with at least 3% code
             symbols, lines ending in ``; { } ) :`` (short ones: a long line is a sentence), or 8% code symbols
``list``     a paragraph of several lines (list items, a definition list, lines of an address)
``caption``  a single short line (≤ ``caption_max_words``) right before or after an image position (not an image
             inside a sentence, whose next text goes on in lower case)
``heading``  a single short line (≤ ``heading_max_words``) that does not end a sentence (no ``. ! ?`` at its end)
``prose``    everything else

The kinds are stored by the scoring stage as the ``node_kind`` column (strings, aligned with the other ``node_``
columns); the decisions read them from there.  Classification parameters (``node.structure``) change the column,
so they are scoring inputs; which checks apply to which kind (a check's ``kinds``) and whether headings follow
their section (``node.structure.headings_follow_section``) are decisions, reapplied without recomputation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields

from ..schema import END_OF_DOCUMENT

KINDS = ("prose", "heading", "list", "table", "code", "caption")
KIND_COLUMN = "node_kind"

_CELL = " | "
_SENTENCE_END = re.compile(r"[.!?…。！？]['\"’”)\]]*$")
_CODE_END = re.compile(r"[;{}():\\,\[\]]$")
_CODE_SYMBOLS = frozenset("{}()[];=<>_$#/\\*&|")
_CODE_MIN_SYMBOLS = 0.03  # below: not code
_CODE_SYMBOLS_ALONE = 0.08  # at or above: code whatever the line shapes
_SENTENCE_WORDS = 12  # a line of this many words ending in ")" or "," is a sentence, not a line of code


@dataclass(frozen=True)
class StructureConfig:
    """``node.structure`` of a filter config; these defaults are the only ones."""

    #: derive kinds; off: every paragraph is ``prose`` (the reference's view of paragraphs)
    enabled: bool = False
    #: a single line of at most this many words that does not end a sentence is a heading
    heading_max_words: int = 16
    #: a single line of at most this many words next to an image is its caption
    caption_max_words: int = 24
    #: a heading is kept only when the section it opens (the next non-heading paragraph) is kept
    headings_follow_section: bool = True

    @classmethod
    def from_config(cls, cfg: dict | None) -> "StructureConfig":
        section = ((cfg or {}).get("node") or {}).get("structure")
        if not isinstance(section, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in known})

    def scoring_inputs(self) -> dict:
        """What changes the stored ``node_kind`` column."""
        return {"enabled": self.enabled, "heading_max_words": self.heading_max_words,
                "caption_max_words": self.caption_max_words}


def _looks_like_code(lines: list[str]) -> bool:
    """Preformatted text (most lines indented) is code.  Otherwise code uses symbols: with fewer than 3% code
    symbols a paragraph is not code, whatever its line ends; above, it is code when most lines are indented or end
    like code -- a line of 12 words or more ending in ``)`` or ``,`` is a sentence, as in a list of references --
    or when 8% or more of its characters are code symbols."""
    n = len(lines)
    indented = sum(1 for l in lines if l[:1] in (" ", "\t") and l.strip())
    if indented >= 0.5 * n:
        return True
    text = "".join("".join(lines).split())  # the non-space characters
    density = sum(map(text.count, _CODE_SYMBOLS)) / (len(text) or 1)
    if density < _CODE_MIN_SYMBOLS:
        return False
    ends = sum(1 for l in lines if _CODE_END.search(l.rstrip()) and len(l.split()) < _SENTENCE_WORDS)
    return (indented + ends) >= 0.5 * n or density >= _CODE_SYMBOLS_ALONE


def node_kind(para: str, n_words: int, next_to_image: bool, cfg: StructureConfig) -> str:
    """The kind of one paragraph (see the module docstring); ``n_words`` is its filter word count."""
    if not cfg.enabled or para == END_OF_DOCUMENT:
        return "prose"
    lines = [l for l in para.split("\n") if l.strip()]
    if len(lines) > 1 or _CELL in para:
        if sum(1 for l in lines if _CELL in l) * 2 >= len(lines):
            return "table"
        if len(lines) > 1:
            return "code" if _looks_like_code(lines) else "list"
    if next_to_image and n_words <= cfg.caption_max_words:
        return "caption"
    if n_words <= cfg.heading_max_words and not _SENTENCE_END.search(para.rstrip()):
        return "heading"
    return "prose"


def _continues(ps: list[str] | None) -> bool:
    """Whether a text goes on with a sentence begun before it: its first letter-or-digit is a lower-case letter, or it
    starts with closing punctuation."""
    if not ps:
        return False
    head = ps[0].lstrip()
    if head[:1] in (",", ".", ";", ":", ")", "]"):
        return True
    first = next((c for c in head if c.isalnum()), "")
    return first.islower()


def document_kinds(texts: list[str | None], paras: list[list[str] | None], words: list[list[int] | None],
                   cfg: StructureConfig) -> list[list[str] | None]:
    """``node_kind`` of one document: per position None (image) or the kinds of its paragraphs.  A paragraph is
    next to an image when it is the first paragraph of the text right after an image position or the last one of
    the text right before one, unless the image sits inside a sentence (the text after it goes on in lower case);
    a piece of a sentence (starting in lower case) is no caption."""
    out: list[list[str] | None] = []
    n = len(texts)
    # an image inside a sentence (a formula, an emoji, an icon: the text after it goes on in lower case) has no
    # caption: the lines around it are the sentence's pieces
    inline = [t is None and i + 1 < n and _continues(paras[i + 1]) for i, t in enumerate(texts)]
    for i, ps in enumerate(paras):
        if ps is None:
            out.append(None)
            continue
        before = i > 0 and texts[i - 1] is None and not inline[i - 1]
        after = i + 1 < n and texts[i + 1] is None and not inline[i + 1]
        kinds = []
        for j, p in enumerate(ps):
            near = ((before and j == 0) or (after and j == len(ps) - 1)) and not _continues([p])
            kinds.append(node_kind(p, words[i][j], near, cfg))
        out.append(kinds)
    return out


def follow_sections(kinds: list[list[str] | None], fails: list[list[str | None] | None],
                    reason: str = "section_removed") -> None:
    """Headings follow the section they open: a heading that passed its own checks is dropped (``reason``) when the
    next non-heading paragraph of the document (images are skipped) was dropped, or when there is none.  Works in
    place on ``fails`` (as :func:`quality.score.node_decisions` returns them), from the end of the document."""
    next_kept: bool | None = None  # fate of the next non-heading paragraph; None: there is none
    for i in range(len(kinds) - 1, -1, -1):
        ks, fs = kinds[i], fails[i]
        if ks is None or fs is None:
            continue
        for j in range(len(ks) - 1, -1, -1):
            if ks[j] == "heading":
                if fs[j] is None and not next_kept:
                    fs[j] = reason
            else:
                next_kept = fs[j] is None
