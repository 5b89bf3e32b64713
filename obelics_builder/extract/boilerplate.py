"""Boilerplate decisions for the ``default`` extractor: class/id hints, choice of the main container, and the
subtrees to drop inside it.  Works on the flat arrays recorded by :func:`default._walk` (no DOM access)."""
from __future__ import annotations

import re

# hint bits
NEG_STRONG = 1   # dropped inside the content unless it holds most of the prose
NEG_WEAK = 2     # lowers a container's score
POS = 4          # raises a container's score

_NEG_STRONG_TAGS = frozenset(("nav", "aside", "footer", "menu", "form"))
_NEG_WEAK_TAGS = frozenset(("header",))
_POS_TAGS = frozenset(("article", "main"))

# class/id words, matched at the start of a word (split on anything that is not a letter or digit)
_RE_NEG_STRONG = re.compile(
    r"(?:^|[^a-z0-9])(?:"
    r"nav|menu|breadcrumb|footer|masthead|sidebar|side-bar|widget|cookie|consent|gdpr|cmp-|"
    r"share|sharing|social|subscri|newsletter|signup|sign-up|login|register|"
    r"comment|disqus|respond|reply|related|recommend|more-stories|more-articles|read-more|readmore|"
    r"popular|trending|most-read|mostread|promo|sponsor|advert|adsense|adslot|ad-slot|ad-container|ad-wrapper|"
    r"dfp|outbrain|taboola|popup|modal|overlay|skip-link|toolbar|pagination|pager|byline|author-bio|authorbio|"
    r"about-author|author-box|tags|tag-list|taglist|post-tags|categories|print|donate|paywall|"
    r"jump-link|toc|table-of-contents|hidden|screen-reader|sr-only|visually-hidden|banner|copyright|"
    r"follow|rating|tooltip|alert|notification|ticker|carousel"
    r")", re.IGNORECASE)
_RE_NEG_EXACT = re.compile(r"(?:^|[^a-z0-9])(?:ad|ads|meta|post-meta|entry-meta|extra|utility|links)(?:$|[^a-z0-9])",
                           re.IGNORECASE)
_RE_NEG_WEAK = re.compile(r"(?:^|[^a-z0-9])(?:header|head|top|bottom|aside|secondary|caption-credit)",
                          re.IGNORECASE)
_RE_POS = re.compile(
    r"(?:^|[^a-z0-9])(?:article|content|entry|main|post|story|text|body|blog|prose|rich-?text|markdown|"
    r"page-content|instapaper_body)", re.IGNORECASE)


_ROLE_NEG = frozenset(("navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar",
                       "dialog", "alert", "toolbar"))
_TAG_HINT = {t: NEG_STRONG for t in _NEG_STRONG_TAGS}
_TAG_HINT.update({t: NEG_WEAK for t in _NEG_WEAK_TAGS})
_TAG_HINT.update({t: POS for t in _POS_TAGS})
_cache: dict = {}


def class_hint(tag: str, cls: str | None, idv: str | None) -> int:
    """Hint bits for one element from its tag, class and id (memoised: class strings repeat a lot)."""
    h = _TAG_HINT.get(tag, 0)
    if not cls and not idv:
        return h
    key = (cls, idv)
    w = _cache.get(key)
    if w is None:
        hay = ((cls or "") + " " + (idv or "")).replace("_", "-").lower()
        if _RE_NEG_STRONG.search(hay) or _RE_NEG_EXACT.search(hay):
            w = NEG_STRONG  # a negative word wins over a positive one ("comment-content", "related-posts")
        elif _RE_POS.search(hay):
            w = POS
        elif _RE_NEG_WEAK.search(hay):
            w = NEG_WEAK
        else:
            w = 0
        if len(_cache) > 100_000:
            _cache.clear()
        _cache[key] = w
    return h | w


def _cand_score(pg, i: int) -> float:
    s = pg.score[i]
    if s <= 0:
        return 0.0
    t = pg.txt[i]
    if t:
        s *= 1.0 - pg.lnk[i] / t
    if pg.ineg[i]:
        s *= 0.2
    h = pg.hint[i]
    if h & NEG_STRONG and not h & POS:
        s *= 0.3
    elif h & NEG_WEAK:
        s *= 0.7
    elif h & POS:
        s *= 1.25
    return s


