"""Consent signals in a page's ``<head>``, read from the tree the extractor already parsed (no second parse).

Only the head's own children count: a ``<meta>`` inside ``<noscript>`` (a child of the noscript, or raw text, as
the parser has it) or in the body is not the page's metadata and is never collected.  What is kept, as written
(the decision, with its agent name and switches, is :mod:`obelics_builder.optout.page`'s):

* ``meta``: ``[name, content]`` of every ``<meta name=...>`` whose content holds an AI directive (``noai``,
  ``noimageai``, ``noml``; whatever the name: ``robots``, an agent's name) and of ``tdm-reservation`` /
  ``tdm-policy`` metas (W3C TDMRep);
* ``link``: ``[rel, href]`` of ``<link rel="tdm-reservation">`` / ``<link rel="tdm-policy">``.

Names and rels are lowercased; contents and hrefs are kept as the page has them.  A page without any of these gets
an empty dict (and no metadata at all: see :func:`obelics_builder.extract.stage.extract_record`).
"""
from __future__ import annotations

#: directive words that withhold consent to AI use (a superset check: the decision splits the content in tokens)
AI_WORDS = ("noai", "noimageai", "noml")
#: TDMRep's HTML properties
TDM_NAMES = frozenset({"tdm-reservation", "tdm-policy"})


def _meta(name, content, found: dict) -> None:
    if not name or content is None:
        return
    name = name.strip().lower()
    if name in TDM_NAMES or any(w in content.lower() for w in AI_WORDS):
        found.setdefault("meta", []).append([name, content])


def _link(rel, href, found: dict) -> None:
    if not rel:
        return
    for r in rel.lower().split():
        if r in TDM_NAMES:
            found.setdefault("link", []).append([r, href or ""])


def head_signals_lexbor(tree) -> dict:
    """The consent signals among the direct children of a Lexbor tree's ``<head>``."""
    found: dict = {}
    head = tree.head
    node = head.child if head is not None else None
    while node is not None:
        tag = node.tag
        if tag == "meta":
            a = node.attrs  # read attribute by attribute: most metas have no name (charset, property, http-equiv)
            name = a.get("name")
            if name:
                _meta(name, a.get("content"), found)
        elif tag == "link":
            a = node.attrs
            rel = a.get("rel")
            if rel and "tdm-" in rel.lower():
                _link(rel, a.get("href"), found)
        node = node.next
    return found


def head_signals_lxml(root) -> dict:
    """The same from an ``lxml.html`` document (trafilatura's parse of the page)."""
    found: dict = {}
    head = root.find("head") if root is not None else None
    if head is None:
        return found
    for el in head:
        tag = el.tag
        if tag == "meta":
            _meta(el.get("name"), el.get("content"), found)
        elif tag == "link":
            _link(el.get("rel"), el.get("href"), found)
    return found
