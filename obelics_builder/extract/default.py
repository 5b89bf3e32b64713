"""The ``default`` extractor: main content of a page as interleaved text and image nodes.

Design (our own; one parse, one walk, everything linear in the page size, no recursion):

1. **Walk** (:func:`_walk`): one pre-order pass over ``<body>`` with an explicit stack of child iterators.  Junk
   subtrees (script, style, forms controls, svg, hidden elements...) are skipped.  The pass records a flat event
   list (open element / close element / text / image) and, per element, its tag, parent, a class/id *hint*
   (boilerplate or content) and bottom-up aggregates: text length, link-text length.  Each *block* (p, li, td,
   div with its own text, ...) whose own text is long enough and not mostly links gives a score to its three
   nearest ancestors (1, 1/2, 1/3): a container's score measures how much real prose sits right below it.
2. **Select** (:mod:`.boilerplate`): the container with the best score (damped by its link density and its
   hints) is the article; its siblings that also carry prose join it.
3. **Emit**: the chosen events are replayed in page order.  Boilerplate subtrees inside (navigation, share and
   subscribe widgets, comments, related lists, link farms, ads) are jumped over in O(1) thanks to the recorded
   close positions.  Text keeps its structure: headings, paragraphs, blockquotes and code blocks are paragraphs
   (``"\\n\\n"``), list items, table rows, ``<br>`` and definition terms are lines (``"\\n"``), table cells are
   joined by ``" | "``, ``<pre>`` keeps its whitespace.  Images split the text; a ``<figcaption>`` stays right
   next to its image.

Result: ``[("text", str) | ("image", meta), ...]`` like :func:`obelics.extract_obelics`, image meta =
``document_url, src, unformatted_src, [alt_text], [rendered_width], [rendered_height]``.
"""
from __future__ import annotations

import re
import time

from selectolax.lexbor import LexborHTMLParser

from .boilerplate import NEG_STRONG, POS, class_hint, select_content
from .images import choose_source, is_boilerplate_image, parse_size, resolve_url, clean_url_attr

try:  # the obelics mode's timeout: stage.py catches it as reason "timeout"
    from .obelics import ExtractionTimeout
except ImportError:  # pragma: no cover
    class ExtractionTimeout(TimeoutError):
        """The page exceeded its time budget."""

#: subtrees never visited
SKIP_TAGS = frozenset((
    "script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object", "embed", "canvas",
    "button", "select", "option", "optgroup", "input", "textarea", "datalist", "video", "audio", "map", "area",
    "dialog", "frameset", "frame", "applet", "link", "meta", "title", "base", "param", "track", "-comment",
    "progress", "meter", "output",
))
#: elements that end a paragraph ("\n\n") on both sides
PARA_TAGS = frozenset((
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "h1", "h2", "h3", "h4", "h5",
    "h6", "blockquote", "pre", "figure", "figcaption", "address", "hr", "form", "fieldset", "details", "summary",
    "center", "hgroup", "body", "legend", "ul", "ol", "dl", "table", "caption", "menu", "listing", "plaintext",
    "xmp", "search",
))
#: elements that are lines inside a paragraph ("\n")
LINE_TAGS = frozenset(("li", "tr", "dt", "dd", "option"))
CELL_TAGS = frozenset(("td", "th"))
#: elements whose own text is scored as one block
BLOCK_TAGS = PARA_TAGS | LINE_TAGS | CELL_TAGS | frozenset(("thead", "tbody", "tfoot"))
#: containers inside which paragraph boundaries become line breaks
GRID_TAGS = frozenset(("ul", "ol", "dl", "table", "menu"))
#: block elements that are containers: their own text scores themselves (not their parent)
SELF_CONTAINERS = frozenset(("div", "section", "article", "main", "td", "body", "form", "center"))
HEADING_TAGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))

_RE_SPACES = re.compile(r"\s+")
_RE_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_COMMAS_WIDE = ("\uff0c", "\u3001", "\u060c")

# event kinds
EV_OPEN, EV_CLOSE, EV_TEXT, EV_IMG, EV_BR = 0, 1, 2, 3, 4
_BR_EVENT = (EV_BR,)
#: transparent elements: no record of their own, their text belongs to the enclosing element
INLINE_TAGS = frozenset((
    "a", "span", "b", "i", "em", "strong", "small", "font", "u", "s", "sub", "sup", "abbr", "acronym", "cite", "code",
    "q", "mark", "time", "label", "bdi", "bdo", "del", "ins", "kbd", "samp", "var", "big", "tt", "nobr", "strike",
    "dfn", "data", "wbr", "blink", "ruby", "rb", "rt", "rp",
))


