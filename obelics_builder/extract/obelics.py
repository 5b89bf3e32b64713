"""OBELICS reference extraction: HTML -> ordered list of text and image nodes, rule for rule.

This reproduces the reference pipeline's ``DOMTreeSimplificator`` + ``PreExtractionSimplificator`` + assembly
(spec: ``reference-obelics.md`` §2.1-2.4) on selectolax's Lexbor parser.  The rules are restated here, not copied.

Result of :func:`extract_obelics`: a list of nodes, each ``("text", str)`` or ``("image", meta)`` where ``meta`` is
the reference image dict (``document_url, unformatted_src, src, [formatted_filename], [alt_text],
[rendered_width], [rendered_height]``).

Deliberate deviations from the reference code (each one where the reference is plainly broken or slow; the output
is otherwise the same):

1. HTML comments are removed with DOTALL semantics (the reference's misplaced inline ``(?s)`` flag raises on
   Python >= 3.11, which made every document empty).  The removal is a linear scan equivalent to the non-greedy
   regex (the regex is quadratic on pages with many unterminated ``<!--``).
2. No BeautifulSoup re-serialisation pass (§2.0 step 4): the caller decodes bytes itself
   (:mod:`obelics_builder.extract.charset`) and the string is parsed directly.  So ``<br>`` spellings are taken as
   they appear in the page (``<BR>`` and ``<br clear=..>`` are not line breaks, exactly as in the reference's own
   string rule), and non-ASCII text is not turned into entities.
3. The restart-from-root loops (css-rule decomposition, unwrap, special divs, empty leaves, unnesting) are
   replaced by single passes that reach the same fixed point: empty leaves are decided bottom-up (a node is removed
   when all its element children are removed and its own text is blank; a media node when it has no usable
   source), and unnesting collapses every chain of same-tag single-child nodes to its innermost node.  Tags outside
   the whitelist are stripped (with their content) before unwrapping the inline tags, which gives the same tree
   because inline tags are unwrapped, not stripped, by the reference.  Consecutive text merging is linear.
4. No recursion anywhere: explicit stacks, so 100,000 nested elements are handled.
5. Tag names that are not valid CSS selectors (``<o:p>`` from MS Word, ``<foo.bar>``) are stripped like any other
   non-whitelisted tag; the reference raised "Bad CSS Selectors" and emitted an empty document for such pages.
   Comment and bogus-comment nodes (``<?php ..?>``, ``<![CDATA[..]]>``) are never stripped by the tag rule (as with
   the reference's parser) and disappear as empty leaves.
6. ``format_image_size`` also treats an ``OverflowError`` (``width="1e999."``) as an unrecognised size instead of
   failing the page; the ``<html>`` element itself is never decomposed or replaced (the reference could replace
   ``<html class="more-link">`` by a text node).
7. Pathologically deep pages: the HTML parser is quadratic in nesting depth (100,000 nested ``<div>`` take minutes
   to parse).  When a cheap bound says the nesting may exceed :data:`MAX_DEPTH`, start/end tags deeper than that
   are removed from the string before parsing (their text stays, like browsers that cap the tree depth).  No real
   page comes near this depth, so normal pages are untouched.
8. Duplicate attributes (``<img width=184 ... width=0>``): Lexbor keeps the first as the HTML standard says; the
   reference's Modest parser kept the last.
9. An optional ``deadline`` (``time.monotonic()`` value) is checked between passes and inside the long loops; when
   passed, :class:`ExtractionTimeout` is raised so that one page can never stall a worker.
"""
from __future__ import annotations

import os
import re
import time
from urllib.parse import urlparse

from selectolax.lexbor import LexborHTMLParser

from .head import head_signals_lexbor

# ---------------------------------------------------------------------------------------------------------------
# Tag lists (reference `tags_attributes.py`, §2.1)
# ---------------------------------------------------------------------------------------------------------------

