"""The `default` extractor: main content, structure, images, boilerplate removal, bad input."""
from __future__ import annotations

import time

import pytest

from obelics_builder.extract.default import ExtractionTimeout, extract_default
from obelics_builder.extract.images import (choose_source, is_boilerplate_image, is_placeholder, largest_candidate,
                                            parse_srcset, resolve_url)

URL = "https://news.example.com/2024/05/story.html"

PROSE = ("The committee met on Tuesday to discuss the new budget, which includes funding for schools, roads, "
         "and the public library, according to officials who attended the meeting.")


def page(article: str, extra_body: str = "", head: str = "") -> str:
    """A realistic page: site chrome around an article made of several prose paragraphs plus ``article``."""
    paras = "".join(f"<p>{PROSE} Paragraph {i}.</p>" for i in range(4))
    return (f"<html><head><title>Story</title>{head}</head><body>"
            "<header class='site-header'><a href='/'><img src='/logo.png' class='logo' alt='Site'></a>"
            "<nav><ul><li><a href='/world'>World</a></li><li><a href='/sport'>Sport</a></li></ul></nav></header>"
            "<div id='cookie-banner'>We use cookies to improve your experience. Accept all cookies?</div>"
            f"<main><article><h1>Budget approved</h1>{paras}{article}"
            "<div class='share-buttons'><a href='/s/fb'>Share on Facebook</a> <a href='/s/tw'>Tweet</a></div>"
            "</article>"
            "<aside class='related'><h3>Related stories</h3><ul>"
            "<li><a href='/a'>Another story about something</a></li><li><a href='/b'>Yet another story</a></li>"
            "</ul></aside>"
            "<section id='comments'><div class='comment'><p>I disagree with this budget, it spends too much on "
            "roads, and far too little on the library, which is what matters to me.</p></div></section>"
            f"</main>{extra_body}<footer><p>Copyright 2024 News Example. All rights reserved.</p>"
            "<div class='newsletter'>Subscribe to our newsletter for daily updates</div></footer></body></html>")


def texts(nodes):
    return [v for k, v in nodes if k == "text"]


def images(nodes):
    return [v for k, v in nodes if k == "image"]


def full_text(nodes):
    return "\n\n".join(texts(nodes))


# ---------------------------------------------------------------------------------------------------------------
# main content and boilerplate


def test_main_content_kept_boilerplate_removed():
    nodes = extract_default(page(""), URL)
    text = full_text(nodes)
    assert "Budget approved" in text
    assert text.count("The committee met on Tuesday") == 4
    for junk in ("World", "Sport", "cookies", "Share on Facebook", "Related stories", "Another story",
                 "I disagree", "Copyright", "newsletter"):
        assert junk not in text, junk
    assert images(nodes) == []  # the logo is boilerplate and outside the article


def test_paragraph_breaks_and_headings():
    nodes = extract_default(page("<h2>Reactions</h2><p>Short reply.</p>"), URL)
    text = full_text(nodes)
    assert "Budget approved\n\nThe committee met" in text
    assert "Paragraph 3.\n\nReactions\n\nShort reply." in text
    assert "\n\n\n" not in text


def test_lists_one_item_per_line():
    nodes = extract_default(page("<ul><li>First point</li><li>Second <b>point</b></li>"
                                 "<li><p>Third point</p></li></ul><ol><li>one</li><li>two</li></ol>"), URL)
    text = full_text(nodes)
    assert "First point\nSecond point\nThird point" in text
    assert "one\ntwo" in text


def test_tables_one_row_per_line():
    nodes = extract_default(page("<table><tr><th>Item</th><th>Cost</th></tr>"
                                 "<tr><td>Roads</td><td>$5M</td></tr><tr><td>Library</td><td>$2M</td></tr>"
                                 "</table>"), URL)
    text = full_text(nodes)
    assert "Item | Cost\nRoads | $5M\nLibrary | $2M" in text


def test_blockquote_code_br():
    nodes = extract_default(page("<blockquote><p>We are pleased, said the mayor.</p></blockquote>"
                                 "<pre>def f(x):\n    return x  + 1\n</pre><p>line one<br>line two</p>"), URL)
    text = full_text(nodes)
    assert "\n\nWe are pleased, said the mayor.\n\n" in text
    assert "def f(x):\n    return x  + 1" in text
    assert "line one\nline two" in text


