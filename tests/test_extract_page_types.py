"""The `default` extractor on pages that are not one article: multi-region pages built by hand (a forum thread, a
product page with a specification table, a listing of many items) and images behind ``<noscript>``.

Each page carries the chrome real sites carry (navigation, breadcrumbs, sidebars with link lists, per-post author
boxes, recommendations, footers), so a test fails both when content is lost and when boilerplate is kept."""
from __future__ import annotations

from obelics_builder.extract.stage import extract_html

SITE_HEADER = ("<header class='site-header'><a href='/'><img src='/logo.png' class='logo' alt='Home'></a>"
               "<nav class='main-nav'><ul><li><a href='/forums'>Forums</a></li><li><a href='/shop'>Shop</a></li>"
               "<li><a href='/blog'>Blog</a></li><li><a href='/help'>Help</a></li></ul></nav>"
               "<form class='search'><input name='q'><button>Search</button></form></header>")
SITE_FOOTER = ("<footer class='site-footer'><ul><li><a href='/about'>About us</a></li><li><a href='/privacy'>Privacy"
               "</a></li><li><a href='/terms'>Terms of use</a></li></ul><p>Copyright 2024 Example Media Group. All "
               "rights reserved.</p></footer>")
SIDEBAR = ("<aside class='sidebar'><h3>Latest discussions</h3><ul>"
           + "".join(f"<li><a href='/t/{i}'>Thread number {i} about something else</a></li>" for i in range(8))
           + "</ul></aside>")


def _text(doc: dict) -> str:
    return "\n".join(t for t in doc["texts"] if t is not None)


def _images(doc: dict) -> list[str]:
    return [u for u in doc["images"] if u is not None]


POSTS = [
    ("maria_k", "I have been trying to get my sourdough starter going for two weeks now, feeding it twice a day "
                "with rye flour, but it still smells like nail polish remover and barely rises at all."),
    ("bakerjoe", "That acetone smell means it is hungry. Feed it more often or use a bigger ratio, say one part "
                 "starter to five parts flour and water, and keep it somewhere warm."),
    ("lena", "Agreed. Also check your water: chlorinated tap water slowed mine down a lot."),
    ("maria_k", "Thanks both! I switched to filtered water and a one to five feed, and this morning it doubled in "
                "six hours for the first time."),
    ("old_timer", "Great news. Give it another week of regular feeds before you bake with it, the flavour keeps "
                  "developing and the rise gets more predictable."),
]


def forum_thread() -> str:
    posts = "".join(
        f"<article class='message' id='post-{i}'>"
        f"<div class='message-user'><a href='/u/{who}' class='username'>{who}</a><span class='user-title'>Member"
        f"</span><span class='joined'>Joined 2019</span></div>"
        f"<div class='message-main'><div class='message-attribution'><time>May {i + 3}, 2024</time>"
        f"<a href='#post-{i}'>#{i + 1}</a></div>"
        f"<div class='message-body'><div class='bbWrapper'>{body}</div></div>"
        f"<div class='message-actions'><a href='/like/{i}'>Like</a> <a href='/quote/{i}'>Quote</a> "
        f"<a href='/report/{i}'>Report</a></div></div></article>"
        for i, (who, body) in enumerate(POSTS))
    return ("<html><head><title>Starter smells like acetone | Bread Forum</title></head><body>" + SITE_HEADER
            + "<div class='p-body'><ul class='breadcrumb'><li><a href='/'>Home</a></li><li><a href='/forums'>"
              "Forums</a></li><li><a href='/forums/sourdough'>Sourdough</a></li></ul>"
              "<div class='p-main'><h1 class='p-title'>Starter smells like acetone after two weeks</h1>"
              f"<div class='block-body js-replyNewMessageContainer'>{posts}</div>"
              "<div class='pagination'><a href='?page=2'>2</a> <a href='?page=3'>3</a> <a href='?page=2'>Next"
              "</a></div></div>" + SIDEBAR + "</div>" + SITE_FOOTER + "</body></html>")


def test_forum_thread_keeps_every_post_and_drops_chrome():
    doc = extract_html(forum_thread(), "https://forum.example.org/threads/starter-acetone.123/")
    text = _text(doc)
    for _, body in POSTS:
        assert body in text, body[:40]
    positions = [text.index(body) for _, body in POSTS]
    assert positions == sorted(positions)  # posts in thread order
    for chrome in ("Latest discussions", "Thread number 3", "Privacy", "All rights reserved", "Search"):
        assert chrome not in text, chrome


DESCRIPTION = [
    "The Aurora 2 is a compact espresso machine for small kitchens, with a stainless steel boiler that reaches "
    "brewing temperature in under two minutes.",
    "Its commercial-size portafilter and a steam wand that textures milk for two cappuccinos at once make it a "
    "favourite of home baristas who want cafe results without a cafe-size machine.",
]
SPECS = [("Boiler", "Stainless steel, 0.45 litres"), ("Pump pressure", "15 bar"), ("Power", "1,450 W"),
         ("Water tank", "1.8 litres, removable"), ("Dimensions", "24 x 33 x 31 cm"), ("Weight", "7.2 kg")]


