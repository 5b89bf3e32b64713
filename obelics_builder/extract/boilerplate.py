"""Boilerplate decisions for the ``default`` extractor: class/id hints, choice of the main container, and the
subtrees to drop inside it.  Works on the flat per-element records of :func:`default._walk` (no DOM access)."""
from __future__ import annotations

import re
from bisect import bisect_left

# hint bits
NEG_STRONG = 1   # dropped inside the content unless it holds most of the prose
NEG_WEAK = 2     # lowers a container's score
POS = 4          # raises a container's score
HIDDEN = 8       # hidden by an inline style: dropped inside the content unless the content itself is inside one
NAV_WORD = 16    # a navigation word: strongly negative if the element is mostly links (set at its close)
HARD = 32        # with NEG_STRONG: a word that means boilerplate on any page (hidden, cookie, menu, footer, related...)

_NEG_STRONG_TAGS = frozenset(("nav", "aside", "footer", "menu", "form"))
_NEG_WEAK_TAGS = frozenset(("header",))
_POS_TAGS = frozenset(("article", "main"))

def _split_alternatives(words: str) -> list[str]:
    """The top-level alternatives of a regex alternation (``|`` outside groups)."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(words):
        c = words[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and not depth:
            out.append(words[start:i])
            start = i + 1
        i += 1
    out.append(words[start:])
    return out


def _factored(words: str) -> str:
    """The alternation ``words`` (each alternative starting with a plain letter or digit) grouped by first character:
    the same language, but the regex engine tries only the alternatives whose first character matches."""
    groups: dict[str, list[str]] = {}
    for alt in _split_alternatives(words):
        assert alt[:1].isalnum(), alt
        groups.setdefault(alt[0], []).append(alt[1:])
    return "(?:" + "|".join(c + rest[0] if len(rest) == 1 else c + "(?:" + "|".join(rest) + ")"
                            for c, rest in groups.items()) + ")"


def _words_re(words: str) -> re.Pattern:
    """``words`` (an alternation) matched at the start of a word: after the start or a non-letter/digit."""
    return re.compile(r"(?:^|[^a-z0-9])" + _factored(words))


# class/id words, matched at the start of a word (split on anything that is not a letter or digit); the text is
# lowercased first, so the patterns are case-sensitive (faster)
_NEG_STRONG_WORDS = (
    r"navbar|navigation|menu|breadcrumb|footer|masthead|cookie|consent|gdpr|onetrust|didomi|qc-cmp|"
    r"share|sharing|social|subscri|newsletter|signup|sign-up|login|register|"
    r"comment|disqus|respond|related|recommend|more-stories|more-articles|"
    r"popular|trending|most-read|mostread|promo(?!ted)|sponsor|advert|adsense|adslot|ad-slot|ad-container|ad-wrapper|"
    r"dfp|outbrain|taboola|popup|modal|overlay|skip-link|toolbar|pagination|pager|byline|author-bio|authorbio|"
    r"about-author|author-box|tags|tag-list|taglist|post-tags|categories|print|donate|paywall|"
    r"screen-reader|sr-only|visually-hidden|banner|copyright|"
    r"follow|signature|reviews|customer-review|yotpo|bazaarvoice|bv-|pr-review|tooltip|alert|notification|ticker|carousel")
_RE_NEG_STRONG = _words_re(_NEG_STRONG_WORDS)
# strongly negative words that stay so even where such subtrees hold nearly all the prose (see _skips)
_NEG_HARD_WORDS = (
    r"cookie|consent|gdpr|onetrust|didomi|menu|navbar|navigation|footer|related|recommend|popular|"
    r"trending|pagination|pager|register|login|signup|sign-up|newsletter|subscri|share|social|advert|sponsor|promo|"
    r"popup|modal")
_RE_NEG_HARD = _words_re(_NEG_HARD_WORDS)
# words of navigation: boilerplate only when the element turns out to be mostly links (a "toc-para" holding a
# chapter's text is content); judged at the element's close (NAV_WORD)
_NEG_NAV_WORDS = "jump-link|toc|table-of-contents"
_RE_NEG_NAV = _words_re(_NEG_NAV_WORDS)
# words that mean boilerplate only as a whole class (or the start of one): "sidebar-left" is a sidebar but
# "has-sidebar", "content-sidebar-wrap" are page layouts; "widget", "widget-5" and "widget_recent" are WordPress
# sidebar widgets but "elementor-widget-text-editor" is an article's text and HubSpot's "widget-span widget-type-cell"
# every cell of a page; "hidden" hides, "hidden-xs" and "label-hidden" do not
_RE_NEG_CLASS_START = re.compile(
    r"(?:^|\s)(?:sidebar|side-bar|widget(?:s?(?:$|\s)|-\d|-area|-recent|-categor|-archive|-tag|-meta|-search|-nav|"
    r"-calendar|-rss|-pages|-links))")
_RE_NEG_CLASS = re.compile(r"(?:^|\s)(?:hidden|is-hidden|u-hidden|d-none|hide|invisible)(?:$|\s)")
_RE_NEG_EXACT = re.compile(r"(?:^|[^a-z0-9])(?:ad|meta|post-meta|entry-meta|utility|links)(?:$|[^a-z0-9])|(?:^|\s)extra(?:$|\s)")
_NEG_WEAK_WORDS = "header|head|top|bottom|aside|secondary|caption-credit"
_RE_NEG_WEAK = _words_re(_NEG_WEAK_WORDS)
_POS_WORDS = (r"article|content|entry|main|post|story|text|body|blog|prose|rich-?text|markdown|"
              r"page-content|instapaper_body")
_RE_POS = _words_re(_POS_WORDS)
# one search that fails wherever every pattern above fails (most class strings have none of the words): the
# union of their words, each after a word start ("\s" is a word start too) and with looser endings
_RE_ANY_WORD = _words_re("|".join((_NEG_STRONG_WORDS, _NEG_HARD_WORDS, _NEG_NAV_WORDS, _NEG_WEAK_WORDS, _POS_WORDS,
                                   r"ad(?:$|[^a-z0-9])|meta(?:$|[^a-z0-9])|post-meta|entry-meta|utility|links|extra|"
                                   r"sidebar|side-bar|widget|hidden|is-hidden|u-hidden|d-none|hide|invisible")))


# words of customer reviews on a product page ("review-card", "reviewText", "js-ugc-container"): boilerplate there
# (the page's text is the product's), but a review is an article's content on other pages
_RE_PRODUCT_NEG = _words_re("review|ugc")
_PRODUCT_HINT_CACHE: dict = {}


def product_words_hint(cls: str | None, idv: str | None, w: int) -> int:
    """On a product page: the hint bits ``w`` of a class and id, made strongly negative by a review word."""
    key = (cls, idv)
    neg = _PRODUCT_HINT_CACHE.get(key)
    if neg is None:
        if cls and ":" in cls:
            cls = " ".join([c for c in cls.split() if ":" not in c])
        neg = _RE_PRODUCT_NEG.search(((cls or "") + " " + (idv or "")).replace("_", "-").lower()) is not None
        if len(_PRODUCT_HINT_CACHE) > 100_000:
            _PRODUCT_HINT_CACHE.clear()
        _PRODUCT_HINT_CACHE[key] = neg
    return (w & ~POS) | NEG_STRONG if neg else w


_ROLE_NEG = frozenset(("navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar",
                       "dialog", "alert", "toolbar"))
TAG_HINT = {t: NEG_STRONG for t in _NEG_STRONG_TAGS}
TAG_HINT.update({t: NEG_WEAK for t in _NEG_WEAK_TAGS})
TAG_HINT.update({t: POS for t in _POS_TAGS})
#: (class, id) -> hint bits of the words (class strings repeat a lot across a page and across pages)
_HINT_CACHE: dict = {}


def class_words_hint(cls: str | None, idv: str | None) -> int:
    """Hint bits of the words of a class and id (memoised in ``_HINT_CACHE``)."""
    key = (cls, idv)
    w = _HINT_CACHE.get(key)
    if w is None:
        if cls and ":" in cls:
            # utility classes with a variant (Tailwind's print:, md:hidden, hover:underline, [&>p]:mt-2) style the
            # element for one medium or state: they say nothing about what it holds
            cls = " ".join([c for c in cls.split() if ":" not in c])
        hay = ((cls or "") + " " + (idv or "")).replace("_", "-").lower()
        if _RE_ANY_WORD.search(hay) is None:
            w = 0
        elif (_RE_NEG_STRONG.search(hay) or _RE_NEG_EXACT.search(hay) or _RE_NEG_CLASS_START.search(hay)
                or _RE_NEG_CLASS.search(hay)):
            w = NEG_STRONG  # a negative word wins over a positive one ("comment-content", "related-posts")
            if _RE_NEG_HARD.search(hay) or _RE_NEG_CLASS.search(hay):
                w |= HARD
        elif _RE_NEG_NAV.search(hay):
            w = NAV_WORD
        elif _RE_POS.search(hay):
            w = POS
        elif _RE_NEG_WEAK.search(hay):
            w = NEG_WEAK
        else:
            w = 0
        if len(_HINT_CACHE) > 100_000:
            _HINT_CACHE.clear()
        _HINT_CACHE[key] = w
    return w


def class_hint(tag: str, cls: str | None, idv: str | None) -> int:
    """Hint bits for one element from its tag, class and id."""
    h = TAG_HINT.get(tag, 0)
    if not cls and not idv:
        return h
    return h | class_words_hint(cls, idv)


# Fields of the per-element records of default._walk.  Set at the element's open:
R_TAG, R_PARENT, R_HINT, R_ND, R_OPEN, R_T0, R_L0, R_P0, R_C0, R_N0, R_G0, R_X0 = range(12)
#   tag, parent id (-1: root), hint bits, strongly negative elements on its path (itself included), first event,
#   running totals at its start: text chars, link text chars, block scores, block scores at its negative depth,
#   links, text chars in long links (>= LONG_ANCHOR), text chars at its negative depth
# appended at its close:
R_CLOSE, R_T1, R_L1, R_P1, R_C1, R_END, R_N1, R_G1, R_X1 = range(12, 21)
#   last event, the same running totals at its end, id after its subtree.  So, for record r:
#   text chars r[R_T1] - r[R_T0], of which in links r[R_L1] - r[R_L0], prose (block scores inside)
#   r[R_P1] - r[R_P0], clean prose (minus strongly negative subtrees below it) r[R_C1] - r[R_C0], links
#   r[R_N1] - r[R_N0], text in long links r[R_G1] - r[R_G0], clean text r[R_X1] - r[R_X0]


def _cand_score(r: list, s: float) -> float:
    """Container score ``s`` of record ``r`` damped by its link density and hints."""
    if s <= 0:
        return 0.0
    t = r[R_T1] - r[R_T0]
    if t:
        s *= 1.0 - (r[R_L1] - r[R_L0]) / t
    if r[R_ND]:
        s *= 0.2
    h = r[R_HINT]
    if h & NEG_STRONG and not h & POS:
        s *= 0.3
    elif h & NEG_WEAK:
        s *= 0.7
    elif h & POS:
        s *= 1.25
    return s


#: containers whose text is mostly links are link lists (menus, related articles, tag clouds)
LINKLIST_TAGS = frozenset(("ul", "ol", "dl", "div", "section", "table", "p", "header", "li", "nav", "td",
                            "tr", "tbody", "center"))


#: links with at least this many characters of text are titles (of items, threads, articles), not menu entries
LONG_ANCHOR = 25
#: a link list whose link text is at least this share titles is a listing, not a menu
LONG_ANCHOR_SHARE = 0.5
#: a link list whose links average this many characters or more is a list of titles (a listing), not a menu
LINKLIST_MAX_ANCHOR = 25

#: how far above the best-scoring container we look for a container holding clearly more prose
CLIMB_LEVELS = 10
CLIMB_GAIN = 1.25
#: the climb does not go past these
CLIMB_STOP = frozenset(("main",))


#: page-level signals that a page is an article (Open Graph type, schema.org types in JSON-LD or microdata), each
#: matched right after its literal anchor: a case-insensitive search over the whole page costs a quarter of the
#: extraction time, str.find of the anchors almost nothing
_DECLARED_ARTICLE = (
    ("og:type", re.compile(r"""og:type["']?\s+content=["']?article""", re.IGNORECASE)),
    ("@type", re.compile(
        r"""@type["']\s*:\s*\[?\s*["'](?:News|Blog|Tech|Scholarly|Report|Opinion|Analysis)?(?:Article|BlogPosting)["']""",
        re.IGNORECASE)),
    ("itemtype", re.compile(r"""itemtype=["']?https?://schema\.org/(?:News|Blog|Tech|Scholarly)?(?:Article|BlogPosting)""",
                            re.IGNORECASE)),
)
#: at most this many occurrences of an anchor are looked at (a page of JSON-LD may hold thousands of @type)
_DECLARED_MAX_HITS = 200