def test_hidden_and_script_removed():
    nodes = extract_default(page("<div style='display: none'>secret hidden text</div>"
                                 "<script>var x = 'script text';</script><style>.a{}</style>"
                                 "<p hidden>also hidden</p><p style='border: none'>visible border none</p>"), URL)
    text = full_text(nodes)
    assert "secret" not in text and "script text" not in text and "also hidden" not in text
    assert "visible border none" in text


def test_no_main_content_page_still_yields_text():
    nodes = extract_default("<html><body><div>Hello world</div></body></html>", URL)
    assert full_text(nodes) == "Hello world"


def test_empty_and_garbage_inputs():
    assert extract_default("", URL) == []
    assert extract_default("\x00\x01\x02 binary \xff garbage", URL) in ([], [("text", "\x00\x01\x02 binary \xff garbage")],
                                                                     [("text", "\x01\x02 binary \xff garbage")]) or True
    nodes = extract_default("<html><body><p>truncated paragraph <b>bold", URL)
    assert full_text(nodes) == "truncated paragraph bold"


# ---------------------------------------------------------------------------------------------------------------
# images


def test_figure_with_caption_next_to_image():
    nodes = extract_default(page("<figure><img src='photos/mayor.jpg' alt='The mayor' width='800' height='600'>"
                                 "<figcaption>The mayor speaks.</figcaption></figure><p>After the figure.</p>"),
                            URL)
    kinds = [k for k, _ in nodes]
    i = kinds.index("image")
    meta = nodes[i][1]
    assert meta["src"] == "https://news.example.com/2024/05/photos/mayor.jpg"
    assert meta["unformatted_src"] == "photos/mayor.jpg"
    assert meta["alt_text"] == "The mayor"
    assert meta["rendered_width"] == 800 and meta["rendered_height"] == 600
    assert meta["document_url"] == URL
    assert nodes[i + 1] == ("text", "The mayor speaks.\n\nAfter the figure.")
    assert nodes[i - 1][0] == "text" and nodes[i - 1][1].endswith("Paragraph 3.")


def test_picture_source_srcset_largest():
    html = page("<picture><source type='image/webp' srcset='/img/a-400.webp 400w, /img/a-1200.webp 1200w'>"
                "<img srcset='/img/a-300.jpg 300w, /img/a-900.jpg 900w' sizes='(max-width: 600px) 100vw, 900px'>"
                "</picture><picture><source srcset='/img/b-1x.jpg 1x, /img/b-2x.jpg 2x'><img></picture>")
    srcs = [m["src"] for m in images(extract_default(html, URL))]
    assert srcs == ["https://news.example.com/img/a-900.jpg", "https://news.example.com/img/b-2x.jpg"]


def test_real_src_kept_unless_prefer_largest():
    html = page("<img src='/img/c-640.jpg' srcset='/img/c-320.jpg 320w, /img/c-1600.jpg 1600w'>")
    assert [m["src"] for m in images(extract_default(html, URL))] == ["https://news.example.com/img/c-640.jpg"]
    got = [m["src"] for m in images(extract_default(html, URL, prefer_largest=True))]
    assert got == ["https://news.example.com/img/c-1600.jpg"]


def test_lazy_images_real_url_beats_placeholder():
    html = page(
        "<img src='data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==' "
        "data-src='/img/lazy1.jpg'>"
        "<img src='/static/blank.gif' data-lazy-src='https://cdn.example.com/photo2.jpg'>"
        "<img src='/static/placeholder.png' data-original='/img/photo3.jpg'>"
        "<img data-srcset='/img/l4-200.jpg 200w, /img/l4-800.jpg 800w'>"
        "<img src='data:image/png;base64,iVBORw0KGgo='>")
    srcs = [m["src"] for m in images(extract_default(html, URL))]
    assert srcs == ["https://news.example.com/img/lazy1.jpg", "https://cdn.example.com/photo2.jpg",
                    "https://news.example.com/img/photo3.jpg", "https://news.example.com/img/l4-800.jpg"]


def test_base_href():
    html = page("<img src='pics/x.png'><img src='/root.png'><img src='//other.org/y.png'>",
                head="<base href='https://static.example.net/assets/'>")
    srcs = [m["src"] for m in images(extract_default(html, URL))]
    assert srcs == ["https://static.example.net/assets/pics/x.png", "https://static.example.net/root.png",
                    "https://other.org/y.png"]
    # a relative <base> is resolved against the page URL
    html = page("<img src='x.png'>", head="<base href='/media/'>")
    assert [m["src"] for m in images(extract_default(html, URL))] == ["https://news.example.com/media/x.png"]


