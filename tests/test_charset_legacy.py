"""Legacy charsets without a declaration or with a wrong one (issue 15, part 5)."""
from __future__ import annotations

import pytest

from obelics_builder.extract.charset import decode_html, detect_charset, implausibility

PARAGRAPHS = {
    "de": "Die Bürgerinnen und Bürger der Stadt können ab Montag ihre Anträge über das neue Portal stellen. Größere "
          "Änderungen betreffen vor allem die Öffnungszeiten des Rathauses, die künftig auch samstags gelten. Der "
          "Bürgermeister äußerte sich zufrieden: „Wir müssen schneller und näher an den Menschen sein.“",
    "fr": "Les élèves de l'école primaire ont présenté leur projet à la mairie mercredi après-midi. Ils ont "
          "étudié la qualité de l'eau de la rivière pendant trois mois et proposé des mesures concrètes. « Nous "
          "sommes très fiers de leur travail », a déclaré la maîtresse, qui espère que la commune s'en inspirera.",
    "ru": "Новый мост через реку откроют для движения уже в следующем месяце, сообщили в городской администрации. "
          "Строительство продолжалось почти три года и обошлось дешевле, чем планировалось. Жители соседних "
          "районов надеются, что пробки в центре города станут заметно меньше.",
    "ja": "東京都は来月から、区内の図書館で電子書籍の貸し出しを始めると発表した。利用者はスマートフォンや"
          "パソコンから本を借りることができ、返却の手続きも必要ない。担当者は「若い世代にも図書館を身近に"
          "感じてもらいたい」と話している。",
    "zh": "市政府今天宣布，新的地铁线路将于明年年底前建成通车。这条线路全长三十二公里，共设二十个车站，"
          "连接城市东部的住宅区和西部的科技园区。有关负责人表示，建成后市民的通勤时间将大大缩短。",
}
ENCODINGS = {"de": ("cp1252", "iso8859-15"), "fr": ("cp1252", "iso8859-15"), "ru": ("koi8-r", "cp1251"),
             "ja": ("cp932",), "zh": ("gbk",)}
WRONG = {"cp1252": "windows-1251", "iso8859-15": "koi8-r", "koi8-r": "windows-1251", "cp1251": "iso-8859-1",
         "cp932": "iso-8859-1", "gbk": "iso-8859-1"}
CASES = [(lang, enc) for lang, encs in ENCODINGS.items() for enc in encs]


def page(text: str, meta: str = "") -> str:
    paras = "".join(f"<p>{s.strip()}</p>" for s in text.split(". ") if s.strip())
    return (f"<!DOCTYPE html><html><head>{meta}<title>Nachrichten</title>"
            f"<style>body{{font-family:Arial}}</style></head><body><nav><a href='/'>Home</a></nav>"
            f"<article>{paras}</article><script>var x = 1;</script></body></html>")


def encode(html: str, enc: str) -> bytes:
    """As a legacy CMS writes a page: characters without a code become numeric references (German quotes in
    ISO-8859-15)."""
    return html.encode(enc, errors="xmlcharrefreplace")


@pytest.mark.parametrize("lang,enc", CASES)
def test_no_declaration(lang, enc):
    body = encode(page(PARAGRAPHS[lang]), enc)
    text, used = decode_html(body, {"content-type": "text/html"})
    assert text == body.decode(enc), (lang, enc, used)


@pytest.mark.parametrize("lang,enc", CASES)
@pytest.mark.parametrize("label", ["utf-8", "wrong-legacy"])
def test_wrong_declaration(lang, enc, label):
    label = WRONG[enc] if label == "wrong-legacy" else label
    body = encode(page(PARAGRAPHS[lang], f'<meta charset="{label}">'), enc)
    text, used = decode_html(body, {"content-type": f"text/html; charset={label}"})
    assert text == body.decode(enc), (lang, enc, label, used)
    # a wrong <meta> alone, without a header, is corrected as well
    assert decode_html(body)[0] == body.decode(enc)


@pytest.mark.parametrize("lang,enc", CASES + [("cs", "cp1250"), ("cs", "iso8859-2"), ("pl", "cp1250"),
                                              ("ru", "koi8-u"), ("tr", "cp1254"), ("el", "cp1253")])
def test_correct_declaration_is_honoured(lang, enc):
    texts = dict(PARAGRAPHS, cs="Příliš žluťoučký kůň úpěl ďábelské ódy. Městská rada schválila rozpočet na "
                                "příští rok; opravy silnic začnou v březnu.",
                 pl="Zażółć gęślą jaźń. Rada miasta przyjęła budżet na przyszły rok; remonty dróg ruszą w marcu.",
                 tr="Belediye meclisi gelecek yılın bütçesini onayladı; yol çalışmaları mart ayında başlayacak.",
                 el="Το δημοτικό συμβούλιο ενέκρινε τον προϋπολογισμό του επόμενου έτους.")
    body = encode(page(texts[lang], f'<meta charset="{enc}">'), enc)
    assert decode_html(body)[0] == body.decode(enc), decode_html(body)[1]
    text, used = decode_html(body, {"content-type": f"text/html; charset={enc}"})
    assert text == body.decode(enc), used


def test_correct_declaration_with_odd_symbols_is_honoured():
    # a real cp1251 page with box drawing and symbols in its text, and a cp1252 page in all capitals
    ru = page("Таблица: ¦ итог ¦ ¤ 5 · 3 = 15. Всего ±2 % ¤¤ ‰")
    assert decode_html(ru.encode("cp1251"), {"content-type": "text/html; charset=windows-1251"})[0] == ru
    de = page("GRÖSSERE ÄNDERUNGEN FÜR ÜBERSETZER. ÖFFNUNGSZEITEN ÄNDERN SICH")
    assert decode_html(de.encode("cp1252"), {"content-type": "text/html; charset=windows-1252"})[0] == de
    ru_caps = page("ВНИМАНИЕ! ГОРОДСКАЯ АДМИНИСТРАЦИЯ СООБЩАЕТ О РЕМОНТЕ МОСТА. ДВИЖЕНИЕ БУДЕТ ЗАКРЫТО")
    assert decode_html(ru_caps.encode("koi8-r"), {"content-type": "text/html; charset=koi8-r"})[0] == ru_caps


def test_mojibake_costs_more_than_text():
    for lang, enc in CASES:
        body = encode(PARAGRAPHS[lang], enc)
        text = body.decode(enc)
        good = implausibility(text, "gb18030" if enc == "gbk" else enc)
        for other in ("cp1252", "cp1251", "koi8-r", "cp1250"):
            read = body.decode(other, errors="replace")
            if read == text:  # German reads the same in cp1250
                continue
            bad = implausibility(read, other)
            if {enc, other} <= {"cp1252", "iso8859-15", "cp1250"}:  # Latin read as Latin: letters of another language
                assert bad > good, (lang, enc, other, good, bad)
            else:
                assert bad > good + 5, (lang, enc, other, good, bad)


def test_detect_charset_ascii_and_utf8_fast_paths():
    assert decode_html(b"<p>plain</p>") == ("<p>plain</p>", "ascii")
    assert decode_html("<p>Grüße</p>".encode("utf-8")) == ("<p>Grüße</p>", "utf-8")
    assert detect_charset(b"<p>plain</p>") == (None, 0.0)
    enc, pen = detect_charset(page(PARAGRAPHS["ru"]).encode("koi8-r"))
    assert enc == "koi8-r" and pen < 1