UNWRAP_TAGS = (
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "dfn", "em", "font", "i", "ins", "kbd",
    "mark", "q", "s", "samp", "shadow", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var",
    "wbr",
)
STRUCTURE_TAGS = frozenset((
    "address", "article", "aside", "blink", "blockquote", "body", "br", "caption", "center", "dd", "dl", "dt", "div",
    "figcaption", "h", "h1", "h2", "h3", "h4", "h5", "h6", "hgroup", "html", "legend", "main", "marquee", "ol", "p",
    "section", "summary", "title", "ul",
))
MEDIA_TAGS = frozenset(("audio", "embed", "figure", "iframe", "img", "object", "picture", "video"))
MEDIA_ATTR_TAGS = MEDIA_TAGS | {"source"}
INTERESTING_TAGS = STRUCTURE_TAGS | MEDIA_ATTR_TAGS

TAG_TO_SEP = {
    "blockquote": "\n\n", "dl": "\n\n", "h1": "\n\n", "h2": "\n\n", "h3": "\n\n", "h4": "\n\n", "h5": "\n\n",
    "h6": "\n\n", "ol": "\n\n", "p": "\n\n", "ul": "\n\n",
    "address": "\n", "article": "\n", "aside": "\n", "center": "\n", "dd": "\n", "dt": "\n", "div": "\n",
    "figcaption": "\n", "hgroup": "\n", "legend": "\n", "main": "\n", "marquee": "\n", "section": "\n",
    "summary": "\n",
    "blink": "", "body": "", "caption": "", "h": "", "html": "", "title": "",
}
_SEP_RANK = {"": 0, " ": 1, "\n": 2, "\n\n": 3}
_RANK_SEP = ("", " ", "\n", "\n\n")
#: tag -> rank of its separator (tags not listed contribute nothing)
_TAG_RANK = {tag: _SEP_RANK[sep] for tag, sep in TAG_TO_SEP.items()}

#: reference config (`config_extract_web_documents.yaml`)
CSS_RULES = ("[class~='footer']", "[class~='site-info']")
CSS_RULES_REPLACE_WITH_TEXT = {"[class~='more-link']": "\n\nEND_OF_DOCUMENT_TOKEN_TO_BE_REPLACED\n\n"}
SPECIAL_DIV_VALUES = frozenset(("footer", "header", "navigation", "nav", "navbar", "menu"))

BR_MARKER = "#BR_TAG#"

IMG_SRC_ATTRIBUTES = (
    "src", "data-src", "data-src-fg", "data-scroll-image", "srcset", "data-lateloadsrc", "data-img-src",
    "data-original", "data-gt-lazy-src", "data-lazy", "data-lazy-src", "src2",
)


class ExtractionTimeout(Exception):
    """The page exceeded its time budget."""


# ---------------------------------------------------------------------------------------------------------------
# String phase
# ---------------------------------------------------------------------------------------------------------------

_RE_MULTI_NL = re.compile(r"\n{2,}")
_RE_MULTI_SP = re.compile(r" {2,}")
_RE_BR = re.compile(r"<br>|<br/>|<br />|</br>")
_RE_DIGITS = re.compile(r"\d+")


def remove_html_comments(html: str) -> str:
    """Delete every ``<!-- ... -->`` (shortest match, across lines): same result as ``re.sub(r"<!--.*?-->", "",
    html, flags=re.DOTALL)`` in linear time."""
    start = html.find("<!--")
    if start < 0:
        return html
    out = []
    pos = 0
    while start >= 0:
        end = html.find("-->", start + 4)
        if end < 0:  # no terminator: neither this nor any later "<!--" can match
            break
        out.append(html[pos:start])
        pos = end + 3
        start = html.find("<!--", pos)
    out.append(html[pos:])
    return "".join(out)


#: maximum element nesting handed to the parser (see deviation 7)
MAX_DEPTH = 2000
_RE_NESTING_START = re.compile(
    r"<(?!(?:img|br|meta|input|link|hr|wbr|source|area|col|embed|param|track|keygen|base|p|li|td|th|tr|option|"
    r"dt|dd)[\s/>])[a-z]", re.I)