#: containers whose text is mostly links are link lists (menus, related articles, tag clouds)
_LINKLIST_TAGS = frozenset(("ul", "ol", "dl", "div", "section", "table", "p", "header", "li", "nav", "td",
                            "tr", "tbody", "center"))


#: how far above the best-scoring container we look for a container holding clearly more prose
CLIMB_LEVELS = 6
CLIMB_GAIN = 1.25


def select_content(pg) -> tuple[list, set]:
    """(event ranges to emit in page order, element ids to jump over)."""
    n = len(pg.tag)
    best, best_s = 0, 0.0
    cand = [0.0] * n
    for i in range(n):
        if pg.score[i] > 0:
            s = _cand_score(pg, i)
            cand[i] = s
            if s > best_s:
                best, best_s = i, s
    if best_s <= 0:
        # no prose block anywhere: the whole body, boilerplate dropped
        return [(pg.open_pos[0], pg.close_pos[0])], _skips(pg, 0, set())
    # climb while the ancestor holds clearly more clean prose and is not a link farm
    clean, parents = pg.clean, pg.parent
    p = parents[best]
    levels = 0
    while p >= 0 and levels < CLIMB_LEVELS:
        t = pg.txt[p]
        if clean[p] > CLIMB_GAIN * clean[best] + 2.0 and t and pg.lnk[p] < 0.35 * t:
            best = p
            best_s = max(best_s, cand[p])
        p = parents[p]
        levels += 1
    parent = pg.parent[best]
    if parent < 0:
        return [(pg.open_pos[best], pg.close_pos[best])], _skips(pg, best, set())
    threshold = max(8.0, best_s * 0.2)
    keep = []
    # children of the parent, in order: elements after it whose parent is it (the arrays are in pre-order)
    j = parent + 1
    end = pg.close_pos[parent]
    open_pos = pg.open_pos
    while j < n and open_pos[j] < end:
        if pg.parent[j] == parent:
            if j == best:
                keep.append(j)
            else:
                t = pg.txt[j]
                h = pg.hint[j]
                ok = False
                if cand[j] >= threshold and not (h & NEG_STRONG and not h & POS):
                    ok = True
                elif pg.prose[j] > 0 and t > 80 and pg.lnk[j] * 4 < t and not h & NEG_STRONG:
                    ok = True
                if ok:
                    keep.append(j)
        j += 1
    ranges = [(open_pos[k], pg.close_pos[k]) for k in keep]
    skip: set = set()
    total_prose = sum(pg.prose[k] for k in keep) or 1.0
    for k in keep:
        _skips(pg, k, skip, total_prose)
    return ranges, skip


def _skips(pg, root: int, skip: set, total_prose: float | None = None) -> set:
    """Boilerplate subtrees strictly inside ``root``: strong negative hints (unless they hold half the prose),
    link lists, and short link-only paragraphs."""
    if total_prose is None:
        total_prose = pg.prose[root] or 1.0
    end = pg.close_pos[root]
    n = len(pg.tag)
    i = root + 1
    tags, hints, txts, lnks, prose, open_pos, close_pos = pg.tag, pg.hint, pg.txt, pg.lnk, pg.prose, pg.open_pos, \
        pg.close_pos
    while i < n and open_pos[i] < end:
        h = hints[i]
        drop = False
        if h & NEG_STRONG and prose[i] < 0.5 * total_prose:
            drop = True
        else:
            t = txts[i]
            if t and tags[i] in _LINKLIST_TAGS:
                l = lnks[i]
                if l * 10 > t * 6 and prose[i] < 0.3 * total_prose:
                    drop = True
            elif h & NEG_WEAK and prose[i] == 0 and tags[i] == "header" and t and lnks[i] * 2 > t:
                drop = True
        if drop:
            skip.add(i)
            # jump over the subtree: next element opened after its close
            c = close_pos[i]
            i += 1
            while i < n and open_pos[i] < c:
                i += 1
            continue
        i += 1
    return skip
