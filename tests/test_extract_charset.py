"""Charset decoding of HTML payloads."""
from __future__ import annotations

import codecs
import json

import pytest

from obelics_builder.extract.charset import decode_html, decode_html_lossless, normalize_charset
from obelics_builder.extract.urls import base_href, is_data_uri, resolve_url


def test_bom_wins():
    text, enc = decode_html(b"\xff\xfe" + "<p>é</p>".encode("utf-16-le"), {"content-type": "text/html; charset=cp1252"})
    assert text == "<p>é</p>" and enc == "utf-16-le"
    assert decode_html(b"\xef\xbb\xbf<p>\xc3\xa9</p>")[0] == "<p>é</p>"


def test_declared_order_http_then_warc_then_meta():
    body = "<meta charset=utf-8><p>Привет</p>".encode("cp1251")
    assert decode_html(body, {"content-type": "text/html; charset=windows-1251"}) == (body.decode("cp1251"), "cp1251")
    assert decode_html(body, {}, "windows-1251")[1] == "cp1251"
    body2 = '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r"><p>Привет</p>'.encode("koi8-r")
    assert decode_html(body2) == (body2.decode("koi8-r"), "koi8-r")


@pytest.mark.parametrize("label,name", [
    ("latin-1", "cp1252"), ("ISO-8859-1", "cp1252"), ("x-sjis", "cp932"), ("Shift_JIS", "cp932"),
    ("gb2312", "gb18030"), ("UTF8", "utf-8"), ("no-such-charset", None), ("", None), ("utf-7", None),
])
def test_normalize_charset(label, name):
    assert normalize_charset(label) == name


def test_wrong_declaration_falls_back_to_detection():
    text = "<html><body><p>Größere Änderungen für Übersetzer — schöne Grüße</p></body></html>"
    body = text.encode("cp1252")
    decoded, enc = decode_html(body, {"content-type": "text/html; charset=utf-8"})
    assert "Größere Änderungen für Übersetzer" in decoded and enc != "utf-8"
    # declared latin-1 but really UTF-8 (common): UTF-8 wins
    decoded, enc = decode_html(text.encode("utf-8"), {"content-type": "text/html; charset=iso-8859-1"})
    assert decoded == text and enc == "utf-8"
    # unknown label ignored
    assert decode_html(text.encode("utf-8"), {"content-type": "text/html; charset=bogus"}) == (text, "utf-8")


def test_garbage_never_raises():
    text, enc = decode_html(bytes(range(256)) * 10, {"content-type": "charset=utf-16"})
    assert isinstance(text, str) and enc


def test_trafilatura_non_utf8_pages(shared_data):
    folder = shared_data / "pages" / "trafilatura-cache"
    evaldata = json.loads((folder / "evaldata.json").read_text(encoding="utf-8"))
    by_file = {v["file"]: v for v in evaldata.values()}
    checked = 0
    for name in ("landwirt.com.sensortechnik.html", "cdu-fraktion-erfurt.de.waldorfschule.html",
                 "hundeverein-kreisunna.de.html", "laviedesidees.fr.evaluation.html"):
        body = (folder / name).read_bytes()
        text, _ = decode_html(body)
        assert "\ufffd" not in text
        for snippet in by_file[name]["with"]:
            assert snippet in text, (name, snippet)
        checked += 1
    assert checked == 4
    text, enc = decode_html((folder / "landwirt.com.sensortechnik.html").read_bytes())
    assert "Überwachung" in text and "Köllitsch" in text and enc == "cp1252"


def test_url_helpers():
    assert is_data_uri(" data:image/png;base64,AAA") and not is_data_uri("/a.png")
    assert resolve_url("https://a.example/x/y.html", "../img/a.jpg") == "https://a.example/img/a.jpg"
    assert resolve_url("https://a.example/x/", "//cdn.example/b.jpg") == "https://cdn.example/b.jpg"
    assert resolve_url("https://a.example/", "javascript:void(0)") is None
    assert resolve_url("https://a.example/", "data:image/gif;base64,R0lG") is None
    assert resolve_url("https://a.example/", " /a\n.jpg ") == "https://a.example/a.jpg"
    html = '<html><head><base href="/static/"></head><body><img src="a.jpg"></body></html>'
    assert base_href(html, "https://a.example/page/x.html") == "https://a.example/static/"
    assert base_href("<p>no base</p>", "https://a.example/p") == "https://a.example/p"


@pytest.mark.parametrize("body,headers,expected", [
    ("plain ascii <p>x</p>".encode(), {}, True),
    ("caf\u00e9 \u201cquoted\u201d".encode("utf-8"), {"content-type": "text/html; charset=utf-8"}, True),
    ("caf\u00e9".encode("utf-8"), {"content-type": "text/html; charset=iso-8859-1"}, True),
    ("caf\u00e9".encode("cp1252"), {"content-type": "text/html; charset=windows-1252"}, False),
    ("caf\u00e9".encode("cp1252") + b" \xff\xfe broken", {"content-type": "text/html; charset=utf-8"}, False),
    (codecs.BOM_UTF8 + "caf\u00e9".encode("utf-8"), {}, False),
    ("\u65e5\u672c\u8a9e".encode("shift_jis"), {}, False),
    (b"nul \x00 inside", {}, True),
])
def test_lossless_flag_means_the_payload_is_the_texts_utf8(body, headers, expected):
    text, enc, lossless = decode_html_lossless(body, headers)
    assert (text, enc) == decode_html(body, headers)
    assert lossless == expected
    if lossless:
        assert text.encode("utf-8") == body


def test_payload_parsed_as_it_is_gives_the_same_document():
    """A strict UTF-8 payload is parsed from its bytes; NUL characters are still replaced."""
    from obelics_builder.extract.stage import extract_record
    page = ("<html><body><article><h1>Caf\u00e9 \u201cnews\u201d</h1><p>" + "Words with \u00e9 and \u4e2d. " * 20
            + "</p><p>NUL here: \x00 end of the sentence that is long enough to keep.</p></article></body></html>")
    raw = page.encode("utf-8")
    from_bytes = extract_record({"url": "https://a.example/x", "body": raw, "http_headers": {}}, "default", 0)
    from_text = extract_record({"url": "https://a.example/x", "body": page, "http_headers": {}}, "default", 0)
    assert from_bytes["texts"] == from_text["texts"]
    assert "\x00" not in "".join(t for t in from_bytes["texts"] if t)