class _Page:
    """Flat record of one walk: events plus per-element arrays (index = element id)."""

    __slots__ = ("events", "tag", "parent", "hint", "txt", "lnk", "score", "open_pos", "close_pos", "prose", "clean", "ineg", "base")

    def __init__(self):
        self.events: list = []
        self.tag: list = []
        self.parent: list = []
        self.hint: list = []
        self.txt: list = []
        self.lnk: list = []
        self.score: list = []
        self.open_pos: list = []
        self.close_pos: list = []
        self.prose: list = []
        self.clean: list = []  # prose outside strongly negative subtrees
        self.ineg: list = []  # inside (or being) a strongly negative element below the root
        self.base = None


#: deepest element nesting handed to the parser: the HTML tree builder's scope checks make parsing quadratic in
#: the nesting depth (100,000 nested <div> take minutes), so deeper structure is flattened first (text is kept)
MAX_NESTING = 2_000
_RE_DEEP_HINT = re.compile(r"(?:<[a-zA-Z][^<>]*>[^<]*){256}")
_RE_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*>")
_VOID = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr", "keygen", "image"))


def cap_nesting(html: str, max_depth: int = MAX_NESTING) -> str:
    """Drop the tags (never the text) that would nest elements deeper than ``max_depth``; linear time.

    Only pages with a run of >= 256 opening tags and no closing tag pay for the scan."""
    if _RE_DEEP_HINT.search(html) is None:
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


def _check(deadline):
    if deadline is not None and time.monotonic() > deadline:
        raise ExtractionTimeout("page exceeded its time budget")


#: elements removed before the walk (C-level selector): hidden ones and landmark roles that are never content
_PRUNE_SELECTOR = (
    '[hidden], [aria-hidden="true"], [style*="none"], [style*="hidden"], [role="navigation"], [role="banner"], '
    '[role="contentinfo"], [role="search"], [role="dialog"], [role="alertdialog"], [role="menu"], '
    '[role="menubar"], [role="toolbar"], [role="complementary"]'
)
_KEEP_ALWAYS = frozenset(("html", "body", "main", "article"))
#: elements whose class/id is read (reading attributes is the costliest per-node operation)
HINT_TAGS = frozenset((
    "div", "section", "article", "aside", "header", "footer", "nav", "main", "ul", "ol", "dl", "table", "form",
    "figure", "center", "details", "p", "span", "li",
))


def _prune(root) -> None:
    for node in root.css(_PRUNE_SELECTOR):
        if node.tag in _KEEP_ALWAYS:
            continue
        attrs = node.attributes
        style = attrs.get("style")
        if ("hidden" not in attrs and attrs.get("aria-hidden") != "true" and "role" not in attrs
                and not (style and _RE_HIDDEN_STYLE.search(style))):
            continue  # "none"/"hidden" elsewhere in the style (e.g. "border: none")
        node.decompose()