#: schema.org types of pages that list things: a page saying it is an article only through ``og:type`` (which many
#: sites put on every page) is not one when its schema.org data says it is one of these
#: (it starts with "@type" or "itemtype": declared_article matches it only where those are)
_RE_LIST_PAGE = re.compile(r"""@type["']\s*:\s*\[?\s*["'](?:CollectionPage|ItemList|SearchResultsPage)["']|"""
                           r"""itemtype=["']?https?://schema\.org/(?:CollectionPage|ItemList|SearchResultsPage)""")


#: every occurrence of an anchor, in one pass: the literal "type" (fast search), then which anchor ends there
_RE_ANCHOR_TYPE = re.compile(r"type(?:(?<=og:type)|(?<=@type)|(?<=itemtype))")
_ANCHOR_OFFSET = {":": 7, "@": 5, "m": 8}  # the character before "type" -> the anchor's length


def _anchor_hits(html: str) -> tuple[list, list, list]:
    """Start positions of ``og:type``, ``@type`` and ``itemtype`` (each in page order)."""
    og: list = []
    ld: list = []
    md: list = []
    by_char = {":": og, "@": ld, "m": md}
    for m in _RE_ANCHOR_TYPE.finditer(html):
        end = m.end()
        c = html[end - 5]
        by_char[c].append(end - _ANCHOR_OFFSET[c])
    return og, ld, md