def product_page() -> str:
    specs = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in SPECS)
    recs = "".join(f"<li class='product-card'><a href='/p/{i}'><img src='/img/p{i}.jpg' alt=''>Grinder model {i}"
                   f"</a><span class='price'>$1{i}9</span></li>" for i in range(6))
    return ("<html><head><title>Aurora 2 espresso machine</title>"
            "<meta property='og:type' content='product'></head><body>" + SITE_HEADER
            + "<main id='maincontent'><ul class='breadcrumbs'><li><a href='/'>Home</a></li><li><a href='/coffee'>"
              "Coffee</a></li><li><a href='/coffee/espresso'>Espresso machines</a></li></ul>"
              "<div class='product-info-main'><h1 class='page-title'>Aurora 2 Espresso Machine</h1>"
              "<div class='price-box'><span class='price'>$649.00</span></div>"
              "<button class='tocart'>Add to cart</button></div>"
              "<div class='product-media'><img src='/media/aurora-2-front.jpg' alt='Aurora 2, front view' "
              "width='800' height='800'></div>"
              "<div class='product-details'><div class='tab-content' id='description'><h2>Description</h2>"
            + "".join(f"<p>{p}</p>" for p in DESCRIPTION)
            + "</div></div>"
              f"<div class='additional-attributes-wrapper' id='specifications'><h2>Specifications</h2>"
              f"<table class='data table additional-attributes'><tbody>{specs}</tbody></table></div>"
              f"<div class='block related'><h2>Customers also bought</h2><ul class='product-items'>{recs}</ul></div>"
              "</main>" + SITE_FOOTER + "</body></html>")


def test_product_page_keeps_description_and_specification_table():
    doc = extract_html(product_page(), "https://shop.example.com/aurora-2-espresso-machine.html")
    text = _text(doc)
    assert "Aurora 2 Espresso Machine" in text
    for p in DESCRIPTION:
        assert p in text
    for k, v in SPECS:
        assert k in text and v in text, k
    # one line per row, key and value together
    assert any("Pump pressure" in line and "15 bar" in line for line in text.splitlines())
    assert "https://shop.example.com/media/aurora-2-front.jpg" in _images(doc)
    for chrome in ("Customers also bought", "Grinder model 2", "All rights reserved", "Espresso machines"):
        assert chrome not in text, chrome


ITEMS = [(f"How to repot a {plant} without hurting its roots", f"Our step-by-step guide to moving a {plant} into a "
          f"bigger pot, with the soil mix we use and the mistakes that set a plant back for months.")
         for plant in ("monstera", "fiddle leaf fig", "snake plant", "pothos", "peace lily", "rubber plant",
                       "calathea", "ZZ plant", "bird of paradise", "string of pearls")]


def listing_page() -> str:
    cards = "".join(f"<article class='post-card'><a href='/guides/{i}'><img src='/thumbs/{i}.jpg' alt=''></a>"
                    f"<h2 class='post-card-title'><a href='/guides/{i}'>{title}</a></h2>"
                    f"<p class='post-card-excerpt'>{excerpt}</p><span class='post-card-date'>Apr {i + 1}, 2024"
                    "</span></article>" for i, (title, excerpt) in enumerate(ITEMS))
    return ("<html><head><title>Repotting guides</title></head><body>" + SITE_HEADER
            + "<main class='site-main'><header class='archive-header'><h1>Repotting guides</h1>"
              "<p>Everything we know about giving houseplants more room to grow, from choosing a pot to the first "
              "weeks after the move.</p></header>"
              f"<div class='post-feed'>{cards}</div>"
              "<nav class='pagination'><a href='?page=2'>Older posts</a></nav></main>"
            + SIDEBAR + SITE_FOOTER + "</body></html>")


def test_listing_keeps_every_item_title_and_summary():
    doc = extract_html(listing_page(), "https://plants.example.net/tag/repotting/")
    text = _text(doc)
    for title, excerpt in ITEMS:
        assert title in text, title
        assert excerpt in text, title
    assert "Repotting guides" in text
    for chrome in ("Latest discussions", "Older posts", "All rights reserved", "Privacy"):
        assert chrome not in text, chrome


ARTICLE = "".join(f"<p>The river rose four metres overnight, and by morning the old bridge in the town centre was "
                  f"closed to traffic for the first time since 1987, paragraph {i}.</p>" for i in range(4))


def _noscript_page(figure: str) -> str:
    return ("<html><head><title>Flood</title><meta property='og:type' content='article'></head><body>" + SITE_HEADER
            + f"<article><h1>Flood closes the old bridge</h1>{ARTICLE}{figure}{ARTICLE}</article>"
            + SITE_FOOTER + "</body></html>")


def test_noscript_image_stands_in_for_a_lazy_image_without_source():
    fig = ("<figure><img class='lazyload' alt='The bridge under water'>"
           "<noscript><img src='/photos/bridge-flood.jpg' alt='The bridge under water'></noscript>"
           "<figcaption>The old bridge on Tuesday morning.</figcaption></figure>")
    doc = extract_html(_noscript_page(fig), "https://news.example.com/2024/flood.html")
    assert _images(doc) == ["https://news.example.com/photos/bridge-flood.jpg"]
    assert "The old bridge on Tuesday morning." in _text(doc)


def test_noscript_copy_of_an_image_with_a_source_is_not_a_second_image():
    fig = ("<figure><img src='/photos/bridge-flood-800.jpg' alt='The bridge'>"
           "<noscript><img src='/photos/bridge-flood.jpg' alt='The bridge'></noscript></figure>")
    doc = extract_html(_noscript_page(fig), "https://news.example.com/2024/flood.html")
    assert _images(doc) == ["https://news.example.com/photos/bridge-flood-800.jpg"]


def test_noscript_image_keeps_its_place_in_page_order():
    fig = ("<p>Before the photo, the mayor spoke to reporters on the embankment.</p>"
           "<img class='lazy' src='data:image/gif;base64,R0lGODlhAQABAAAAACw=' data-src=''>"
           "<noscript><img src='https://cdn.example.com/mayor.jpg'></noscript>"
           "<p>After the photo, the water began to fall again by the afternoon.</p>")
    doc = extract_html(_noscript_page(fig), "https://news.example.com/2024/flood.html")
    order = [("img", u) if u else ("txt", t) for t, u in zip(doc["texts"], doc["images"])]
    i_img = order.index(("img", "https://cdn.example.com/mayor.jpg"))
    before = next(i for i, (k, v) in enumerate(order) if k == "txt" and "Before the photo" in v)
    after = next(i for i, (k, v) in enumerate(order) if k == "txt" and "After the photo" in v)
    assert before < i_img < after