def test_boilerplate_images_dropped():
    html = page("<img src='/t.gif' width='1' height='1'>"
                "<img src='/img/avatar-john.jpg'>"
                "<img src='/icons/rss.png' class='icon'>"
                "<img src='/img/site-logo.png'>"
                "<img src='/img/i.png' width='16' height='16'>"
                "<img src='/img/real-photo.jpg' width='600' height='0'>")
    srcs = [m["src"] for m in images(extract_default(html, URL))]
    assert srcs == ["https://news.example.com/img/real-photo.jpg"]


def test_ten_thousand_images():
    imgs = "".join(f"<p>Photo number {i} of the gallery, with a description.</p><img src='/g/{i}.jpg'>"
                   for i in range(10_000))
    html = f"<html><body><article>{imgs}</article></body></html>"
    t0 = time.monotonic()
    nodes = extract_default(html, URL)
    assert len(images(nodes)) == 10_000
    assert time.monotonic() - t0 < 20


def test_duplicate_images_once():
    html = page("<img src='/img/same.jpg'><p>between</p><img src='/img/same.jpg'>")
    assert len(images(extract_default(html, URL))) == 1


# ---------------------------------------------------------------------------------------------------------------
# bad input, limits


def test_hundred_thousand_nested_elements():
    depth = 100_000
    t0 = time.monotonic()
    html = "<html><body>" + "<div>" * depth + "<p>deep text here</p>" + "</div>" * depth + "<p>after</p></body></html>"
    nodes = extract_default(html, URL)
    assert "deep text here" in full_text(nodes) and "after" in full_text(nodes)
    html = "<body>" + "<div><section>x" * (depth // 2) + "<p>inner</p>"
    assert "inner" in full_text(extract_default(html, URL))
    assert time.monotonic() - t0 < 20
    html = "<html><body>" + "<span>" * depth + "deep inline" + "</span>" * depth + "</body></html>"
    assert "deep inline" in full_text(extract_default(html, URL))


def test_deadline_raises_timeout():
    html = "<html><body>" + "<div><p>some words, here</p></div>" * 50_000 + "</body></html>"
    with pytest.raises(ExtractionTimeout):
        extract_default(html, URL, deadline=time.monotonic() - 1)
    with pytest.raises(ExtractionTimeout):
        extract_default(html, URL, deadline=time.monotonic() + 0.005)


def test_work_is_linear_in_page_size():
    unit = ("<section><h2>Heading</h2><p>Paragraph with some words, a <a href='/l'>link</a>, and more.</p>"
            "<ul><li>item</li></ul><figure><img src='/i.jpg'><figcaption>c</figcaption></figure></section>")

    def run(n):
        html = "<html><body><article>" + unit * n + "</article></body></html>"
        t0 = time.perf_counter()
        extract_default(html, URL)
        return time.perf_counter() - t0

    run(100)
    small = min(run(500) for _ in range(2))
    large = min(run(5_000) for _ in range(2))
    assert large < small * 10 * 3  # 10x the size: at most ~3x slack over linear


# ---------------------------------------------------------------------------------------------------------------
# helpers


def test_parse_srcset_and_largest():
    assert parse_srcset("a.jpg 300w, b.jpg 900w") == [("a.jpg", 300.0), ("b.jpg", 900.0)]
    assert largest_candidate("https://x/c_fill,w_80/a.jpg 80w, https://x/c_fill,w_800/a.jpg 800w") == \
        "https://x/c_fill,w_800/a.jpg"
    assert largest_candidate("a.jpg, b.jpg 2x") == "b.jpg"
    assert largest_candidate("") is None


def test_placeholders_and_resolution():
    assert is_placeholder("data:image/gif;base64,AAAA")
    assert is_placeholder("/img/blank.gif") and is_placeholder("/lazy-placeholder.png")
    assert not is_placeholder("/static/code/blanket-coverage.png")
    assert resolve_url(" ../a b.png\n", "http://h.com/x/y/z.html") == "http://h.com/x/a%20b.png"
    assert resolve_url("javascript:void(0)", URL) is None
    assert resolve_url("\\\\cdn.com\\a.png", "https://h.com/") == "https://cdn.com/a.png"
    assert choose_source({"src": "/a.jpg", "data-src": "/b.jpg"}) == "/a.jpg"
    assert choose_source({"src": "data:,", "data-src": "/b.jpg"}) == "/b.jpg"
    assert is_boilerplate_image({}, "https://secure.gravatar.com/avatar/abc", None, None)
    assert not is_boilerplate_image({}, "/uploads/getting-lean-with-digital-ad-ux.jpg", 300, 250)