_RE_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/>]*)[^>]*>")
_VOID = frozenset(("img", "br", "meta", "input", "link", "hr", "wbr", "source", "area", "col", "embed", "param",
                   "track", "keygen", "base", "frame", "basefont", "bgsound", "image"))
_BLOCK = 1 << 16


def may_be_too_deep(html: str, limit: int = MAX_DEPTH) -> bool:
    """A cheap upper bound on the nesting depth (counts per 64 KB block) exceeds ``limit``."""
    if html.count("<") <= limit:
        return False
    net = 0
    for i in range(0, len(html), _BLOCK):
        block = html[i:i + _BLOCK]
        ends = block.count("</")
        starts = block.count("<") - ends
        if net + starts > limit:  # the rough bound is too high: count real nesting start tags
            starts = len(_RE_NESTING_START.findall(block))
        if net + starts > limit:
            return True
        net = max(0, net + starts - ends)
    return False


def flatten_deep_nesting(html: str, limit: int = MAX_DEPTH) -> str:
    """Remove start and end tags nested deeper than ``limit`` (an approximate tag stack; text is kept)."""
    stack: list[tuple[str, bool]] = []
    cut: list[tuple[int, int]] = []
    for m in _RE_TAG.finditer(html):
        name = m.group(2).lower()
        if m.group(1):  # end tag: close the nearest open element of that name (looking a little way down)
            for k in range(len(stack) - 1, max(-1, len(stack) - 64), -1):
                if stack[k][0] == name:
                    if stack[k][1]:
                        cut.append(m.span())
                    del stack[k:]
                    break
            continue
        if name in _VOID or m.group(0).endswith("/>"):
            continue
        deep = len(stack) >= limit
        if deep:
            cut.append(m.span())
        stack.append((name, deep))
    if not cut:
        return html
    out, pos = [], 0
    for a, b in cut:
        out.append(html[pos:a])
        pos = b
    out.append(html[pos:])
    return "".join(out)


def preprocess_html(html: str) -> str:
    """The string phase (§2.1 steps 1-4)."""
    html = _RE_MULTI_NL.sub("\n", html)
    html = _RE_MULTI_SP.sub(" ", html)
    html = remove_html_comments(html)
    html = _RE_BR.sub(BR_MARKER, html)
    if may_be_too_deep(html):
        html = flatten_deep_nesting(html)
    return html


# ---------------------------------------------------------------------------------------------------------------
# Image helpers (§2.3)
# ---------------------------------------------------------------------------------------------------------------

_URL_VALID_RE = re.compile(
    r"^(?:http|ftp)s?://"
    r"(?:(?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+(?:[A-Z]{2,6}\.?|[A-Z0-9-]{2,}\.?))"
    r"(?:/?|[/?]\S+)$",
    re.IGNORECASE,
)
_RE_DOTS_SLASH = re.compile(r"\.+/")
_RE_SIZE_JUNK = re.compile("[\u201d\"<>]")
_RE_PX = re.compile("[px;]")
_RE_QUERY_KEY = re.compile(r"\?[A-Za-z0-9]+=")
_RE_UNDERSCORE_DASH = re.compile(r"[_-]")
_RE_PCT2 = re.compile(r"%20*")
_RE_DIMS = re.compile(r"[0-9]+x[0-9]+")
_RE_NUMS = re.compile(r"[0-9]+")


def is_url_valid(url: str) -> bool:
    """The reference's Django-style URL check: http(s)/ftp(s), DNS-ish host with a TLD, no whitespace in the rest."""
    return _URL_VALID_RE.match(url) is not None


def format_relative_to_absolute_path(page_url: str, relative_path: str) -> str:
    """Reference resolution: ``//host/x`` -> ``http://host/x``; otherwise dot-segments are deleted and the path is
    put under ``https://<netloc of page_url>`` (domain root, always https; page directory and <base> ignored)."""
    if relative_path.startswith("//"):
        return "http:" + relative_path
    if "./" in relative_path:
        relative_path = _RE_DOTS_SLASH.sub("", relative_path)
    if not relative_path.startswith("/"):
        relative_path = "/" + relative_path
    return "https://" + urlparse(page_url).netloc + relative_path