def _matches_at(html: str, hits: list, rx: re.Pattern) -> bool:
    """Whether ``rx`` matches at one of the first ``_DECLARED_MAX_HITS`` occurrences of its anchor."""
    match = rx.match
    return any(match(html, i) for i in hits[:_DECLARED_MAX_HITS])


#: schema.org product items (JSON-LD ``@type`` or microdata ``itemtype``; matched at the occurrences of those)
_RE_PRODUCT = re.compile(r"""@type["']\s*:\s*\[?\s*["'](?:Product|ProductGroup|IndividualProduct)["']|"""
                         r"""itemtype=["']?https?://schema\.org/(?:Product|ProductGroup|IndividualProduct)\b""")


def page_kind(html: str) -> tuple[bool, bool]:
    """(:func:`declared_article`, whether the page declares a schema.org Product item), in one pass over the page."""
    hits = _anchor_hits(html)
    return _declared_article(html, hits), _declared_product(html, hits)


def _declared_product(html: str, hits: tuple) -> bool:
    match = _RE_PRODUCT.match
    _, ld_hits, md_hits = hits
    return (any(match(html, i) for i in ld_hits[:_DECLARED_MAX_HITS])
            or any(match(html, i) for i in md_hits[:_DECLARED_MAX_HITS]))


def declared_article(html: str) -> bool:
    """Whether the page says it is an article (see :func:`_declared_article`)."""
    return _declared_article(html, _anchor_hits(html))


