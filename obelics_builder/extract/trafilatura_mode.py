"""The ``trafilatura`` extractor: trafilatura 2.3 (images kept) mapped into our interleaved schema.

An optional extra (``pip install 'obelics-builder[trafilatura]'``); trafilatura is imported on first use and
:func:`require_trafilatura` turns its absence into one :class:`~obelics_builder.recipe.ConfigError` before any work.

How a page is run:

1. the nesting of very deep pages is capped first (:func:`default.cap_nesting` at :data:`MAX_NESTING`; libxml2 stops
   building the tree at depth 256 and trafilatura then returns nothing);
2. ``trafilatura.extract(html, url=page_url, output_format="xml", include_images=True, include_tables=True,
   include_links=False)`` with trafilatura's other defaults (its fallbacks, comments included: what users who
   trust trafilatura expect), under a hard deadline (:func:`watchdog.run_with_deadline`);
3. the XML's ``<main>`` then ``<comments>`` are walked in order with our text conventions (those of the ``default``
   mode): headings, paragraphs, quotes and code blocks are paragraphs (``"\\n\\n"``), list items, table rows and
   ``<lb/>`` are lines (``"\\n"``), table cells are joined by ``" | "``, code blocks keep their indentation; every
   ``<graphic>`` cuts the text and becomes an image node.

Images: trafilatura keeps only ``src``/``alt``/``title`` and joins relative sources against the page URL (never
``<base>``).  So each ``<graphic>`` is matched back to its page ``<img>`` (by the value trafilatura computes from
``data-src``/``src``/``data-src*``), and the raw attribute is resolved again with our URL rules
(:func:`images.resolve_url` against the ``<base href>``: http(s) only, ``data:`` rejected, ports and IDN hosts kept);
a ``data-srcset`` value (which trafilatura takes for a URL) gives its largest candidate.  Metadata:
``document_url, src, unformatted_src, [alt_text], [title], [rendered_width], [rendered_height]``; an image repeated
on the page is kept once.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import urljoin

from ..recipe import ConfigError
from .head import head_signals_lxml
from .images import clean_url_attr, image_node_meta, largest_candidate, parse_size, resolve_url
from .nesting import cap_nesting
from .obelics import ExtractionTimeout
from .urls import base_href
from .watchdog import DeadlineExceeded, run_with_deadline

#: the one line a missing extra gives
MISSING_EXTRA = "--mode trafilatura needs the optional extra: pip install 'obelics-builder[trafilatura]'"
#: trafilatura releases whose XML output this mapping follows
SUPPORTED = ((2, 3), (2, 4))
#: element depth handed to trafilatura (libxml2's HTML parser gives up at 256)
MAX_NESTING = 200

_TRAF = None


class TrafilaturaError(RuntimeError):
    """trafilatura raised on a page (counted by the stage as ``extract_exception`` with the page URL)."""


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


def require_trafilatura():
    """The trafilatura module, or :class:`ConfigError` (:data:`MISSING_EXTRA`) when the extra is not installed."""
    global _TRAF
    if _TRAF is not None:
        return _TRAF
    try:
        import trafilatura
        from lxml import etree  # noqa: F401  (trafilatura's own dependency; the XML output is read with it)
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None
    version = _version_tuple(getattr(trafilatura, "__version__", "0"))
    if not SUPPORTED[0] <= version < SUPPORTED[1]:
        raise ConfigError(f"--mode trafilatura needs trafilatura 2.3.x, found {trafilatura.__version__}: "
                          f"pip install 'obelics-builder[trafilatura]'")
    log = logging.getLogger("trafilatura")
    if log.level == logging.NOTSET and logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        log.setLevel(logging.CRITICAL)  # per-page notes ("too small", "discarding data") would flood a crawl's log
    _TRAF = trafilatura
    return trafilatura


def trafilatura_version() -> str:
    return require_trafilatura().__version__


# ---------------------------------------------------------------------------------------------------------------
# images: <graphic src> -> the page's <img> -> our URL rules

def _traf_key(value: str, page_url: str | None) -> str:
    """The ``src`` trafilatura writes for an ``<img>`` attribute value (``handle_image``)."""
    if value.startswith("http"):
        return value
    if page_url:
        try:
            return urljoin(page_url, value)
        except ValueError:
            return value
    return re.sub(r"^//", "http://", value)


def _page_images(html: str, page_url: str | None) -> dict:
    """trafilatura's ``src`` value -> (attribute name, raw value, attributes) of the first ``<img>`` giving it."""
    from selectolax.lexbor import LexborHTMLParser

    index: dict = {}
    tree = LexborHTMLParser(html)
    for node in tree.css("img"):
        attrs = node.attributes
        names = ["data-src", "src"] + [a for a in attrs if a.startswith("data-src") and a != "data-src"]
        for name in names:
            value = attrs.get(name)
            if value:
                index.setdefault(_traf_key(value, page_url), (name, value, attrs))
    return index