def format_image_size(size: str):
    """Reference ``format_image_size``: int, a ``"NN%"`` string, or ValueError for an unrecognised size."""
    size = _RE_SIZE_JUNK.sub("", size)
    try:
        return int(size)
    except ValueError:
        pass
    if "px" in size:
        return int(_RE_PX.sub("", size))
    if "%" in size:
        return size.strip()
    if "." in size:
        try:
            return int(float(size))
        except OverflowError as e:  # deviation 6
            raise ValueError(str(e)) from None
    if size == "full-width" or size == "auto":
        return "100%"
    raise ValueError(f"Unrecognized size for image: `{size}`")


def format_filename(src: str) -> str:
    """Reference ``format_filename``: a rough caption from the last path component of the image URL."""
    name = os.path.split(src)[1].split(".")[0]
    if _RE_QUERY_KEY.search(name):
        return ""
    name = _RE_UNDERSCORE_DASH.sub(" ", name)
    name = _RE_PCT2.sub(" ", name)
    name = _RE_DIMS.sub("", name)
    name = _RE_NUMS.sub(" ", name)
    name = _RE_MULTI_SP.sub(" ", name)
    for r in ("\n", "+", "%B", "%"):
        name = name.replace(r, " ")
    name = name.strip()
    return "" if len(name) <= 1 else name


def img_src(attrs: dict) -> str | None:
    """The first usable image source among the reference's 12 attributes (non-empty, no comma, no space)."""
    for name in IMG_SRC_ATTRIBUTES:
        value = attrs.get(name)
        if value and "," not in value and " " not in value:
            return value
    return None


def _own_src(attrs: dict) -> str | None:
    """video/audio: own ``src`` (a <source> child never survives the empty-leaf rule, see module docstring)."""
    value = attrs.get("src")
    if value and "," not in value and " " not in value:
        return value
    return None


def simplify_img(attrs: dict, page_url: str) -> dict | None:
    """The reference image dict for an ``<img>`` with these attributes, or None (no source / invalid URL)."""
    src = img_src(attrs)
    if not src:
        return None
    unformatted_src = src
    if not src.startswith("http"):
        src = format_relative_to_absolute_path(page_url, src)
    if not is_url_valid(src):
        return None
    meta = {"document_url": page_url, "unformatted_src": unformatted_src, "src": src}
    filename = format_filename(src)
    if filename:
        meta["formatted_filename"] = filename
    alt = attrs.get("alt")
    if alt:
        meta["alt_text"] = alt
    for size in ("width", "height"):
        value = attrs.get(size)
        if value is not None:
            try:
                meta[f"rendered_{size}"] = format_image_size(value)
            except ValueError:
                pass
    return meta


# ---------------------------------------------------------------------------------------------------------------
# Tree phase (§2.1 steps 5-13)
# ---------------------------------------------------------------------------------------------------------------

def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ExtractionTimeout("page exceeded its time budget")


def _css_rules(tree: LexborHTMLParser) -> None:
    """Steps 5-6: decompose nodes matching the css rules, replace "more-link" nodes by the EOD text."""
    for node in tree.css(", ".join(CSS_RULES)):
        if node.tag != "html":
            node.decompose()  # a node already detached with an ancestor is harmless to detach again
    for rule, text in CSS_RULES_REPLACE_WITH_TEXT.items():
        for node in tree.css(rule):
            if node.tag != "html":
                node.replace_with(text)


_UNWRAP_SET = frozenset(UNWRAP_TAGS)
_KEEP_FOR_NOW = INTERESTING_TAGS | _UNWRAP_SET