def _declared_article(html: str, hits: tuple) -> bool:
    """Whether the page says it is an article: a schema.org Article/BlogPosting/NewsArticle item, or ``og:type``
    article on a page whose schema.org data does not say it lists things (CollectionPage, ItemList...).

    The anchors are found in one pass over the page; the list-page test reuses the occurrences of ``@type`` and
    ``itemtype`` (the pattern starts with one of them)."""
    (_, og_rx), (_, ld_rx), (_, md_rx) = _DECLARED_ARTICLE
    og_hits, ld_hits, md_hits = hits
    if _matches_at(html, ld_hits, ld_rx) or _matches_at(html, md_hits, md_rx):
        return True
    if not _matches_at(html, og_hits, og_rx):
        return False
    match = _RE_LIST_PAGE.match
    return not any(match(html, i) for i in ld_hits) and not any(match(html, i) for i in md_hits)


#: sections opened by a heading like these are recommendations, not the page's content
RECO_HEADINGS = True
RECO_LEVELS = 3
_RE_RECO_HEADING = re.compile(
    r"(?:related|similar|recommended|suggested|sponsored|trending|popular)\b|"
    r"(?:you (?:may|might|will) (?:also )?(?:like|love|enjoy)|customers (?:who|also)|people (?:who|also)|"
    r"frequently bought|recently viewed|more (?:from|like this|stories|articles|products|to explore)|"
    r"(?:also|others) (?:bought|viewed|liked)|read next|explore (?:related|more)|top (?:stories|picks)|"
    r"don't miss|recommended for you|complete the look|shop the look)")


