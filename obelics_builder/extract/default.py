"""The ``default`` extractor: main content of a page as interleaved text and image nodes.

Design (our own; one parse, one walk, everything linear in the page size, no recursion):

1. **Walk** (:func:`_walk`): one pre-order pass over ``<body>`` with an explicit stack (each open level's next
   node).  Junk subtrees (script, style, forms controls, svg, hidden elements and non-content landmark roles...)
   are skipped; elements hidden by an inline style are walked but invisible to everything outside them.
   The pass writes a flat event list (text, break marks, images) and one small record per element: tag, parent,
   class/id *hint* (boilerplate or content), its span of events, and running totals at its open and close (text
   length, link-text length, prose score), so any subtree amount is a difference.  Each *block* (p, li, td, div
   with its own text, ...) whose own text is long enough and not mostly links gives a score to its three nearest
   ancestors (1, 1/2, 1/3): a container's score measures how much real prose sits right below it.  Attributes are
   read once per element as a dict; class/id hints are memoised.
2. **Select** (:mod:`.boilerplate`): the container with the best score (damped by its link density and its
   hints) is the article; its siblings that also carry prose join it.  Inside, boilerplate subtrees (navigation,
   share and subscribe widgets, comments, related lists, link farms, ads) are dropped; only the walk's candidates
   are examined.
3. **Emit** (:func:`_emit`): the chosen spans of events are copied with list slices, minus the dropped subtrees;
   images cut the text into text nodes.  Text keeps its structure: headings, paragraphs, blockquotes and code
   blocks are paragraphs (``"\\n\\n"``), list items, table rows, ``<br>`` and definition terms are lines
   (``"\\n"``), table cells are joined by ``" | "``, ``<pre>`` keeps its whitespace.  The break marks are resolved
   in bulk (:func:`_flush`) relative to the chosen content, as if the page were just that content; a
   ``<figcaption>`` stays right next to its image.

The cyclic garbage collector is paused during one extraction (nothing here makes reference cycles; on large pages
it would rescan the growing records many times) and restored after.

Result: ``[("text", str) | ("image", meta), ...]`` like :func:`obelics.extract_obelics`, image meta =
``document_url, src, unformatted_src, [alt_text], [rendered_width], [rendered_height]``.
"""
from __future__ import annotations

import gc
import re
import time
from bisect import bisect_left, bisect_right

from selectolax.lexbor import LexborHTMLParser

from .boilerplate import (_HINT_CACHE, HIDDEN, LINKLIST_TAGS, LONG_ANCHOR, NAV_WORD, NEG_STRONG, POS, R_CLOSE, R_HINT, R_L0,
                          R_ND, R_OPEN, R_PARENT, R_T0, R_TAG, RECO_HEADINGS, RECO_LEVELS, TAG_HINT, class_words_hint,
                          is_reco_heading, page_kind, product_words_hint,
                          select_content)
from .images import (choose_source, clean_url_attr, document_base, image_node_meta, is_boilerplate_image,
                     parse_size, resolve_url)
from .head import head_signals_lexbor
from .layout import _CELL, _LN, _PB, _flush, dedupe_paragraphs
from .nesting import cap_nesting

try:  # the obelics mode's timeout: stage.py catches it as reason "timeout"
    from .obelics import ExtractionTimeout
except ImportError:  # pragma: no cover
    class ExtractionTimeout(TimeoutError):
        """The page exceeded its time budget."""