def _strip(root, deadline) -> None:
    """Step 8 (before unwrapping, see deviation 3): remove every element whose tag, digits removed, is outside the
    whitelist, with its whole content.  Unwrap tags are kept here and unwrapped next.  Comments are kept."""
    stack = [root.iter()]
    n = 0
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        tag = child.tag
        if tag in _KEEP_FOR_NOW or tag == "-comment":
            stack.append(child.iter())
        elif _RE_DIGITS.sub("", tag) in INTERESTING_TAGS:
            stack.append(child.iter())
        else:
            child.decompose()  # the iterator already holds the next sibling
        n += 1
        if not n & 4095:
            _check(deadline)


def _unwrap(tree: LexborHTMLParser) -> None:
    """Step 7: unwrap inline tags (children kept in place), deleting the empty ones."""
    for node in tree.css(",".join(UNWRAP_TAGS)):
        node.unwrap(delete_empty=True)


def _special_divs(tree: LexborHTMLParser) -> None:
    """Step 9: decompose divs whose id, class or title equals one of the special values (exact, case-sensitive)."""
    selector = ",".join(f'div[{a}="{v}"]' for a in ("id", "class", "title") for v in sorted(SPECIAL_DIV_VALUES))
    for node in tree.css(selector):
        attrs = node.attributes
        if any(attrs.get(a) in SPECIAL_DIV_VALUES for a in ("id", "class", "title")):
            node.decompose()


def _remove_dates(tree: LexborHTMLParser) -> None:
    """Step 10: in every div whose class contains "date", delete its direct text children."""
    for node in tree.css('div[class*="date"]'):
        cls = node.attributes.get("class")
        if cls and "date" in cls:
            for child in node.iter(include_text=True):
                if child.is_text_node:
                    child.decompose()


def _prune(root, deadline) -> None:
    """Steps 11-12 in one post-order pass: remove empty leaves (to their fixed point) and unnest same-tag chains."""
    # frame: [node, children iterator, tag, alive element children, last alive child tag, own text is blank,
    #         blank text children]
    stack = [[root, root.iter(include_text=True), root.tag, 0, None, True, []]]
    n = 0
    while stack:
        frame = stack[-1]
        child = next(frame[1], None)
        if child is not None:
            n += 1
            if not n & 4095:
                _check(deadline)
            if child.is_text_node:
                if child.text_content.strip():
                    frame[5] = False
                else:
                    frame[6].append(child)
                continue
            tag = child.tag
            if tag in MEDIA_ATTR_TAGS:
                if tag == "img":
                    keep = img_src(child.attributes) is not None
                elif tag == "video" or tag == "audio":
                    keep = _own_src(child.attributes) is not None
                else:
                    keep = False
                if keep:
                    frame[3] += 1
                    frame[4] = tag
                else:
                    child.decompose()
                continue
            if tag == "-comment":
                child.decompose()
                continue
            stack.append([child, child.iter(include_text=True), tag, 0, None, True, []])
            continue
        stack.pop()
        node, _, tag, alive, last_tag, blank, blank_texts = frame
        if not stack:  # <html>: never removed
            break
        parent = stack[-1]
        if alive == 0 and blank:
            node.decompose()
            continue
        parent[3] += 1
        parent[4] = tag
        if alive == 1 and last_tag == tag and blank:
            for t in blank_texts:
                t.decompose()
            node.unwrap()


def simplify_dom(html: str, deadline: float | None = None, head: dict | None = None) -> LexborHTMLParser:
    """DOMTreeSimplificator: the simplified, re-parsed tree.  ``head``: a dict that receives the head's consent
    signals (:mod:`.head`), read from the first parse, before any simplification."""
    html = preprocess_html(html)
    _check(deadline)
    tree = LexborHTMLParser(html)
    if head is not None:
        head.update(head_signals_lexbor(tree))
    root = tree.root
    if root is None:
        return LexborHTMLParser("")
    _css_rules(tree)
    _check(deadline)
    _strip(root, deadline)
    _check(deadline)
    _unwrap(tree)
    _check(deadline)
    _special_divs(tree)
    _remove_dates(tree)
    _check(deadline)
    _prune(tree.root, deadline)
    _check(deadline)
    return LexborHTMLParser(tree.html)  # step 13: remake (merges text nodes, re-applies the parser's rules)