def _image_meta(graphic, index: dict | None, base: str, page_url: str) -> dict | None:
    src = graphic.get("src") or ""
    hit = index.get(src) if index is not None else None
    if hit is not None:
        name, raw, attrs = hit
        if "srcset" in name:
            raw = largest_candidate(raw) or ""
        alt, title = attrs.get("alt"), attrs.get("title")
        width, height = parse_size(attrs.get("width")), parse_size(attrs.get("height"))
    else:  # not found on the page (trafilatura rewrote the value): its own absolute URL
        raw, alt, title, width, height = src, graphic.get("alt"), graphic.get("title"), None, None
    raw = clean_url_attr(raw)
    url = resolve_url(raw, base) if raw else None
    if url is None:
        return None
    return image_node_meta(page_url, raw, url, alt, title, width, height)


# ---------------------------------------------------------------------------------------------------------------
# text: trafilatura XML -> text nodes with our paragraph conventions

_PARA = frozenset(("p", "head", "quote", "list", "table", "div", "main", "comments", "code", "fw", "note"))
_LINE = frozenset(("item", "row"))
_GRID = frozenset(("list", "table"))
#: parents under which a <code> is a block (elsewhere it is inline code inside a paragraph)
_BLOCK_PARENTS = frozenset(("main", "comments", "div", "quote", "item", "cell"))
_MAX_DEPTH = 400


class _Builder:
    def __init__(self, on_image):
        self.out: list = []
        self.paras: list = []
        self.lines: list = []
        self.cur: list = []
        self.grid = 0
        self.cells: list = []  # per open row: [nonempty cells so far]
        self.in_cell = 0
        self.on_image = on_image

    def end_line(self) -> None:
        if self.cur:
            s = " ".join("".join(self.cur).split())
            self.cur.clear()
            if s:
                self.lines.append(s)

    def end_para(self) -> None:
        self.end_line()
        if self.lines:
            self.paras.append("\n".join(self.lines))
            self.lines.clear()

    def brk(self, para: bool) -> None:
        if self.in_cell:
            self.cur.append(" ")
        elif para and not self.grid:
            self.end_para()
        else:
            self.end_line()

    def flush(self) -> None:
        self.end_para()
        if self.paras:
            self.out.append(("text", "\n\n".join(self.paras)))
            self.paras.clear()

    def code_block(self, el) -> None:
        self.brk(True)
        text = "".join(el.itertext())
        for line in text.split("\n"):
            line = line.rstrip()
            if line.strip():
                self.lines.append(line.replace("\t", "    "))
        self.brk(True)

    def walk(self, el, depth: int = 0) -> None:
        tag = el.tag
        if not isinstance(tag, str):  # comments, processing instructions
            pass
        elif tag == "graphic":
            node = self.on_image(el)
            if node is not None:  # a dropped image (data: URI, repeat) does not cut the text
                self.flush()
                self.out.append(node)
        elif depth > _MAX_DEPTH:
            self.cur.append(" ".join(el.itertext()))
        elif tag == "lb":
            self.brk(False)
        elif tag == "code" and not self.in_cell and el.getparent() is not None \
                and el.getparent().tag in _BLOCK_PARENTS and not len(el):
            self.code_block(el)
        elif tag == "cell":
            mark = len(self.cur)
            self.in_cell += 1
            self._inside(el, depth)
            self.in_cell -= 1
            text = " ".join("".join(self.cur[mark:]).split())
            del self.cur[mark:]
            if text:
                if self.cells and self.cells[-1]:
                    self.cur.append(" | ")
                self.cur.append(text)
                if self.cells:
                    self.cells[-1] += 1
        else:
            para, line = tag in _PARA, tag in _LINE
            if para or line:
                self.brk(para)
            grid = tag in _GRID
            self.grid += grid
            if tag == "row":
                self.cells.append(0)
            self._inside(el, depth)
            if tag == "row":
                self.cells.pop()
            self.grid -= grid
            if para or line:
                self.brk(para)
        if el.tail:
            self.cur.append(el.tail)

    def _inside(self, el, depth: int) -> None:
        if el.text:
            self.cur.append(el.text)
        for child in el:
            self.walk(child, depth + 1)