def test_section_opened_by_a_recommendation_heading_is_dropped():
    reco = ("<section class='shelf'><div class='shelf-head'><h2>You may also like</h2></div><div class='grid'>"
            + "".join(f"<div class='tile'><a href='/p/{i}'>Milk frothing jug, 600 ml, model {i}</a>"
                      f"<span>$2{i}.00</span></div>" for i in range(5)) + "</div></section>")
    html = product_page().replace("</main>", reco + "</main>")
    text = _text(extract_html(html, "https://shop.example.com/aurora-2-espresso-machine.html"))
    assert DESCRIPTION[0] in text and "Pump pressure" in text
    assert "You may also like" not in text and "Milk frothing jug" not in text


def test_a_recommendation_phrase_inside_prose_drops_nothing():
    fig = "<h2>Related</h2><p>Related work on flood defences began in 1990, when the council first " \
          "proposed a higher embankment along the whole of the river front.</p>"
    text = _text(extract_html(_noscript_page(fig), "https://news.example.com/2024/flood.html"))
    assert "Related work on flood defences began in 1990" in text
    assert "paragraph 3" in text


def test_forum_posts_whose_text_sits_deep_inside_each_post_are_all_kept():
    # XenForo-style markup: the post's text is seven elements below the repeated <article class="message">
    deep = forum_thread()
    for a, b in (("<div class='message-main'>", "<div class='message-inner'><div class='message-cell'>"
                  "<div class='message-main'><div class='message-content'><div class='message-userContent'>"),
                 ("</div></div><div class='message-actions'>", "</div></div></div></div></div>"
                  "</div><div class='message-actions'>")):
        deep = deep.replace(a, b)
    text = _text(extract_html(deep, "https://forum.example.org/threads/starter-acetone.123/"))
    for _, body in POSTS:
        assert body in text, body[:40]
    assert "Latest discussions" not in text


def test_listing_of_whole_link_cards_keeps_titles_and_summaries():
    # every card is one link holding a heading and a paragraph (BBC, Ghost, most shop grids)
    cards = "".join(f"<div class='card'><a href='/guides/{i}' class='card-link'><div class='card-media'>"
                    f"<img src='/thumbs/{i}.jpg' alt=''></div><h3>{title}</h3><p>{excerpt}</p></a></div>"
                    for i, (title, excerpt) in enumerate(ITEMS))
    html = listing_page().replace("<div class='post-feed'>", f"<div class='post-feed'>{cards}</div><div hidden>")
    text = _text(extract_html(html, "https://plants.example.net/tag/repotting/"))
    for title, excerpt in ITEMS:
        assert title in text and excerpt in text, title
    for chrome in ("Latest discussions", "Thread number 3", "All rights reserved"):
        assert chrome not in text, chrome


SERVICES = [("Security assessments", "We test your cloud, identity and network set-up the way an attacker would, and "
             "hand you a ranked list of what to fix first."),
            ("Incident response", "When something goes wrong, our responders are on a call with you within the hour, "
             "day or night, and stay until the systems are clean."),
            ("Training for your team", "Hands-on workshops teach engineers to spot phishing, harden servers and "
             "rehearse the first hour of an incident."),
            ("Compliance readiness", "We map your controls to the frameworks your customers ask about and close the "
             "gaps before the auditors arrive."),
            ("Managed detection", "Our analysts watch your alerts around the clock, so your people sleep at night and "
             "real threats are stopped in minutes."),
            ("Board reporting", "Plain-language reports show your board where the risk is, what it costs and how it "
             "is falling quarter by quarter.")]


def test_service_page_with_content_spread_over_sections_keeps_them_all():
    # page builders nest every band's text many wrappers deep
    sections = "".join(f"<section class='{('intro', 'features', 'process', 'team', 'pricing', 'proof')[i]}'>" + "<div class='wrap'>" * 6 + "<div class='container'>"
                       f"<div class='row'><div class='col'>"
                       f"<h2>{title}</h2><p>{body}</p><a class='btn' href='/s/{i}'>Learn more about {title.lower()}</a>"
                       f"<a class='btn' href='/c/{i}'>Read the case study of a customer</a></div></div></div>"
                       + "</div>" * 6 + "</section>" for i, (title, body) in enumerate(SERVICES))
    html = ("<html><head><title>Cybersecurity consulting</title></head><body>" + SITE_HEADER
            + "<div class='page'><section class='hero'><h1>Cybersecurity consulting</h1><p>Frontline expertise to "
              "reach peak readiness and keep your team ahead of threats.</p></section>" + sections
            + "</div>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://consult.example.com/services/security/"))
    for title, body in SERVICES:
        assert title in text and body in text, title
    for chrome in ("Privacy", "All rights reserved", "Search"):
        assert chrome not in text, chrome


LANGS = {"A": ["Ada", "ALGOL 68", "APL", "Awk"], "C": ["C", "C++", "COBOL", "Clojure", "Crystal"],
         "F": ["Forth", "Fortran", "F#"], "L": ["Lisp", "Logo", "Lua"], "P": ["Pascal", "Perl", "PHP", "Prolog",
                                                                            "Python"]}
YEAR = {n: 1950 + 3 * i for i, n in enumerate(n for names in LANGS.values() for n in names)}