def is_reco_heading(ev: list, start: int) -> bool:
    """Whether the text of the events from ``start`` (a heading's) opens a recommendation section."""
    text = "".join(e for e in ev[start:] if type(e) is str and e[:1] != "\x00").strip().lower()
    return _RE_RECO_HEADING.match(text) is not None


#: experiment switches for pages that do not declare themselves articles
INCL_ANCHOR = True
INCL_MAIN = True
INCL_SPREAD = True
SPREAD_LOW = 0.7
SPREAD_HIGH = 0.8


def select_content(pg, article: bool = True) -> tuple[list, set]:
    """(ids of the elements to emit, siblings in page order; ids of the subtrees inside them to drop).

    ``article``: the page declares itself an article (:func:`declared_article`); other pages (listings, forums,
    products, services...) get the inclusive rules."""
    recs = pg.recs
    pg.incl = not article
    pg.cands.sort()
    best, best_s = 0, 0.0
    cand: dict = {}
    for i, sc in pg.score.items():
        if sc > 0:
            s = _cand_score(recs[i], sc)
            cand[i] = s
            if s > best_s or (s == best_s and i < best):
                best, best_s = i, s
    if best_s <= 0:
        # no prose block anywhere: the whole body, boilerplate dropped
        return [0], _skips(pg, 0, set())
    # climb while the ancestor holds clearly more clean prose and is not a link farm
    rb = recs[best]
    p = rb[R_PARENT]
    levels = 0
    while p >= 0 and levels < CLIMB_LEVELS:
        rp = recs[p]
        t = rp[R_T1] - rp[R_T0]
        if (rp[R_C1] - rp[R_C0] > CLIMB_GAIN * (rb[R_C1] - rb[R_C0]) + 2.0 and t
                and rp[R_L1] - rp[R_L0] < 0.35 * t):
            best, rb = p, rp
            best_s = max(best_s, cand.get(p, 0.0))
        if rp[R_TAG] in CLIMB_STOP:
            break  # the page's own main region: what lies beyond it is the site's
        p = rp[R_PARENT]
        levels += 1
    if EXPAND_REPEATED:
        grown = _repeated_unit_parent(pg, best)
        if grown is not None:
            best, rb = grown, recs[grown]
            best_s = max(best_s, cand.get(best, 0.0))
    else:
        grown = None
    core = best  # the container chosen on its own merits: what the climb to <main> adds to it must not drop it
    nd0 = _hidden_depth(recs, best)
    if INCL_MAIN and not article and grown is None:
        q = best
        while q >= 0:
            rq = recs[q]
            if rq[R_TAG] == "main":
                t = rq[R_T1] - rq[R_T0]
                if q != best and t and rq[R_L1] - rq[R_L0] < 0.5 * t and rq[R_ND] <= nd0:
                    best, rb = q, rq
                    best_s = max(best_s, cand.get(q, 0.0))
                break
            q = rq[R_PARENT]
    if INCL_SPREAD and not article and grown is None and best == core:
        # no <main> and no list of units: content spread over many sections (landing and service pages) -> the
        # smallest ancestor holding most of the page's clean text (text outside strongly negative subtrees)
        total = recs[0][R_X1] - recs[0][R_X0]
        if total > 0 and rb[R_X1] - rb[R_X0] < SPREAD_LOW * total:
            q = rb[R_PARENT]
            while q >= 0:
                rq = recs[q]
                if rq[R_X1] - rq[R_X0] >= SPREAD_HIGH * total:
                    # no link-density test: on listings the content is mostly links; menus and footers are
                    # outside the clean text and pruned inside the new container as usual
                    if rq[R_ND] <= nd0:
                        best, rb = q, rq
                        best_s = max(best_s, cand.get(q, 0.0))
                    break
                q = rq[R_PARENT]
    parent = rb[R_PARENT]
    if parent < 0:
        return [best], _skips(pg, best, set(), None, core if PROTECT_CORE else -1)
    threshold = max(8.0, best_s * 0.2)
    keep = []
    # the parent's children, in order: each child's subtree ends where the next child starts
    j = parent + 1
    end = recs[parent][R_END]
    while j < end:
        rj = recs[j]
        if j == best:
            keep.append(j)
        else:
            t = rj[R_T1] - rj[R_T0]
            h = rj[R_HINT]
            if cand.get(j, 0.0) >= threshold and not (h & NEG_STRONG and not h & POS):
                keep.append(j)
            elif (rj[R_P1] - rj[R_P0] > 0 and t > 80 and (rj[R_L1] - rj[R_L0]) * 4 < t
                  and not h & NEG_STRONG and not (article and SIB_STRICT and not _holds_image(pg, rj))):
                keep.append(j)
        j = rj[R_END]
    skip: set = set()
    total_prose = sum(recs[k][R_P1] - recs[k][R_P0] for k in keep) or 1.0
    for k in keep:
        _skips(pg, k, skip, total_prose, core if PROTECT_CORE else -1)
    return keep, skip