def xml_to_nodes(xml: str, on_image) -> list:
    """trafilatura's XML output -> ``[("text", str) | ("image", meta)]``; ``on_image(graphic)`` gives the image
    node of a ``<graphic>``, or None to drop it."""
    from lxml import etree

    root = etree.fromstring(xml, etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True))
    b = _Builder(on_image)
    for part in ("main", "comments"):
        el = root.find(part)
        if el is not None:
            el.tail = None
            b.walk(el)
    b.flush()
    return b.out


def extract_trafilatura(html: str, page_url: str, deadline: float | None = None,
                        head: dict | None = None) -> list[tuple[str, object]]:
    """HTML string -> ``[("text", str) | ("image", meta), ...]`` by trafilatura; past ``deadline`` (a
    ``time.monotonic()`` value) :class:`ExtractionTimeout`; a trafilatura exception -> :class:`TrafilaturaError`.
    ``head``: a dict that receives the head's consent signals (:mod:`.head`); the page is then parsed with
    trafilatura's own loader and that tree handed to trafilatura (which copies a given tree), so it is still
    parsed once."""
    traf = require_trafilatura()
    html = cap_nesting(html, MAX_NESTING)
    url = page_url or None

    def run() -> list:
        try:
            page = html
            if head is not None:
                from trafilatura.utils import load_html

                tree = load_html(html)
                if tree is not None:
                    head.update(head_signals_lxml(tree))
                    page = tree
            xml = traf.extract(page, url=url, output_format="xml", include_images=True, include_tables=True,
                               include_links=False, with_metadata=False)
        except (MemoryError, RecursionError):
            raise
        except Exception as e:
            raise TrafilaturaError(f"trafilatura {traf.__version__}: {type(e).__name__}: {e}"[:500]) from None
        if not xml:
            return []
        index = None
        seen: set = set()
        base = base_href(html, page_url) if page_url else ""

        def on_image(graphic):
            nonlocal index
            if index is None:
                index = _page_images(html, url)
            meta = _image_meta(graphic, index, base, page_url)
            if meta is None or meta["src"] in seen:
                return None
            seen.add(meta["src"])
            return ("image", meta)

        try:
            return xml_to_nodes(xml, on_image)
        except (MemoryError, RecursionError):
            raise
        except Exception as e:  # malformed XML from trafilatura, an unexpected element
            raise TrafilaturaError(f"trafilatura {traf.__version__} output: {type(e).__name__}: {e}"[:500]) from None

    try:
        return run_with_deadline(run, deadline)
    except DeadlineExceeded:
        raise ExtractionTimeout(f"trafilatura took longer than the page budget ({len(html)} characters)") from None
    except RecursionError as e:
        raise TrafilaturaError(f"trafilatura {traf.__version__}: RecursionError: {e}"[:500]) from None