# ---------------------------------------------------------------------------------------------------------------
# Pre-extraction (§2.2) and assembly (§2.4)
# ---------------------------------------------------------------------------------------------------------------

def format_text(text: str) -> str:
    """§2.2 step 3 for one text node."""
    if not text:
        return text
    text = _RE_MULTI_SP.sub(" ", text.replace("\n", " ").replace("\t", " "))
    beg = text[0] == " "
    end = text[-1] == " " and len(text) > 1
    if BR_MARKER in text:
        text = "\n".join(piece.strip() for piece in text.split(BR_MARKER))
    else:
        text = text.strip()
    if beg:
        text = " " + text
    if end:
        text = text + " "
    return text


def _junction_rank(f1, f2) -> int:
    """Highest separator rank among the tags strictly below the lowest common ancestor of two text parents.

    A frame is ``(tag, depth, parent)``; the cost is the distance between the two frames in the tree."""
    rank = 0
    get = _TAG_RANK.get
    while f1 is not f2:
        if f1[1] >= f2[1]:
            r = get(f1[0], 0)
            f1 = f1[2]
        else:
            r = get(f2[0], 0)
            f2 = f2[2]
        if r > rank:
            rank = r
            if rank == 3:
                break
    return rank


def _flatten(tree: LexborHTMLParser, page_url: str, deadline) -> list:
    """Pre-order walk: ``("t", raw_text, parent_frame)`` and ``("i", meta)`` items (only text and usable <img>)."""
    root = tree.root
    items: list = []
    if root is None:
        return items
    root_frame = (root.tag, 0, None)
    stack = [(root.iter(include_text=True), root_frame)]
    n = 0
    while stack:
        it, frame = stack[-1]
        child = next(it, None)
        if child is None:
            stack.pop()
            continue
        n += 1
        if not n & 4095:
            _check(deadline)
        if child.is_text_node:
            items.append(("t", child.text_content, frame))
            continue
        tag = child.tag
        if tag in MEDIA_ATTR_TAGS:  # media nodes are leaves; only <img> becomes a node
            if tag == "img":
                meta = simplify_img(child.attributes, page_url)
                if meta is not None:
                    items.append(("i", meta))
            continue
        if tag == "-comment":
            continue
        stack.append((child.iter(include_text=True), (tag, frame[1] + 1, frame)))
    return items


def _merge(items: list) -> list:
    """§2.2 steps 3-4: format texts, merge consecutive texts with the junction separator, strip, drop blanks."""
    out: list = []
    cur = None  # text being accumulated
    cur_frame = None
    for item in items:
        if item[0] == "i":
            if cur is not None:
                cur = cur.strip()
                if cur:
                    out.append(("text", cur))
                cur = None
            out.append(("image", item[1]))
            continue
        text = format_text(item[1])
        if not text:
            continue
        if cur is None:
            cur, cur_frame = text, item[2]
            continue
        rank = 0
        t1, t2 = cur, text
        for ch, r in (("\n\n", 3), ("\n", 2), (" ", 1)):
            if t1.endswith(ch):
                t1 = t1[: -len(ch)]
                if r > rank:
                    rank = r
            if t2.startswith(ch):
                t2 = t2[len(ch):]
                if r > rank:
                    rank = r
        if rank < 3:
            r = _junction_rank(cur_frame, item[2])
            if r > rank:
                rank = r
        cur = t1 + _RANK_SEP[rank] + t2
        cur_frame = item[2]
    if cur is not None:
        cur = cur.strip()
        if cur:
            out.append(("text", cur))
    return out


def extract_obelics(html: str, page_url: str, deadline: float | None = None,
                    head: dict | None = None) -> list[tuple[str, object]]:
    """HTML string -> ``[("text", str) | ("image", meta_dict), ...]`` with the OBELICS reference rules
    (``head``: see :func:`simplify_dom`)."""
    tree = simplify_dom(html, deadline, head)
    items = _flatten(tree, page_url, deadline)
    _check(deadline)
    return _merge(items)