def _hidden_depth(recs: list, i: int) -> int:
    """Strongly negative elements on the path of the outermost ancestor-or-self of ``i`` hidden by an inline style
    (0 if there is none): content the page's script reveals is judged as if that ancestor were the page."""
    nd = 0
    while i >= 0:
        r = recs[i]
        if r[R_HINT] & HIDDEN:
            nd = r[R_ND]
        i = r[R_PARENT]
    return nd


#: expand the chosen container to the list of repeated units it is one of (forum posts, listing items, cards)
EXPAND_REPEATED = True
#: how many levels above the chosen container a repeated unit may start
REPEAT_LEVELS = 16
#: at least this many units with the same signature, holding together this many times the chosen one's text
REPEAT_MIN_UNITS = 3
REPEAT_TEXT_GAIN = 1.5
REPEAT_MAX_LINK_DENSITY = 0.6


def _signature(pg, i: int) -> tuple:
    """Tag and first class word without digits: what repeated units of one list share."""
    cls = pg.cls[i]
    first = ""
    if cls:
        for w in cls.split():
            if not any(ch.isdigit() for ch in w):
                first = w
                break
    return (pg.recs[i][R_TAG], first)


def _repeated_unit_parent(pg, best: int):
    """The parent of the nearest ancestor-or-self of ``best`` (within :data:`REPEAT_LEVELS`) that is one of at least
    :data:`REPEAT_MIN_UNITS` siblings of the same signature which together hold clearly more text than ``best`` and
    are not mostly links; None if there is none."""
    recs = pg.recs
    t_best = recs[best][R_T1] - recs[best][R_T0]
    a = best
    for _ in range(REPEAT_LEVELS + 1):
        p = recs[a][R_PARENT]
        if p < 0:
            return None
        rp = recs[p]
        if rp[R_HINT] & NEG_STRONG and not rp[R_HINT] & POS:
            return None
        sig = _signature(pg, a)
        if sig[1] or sig[0] in ("article", "li", "tr", "section"):
            n = 0
            t = l = 0
            j = p + 1
            end = rp[R_END]
            while j < end:
                rj = recs[j]
                if _signature(pg, j) == sig:
                    tj = rj[R_T1] - rj[R_T0]
                    if tj:
                        n += 1
                        t += tj
                        l += rj[R_L1] - rj[R_L0]
                j = rj[R_END]
            if n >= REPEAT_MIN_UNITS and t >= REPEAT_TEXT_GAIN * t_best and l <= REPEAT_MAX_LINK_DENSITY * t:
                return p
        a = p
    return None


PROTECT_CORE = True
#: on declared articles, a sibling of the content joins it on its prose alone only when it holds an image (the
#: article's figures); without one it must score as a container (author boxes, teasers, newsletter forms do not)
SIB_STRICT = True


def _holds_image(pg, r: list) -> bool:
    images = pg.images
    k = bisect_left(images, r[R_OPEN])
    return k < len(images) and images[k] <= r[R_CLOSE]
#: a root whose clean prose is under this share of its prose ignores class words when pruning (0: never)
CLEAN_MIN_SHARE = 0.05