def test_category_listing_of_short_links_keeps_the_lists():
    # the items carry a little text besides their link (years, counts), as on most such pages: lists made of
    # nothing but short links are pruned like menus (see extract/README.md)
    groups = "".join(f"<div class='mw-category-group'><h3>{k}</h3><ul>"
                     + "".join(f"<li><a href='/wiki/{n}'>{n}</a> ({YEAR[n]})</li>" for n in names) + "</ul></div>"
                     for k, names in LANGS.items())
    html = ("<html><head><title>Category:Programming languages</title></head><body>" + SITE_HEADER
            + "<div class='page-container'><div class='content'><h1>Category:Programming languages</h1>"
              "<div class='body-content'><div class='parser-output'><p>This category lists individual programming "
              "languages. Articles about general topics belong in the topics category.</p></div>"
              f"<div class='mw-pages'><h2>Pages in category</h2><div class='mw-content-ltr'>{groups}</div></div>"
              "</div></div></div>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://wiki.example.org/wiki/Category:Programming_languages"))
    for names in LANGS.values():
        for n in names:
            assert f"{n} ({YEAR[n]})" in text.splitlines(), n
    assert "This category lists individual programming languages." in text
    for chrome in ("Privacy", "All rights reserved", "Forums"):
        assert chrome not in text, chrome


def test_aria_hidden_formula_images_are_kept_with_their_alt_text():
    # aria-hidden hides from screen readers only: Wikipedia shows formula images aria-hidden beside their MathML
    fig = ("<p>A matrix is Hermitian when <span class='mwe-math-element'><math><mi>A</mi></math>"
           "<img src='https://wikimedia.org/api/rest_v1/media/math/render/svg/28a0aaa7' "
           "class='mwe-math-fallback-image-inline' aria-hidden='true' alt='A = A^{H}'></span>, that is, when it "
           "equals its own conjugate transpose.</p>")
    doc = extract_html(_noscript_page(fig), "https://news.example.com/2024/flood.html")
    assert "https://wikimedia.org/api/rest_v1/media/math/render/svg/28a0aaa7" in _images(doc)
    meta = [m for m in doc["metadata"] if m and m.get("src", "").endswith("28a0aaa7")]
    assert meta and meta[0]["alt_text"] == "A = A^{H}"


def test_declared_article_signals():
    from obelics_builder.extract.boilerplate import declared_article
    yes = ["<meta property='og:type' content='article'>", '<meta property="og:type" content="Article" />',
           '<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle"}</script>',
           '{"@type": ["BlogPosting"]}', "<div itemscope itemtype='https://schema.org/Article'>",
           '<script>{"@type":"Organization"}</script>' * 300 + "<meta property='og:type' content='article'>"]
    yes.append("<meta property='og:type' content='article'>"  # an article item outweighs a list elsewhere
               '<script type="application/ld+json">{"@type":"NewsArticle"} {"@type":"ItemList"}</script>')
    no = ["<meta property='og:type' content='article'>"  # og:type on every page of a site, even its front page
          '<script type="application/ld+json">{"@graph":[{"@type":"CollectionPage","name":"Front"}]}</script>',
          "<meta property='og:type' content='article'><body itemscope itemtype='https://schema.org/ItemList'>",
          "<meta property='og:type' content='product'>", '{"@type":"Product"}', '{"@type":"ArticleSeries"}',
          "<div itemtype='https://schema.org/Product'>", "<p>an og:type article about @type</p>", ""]
    for html in yes:
        assert declared_article("<html><head>" + html + "</head></html>"), html[:60]
    for html in no:
        assert not declared_article("<html><head>" + html + "</head></html>"), html[:60]


def test_adobe_experience_manager_components_are_not_consent_banners():
    # AEM names every core component cmp-* (cmp-container, cmp-text, cmp-teaser): not a consent platform
    sections = "".join(f"<div class='cmp-container'><div class='cmp-text'><h2>{title}</h2><p>{body}</p></div></div>"
                       for title, body in SERVICES)
    html = ("<html><head><title>Consulting</title></head><body>" + SITE_HEADER
            + f"<div class='root responsivegrid'><div class='cmp-container'>{sections}</div></div>"
            + "<div id='onetrust-banner-sdk'><p>We use cookies and similar technologies to improve your experience "
              "on our website, for analytics and for advertising.</p></div>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://consult.example.com/services/"))
    for title, body in SERVICES:
        assert body in text, title
    assert "We use cookies" not in text


def test_web_component_links_count_as_links():
    # a mega menu built from custom elements with href (<dropdown-item href=...>) is a menu, not content
    menu = "<div class='mn-root'>" + "".join(
        f"<div class='mn-col'><dropdown-headline href='/c/{i}'>Guitars {i}</dropdown-headline>"
        + "".join(f"<dropdown-item href='/c/{i}/{j}'>Electric guitar type {j}</dropdown-item>" for j in range(8))
        + "</div>" for i in range(6)) + "</div>"
    html = product_page().replace("<main id='maincontent'>", menu + "<main id='maincontent'>")
    text = _text(extract_html(html, "https://shop.example.com/aurora-2-espresso-machine.html"))
    assert DESCRIPTION[0] in text and "Pump pressure" in text
    assert "Electric guitar type 3" not in text


def test_content_inside_a_wrapper_hidden_by_an_inline_style_is_shown():
    # lock-down, age-gate and deferred-render apps hide the whole content with style="display:none" until their
    # script runs: the page's content is still inside, and only there
    html = product_page().replace("<main id='maincontent'>", "<div class='lockdown-content' style='display:none'>"
                                  "<main id='maincontent'>").replace("</main>", "</main></div>")
    html = html.replace("<div class='product-details'>", "<div class='product-details'><div class='size-guide' "
                        "style='display: none'><p>Size guide popup text that stays hidden even when the wrapper is "
                        "shown by the page script.</p></div>")
    text = _text(extract_html(html, "https://shop.example.com/aurora-2-espresso-machine.html"))
    for p in DESCRIPTION:
        assert p in text
    assert "Pump pressure" in text
    assert "Size guide popup" not in text  # a hidden subtree inside the content stays hidden
    for chrome in ("Customers also bought", "All rights reserved"):
        assert chrome not in text, chrome


