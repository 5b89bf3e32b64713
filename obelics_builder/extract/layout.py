"""Text layout of the extracted content: the break marks the walk writes into its events, and their resolution into
lines and paragraphs (:func:`_flush`)."""
from __future__ import annotations

import re

# Break marks.  They start with NUL, which the HTML parser never leaves in a text node (the tree builder drops
# U+0000 characters, or replaces them with U+FFFD), so they cannot clash with text.  The walk writes them knowing
# how many lists/tables (g) and <pre> (d) are open around them on the page; the emit pass resolves them for the
# chosen content, whose own lists/tables and <pre> are the ones that count (chr(48 + n) encodes a depth n):
#   "\x00n"              end of a line
#   "\x00p" + d          end of a line inside <pre> (whitespace kept when d counts)
#   "\x00P"              end of a paragraph (always right after a line end)
#   "\x00g" + g          end of a paragraph; a line end when g counts (inside a list or table)
#   "\x00h" + g + d      the same inside <pre>
#   "\x00c"              a table cell starts: " | " once the line has text
_LN = "\x00n"
_LP = "\x00p"  # resolved form
_PB = "\x00P"
_CELL = "\x00c"
_RE_MARK_P = re.compile("\x00p.", re.DOTALL)
_RE_MARK_G = re.compile("\x00g.", re.DOTALL)
_RE_MARK_H = re.compile("\x00h..", re.DOTALL)
_RE_MARK_ANY = re.compile("\x00(?:p.|g.|h..)", re.DOTALL)
_RE_TERM = re.compile("(\x00[np])")


def _cells(line: str) -> str:
    """Cell marks of one line: dropped before its first text, ``" | "`` after it."""
    segs = line.split(_CELL)
    for f, seg in enumerate(segs):
        if seg and not seg.isspace():
            return "".join(segs[:f + 1]) + "".join([" | " + x for x in segs[f + 1:]])
    return ""


def _pre_line(line: str) -> str:
    if not line or line.isspace():
        return ""
    return "\n".join([l.rstrip() for l in line.strip("\n").split("\n")])


def _resolve_marks(s: str, base_grid: int, base_pre: int) -> str:
    """Depth-carrying marks -> line/paragraph ends, for content inside ``base_grid`` lists/tables and ``base_pre``
    <pre> elements of the page (those do not count)."""
    if not base_grid and not base_pre:  # the usual case: plain substitutions in C
        if "\x00p" in s:
            s = _RE_MARK_P.sub(_LP, s)
        if "\x00h" in s:
            s = _RE_MARK_H.sub(_LP, s)
        if "\x00g" in s:
            s = _RE_MARK_G.sub(_LN, s)
        return s

    def one(m):
        t = m.group(0)
        if t[1] == "p":
            return _LP if ord(t[2]) - 48 > base_pre else _LN
        if t[1] == "g":
            return _LN if ord(t[2]) - 48 > base_grid else _LN + _PB
        term = _LP if ord(t[3]) - 48 > base_pre else _LN
        return term if ord(t[2]) - 48 > base_grid else term + _PB
    return _RE_MARK_ANY.sub(one, s)


def _para_end(pre: int) -> str:
    """The (unresolved) paragraph end with ``pre`` <pre> elements open on the page."""
    return _LN + _PB if not pre else "\x00p" + chr(48 + pre) + _PB