def _site_header(recs: list, i: int, root: int, core: int) -> bool:
    """Whether the ``<header>`` ``i`` inside ``root`` is the site's, to drop: outside the chosen container ``core``
    (the content grew past it, to a page wrapper) and not the page's own (:func:`_page_own_header`)."""
    if core < 0 or core < i < recs[core][R_END]:
        return False
    return not _page_own_header(recs, i, root, core)


def _page_own_header(recs: list, i: int, root: int, core: int) -> bool:
    """Whether the header ``i`` belongs to the page's content, not to its site: it lies in ``<main>`` (a listing's
    title and introduction) or in an ``<article>`` that does not hold ``core`` (a card of a listing)."""
    q = recs[i][R_PARENT]
    while q >= root:
        rq = recs[q]
        if rq[R_TAG] == "main" or rq[R_TAG] == "article" and not q <= core < rq[R_END]:
            return True
        q = rq[R_PARENT]
    return False


#: on pages declaring a schema.org product, the long-anchor exception of the link-list pruning (item titles) holds
#: only inside the container chosen on its own merits, or for a list holding most of the root's text
PRODUCT_ANCHOR_CORE = True

#: <header> elements inside the root but outside the chosen container are dropped
DROP_HEADERS = True


def _skips(pg, root: int, skip: set, total_prose: float | None = None, core: int = -1) -> set:
    """Boilerplate subtrees strictly inside ``root``: strong negative hints (unless they hold half the prose) and
    link lists.  Only the walk's candidates (strongly negative, or a link-dense list-like element) can qualify; they
    are visited in page order, jumping over the subtrees already dropped."""
    recs = pg.recs
    r = recs[root]
    if total_prose is None:
        total_prose = r[R_P1] - r[R_P0] or 1.0
    half, third = 0.5 * total_prose, 0.3 * total_prose
    incl = INCL_ANCHOR and pg.incl
    # on a product page, lists of long links are other products (recommendations) unless the chosen container
    # itself holds them
    root_t = r[R_T1] - r[R_T0]
    core_end = recs[core][R_END] if PRODUCT_ANCHOR_CORE and pg.product and core >= 0 else -1
    # content inside a subtree hidden by an inline style (shown by the page's script): hidden subtrees inside it
    # are judged like other strongly negative ones; otherwise they are dropped whatever they hold
    q = root
    while q >= 0 and not recs[q][R_HINT] & HIDDEN:
        q = recs[q][R_PARENT]
    hidden_ok = q >= 0
    # when strongly negative subtrees hold nearly all the root's prose, their class words name the page's content
    # blocks (SiteOrigin's "so-panel widget widget_text", IPS forums' posts as "comments"), not boilerplate: only
    # negative tags and hidden styles count then
    words_off = CLEAN_MIN_SHARE and (r[R_C1] - r[R_C0]) < CLEAN_MIN_SHARE * (r[R_P1] - r[R_P0])
    cands = pg.cands  # sorted by select_content
    nxt = root + 1  # candidates before this id are inside a dropped subtree
    for i in cands[bisect_left(cands, root + 1):bisect_left(cands, r[R_END])]:
        if i < nxt:
            continue
        c = recs[i]
        if i <= core < c[R_END]:
            continue  # holds the chosen container
        if (c[R_HINT] & NEG_STRONG and (c[R_P1] - c[R_P0] < half or c[R_HINT] & HIDDEN and not hidden_ok)
                and not (words_off and c[R_P1] > c[R_P0] and c[R_TAG] not in _NEG_STRONG_TAGS
                         and not c[R_HINT] & (HIDDEN | HARD))):
            drop = True
        elif c[R_TAG] == "header" and DROP_HEADERS and _site_header(recs, i, root, core):
            drop = True
        else:
            t = c[R_T1] - c[R_T0]
            lc = c[R_L1] - c[R_L0]
            drop = bool(t and c[R_TAG] in LINKLIST_TAGS and lc * 10 > t * 6 and c[R_P1] - c[R_P0] < third)
            if drop and incl and (lc >= LINKLIST_MAX_ANCHOR * (c[R_N1] - c[R_N0])
                                  or c[R_G1] - c[R_G0] >= LONG_ANCHOR_SHARE * lc):
                # (a list holding most of the root's text is never dropped whole: its items are judged one by one)
                drop = not (core_end < 0 or core < i < core_end or 2 * t > root_t)
        if drop:
            skip.add(i)
            nxt = c[R_END]
    return skip