#: subtrees never visited
SKIP_TAGS = frozenset((
    "script", "style", "template", "svg", "math", "head", "iframe", "object", "embed", "canvas",
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

#: transparent elements: no record of their own, their text belongs to the enclosing element
INLINE_TAGS = frozenset((
    "a", "span", "b", "i", "em", "strong", "small", "font", "u", "s", "sub", "sup", "abbr", "acronym", "cite", "code",
    "q", "mark", "time", "label", "bdi", "bdo", "del", "ins", "kbd", "samp", "var", "big", "tt", "nobr", "strike",
    "dfn", "data", "wbr", "blink", "ruby", "rb", "rt", "rp",
))

# Events (one flat list per page, in document order): text strings, break marks (strings starting with NUL, see
# _LN below) and images ``(attrs, picture source srcsets, inside <pre>)``.  Elements are spans of events
# (R_OPEN..R_CLOSE of their record), so the emit pass copies runs of events with list slices and only looks at the
# images and at the spans of the boilerplate it drops.

# Per-element record: one list per element, index = element id (pre-order); fields R_* of .boilerplate: tag,
# parent id, hint bits, number of strongly negative elements on its path, first event, running totals at its start
# (text chars, link chars, block scores, block scores at its negative depth); at its close the list is extended with
# its last event, the running totals at its end, and the id after its subtree.

# kinds of walk stack levels
_K_EL, _K_BLOCK, _K_INLINE, _K_LINK = 0, 1, 2, 3


class _Page:
    """Flat record of one walk: events, per-element records and container scores."""

    __slots__ = ("events", "recs", "score", "base", "images", "cands", "debug", "blocks", "owner", "cls", "incl", "product")

    def __init__(self, debug: bool = False):
        self.debug: list | None = [] if debug else None  # (class, id, role) per record, for diagnostics
        self.owner: list = []  # with debug: (text event, block id, in a link)
        self.blocks: list = []  # with debug: (id, own chars, link chars, commas, links, first event, end event)
        self.events: list = []
        self.recs: list = []
        self.score: dict = {}  # element id -> score from the prose blocks right below it
        self.base = None
        self.images: list = []  # event indices of the images
        self.cls: list = []  # class attribute of each record (None without one)
        self.incl = False  # inclusive rules (the page is not a declared article): set by select_content
        self.product = False  # the page declares a schema.org product (boilerplate.declared_product)
        self.cands: list = []  # ids of the elements boilerplate.select_content may drop (in closing order)


def _check(deadline):
    if deadline is not None and time.monotonic() > deadline:
        raise ExtractionTimeout("page exceeded its time budget")


#: hidden elements and landmark roles that are never content: skipped with their subtree (except these tags)
_KEEP_ALWAYS = frozenset(("html", "body", "main", "article"))
_ROLE_PRUNE = frozenset(("navigation", "banner", "contentinfo", "search", "dialog", "alertdialog", "menu", "menubar",
                         "toolbar", "complementary"))
#: elements whose class/id is read for hints
HINT_TAGS = frozenset((
    "div", "section", "article", "aside", "header", "footer", "nav", "main", "ul", "ol", "dl", "table", "form",
    "figure", "center", "details", "p", "span", "li",
))


#: attributes that can hide an element (a page's elements rarely carry any: one C-level test skips the rest)
_HIDING_ATTRS = frozenset(("hidden", "aria-hidden", "role", "style"))


_RE_SCRIPT_NOTICE = re.compile(r"javascript|\bjs\b|browser", re.IGNORECASE)


def _is_escaped_markup(node) -> bool:
    """A ``<noscript>`` saved by a browser that ran scripts holds its markup as text ("<img src=...>"): not content."""
    first = node.child
    while first is not None and first.tag == "-text":
        t = first.text_content
        if t and "<" in t:
            return True
        first = first.next
    return False


def _is_script_notice(events: list, start: int) -> bool:
    """A short ``<noscript>`` telling the reader to turn on JavaScript (or to use another browser)."""
    text = "".join([e for e in events[start:] if type(e) is str and e[:1] != "\x00"])
    return _RE_SCRIPT_NOTICE.search(text) is not None


#: aria-hidden hides from screen readers, not from the eye: an aria-hidden image is still seen (Wikipedia's formula
#: images are aria-hidden next to their MathML); decorative icons go by the image rules instead
IMG_ARIA_HIDDEN_SHOWN = True


def _is_hidden(a: dict, aria_shown: bool = False, style: bool = True) -> bool:
    """``hidden``, ``aria-hidden="true"``, a non-content landmark role, or an inline style hiding the element.

    React's streamed server rendering sends each late part of the page as ``<div hidden id="S:n">``, which its
    script moves into place at once: those are shown, as a browser shows them."""
    if "hidden" in a and not (a.get("id") or "").startswith("S:"):
        return True
    if (not aria_shown and a.get("aria-hidden") == "true") or a.get("role") in _ROLE_PRUNE:
        return True
    st = a.get("style") if style else None
    return bool(st) and ("none" in st or "hidden" in st) and _RE_HIDDEN_STYLE.search(st) is not None


#: what an element does to the text flow when it opens/closes
_A_GRID, _A_LINE, _A_CELL, _A_PARA, _A_PRE, _A_PICTURE = 1, 2, 3, 4, 5, 6
_ACTION = {t: _A_PARA for t in PARA_TAGS}
_ACTION.update({t: _A_CELL for t in CELL_TAGS})
_ACTION.update({t: _A_LINE for t in LINE_TAGS})
_ACTION.update({t: _A_GRID for t in GRID_TAGS})
_ACTION["pre"] = _A_PRE
_ACTION["picture"] = _A_PICTURE


#: what the walk does with a tag (regular elements are not listed)
_W_INLINE, _W_LINK, _W_SKIP, _W_BR, _W_IMG, _W_SOURCE = 1, 2, 3, 4, 5, 6
_WALK_KIND = {t: _W_INLINE for t in INLINE_TAGS}
_WALK_KIND["a"] = _W_LINK
_WALK_KIND.update({t: _W_SKIP for t in SKIP_TAGS})
_WALK_KIND.update({"br": _W_BR, "img": _W_IMG, "source": _W_SOURCE})


def _walk(root, deadline, debug: bool = False, cards: bool = False, product_words: bool = False) -> _Page:
    """One pre-order pass with an explicit stack (no recursion): events, element records, container scores.

    Breaks: headings, paragraphs, blockquotes and code blocks end a paragraph, list items, table rows, <br> and
    definition terms a line; inside lists and tables paragraph ends become line ends; cells are joined by " | ";
    <pre> keeps its whitespace."""
    pg = _Page(debug)
    dbg = pg.debug
    ev = pg.events
    ev_append = ev.append
    recs = pg.recs
    rec_append = recs.append
    scores = pg.score
    scores_get = scores.get
    images = pg.images
    cands = pg.cands
    linklist_tags = LINKLIST_TAGS
    walk_kind = _WALK_KIND.get
    action_of = _ACTION.get
    block_tags = BLOCK_TAGS
    heading_tags = HEADING_TAGS
    card_tags = CARD_TAGS
    hint_tags = HINT_TAGS
    self_containers = SELF_CONTAINERS
    keep_always = _KEEP_ALWAYS
    tag_hint = TAG_HINT.get
    hint_cache = _HINT_CACHE
    is_hidden = _is_hidden
    hiding = _HIDING_ATTRS
    cumc = [0.0]  # running block scores per count of strongly negative ancestors
    cumx = [0]  # running text chars per count of strongly negative ancestors
    cum_t = cum_l = cum_n = cum_g = 0  # running text chars, link text chars, links, text chars in long links
    link_l0 = 0  # link text chars when the outermost open link opened
    card_ids: list = []  # open CARD_TAGS elements inside a link (a card: their text is not link text)
    cum_p = 0.0  # running block scores
    hid_saved = None  # running totals when it opened
    hid_top = 0  # the outermost open element hidden by an inline style (0: none)
    link_depth = 0
    nos, nos_fb, img_t = 0, -1, -1  # open <noscript>, the image they stand in for, text chars at the last image
    grid = pre = 0  # open lists/tables, open <pre>
    lterm, pterm, gmark, gsuffix = _LN, _LN + _PB, "\x00g", ""
    sources: list = []  # srcsets of the <source> elements before the next <img> of the current <picture>
    cur = [root.tag, -1, 0, 0, 0, 0, 0, 0.0, 0.0, 0, 0, 0]
    rec_append(cur)
    cls_append = pg.cls.append
    cls_append(None)
    if dbg is not None:
        dbg.append((None, None, None))
    act = action_of(root.tag)
    if act is not None and act != _A_CELL and act != _A_LINE:
        ev_append(pterm)
    cur_id = 0
    o = [0, 0, 0, 0, 0]  # own text of the current block: chars, link chars, commas, links, block id
    kind = _K_BLOCK
    nxt = root.first_child  # the next node to visit at the current level (first_child/next: no iterators)
    stack = []
    push = stack.append
    while True:
        while nxt is not None:
            child = nxt
            nxt = child.next
            tag = child.tag
            if tag == "-text":
                text = child.text_content
                if text:
                    ev_append(text)
                    if dbg is not None:
                        pg.owner.append((len(ev) - 1, o[4], link_depth > 0))
                    if not text.isspace():
                        k = len(text)
                        cum_t += k
                        cumx[cur[R_ND]] += k
                        o[0] += k
                        if link_depth and not card_ids:
                            cum_l += k
                            o[1] += k
                        if "," in text:
                            o[2] += text.count(",")
                        if not text.isascii():
                            for c in _COMMAS_WIDE:
                                if c in text:
                                    o[2] += text.count(c)
                continue
            wk = walk_kind(tag)
            if wk is None and "-" in tag and tag[0] != "-" and "href" in child.attributes:
                wk = _W_LINK  # a web component with an href acts as a link (<dropdown-item href=...>)
            if wk is not None:
                if wk <= _W_LINK:  # inline: transparent, only links are tracked
                    a = child.attributes
                    if a and not hiding.isdisjoint(a) and is_hidden(a):
                        continue
                    push((nxt, kind, cur, cur_id, o, act))
                    act = None
                    nxt = child.first_child
                    if wk == _W_LINK:
                        if not link_depth:
                            link_l0 = cum_l
                        link_depth += 1
                        o[3] += 1
                        cum_n += 1
                        kind = _K_LINK
                    else:
                        kind = _K_INLINE
                    break
                if wk == _W_BR:
                    ev_append(lterm)
                elif wk != _W_SKIP:  # <img>, <source>
                    a = child.attributes
                    if a and not hiding.isdisjoint(a) and is_hidden(a, IMG_ARIA_HIDDEN_SHOWN):
                        continue
                    if wk == _W_IMG:
                        images.append(len(ev))
                        ev_append((a, sources, pre, nos_fb))
                        img_t = cum_t
                        sources = []
                    else:
                        v = a.get("srcset") or a.get("data-srcset")
                        if v:
                            sources.append(v)
                continue
            if tag[0] == "-":  # comments, doctype
                continue
            if tag == "noscript" and _is_escaped_markup(child):
                continue
            a = child.attributes
            h = tag_hint(tag, 0)
            if a:
                # a tab panel is content the reader opens with its tab (code samples per language, specifications)
                if not hiding.isdisjoint(a) and tag not in keep_always and a.get("role") != "tabpanel":
                    if is_hidden(a, False, False):
                        continue
                    st = a.get("style")
                    if st and ("none" in st or "hidden" in st) and _RE_HIDDEN_STYLE.search(st) is not None:
                        # hidden by an inline style: walked, but nothing outside it sees its text (a wrapper the
                        # page's script reveals may hold all the content)
                        h = HIDDEN
                        if not hid_top:
                            hid_top = len(recs)
                            hid_saved = (cum_t, cum_l, cum_p, cum_n, cum_g)
                if tag in hint_tags:
                    cls = a.get("class")
                    idv = a.get("id")
                    if cls or idv:
                        w = hint_cache.get((cls, idv))
                        if w is None:
                            w = class_words_hint(cls, idv)
                        if product_words and not w & NEG_STRONG:
                            w = product_words_hint(cls, idv, w)
                        h |= w
                if h & HIDDEN:
                    h = (h & ~POS) | NEG_STRONG
            eid = len(recs)
            if not eid & 1023:
                _check(deadline)
            nd = cur[R_ND]
            if h & NEG_STRONG and not h & POS:
                nd += 1
                if nd == len(cumc):
                    cumc.append(0.0)
                    cumx.append(0)
            push((nxt, kind, cur, cur_id, o, act))
            cur = [tag, cur_id, h, nd, len(ev), cum_t, cum_l, cum_p, cumc[nd], cum_n, cum_g, cumx[nd]]
            rec_append(cur)
            cls_append(a.get("class") if a else None)
            if dbg is not None:
                dbg.append((a.get("class"), a.get("id"), a.get("role")) if a else (None, None, None))
            cur_id = eid
            if cards and link_depth and tag in card_tags:
                card_ids.append(eid)
            if tag == "noscript":
                # the usual lazy-load fallback: <img class=lazy ...><noscript><img src=...></noscript>; its images
                # stand in for the image right before it (same parent, no text between) when that one has no source
                if not nos:
                    nos_fb = images[-1] if images and img_t == cum_t and images[-1] >= recs[cur[R_PARENT]][R_OPEN] else -1
                nos += 1
            act = action_of(tag)
            if act is not None:
                if act == _A_CELL:
                    ev_append(_CELL)
                elif act == _A_LINE:
                    ev_append(lterm)
                elif act == _A_PICTURE:
                    sources = []
                else:
                    ev_append(gmark + chr(48 + grid) + gsuffix if grid else pterm)
                    if act == _A_GRID:
                        grid += 1
                    elif act == _A_PRE:
                        pre += 1
                        gsuffix = chr(48 + pre)
                        lterm = "\x00p" + gsuffix
                        pterm, gmark = lterm + _PB, "\x00h"
            nxt = child.first_child
            if tag in block_tags:
                kind = _K_BLOCK
                o = [0, 0, 0, 0, eid]
            else:
                kind = _K_EL
            break
        else:  # the current level is exhausted: close it
            if kind <= _K_BLOCK:
                if act is not None and act != _A_CELL:
                    if act == _A_LINE:
                        ev_append(lterm)
                    elif act == _A_PICTURE:
                        sources = []
                    else:
                        if act == _A_GRID:
                            grid -= 1
                        ev_append(gmark + chr(48 + grid) + gsuffix if grid else pterm)
                        if act == _A_PRE and pre:
                            pre -= 1
                            if pre:
                                gsuffix = chr(48 + pre)
                                lterm = "\x00p" + gsuffix
                                pterm = lterm + _PB
                            else:
                                lterm, pterm, gmark, gsuffix = _LN, _LN + _PB, "\x00g", ""
                if kind == _K_BLOCK:
                    t, l, c, nl, _ = o
                    if dbg is not None:
                        pg.blocks.append((cur_id, t, l, c, nl, cur[R_OPEN], len(ev)))
                    if t >= 25 and l * 2 < t:
                        s = 1.0 + c + (t / 100.0 if t < 300 else 3.0)
                        cum_p += s
                        cumc[cur[R_ND]] += s
                        # a paragraph scores its container; a container with its own text scores itself
                        c0 = cur_id if cur[R_TAG] in self_containers else cur[R_PARENT]
                        if c0 >= hid_top:  # inside a hidden subtree, only its own containers score
                            scores[c0] = scores_get(c0, 0.0) + s
                            g = recs[c0][R_PARENT]
                            if g >= hid_top:
                                scores[g] = scores_get(g, 0.0) + s / 2
                                g = recs[g][R_PARENT]
                                if g >= hid_top:
                                    scores[g] = scores_get(g, 0.0) + s / 3
                cur += (len(ev) - 1, cum_t, cum_l, cum_p, cumc[cur[R_ND]], len(recs), cum_n, cum_g, cumx[cur[R_ND]])
                if hid_top and cur_id == hid_top:
                    hid_top = 0
                    cum_t, cum_l, cum_p, cum_n, cum_g = hid_saved
                if card_ids and card_ids[-1] == cur_id:
                    card_ids.pop()
                ctag = cur[R_TAG]
                if (RECO_HEADINGS and ctag in heading_tags and cum_t - cur[R_T0] < 80 and cur[R_PARENT] > 0
                        and recs[cur[R_PARENT]][R_T0] == cur[R_T0] and is_reco_heading(ev, cur[R_OPEN])):
                    # a section opened by "Related products" & co.: the outermost element (3 levels up at most)
                    # whose text starts with the heading
                    q = cur[R_PARENT]
                    for _ in range(RECO_LEVELS - 1):
                        p = recs[q][R_PARENT]
                        if p <= 0 or recs[p][R_T0] != cur[R_T0] or recs[p][R_TAG] in ("body", "main", "article"):
                            break
                        q = p
                    recs[q][R_HINT] |= NEG_STRONG
                if ctag == "noscript":
                    nos -= 1
                    if not nos:
                        nos_fb = -1
                    if cum_t - cur[R_T0] < 400 and _is_script_notice(ev, cur[R_OPEN]):
                        cur[R_HINT] |= NEG_STRONG  # "please enable JavaScript": dropped like other boilerplate
                h = cur[R_HINT]
                if h & NAV_WORD and (cum_l - cur[R_L0]) * 3 > cum_t - cur[R_T0]:
                    h = cur[R_HINT] = h | NEG_STRONG  # a table of contents, a menu: mostly links
                if h & NEG_STRONG or ctag == "header":
                    cands.append(cur_id)
                elif ctag in linklist_tags:
                    t = cum_t - cur[R_T0]
                    if t and (cum_l - cur[R_L0]) * 10 > t * 6:
                        cands.append(cur_id)
            elif kind == _K_LINK:
                link_depth -= 1
                if not link_depth and cum_l - link_l0 >= LONG_ANCHOR:
                    cum_g += cum_l - link_l0
            if not stack:
                break
            nxt, kind, cur, cur_id, o, act = stack.pop()
    return pg


#: on pages not declared articles, a link holding a heading or paragraph is a card (a listing's item): the text of
#: those blocks is not counted as link text
CARD_LINKS = True
CARD_TAGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6", "p", "div"))
#: not on pages declaring a schema.org product: their card grids are recommendations (other products)
PRODUCT_NO_CARDS = True
#: on pages declaring a product and not an article, customer reviews are boilerplate (boilerplate.product_words_hint)
PRODUCT_WORDS = True

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
    return image_node_meta(page_url, raw, src, attrs.get("alt"), None, width, height)


def _emit(pg: _Page, roots: list, skip: set, page_url: str, deadline, prefer_largest: bool) -> list:
    """Copy the events of the chosen elements ``roots`` (siblings, in page order) minus the dropped subtrees
    ``skip``, turning the images into image nodes between the text nodes."""
    ev = pg.events
    recs = pg.recs
    # lists/tables and <pre> around the roots (siblings: the same for all) do not count: the text is laid out as if
    # the page were just the roots
    base_grid = base_pre = 0
    q = recs[roots[0]][R_PARENT]
    while q >= 0:
        act = _ACTION.get(recs[q][R_TAG])
        if act == _A_GRID:
            base_grid += 1
        elif act == _A_PRE:
            base_pre += 1
        q = recs[q][R_PARENT]
    ranges = [(recs[k][R_OPEN], recs[k][R_CLOSE]) for k in roots]
    # cut points: (first event, last event, is an image), in page order
    cuts = [(recs[k][R_OPEN], recs[k][R_CLOSE], False) for k in skip]
    images = pg.images
    cuts += [(i, i, True) for i in images[bisect_left(images, ranges[0][0]):bisect_right(images, ranges[-1][1])]]
    cuts.sort()
    out: list = []
    buf: list = []
    seen_src: set = set()
    produced: set = set()  # event indices of the images that gave an image node (or were duplicates of one)
    c = 0
    ncuts = len(cuts)
    n = 0
    for start, end in ranges:
        pos = start
        while c < ncuts and cuts[c][0] < start:
            c += 1
        while c < ncuts and cuts[c][0] <= end:
            a, b, is_image = cuts[c]
            c += 1
            if a < pos:  # inside a dropped subtree
                continue
            n += 1
            if not n & 255:
                _check(deadline)
            buf += ev[pos:a]
            pos = b + 1
            if is_image:
                attrs, sources, pre, fb = ev[a]
                if fb >= 0 and fb in produced:  # a <noscript> copy of an image already taken
                    continue
                meta = _image_meta(attrs, sources, pg.base, page_url, prefer_largest)
                if meta is not None:
                    produced.add(a)
                if meta is not None and meta["src"] not in seen_src:
                    seen_src.add(meta["src"])
                    _flush(buf, out, base_grid, base_pre, pre)
                    out.append(("image", meta))
        buf += ev[pos:end + 1]
    _flush(buf, out, base_grid, base_pre, 0)
    return out


def extract_default(html: str, page_url: str, deadline: float | None = None, *,
                    prefer_largest: bool = False, utf8: bytes | None = None,
                    head: dict | None = None) -> list[tuple[str, object]]:
    """HTML string -> ``[("text", str) | ("image", meta), ...]``: the page's main content.

    ``deadline`` is a ``time.monotonic()`` value; past it :class:`ExtractionTimeout` is raised.
    ``prefer_largest``: when an ``<img>`` has both a real ``src`` and a srcset, take the largest srcset candidate
    instead of ``src`` (a ``src`` that is a placeholder always yields to lazy attributes and srcsets).
    ``utf8``: the payload, when ``html`` is exactly its decoding (parsed as it is: no encoding again).
    ``head``: a dict that receives the head's consent signals (:mod:`.head`), read from this parse."""
    _check(deadline)
    # The walk allocates one small list per element and frees it all at the end: nothing here makes reference
    # cycles, so the cyclic collector only rescans the growing records (a third of the time on large pages).
    gc_was_enabled = gc.isenabled()
    if gc_was_enabled:
        gc.disable()
    try:
        capped = cap_nesting(html, utf8=utf8)
        _check(deadline)
        tree = LexborHTMLParser(utf8 if utf8 is not None and capped is html else capped)
        html = capped
        _check(deadline)
        if head is not None:
            head.update(head_signals_lexbor(tree))
        root = tree.body
        if root is None:
            root = tree.root
            if root is None:
                return []
        article, product = page_kind(html)
        pg = _walk(root, deadline, cards=CARD_LINKS and not article and not (PRODUCT_NO_CARDS and product),
                   product_words=PRODUCT_WORDS and product and not article)
        pg.product = product
        pg.base = document_base(tree, html, page_url)
        _check(deadline)
        roots, skip = select_content(pg, article)
        _check(deadline)
        return dedupe_paragraphs(_emit(pg, roots, skip, page_url, deadline, prefer_largest))
    finally:
        if gc_was_enabled:
            gc.enable()