def test_hidden_subtrees_do_not_count_for_the_visible_content():
    # a hidden block full of prose next to the visible article is neither content nor a weight on its neighbours
    hidden = "<div class='modal-body' style='visibility: hidden'>" + "<p>Hidden prose paragraph, long enough to " \
             "score as a block of real text if it were walked like the visible ones.</p>" * 6 + "</div>"
    fig = hidden + "<p>The visible paragraph of the story, which a reader sees right under the headline.</p>"
    text = _text(extract_html(_noscript_page(fig), "https://news.example.com/2024/flood.html"))
    assert "Hidden prose paragraph" not in text
    assert "The visible paragraph of the story" in text and "paragraph 3" in text


def test_tailwind_variant_classes_are_not_boilerplate_words():
    # GitBook and other Tailwind sites put print:break-inside-avoid on every paragraph: a print style, not a
    # "print" widget; variant classes (print:, md:, hover:) say nothing about what an element holds
    from obelics_builder.extract.boilerplate import NEG_STRONG, class_words_hint
    assert not class_words_hint("mx-auto w-full print:break-inside-avoid md:hidden", None) & NEG_STRONG
    assert class_words_hint("print-button md:block", None) & NEG_STRONG  # the plain word still counts
    paras = "".join(f"<p class='max-w-3xl print:break-inside-avoid text-start'>{p}</p>" for p in DESCRIPTION)
    html = ("<html><head><title>Guide</title></head><body>" + SITE_HEADER
            + f"<main class='relative flex-1 py-8'><h1>About this book</h1>{paras}</main>" + SITE_FOOTER
            + "</body></html>")
    text = _text(extract_html(html, "https://guide.example.io/about"))
    for p in DESCRIPTION:
        assert p in text
    assert "All rights reserved" not in text


def test_hidden_tab_panels_are_content():
    # documentation shows one language's instructions at a time (role=tabpanel, the others hidden until their tab
    # is clicked); product pages do the same with description / specifications: every panel is the page's content
    shut = " hidden style='display:none'"
    panels = "".join(f"<div role='tabpanel' id='tab-{lang}'{'' if i == 0 else shut}>"
                     f"<p>Install the {lang} SDK with its package manager, then create a file that sends your first "
                     f"message with the {lang} client.</p><pre><code>{cmd}</code></pre></div>"
                     for i, (lang, cmd) in enumerate((("Python", "pip install example-sdk"),
                                                      ("Node.js", "npm install example-sdk"),
                                                      ("Ruby", "gem install example-sdk"))))
    tabs = "<div role='tablist'><button role='tab'>Python</button><button role='tab'>Node.js</button></div>"
    html = ("<html><head><title>Quickstart</title></head><body>" + SITE_HEADER
            + f"<main><h1>Send your first message</h1><p>{DESCRIPTION[0]}</p>{tabs}{panels}"
              "<div class='modal' hidden><p>A hidden dialog that is not a tab panel stays out of the text.</p></div>"
              "</main>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://docs.example.com/quickstart"))
    for lang, cmd in (("Python", "pip install"), ("Node.js", "npm install"), ("Ruby", "gem install")):
        assert f"Install the {lang} SDK" in text and cmd in text, lang
    assert "hidden dialog" not in text


def test_page_builder_widget_classes_are_content_but_sidebar_widgets_are_not():
    # HubSpot names every layout cell "widget-span widget-type-cell"; WordPress names its sidebar widgets
    # "widget widget_recent_entries", "widget-5"
    from obelics_builder.extract.boilerplate import NEG_STRONG, class_words_hint
    for cls in ("span12 widget-span widget-type-cell dnd-column", "hs_cos_wrapper hs_cos_wrapper_widget"):
        assert not class_words_hint(cls, None) & NEG_STRONG, cls
    for cls in ("widget widget_recent_entries", "widget-5 panel", "widget_categories", "widget-area", "widgets"):
        assert class_words_hint(cls, None) & NEG_STRONG, cls
    cells = "".join(f"<div class='span12 widget-span widget-type-cell dnd-column'><div class='row-fluid'>"
                    f"<div class='hs_cos_wrapper hs_cos_wrapper_widget'><h2>{t}</h2><p>{b}</p></div></div></div>"
                    for t, b in SERVICES)
    side = ("<div class='widget widget_recent_entries'><h3>Recent posts</h3><ul>"
            + "".join(f"<li><a href='/p/{i}'>Another post title number {i}</a></li>" for i in range(6)) + "</ul></div>")
    html = ("<html><head><title>Tips</title><meta property='og:type' content='article'></head><body>" + SITE_HEADER
            + f"<main class='pillar'><h1>Top tips</h1>{cells}</main><div class='sidebar-col'>{side}</div>"
            + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://bank.example.com/top-tips"))
    for t, b in SERVICES:
        assert b in text, t
    assert "Another post title number 3" not in text


def test_drupal_promoted_flag_is_not_a_promotion():
    # Drupal marks a node promoted to the front page "node--promoted": a state, not a promo box
    from obelics_builder.extract.boilerplate import NEG_STRONG, class_words_hint
    assert not class_words_hint("node node--type-recipe node--promoted node--view-mode-full", None) & NEG_STRONG
    assert class_words_hint("promo-banner", None) & NEG_STRONG and class_words_hint("home-promos", None) & NEG_STRONG
    steps = "".join(f"<li><p>{p}</p></li>" for p in DESCRIPTION)
    html = ("<html><head><title>Bread</title><meta property='og:type' content='article'></head><body>" + SITE_HEADER
            + "<main><div class='quickview'><p>A short summary of the recipe shown at the top of the page, above "
              "everything else.</p></div><div class='node node--type-recipe node--promoted'><section class='recipe'>"
              f"<h2>Instructions</h2><ol>{steps}</ol></section></div></main>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://bake.example.com/recipes/bread"))
    for p in DESCRIPTION:
        assert p in text


