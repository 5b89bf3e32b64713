"""The fast paths of the `default` extractor give the same results as the general ones."""
from __future__ import annotations

import gc
from urllib.parse import urljoin, urlsplit

import pytest

from obelics_builder.extract.default import cap_nesting, extract_default
from obelics_builder.extract.images import clean_url_attr, is_boilerplate_image, is_placeholder, resolve_url

URL = "https://news.example.com/2024/05/story.html"
PROSE = ("The committee met on Tuesday to discuss the new budget, which includes funding for schools, roads, "
         "and the public library, according to officials who attended the meeting.")


def texts(nodes):
    return [v for k, v in nodes if k == "text"]


def _resolve_reference(raw: str, base: str):
    """resolve_url without its fast path: urljoin + checks."""
    raw = clean_url_attr(raw)
    if not raw or raw.startswith(("data:", "javascript:", "about:", "blob:", "#", "mailto:")):
        return None
    raw = raw.replace("\\", "/")
    try:
        url = urljoin(base, raw) if base else raw
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url.replace(" ", "%20")


@pytest.mark.parametrize("base", [URL, "http://fakehost/test/page.html", "https://h", "http://h/a;p?q#f", "",
                                  "fakehost", "http://[::1]/x/"])
def test_url_fast_path_matches_urljoin(base):
    raws = ["/img/a.jpg", "/a/./b.jpg", "/a/../b.jpg", "/a?", "/a#", "/a?#x", "/a;p", "/a?b=1#c", "/x//y", "/x/.",
            "/x/..", "/.hidden/a.png", "/a b.jpg", "/é.jpg", "//cdn.example.org/a.jpg", "a.jpg", "../a.jpg", "?q=1",
            "http://h", "http://", "http:///x", "https://h?q", "http://[::1]/a", "HTTP://H/A", "http://h/é.jpg",
            "http://h#", "http://h:80/x", "https://u:p@h/x", "https://cdn.example.org/i/c_fill,w_300/a.jpg"]
    for raw in raws:
        assert resolve_url(raw, base) == _resolve_reference(raw, base), (raw, base)


def test_placeholder_and_boilerplate_fast_exits():
    assert not is_placeholder("/img/2024/photo-123.jpg")
    assert is_placeholder("/img/lazy-placeholder.gif") and is_placeholder("/spacer_1x1.gif")
    assert is_placeholder("data:image/gif;base64,R0lGOD")
    assert is_boilerplate_image({}, "/static/site-logo2.png", None, None)
    assert not is_boilerplate_image({}, "/static/logotype-photo.png", None, None)
    assert is_boilerplate_image({"class": "author_avatar"}, "/u/1.jpg", 200, 200)


def test_layout_table_keeps_paragraphs():
    """Content inside a layout table cell: its paragraphs stay paragraphs (the table is around the content)."""
    paras = "".join(f"<p>{PROSE} Part {i}.</p>" for i in range(4))
    html = f"<html><body><table><tr><td><div class='story'>{paras}</div></td></tr></table></body></html>"
    text = "\n\n".join(texts(extract_default(html, URL)))
    assert text.count("\n\n") == 3 and "Part 3." in text


def test_lists_and_tables_inside_content():
    html = ("<html><body><article>" + "".join(f"<p>{PROSE}</p>" for _ in range(3)) +
            "<ul><li><p>first point</p><p>same item</p></li><li>second point</li></ul>"
            "<table><tr><td></td><td>a\u00a0 x</td><td> </td><td>b</td></tr><tr><td>c</td></tr></table>"
            "<pre>  keep   this\n    indent  </pre></article></body></html>")
    text = "\n\n".join(texts(extract_default(html, URL)))
    assert "first point\nsame item\nsecond point" in text
    assert "a x | | b\nc" in text
    assert "  keep   this\n    indent" in text