def _flush(buf: list, out: list, base_grid: int, base_pre: int, pre: int) -> None:
    """Buffered text and marks -> one ``("text", ...)`` node: whitespace runs collapsed (not in <pre>), empty lines
    and paragraphs dropped, lines joined by ``"\\n"``, paragraphs by ``"\\n\\n"``.  ``pre``: <pre> elements open on
    the page at this point."""
    if not buf:
        return
    buf.append(_para_end(pre))
    s = _resolve_marks("".join(buf), base_grid, base_pre)
    buf.clear()
    if _LP not in s:  # no <pre>: collapse all whitespace at once, then cut lines and paragraphs
        s = " ".join(s.split())
        if " \x00" in s:
            s = s.replace(" \x00", "\x00")
        if "\x00n " in s:
            s = s.replace("\x00n ", "\x00n")
        if "\x00P " in s:
            s = s.replace("\x00P ", "\x00P")
        cells = _CELL in s
        paras = []
        for para in s.split(_PB):
            if para:
                if cells and _CELL in para:
                    lines = [" ".join(_cells(l).split()) if _CELL in l else l for l in para.split(_LN)]
                    lines = [l for l in lines if l]
                else:
                    lines = [l for l in para.split(_LN) if l]
                if lines:
                    paras.append("\n".join(lines))
        if paras:
            out.append(("text", "\n\n".join(paras)))
        return
    paras = []
    for para in s.split(_PB):
        if not para:
            continue
        lines = []
        if _LP not in para:
            for line in para.split(_LN):
                if line:
                    if _CELL in line:
                        line = _cells(line)
                    line = " ".join(line.split())
                    if line:
                        lines.append(line)
        else:
            pieces = _RE_TERM.split(para)
            for k in range(0, len(pieces), 2):
                line = pieces[k]
                if not line:
                    continue
                if _CELL in line:
                    line = _cells(line)
                if k + 1 < len(pieces) and pieces[k + 1] == _LP:
                    line = _pre_line(line)
                else:
                    line = " ".join(line.split())
                if line:
                    lines.append(line)
        if lines:
            paras.append("\n".join(lines))
    if paras:
        out.append(("text", "\n\n".join(paras)))


#: paragraphs at least this long that repeat one emitted earlier are dropped (0: keep all) ...
DEDUPE_MIN_CHARS = 5
#: ... unless the earlier one is at most this many paragraphs before (a refrain, a point made again)
DEDUPE_NEAR = 3
#: ... and never paragraphs with indented lines (code blocks: only <pre> keeps leading whitespace)
DEDUPE_KEEP_CODE = True


def dedupe_paragraphs(out: list) -> list:
    """Drop the text paragraphs that repeat, word for word, a paragraph emitted well before: pages carry one copy of
    their content per layout (mobile and desktop descriptions, a sticky summary), forums quote earlier posts; a
    reader reads it once."""
    if not DEDUPE_MIN_CHARS:
        return out
    first: dict = {}  # paragraph text (spaces collapsed) -> index of its last kept occurrence
    n = 0  # paragraphs so far
    res = []
    for kind, val in out:
        if kind != "text":
            res.append((kind, val))
            continue
        val = drop_cta_lines(val)
        if not val:
            continue
        keep = []
        changed = False
        for para in val.split("\n\n"):
            n += 1
            if len(para) >= DEDUPE_MIN_CHARS and not (DEDUPE_KEEP_CODE and ("\n " in para or "\n\t" in para
                                                                             or para[:1] in " \t")):
                key = para  # the layout has collapsed the whitespace already (except in <pre>)
                j = first.get(key)
                if j is not None and n - j > DEDUPE_NEAR:
                    changed = True
                    continue
                first[key] = n
            keep.append(para)
        if not changed:
            res.append((kind, val))
        elif keep:
            res.append((kind, "\n\n".join(keep)))
    return res


#: a line that is nothing but a call to action or a widget's label ("Read more", "Add to cart", "Loading...") is the
#: page's controls, not its text (English labels, and the most frequent French one)
_RE_CTA_LINE = re.compile(
    r"^\W*(?:read more|learn more|see more|show more|view more|load more|more info|find out more|view details|"
    r"quick view|quick shop|add to (?:cart|bag|basket|wishlist|wish list|compare)|compare|wishlist|shop now|buy now|"
    r"order now|view all|see all|see details|loading\.*|sponsored|advertisement|continue reading|get started|sign up|"
    r"log in|sign in|subscribe|comparer ne plus comparer)\W*$", re.IGNORECASE | re.MULTILINE)
#: drop those lines (experiment switch)
DROP_CTA_LINES = True


def drop_cta_lines(text: str) -> str:
    """``text`` without its lines that are only a call to action (see :data:`_RE_CTA_LINE`)."""
    if not DROP_CTA_LINES:
        return text
    # most texts have none: only lines of at most 40 characters can be dropped, and matching those alone is
    # cheaper than a MULTILINE search trying every position of the text
    match = _RE_CTA_LINE.match
    for line in text.split("\n"):
        if len(line) <= 40 and match(line) is not None:
            break
    else:
        return text
    paras = []
    changed = False
    for para in text.split("\n\n"):
        lines = para.split("\n")
        kept = [l for l in lines if len(l) > 40 or match(l) is None]
        if len(kept) != len(lines):
            changed = True
        if kept:
            paras.append("\n".join(kept))
    return "\n\n".join(paras) if changed else text
