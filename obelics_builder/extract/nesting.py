"""Pre-parse nesting cap: deeper element structure is flattened before a page reaches an HTML parser."""
from __future__ import annotations

import re

#: deepest element nesting handed to the parser: the HTML tree builder's scope checks make parsing quadratic in
#: the nesting depth (100,000 nested <div> take minutes), so deeper structure is flattened first (text is kept)
MAX_NESTING = 2_000
#: cheap, linear pre-check: a run of >= 256 tags without a closing tag ("</") in between, from the start of the
#: page or from a closing tag (possessive quantifiers: each run is scanned once, no backtracking)
_RE_DEEP_HEAD = re.compile(r"[^<]*+(?:<[^/][^<]*+){256}")
_RE_DEEP_HINT = re.compile(r"</[^<]*+(?:<[^/][^<]*+){256}")
#: the same on the page's UTF-8 bytes ("<" and "/" never occur inside a multi-byte sequence, so the two find the
#: same runs; sre walks bytes faster than most pages' 2-byte strings)
_RE_DEEP_HEAD_B = re.compile(_RE_DEEP_HEAD.pattern.encode())
_RE_DEEP_HINT_B = re.compile(_RE_DEEP_HINT.pattern.encode())
_RE_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*>")
_VOID = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr", "keygen", "image"))


def cap_nesting(html: str, max_depth: int = MAX_NESTING, utf8: bytes | None = None) -> str:
    """Drop the tags (never the text) that would nest elements deeper than ``max_depth``; linear time.

    Only pages with a run of >= 256 opening tags and no closing tag pay for the scan.  ``utf8``: ``html``'s UTF-8
    encoding, when the caller has it (the pre-check then reads it)."""
    if utf8 is not None:
        if _RE_DEEP_HEAD_B.match(utf8) is None and _RE_DEEP_HINT_B.search(utf8) is None:
            return html
    elif _RE_DEEP_HEAD.match(html) is None and _RE_DEEP_HINT.search(html) is None:
        return html
    out = []
    pos = 0
    depth = 0
    dropped = 0
    for m in _RE_TAG.finditer(html):
        closing, name = m.group(1), m.group(2).lower()
        if name in _VOID or m.group(0).endswith("/>"):
            continue
        if not closing:
            if depth >= max_depth:
                out.append(html[pos:m.start()])
                pos = m.end()
                dropped += 1
            else:
                depth += 1
        elif dropped:
            out.append(html[pos:m.start()])
            pos = m.end()
            dropped -= 1
        elif depth:
            depth -= 1
    if not out:
        return html
    out.append(html[pos:])
    return "".join(out)