def test_role_without_pruning_value_is_kept():
    """A wrapper with a harmless role and a style saying "none" (outline: none) is content, not hidden."""
    paras = "".join(f"<p>{PROSE} Part {i}.</p>" for i in range(3))
    html = f"<html><body><div role='group' style='outline:none'><article>{paras}</article></div></body></html>"
    assert "Part 2." in "\n".join(texts(extract_default(html, URL)))
    html = f"<html><body><article>{paras}<div role='navigation'>Menu entries here</div></article></body></html>"
    assert "Menu entries" not in "\n".join(texts(extract_default(html, URL)))


def test_collector_state_restored():
    html = f"<html><body><p>{PROSE}</p></body></html>"
    assert gc.isenabled()
    extract_default(html, URL)
    assert gc.isenabled()
    gc.disable()
    try:
        extract_default(html, URL)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cap_nesting_precheck():
    flat = "<div><p>x</p></div>" * 1000
    assert cap_nesting(flat) is flat  # no deep run: untouched, no scan
    deep = "<div>" * 5000 + "text" + "</div>" * 5000
    capped = cap_nesting(deep, max_depth=100)
    assert capped.count("<div>") == 100 and "text" in capped
    deep_after_close = "<p>a</p>" + "<section>" * 3000 + "inner"
    assert cap_nesting(deep_after_close, max_depth=100).count("<section>") == 100


def test_cap_nesting_bytes_precheck_agrees_with_the_text_one():
    """The pre-check on the page's UTF-8 bytes finds a deep run exactly when the one on the text does (multi-byte
    characters next to "<", "<<", a run cut by a closing tag, runs just under and at the threshold)."""
    import random

    from obelics_builder.extract import nesting

    def str_check(s):
        return nesting._RE_DEEP_HEAD.match(s) is not None or nesting._RE_DEEP_HINT.search(s) is not None

    def bytes_check(s):
        b = s.encode("utf-8")
        return nesting._RE_DEEP_HEAD_B.match(b) is not None or nesting._RE_DEEP_HINT_B.search(b) is not None

    rng = random.Random(7)
    pieces = ["<", "/", "a", ">", "é", "中", "😀", "</", "<<", "<é", "<中>", "x y"]
    cases = ["", "<", "</", "<" * 300, "<<" * 200, "<é" * 256, "<é" * 255 + "</" + "<é" * 255]
    for n in (255, 256, 257):
        cases += ["<div>" * n, "<p>a</p>" + "<中>" * n, "<i>é" * n + "</i>", "😀" + "<a>😀" * n]
    for _ in range(400):
        k = rng.choice((5, 50, 400))
        cases.append("".join(rng.choice(pieces) for _ in range(k)) + "<b>" * rng.choice((0, 255, 256, 300)))
    for s in cases:
        assert str_check(s) == bytes_check(s), s[:80]
        assert cap_nesting(s, max_depth=100, utf8=s.encode("utf-8")) == cap_nesting(s, max_depth=100)


def test_declared_article_anchors_found_in_one_pass():
    """The one-pass anchor search sees what a search per anchor sees: beyond the first 200 occurrences of an anchor
    nothing counts as a declaration; a list page's type anywhere cancels an og:type article."""
    from obelics_builder.extract.boilerplate import declared_article

    filler = '{"@type": "Person"}' * 250
    late = '{"@type": "NewsArticle"}'
    assert declared_article(f"<script>{late}</script>")
    assert not declared_article(f"<script>{filler}{late}</script>")  # the 251st @type is not looked at
    og = '<meta property="og:type" content="article">'
    assert declared_article(og + "<p>type itemtype og: @ typed</p>")
    assert not declared_article(og + f'<script>{filler}{{"@type": "ItemList"}}</script>')
    assert not declared_article(og + '<div itemscope itemtype="https://schema.org/CollectionPage"></div>')
    assert declared_article('<div itemtype="http://schema.org/BlogPosting"></div>')
    assert not declared_article('<meta property="og:type" content="website">')