def test_toc_named_sections_holding_prose_are_content_but_a_table_of_contents_is_not():
    # NY.gov names every chapter of a long page "toc-para" (the table of contents points at them); a real table of
    # contents is mostly links, which is how it is told apart (at the element's close)
    chapters = "".join(f"<section class='toc-para' id='toc_{i}'><h2>{t}</h2><p>{b}</p></section>"
                       for i, (t, b) in enumerate(SERVICES))
    toc = "<ol class='book-toc'>" + "".join(f"<li>1.{i} <a href='#toc_{i}'>{t}</a></li>"
                                             for i, (t, _) in enumerate(SERVICES)) + "</ol>"
    html = ("<html><head><title>Forming an LLC</title></head><body>" + SITE_HEADER
            + f"<main><h1>Forming an LLC</h1><div class='webny-toc-page'>{toc}<div class='toc-chapters'>{chapters}"
              "</div></div></main>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://state.example.gov/forming-llc"))
    for t, b in SERVICES:
        assert b in text, t
    assert "1.2 " not in text  # the table of contents itself is dropped


def test_a_copy_of_the_content_far_from_the_original_is_dropped_a_refrain_is_kept():
    # Squarespace and many shops carry the description twice (one copy per layout); a reader reads it once
    desc = "".join(f"<p>{p}</p>" for p in DESCRIPTION)
    specs = "".join(f"<p>{k}: {v}, as measured by the maker in its own test lab.</p>" for k, v in SPECS[:3])
    html = ("<html><head><title>Mug</title></head><body>" + SITE_HEADER
            + f"<main><div class='product-summary'><h1>Aurora 2</h1>{desc}{specs}</div>"
              f"<div class='product-description-mobile'>{desc}</div></main>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://shop.example.com/p/aurora"))
    for p in DESCRIPTION:
        assert text.count(p) == 1, p[:30]
    refrain = "<p>We shall fight on the beaches and we shall never surrender.</p>"
    fig = refrain + "<p>We shall go on to the end, whatever the cost may be.</p>" + refrain
    text = _text(extract_html(_noscript_page(fig), "https://news.example.com/2024/flood.html"))
    assert text.count("we shall never surrender") == 2


def test_dedupe_paragraphs_counts_paragraphs_across_images():
    from obelics_builder.extract.layout import dedupe_paragraphs
    p = "A paragraph long enough to count as a paragraph of content."
    out = dedupe_paragraphs([("text", p), ("image", {"src": "a"}), ("text", "x\n\ny\n\nz\n\n" + p)])
    assert out == [("text", p), ("image", {"src": "a"}), ("text", "x\n\ny\n\nz")]
    assert dedupe_paragraphs([("text", f"{p}\n\nshort\n\n{p}")]) == [("text", f"{p}\n\nshort\n\n{p}")]


def test_extra_counts_only_as_a_whole_class():
    # the Salient/WPBakery theme puts "no-extra-padding" on every column; "extra" alone is a box of extras
    from obelics_builder.extract.boilerplate import NEG_STRONG, class_words_hint
    for cls in ("vc_col-sm-6 wpb_column col no-extra-padding", "content-width-extra-large"):
        assert not class_words_hint(cls, None) & NEG_STRONG, cls
    assert class_words_hint("extra", None) & NEG_STRONG and class_words_hint("box extra", None) & NEG_STRONG
    cols = "".join(f"<div class='vc_col-sm-6 wpb_column col no-extra-padding'><h3>{t}</h3><p>{b}</p></div>"
                   for t, b in SERVICES)
    html = ("<html><head><title>Nord Zero</title></head><body>" + SITE_HEADER
            + f"<div class='main-content'><h1>Nord Zero</h1><div class='row'>{cols}</div></div>" + SITE_FOOTER
            + "</body></html>")
    text = _text(extract_html(html, "https://shop.example.com/product/nord-zero/"))
    for t, b in SERVICES:
        assert b in text, t


def test_headers_beside_the_chosen_content_are_dropped_but_not_those_of_cards():
    # when the content grows past its container to a page wrapper (spread over sections, Google Cloud's "learn"
    # pages), the site's header with its mega menu of described links comes along: it is dropped; the page's own
    # header (a listing's title and introduction inside <main>) and the headers of cards are kept
    from selectolax.lexbor import LexborHTMLParser

    from obelics_builder.extract.boilerplate import _site_header
    from obelics_builder.extract.default import _walk
    html = ("<body><div class='page'><header class='site'><a href='/p'>Products</a><p>Solutions for teams of "
            "every size.</p></header><main><header class='intro'><h1>Guides</h1><p>All our guides.</p></header>"
            "<div class='content'><p>The chosen content.</p></div><article class='card'><header><h2>"
            "<a href='/g/1'>A card title</a></h2></header><p>A card summary.</p></article></main></div></body>")
    pg = _walk(LexborHTMLParser(html).body, None, debug=True)
    ids = {(pg.debug[i][0] or pg.recs[i][0]): i for i in range(len(pg.recs))}
    root, core = ids["page"], ids["content"]
    headers = [i for i, r in enumerate(pg.recs) if r[0] == "header"]
    site, intro, card = headers
    assert _site_header(pg.recs, site, root, core)
    assert not _site_header(pg.recs, intro, root, core)
    assert not _site_header(pg.recs, card, root, core)
    assert not _site_header(pg.recs, site, root, ids["page"])  # inside the chosen container itself: kept
    # a listing's cards keep their own headers (the item titles)
    cards = "".join(f"<article class='river'><header><h2><a href='/a/{i}'>{t}</a></h2></header><p>{b}</p></article>"
                    for i, (t, b) in enumerate(ITEMS))
    html = (f"<html><head><title>Topics</title></head><body>{SITE_HEADER}<div class='wrap'><main><h1>Repotting</h1>"
            f"{cards}</main></div>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://news.example.com/topic/repotting"))
    for t, b in ITEMS:
        assert t in text and b in text, t