def _walk(root, deadline) -> _Page:
    pg = _Page()
    ev = pg.events
    tags, parents, hints, txts, lnks, scores = pg.tag, pg.parent, pg.hint, pg.txt, pg.lnk, pg.score
    open_pos, close_pos, prose, clean, ineg = pg.open_pos, pg.close_pos, pg.prose, pg.clean, pg.ineg
    # root element
    tags.append(root.tag)
    parents.append(-1)
    hints.append(0)
    txts.append(0)
    lnks.append(0)
    scores.append(0.0)
    open_pos.append(0)
    close_pos.append(0)
    prose.append(0.0)
    clean.append(0.0)
    ineg.append(False)
    ev.append((EV_OPEN, 0))
    it_stack = [root.iter(include_text=True)]
    el_stack = [0]  # element id per stack level, -1 for inline elements
    cur_el = [0]  # ids of the open non-inline elements
    blk_stack = [0]  # nearest block-level element id for each stack level
    own = {0: [0, 0, 0]}  # block id -> [own text chars, own link chars, commas]
    link_depth = 0
    link_levels = []  # stack levels that opened an <a>
    n = 0
    skip_tags = SKIP_TAGS
    block_tags = BLOCK_TAGS
    hint_tags = HINT_TAGS
    self_containers = SELF_CONTAINERS
    ev_append = ev.append
    inline_tags = INLINE_TAGS
    while it_stack:
        child = next(it_stack[-1], None)
        if child is None:
            it_stack.pop()
            eid = el_stack.pop()
            blk_stack.pop()
            if eid < 0:  # an inline element: transparent
                if link_levels and link_levels[-1] == len(it_stack):
                    link_levels.pop()
                    link_depth -= 1
                continue
            ev_append((EV_CLOSE, eid))
            cur_el.pop()
            close_pos[eid] = len(ev) - 1
            if link_levels and link_levels[-1] == len(it_stack):
                link_levels.pop()
                link_depth -= 1
            p = parents[eid]
            o = own.pop(eid, None)
            if o is not None:
                t, l, c = o
                if t >= 25 and l * 2 < t:
                    s = 1.0 + c + (t / 100.0 if t < 300 else 3.0)
                    prose[eid] += s
                    clean[eid] += s
                    # a paragraph scores its container; a container with its own text scores itself
                    c0 = eid if tags[eid] in self_containers else p
                    if c0 >= 0:
                        scores[c0] += s
                        g = parents[c0]
                        if g >= 0:
                            scores[g] += s / 2
                            g = parents[g]
                            if g >= 0:
                                scores[g] += s / 3
            if p >= 0:
                txts[p] += txts[eid]
                lnks[p] += lnks[eid]
                prose[p] += prose[eid]
                h = hints[eid]
                if not h & NEG_STRONG or h & POS:
                    clean[p] += clean[eid]
            continue
        n += 1
        if not n & 2047:
            _check(deadline)
        tag = child.tag
        if tag == "-text":
            text = child.text_content
            if not text:
                continue
            ev_append((EV_TEXT, text))
            if text.isspace():
                continue
            stripped = len(text)
            eid = cur_el[-1]
            txts[eid] += stripped
            o = own[blk_stack[-1]]
            o[0] += stripped
            if link_depth:
                lnks[eid] += stripped
                o[1] += stripped
            if "," in text:
                o[2] += text.count(",")
            if not text.isascii():
                for c in _COMMAS_WIDE:
                    if c in text:
                        o[2] += text.count(c)
            continue
        if tag in inline_tags:
            it_stack.append(child.iter(include_text=True))
            el_stack.append(-1)
            blk_stack.append(blk_stack[-1])
            if tag == "a":
                link_depth += 1
                link_levels.append(len(it_stack) - 1)
            continue
        if tag in skip_tags or tag[0] == "-":
            continue
        if tag == "br":
            ev_append(_BR_EVENT)
            continue
        if tag == "img":
            ev_append((EV_IMG, child.attributes, cur_el[-1]))
            continue
        if tag == "source":
            ev_append((EV_IMG, child.attributes, -1))  # <picture> source candidate
            continue
        eid = len(tags)
        parent = cur_el[-1]
        tags.append(tag)
        parents.append(parent)
        if tag in hint_tags:
            attrs = child.attrs
            h = class_hint(tag, attrs.get("class"), child.id)
        else:
            h = class_hint(tag, None, None)
        hints.append(h)
        ineg.append(ineg[parent] or (h & NEG_STRONG and not h & POS))
        txts.append(0)
        lnks.append(0)
        scores.append(0.0)
        ev_append((EV_OPEN, eid))
        open_pos.append(len(ev) - 1)
        close_pos.append(0)
        prose.append(0.0)
        clean.append(0.0)
        it_stack.append(child.iter(include_text=True))
        el_stack.append(eid)
        cur_el.append(eid)
        if tag in block_tags:
            blk_stack.append(eid)
            own[eid] = [0, 0, 0]
        else:
            blk_stack.append(blk_stack[-1])
    return pg


class _Writer:
    """Accumulates text lines, paragraphs and nodes with the break rules."""

    __slots__ = ("out", "paras", "lines", "cur", "pre")

    def __init__(self):
        self.out: list = []
        self.paras: list = []
        self.lines: list = []
        self.cur: list = []
        self.pre = 0

    def text(self, s: str) -> None:
        self.cur.append(s)

    def has_text(self) -> bool:
        for s in self.cur:
            if not s.isspace():
                return True
        return False

    def end_line(self) -> None:
        if self.cur:
            joined = "".join(self.cur)
            if not joined.isspace():
                if self.pre:
                    s = "\n".join(l.rstrip() for l in joined.strip("\n").split("\n"))
                else:
                    s = _RE_SPACES.sub(" ", joined).strip()
                if s:
                    self.lines.append(s)
            self.cur.clear()

    def end_para(self) -> None:
        self.end_line()
        if self.lines:
            self.paras.append("\n".join(self.lines))
            self.lines.clear()

    def end_text(self) -> None:
        self.end_para()
        if self.paras:
            self.out.append(("text", "\n\n".join(self.paras)))
            self.paras.clear()

    def image(self, meta: dict) -> None:
        self.end_text()
        self.out.append(("image", meta))


