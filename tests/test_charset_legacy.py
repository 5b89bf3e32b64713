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


OTHER = {  # language: (encoding, text), read without any declaration
 "ko": ("euc-kr", "서울시는 다음 달부터 모든 공공 도서관에서 전자책 대출 서비스를 시작한다고 밝혔다. 이용자는 스마트폰이나 컴퓨터로 책을 빌릴 수 있으며 반납 절차도 필요 없다. 담당자는 젊은 세대가 도서관을 더 가깝게 느끼기를 바란다고 말했다."),
 "zh-tw": ("big5", "市政府今天宣布，新的捷運路線將於明年年底前完工通車。這條路線全長三十二公里，共設二十個車站，連接城市東部的住宅區和西部的科技園區。有關負責人表示，完工後市民的通勤時間將大大縮短。"),
 "ja-euc": ("euc_jp", PARAGRAPHS["ja"]),
 "el": ("cp1253", "Το δημοτικό συμβούλιο ενέκρινε χθες τον προϋπολογισμό του επόμενου έτους. Οι εργασίες στους δρόμους θα ξεκινήσουν τον Μάρτιο και θα διαρκέσουν περίπου έξι μήνες, σύμφωνα με τον δήμαρχο."),
 "cs": ("cp1250", "Městská rada včera schválila rozpočet na příští rok. Opravy silnic začnou v březnu a potrvají přibližně šest měsíců, řekl starosta. Obyvatelé se obávají dopravních komplikací v centru města."),
 "pl": ("iso8859-2", "Rada miasta przyjęła wczoraj budżet na przyszły rok. Remonty dróg ruszą w marcu i potrwają około sześciu miesięcy, powiedział burmistrz. Mieszkańcy obawiają się utrudnień w centrum, zwłaszcza na ulicach świętego Jana i źródlanej."),
 "pl-1250": ("cp1250", "Rada miasta przyjęła wczoraj budżet na przyszły rok. Remonty dróg ruszą w marcu i potrwają około sześciu miesięcy, powiedział burmistrz. Mieszkańcy obawiają się utrudnień w centrum, zwłaszcza na ulicach świętego Jana i źródlanej."),
 "tr": ("cp1254", "Belediye meclisi dün gelecek yılın bütçesini onayladı. Yol çalışmaları mart ayında başlayacak ve yaklaşık altı ay sürecek, dedi belediye başkanı. Şehir merkezinde yaşayanlar trafik sıkışıklığından endişe ediyor."),
 "he": ("cp1255", "מועצת העיר אישרה אתמול את התקציב לשנה הבאה. עבודות הכבישים יתחילו בחודש מרץ ויימשכו כשישה חודשים, אמר ראש העיר."),
 "ar": ("cp1256", "وافق المجلس البلدي أمس على ميزانية العام المقبل. وستبدأ أعمال الطرق في شهر مارس وتستمر نحو ستة أشهر، بحسب رئيس البلدية."),
 "th": ("cp874", "สภาเมืองอนุมัติงบประมาณสำหรับปีหน้าเมื่อวานนี้ งานซ่อมถนนจะเริ่มในเดือนมีนาคมและใช้เวลาประมาณหกเดือน นายกเทศมนตรีกล่าว"),
 "uk": ("cp1251", "Міська рада вчора затвердила бюджет на наступний рік. Ремонт доріг розпочнеться в березні й триватиме приблизно шість місяців, сказав міський голова. Мешканці побоюються заторів у центрі."),
 "uk-koi8u": ("koi8-u", "Міська рада вчора затвердила бюджет на наступний рік. Ремонт доріг розпочнеться в березні й триватиме приблизно шість місяців, сказав міський голова. Мешканці побоюються заторів у центрі."),
 "ru-caps": ("koi8-r", "ВНИМАНИЕ! ГОРОДСКАЯ АДМИНИСТРАЦИЯ СООБЩАЕТ О РЕМОНТЕ МОСТА. ДВИЖЕНИЕ БУДЕТ ЗАКРЫТО ДО КОНЦА МЕСЯЦА"),
 "es": ("cp1252", "El ayuntamiento aprobó ayer el presupuesto del próximo año. Las obras en las calles comenzarán en marzo y durarán unos seis meses, según el alcalde. ¿Habrá atascos? Los vecinos están preocupados."),
 "de-short": ("cp1252", "Öffnungszeiten: Mo–Fr"),
 "fr-short": ("cp1252", "Voilà, c'est réglé."),
}


@pytest.mark.parametrize("key", sorted(OTHER))
def test_other_legacy_charsets_without_declaration(key):
    """Korean, traditional Chinese, EUC-JP, Greek, Czech, Polish (both code pages), Turkish, Hebrew, Arabic, Thai,
    Ukrainian (cp1251, KOI8-U), Russian in capitals, Spanish, short pages: read right with no declaration."""
    enc, text = OTHER[key]
    body = encode(page(text), enc)
    decoded, used = decode_html(body)
    assert decoded == body.decode(enc), (key, used)


def test_english_with_a_few_symbols_stays_western():
    """Mostly-ASCII pages: curly quotes, × and ÷, one accented name read as cp1252, not as Cyrillic or Thai."""
    text = ("The plumber’s quote was “fair”: 3 × 4 hours at $85 ÷ 2 — a bargain. Dimensions X×Y are listed below. "
            "Our team in Montréal answers every call. " + "Pricing depends on the job and the region. " * 20)
    body = encode(page(text), "cp1252")
    assert decode_html(body)[0] == body.decode("cp1252")