def test_the_climb_stops_at_main():
    # the article's body sits in <main>; outside it a long footer of deal boxes and related stories holds more prose
    # than the body: climbing past <main> would take the whole page
    deals = "".join(f"<div class='row'><div class='col'><div class='card'><div class='body'><h3>Deal number {i} of "
                    f"the week</h3><p>Save big on item {i} this week only at our partner store now</p></div></div>"
                    "</div></div>" for i in range(12))
    html = ("<html><head><title>Deal</title><meta property='og:type' content='article'></head><body>" + SITE_HEADER
            + "<main><article><h1>MacBook deal</h1><section class='editor-content'>"
            + "".join(f"<p>{p}</p>" for p in DESCRIPTION + [b for _, b in SERVICES]) + "</section></article></main>"
            + f"<div class='more'>{deals}</div>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://news.example.com/article/deal"))
    for p in DESCRIPTION:
        assert p in text
    assert "Deal number 3 of the week" not in text


def test_class_words_yield_when_negative_subtrees_hold_nearly_all_the_prose():
    # SiteOrigin builds pages of "so-panel widget widget_text" blocks; IPS forums wrap every post in "comment-N_wrap":
    # when such subtrees hold nearly all the prose, their words name the content; hidden classes, negative tags and
    # plain boilerplate words (cookie, related...) still count
    panels = "".join(f"<div class='so-panel widget widget_text'><h3>{t}</h3><p>{b}</p></div>" for t, b in SERVICES)
    html = ("<html><head><title>Salary</title><meta property='og:type' content='article'></head><body>" + SITE_HEADER
            + f"<div class='site-inner'><article class='entry'><div class='entry-content'><div class='panel-layout'>"
              f"{panels}<div class='so-panel widget cookie-notice'><p>We use cookies to improve your experience of "
              "this website and for analytics.</p></div><div class='so-panel widget d-none'><p>A panel hidden by its "
              "class that nobody sees on the page at all.</p></div></div></div></article></div>"
            + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://college.example.edu/career/negotiate-salary"))
    for t, b in SERVICES:
        assert b in text, t
    assert "We use cookies" not in text and "nobody sees" not in text


def test_spread_content_grows_when_the_best_container_holds_under_70_percent():
    # a landing page: one band holds about 60 % of the clean text, another band the rest
    big = "".join(f"<p>{b}</p>" for _, b in SERVICES[:4])
    small = "".join(f"<p>{b}</p>" for _, b in SERVICES[4:])
    links = "<div class='menu-links'>" + "".join(f"<a href='/x/{i}'>Another service page link number {i}</a> "
                                                 for i in range(14)) + "</div>"
    html = ("<html><head><title>Security</title></head><body>" + SITE_HEADER
            + f"<div class='page'>{links}<div class='band-a'><div class='inner'>{big}</div></div>"
              f"<div class='band-b'><div class='wrap'><div class='inner'><h2>Also</h2>{small}</div></div></div></div>"
            + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://consult.example.com/security/"))
    for _, b in SERVICES:
        assert b in text
    assert "All rights reserved" not in text and "link number 3" not in text


def test_the_climb_reaches_ten_levels_up():
    # page builders (Elementor, AEM, Divi) nest each text block eight or nine wrappers below the section holding
    # them all; the article is declared, so only the climb can gather them
    deep = "".join("".join(f"<div class='w{j}'>" for j in range(8)) + f"<h2>{t}</h2><p>{b}</p>" + "</div>" * 8
                   for t, b in SERVICES)
    html = ("<html><head><title>Consulting</title><meta property='og:type' content='article'></head><body>"
            + SITE_HEADER + f"<div class='site'><div class='builder-root'>{deep}</div>{SIDEBAR}</div>" + SITE_FOOTER
            + "</body></html>")
    text = _text(extract_html(html, "https://consult.example.com/blog/services/"))
    for t, b in SERVICES:
        assert b in text, t
    assert "Latest discussions" not in text


def test_call_to_action_lines_are_dropped():
    from obelics_builder.extract.layout import drop_cta_lines
    text = "Aurora 2\nAdd to cart\nRead more »\n\nLoading...\n\nRead more about the history of the Aurora line here"
    assert drop_cta_lines(text) == "Aurora 2\n\nRead more about the history of the Aurora line here"
    cards = "".join(f"<div class='card'><h3>{t}</h3><p>{b}</p><a href='/s/{i}'>Learn more</a></div>"
                    for i, (t, b) in enumerate(SERVICES))
    html = ("<html><head><title>Services</title></head><body>" + SITE_HEADER + f"<main>{cards}</main>" + SITE_FOOTER
            + "</body></html>")
    text = _text(extract_html(html, "https://consult.example.com/services/"))
    assert SERVICES[0][1] in text and "Learn more" not in text


def test_after_a_declared_article_only_siblings_with_images_or_real_scores_join():
    # a short bio and a teaser after the article body hold a little prose each: not the article; a figure after it is
    bio = ("<div class='about-me'><p>Hey, I am Jessica, a mother of two who writes about keeping a tidy home without "
           "losing your mind.</p></div>")
    fig = ("<div class='after-figure'><img src='/img/bridge-2.jpg' width='800' height='500'><p>The bridge on Wednesday "
           "morning, after the water went down again and the council engineers came back to inspect it.</p></div>")
    html = ("<html><head><title>Flood</title><meta property='og:type' content='article'></head><body>" + SITE_HEADER
            + f"<div class='wrap'><div class='post-body'><h1>Flood closes the old bridge</h1>{ARTICLE}"
              f"{ARTICLE.replace('paragraph', 'part')}</div>{fig}"
              f"{bio}</div>" + SITE_FOOTER + "</body></html>")
    doc = extract_html(html, "https://news.example.com/2024/flood.html")
    text = _text(doc)
    assert "paragraph 3" in text and "The bridge on Wednesday morning" in text
    assert "https://news.example.com/img/bridge-2.jpg" in _images(doc)
    assert "Hey, I am Jessica" not in text


def test_short_repeated_paragraphs_far_apart_are_dropped():
    from obelics_builder.extract.layout import dedupe_paragraphs
    paras = ["Aurora 2", "Price", "$649.00", "A long description of the machine.", "Specifications", "Aurora 2",
             "Price", "1", "2", "3", "1"]
    out = dedupe_paragraphs([("text", "\n\n".join(paras))])
    assert out == [("text", "\n\n".join(["Aurora 2", "Price", "$649.00", "A long description of the machine.",
                                         "Specifications", "1", "2", "3", "1"]))]


def _product_strip_page(ld: str) -> str:
    strip = "".join(f"<li><a href='/p/{i}'><div class='t'>Aurora {i} compact espresso machine, brushed steel "
                    f"edition</div></a></li>" for i in range(3, 9))
    return ("<html><head><title>Aurora 2</title>" + ld + "</head><body>" + SITE_HEADER
            + "<main><div class='pdp'><h1>Aurora 2 Espresso Machine</h1>"
            + "".join(f"<p>{p}</p>" for p in DESCRIPTION)
            + f"</div><div class='strip'><ul>{strip}</ul></div></main>" + SITE_FOOTER + "</body></html>")


def test_product_pages_drop_other_products_titles_outside_the_chosen_container():
    # a page declaring a schema.org Product: a strip of other products' long titles (no heading to tell it is a
    # recommendation) is not the page's content, as cards or long anchors would make it on other pages
    ld = '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Product", "name": "A2"}</script>'
    text = _text(extract_html(_product_strip_page(ld), "https://shop.example.com/aurora-2"))
    for p in DESCRIPTION:
        assert p in text
    assert "Aurora 5 compact" not in text
    # the same page without the declaration: long titles in <main> are a listing's items, kept
    text = _text(extract_html(_product_strip_page(""), "https://shop.example.com/aurora-2"))
    assert "Aurora 5 compact" in text
    # a category page whose products are declared: its grid is most of the page, never dropped whole; items with
    # more than their title link (a description) are kept, as everywhere
    grid = "".join(f"<li><a href='/p/{i}'>Aurora {i} compact espresso machine, brushed steel edition</a> "
                   f"<span>Fifteen bar pump, a steam wand and a {i}-cup water tank for busy mornings</span></li>"
                   for i in range(20))
    html = ("<html><head><title>Espresso</title>" + ld + "</head><body>" + SITE_HEADER
            + "<main><div class='intro'><h1>Espresso machines</h1><p>" + DESCRIPTION[0] + "</p></div>"
            + f"<div class='grid'><ul>{grid}</ul></div></main>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://shop.example.com/espresso/"))
    assert "Aurora 15 compact" in text and DESCRIPTION[0] in text


def test_page_kind_finds_product_declarations():
    from obelics_builder.extract.boilerplate import page_kind
    assert page_kind('<script>{"@type": "Product"}</script>') == (False, True)
    assert page_kind('<div itemscope itemtype="https://schema.org/Product">') == (False, True)
    assert page_kind('<script>{"@type": ["ProductGroup"]}</script><meta property="og:type" content="article">') == (True, True)
    assert page_kind('<script>{"@type": "ProductCollection"}</script>') == (False, False)
    assert page_kind('<p>@type Product</p>') == (False, False)


def test_customer_reviews_are_boilerplate_on_product_pages_only():
    # "review-card" blocks under a product's description are other people's opinions, not the product's text; on a
    # page that is not a product's (a review site, an article) the same words name the content
    reviews = "".join(f"<div class='review-card'><p class='review-card__content'>Review {i}: I bought this machine "
                      f"for my small flat and it makes a lovely crema every morning, though the tank is small.</p>"
                      f"</div>" for i in range(4))
    body = ("<main><div class='pdp'><h1>Aurora 2 Espresso Machine</h1>" + "".join(f"<p>{p}</p>" for p in DESCRIPTION)
            + f"</div><div class='pdp-extra'>{reviews}</div></main>")
    ld = '<script type="application/ld+json">{"@type": "Product", "name": "Aurora 2"}</script>'
    text = _text(extract_html("<html><head>" + ld + "</head><body>" + SITE_HEADER + body + SITE_FOOTER
                              + "</body></html>", "https://shop.example.com/aurora-2"))
    assert DESCRIPTION[0] in text and "Review 2: I bought" not in text
    text = _text(extract_html("<html><head></head><body>" + SITE_HEADER + body + SITE_FOOTER + "</body></html>",
                              "https://shop.example.com/aurora-2"))
    assert DESCRIPTION[0] in text and "Review 2: I bought" in text


def test_repeated_code_blocks_are_not_deduped():
    # documentation repeats its set-up lines in every example: a <pre> block with indented lines is code, kept each
    # time; a plain paragraph repeated far from its first copy is still dropped
    code = "<pre>def handler(event):\n    return respond(event, status=200)\n</pre>"
    steps = "".join(f"<h2>Step {i}</h2><p>{b}</p><p>Run it with the local emulator, then deploy it as step {i} says.</p>{code}"
                    for i, (_, b) in enumerate(SERVICES[:4]))
    repeat = f"<p>{SERVICES[0][1]}</p>"
    html = ("<html><head><title>Handlers</title></head><body>" + SITE_HEADER
            + f"<main><h1>Writing handlers</h1>{steps}{repeat}</main>" + SITE_FOOTER + "</body></html>")
    text = _text(extract_html(html, "https://docs.example.dev/handlers"))
    assert text.count("return respond(event, status=200)") == 4
    assert text.count(SERVICES[0][1]) == 1