def _image_meta(attrs: dict, sources: list | None, base: str, page_url: str, prefer_largest: bool):
    raw = choose_source(attrs, sources, prefer_largest)
    if not raw:
        return None
    width = parse_size(attrs.get("width"))
    height = parse_size(attrs.get("height"))
    if is_boilerplate_image(attrs, raw, width, height):
        return None
    src = resolve_url(raw, base)
    if src is None:
        return None
    meta = {"document_url": page_url, "unformatted_src": raw, "src": src}
    alt = attrs.get("alt")
    if alt and alt.strip():
        meta["alt_text"] = alt.strip()
    if width is not None:
        meta["rendered_width"] = width
    if height is not None:
        meta["rendered_height"] = height
    return meta


def _emit(pg: _Page, ranges: list, skip: set, page_url: str, deadline, prefer_largest: bool) -> list:
    ev = pg.events
    tags = pg.tag
    close_pos = pg.close_pos
    w = _Writer()
    cur_append = w.cur.append
    grid = 0
    seen_src: set = set()
    pending_sources: list = []  # <source> srcsets of the current <picture>
    n = 0
    for start, end in ranges:
        i = start
        while i <= end:
            e = ev[i]
            kind = e[0]
            n += 1
            if not n & 4095:
                _check(deadline)
            if kind == EV_TEXT:
                cur_append(e[1])
                i += 1
                continue
            if kind == EV_BR:
                w.end_line()
                i += 1
                continue
            if kind == EV_OPEN:
                eid = e[1]
                if eid in skip:
                    i = close_pos[eid] + 1
                    continue
                tag = tags[eid]
                if tag in GRID_TAGS:
                    if grid:
                        w.end_line()
                    else:
                        w.end_para()
                    grid += 1
                elif tag in LINE_TAGS:
                    w.end_line()
                elif tag in CELL_TAGS:
                    if w.has_text():
                        w.text(" | ")
                elif tag in PARA_TAGS:
                    if tag == "pre":
                        w.end_para() if not grid else w.end_line()
                        w.pre += 1
                    elif grid:
                        w.end_line()
                    else:
                        w.end_para()
                elif tag == "picture":
                    pending_sources = []
                i += 1
                continue
            if kind == EV_CLOSE:
                eid = e[1]
                tag = tags[eid]
                if tag in GRID_TAGS:
                    grid -= 1
                    if grid:
                        w.end_line()
                    else:
                        w.end_para()
                elif tag in LINE_TAGS:
                    w.end_line()
                elif tag in PARA_TAGS:
                    if tag == "pre":
                        w.end_line() if grid else w.end_para()
                        if w.pre:
                            w.pre -= 1
                    elif grid:
                        w.end_line()
                    else:
                        w.end_para()
                elif tag == "picture":
                    pending_sources = []
                i += 1
                continue
            # image or <source>
            attrs = e[1]
            if e[2] == -1:
                for name in ("srcset", "data-srcset"):
                    v = attrs.get(name)
                    if v:
                        pending_sources.append(v)
                        break
                i += 1
                continue
            meta = _image_meta(attrs, pending_sources, pg.base, page_url, prefer_largest)
            pending_sources = []
            if meta is not None and meta["src"] not in seen_src:
                seen_src.add(meta["src"])
                w.image(meta)
            i += 1
    w.end_text()
    return w.out


def _base_url(tree: LexborHTMLParser, page_url: str) -> str:
    node = tree.css_first("base[href]")
    if node is not None:
        href = clean_url_attr(node.attributes.get("href"))
        if href:
            resolved = resolve_url(href, page_url)
            if resolved:
                return resolved
    return page_url


def extract_default(html: str, page_url: str, deadline: float | None = None, *,
                    prefer_largest: bool = False) -> list[tuple[str, object]]:
    """HTML string -> ``[("text", str) | ("image", meta), ...]``: the page's main content.

    ``deadline`` is a ``time.monotonic()`` value; past it :class:`ExtractionTimeout` is raised.
    ``prefer_largest``: when an ``<img>`` has both a real ``src`` and a srcset, take the largest srcset candidate
    instead of ``src`` (a ``src`` that is a placeholder always yields to lazy attributes and srcsets)."""
    _check(deadline)
    html = cap_nesting(html)
    _check(deadline)
    tree = LexborHTMLParser(html)
    _check(deadline)
    root = tree.body
    if root is None:
        root = tree.root
        if root is None:
            return []
    _prune(root)
    _check(deadline)
    pg = _walk(root, deadline)
    pg.base = _base_url(tree, page_url)
    _check(deadline)
    ranges, skip = select_content(pg)
    _check(deadline)
    return _emit(pg, ranges, skip, page_url, deadline, prefer_largest)
