"""Image source selection for the ``default`` extractor: srcset/sizes, lazy-load attributes, placeholders,
``<picture>``/``<source>``, URL resolution and boilerplate-image detection.

All functions are pure and work on attribute dicts (``node.attributes`` of selectolax), so they are cheap to test.
"""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

#: lazy-load attributes holding one URL, most specific first (they carry the real image when ``src`` is a
#: placeholder)
LAZY_SRC_ATTRS = (
    "data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src", "data-full-src",
    "data-orig-file", "data-large-file", "data-img-src", "data-image", "data-echo", "data-lazyload",
    "data-original-src", "data-actualsrc", "data-croporig", "lazy-src", "data-srcset-fallback", "original-src",
    "data-pagespeed-lazy-src", "data-delayed-url",
)
#: srcset-like attributes (a comma-separated candidate list)
SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset", "data-original-srcset")

_RE_WS_INNER = re.compile(r"[\t\n\r]")
#: file-name words of lazy-load stand-ins ("blank.gif", "lazy-placeholder.png", "spacer_1x1.gif")
_PLACEHOLDER_WORDS = frozenset((
    "blank", "spacer", "placeholder", "transparent", "pixel", "1x1", "lazy", "lazyload", "loading", "loader", "grey",
    "gray", "empty", "clear", "dot", "trans", "spinner", "noimage", "no", "image", "img", "default", "px", "gif",
    "lazyloading", "preload", "preloader", "dummy", "fallback", "white", "black", "shim",
))
_STRONG_PLACEHOLDER = frozenset(("blank", "spacer", "placeholder", "transparent", "pixel", "1x1", "lazy", "lazyload",
                                 "loading", "loader", "spinner", "noimage", "dummy", "shim", "preloader", "empty",
                                 "clear", "trans", "dot", "grey", "gray", "lazyloading"))
#: every strong placeholder word contains one of these: a name without any is no placeholder (fast exit)
_RE_STRONG_HINT = re.compile(r"blank|spacer|placeholder|trans|pixel|1x1|lazy|load|spinner|noimage|dummy|shim|empty|"
                             r"clear|dot|gr[ae]y")
_RE_NAME_SPLIT = re.compile(r"[-_.\s]+")
_RE_DIGITS = re.compile(r"\d+")
_RE_BOILER_IMG = re.compile(
    r"(?:^|[^a-z])(?:logos?|avatars?|gravatar|icons?|favicons?|sprites?|emoji|emoticons?|smilies|smiley|badges?|"
    r"pixel|tracking|tracker|spacer|beacon|counter|button|btn|share|social|facebook|twitter|pinterest|whatsapp|"
    r"linkedin|rss|feed-?icon|author-?photo|profile-?pic|userpic|ad|ads|advert\w*|banner-?ad|sponsor\w*)"
    r"(?:$|[^a-z])",
    re.IGNORECASE,
)
_RE_BOILER_FILE = re.compile(
    r"(?:^|[^a-z])(?:logos?|avatars?|gravatar|icons?|favicons?|sprites?|emoji|emoticons?|smilies|smiley|badges?|"
    r"pixel|tracking|tracker|spacer|beacon|blank|transparent)(?:$|[^a-z])",
    re.IGNORECASE,
)
_BOILER_FILE_WORDS = frozenset((
    "logo", "logos", "avatar", "avatars", "gravatar", "icon", "icons", "favicon", "favicons", "sprite", "sprites",
    "emoji", "emoticon", "emoticons", "smilies", "smiley", "badge", "badges", "pixel", "tracking", "tracker", "spacer",
    "beacon", "blank", "transparent",
))
_RE_LETTERS = re.compile(r"[a-z]+")
_RE_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px)?\s*;?\s*$", re.IGNORECASE)


def clean_url_attr(value: str | None) -> str:
    """An attribute value as the URL standard reads it: leading/trailing C0+space stripped, tabs/newlines removed."""
    if not value:
        return ""
    value = value.strip(" \t\n\r\f\x00")
    if "\t" in value or "\n" in value or "\r" in value:
        value = _RE_WS_INNER.sub("", value)
    return value


def is_placeholder(url: str) -> bool:
    """True for a lazy-load placeholder: a ``data:`` URI, ``about:blank``, or a tiny stand-in like ``blank.gif``."""
    if not url:
        return True
    low = url[:16].lower()
    if low.startswith(("data:", "about:", "javascript:", "#")):
        return True
    name = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1].lower()
    stem, dot, ext = name.rpartition(".")
    if not dot or ext not in ("gif", "png", "svg", "jpg", "jpeg", "webp") or _RE_STRONG_HINT.search(stem) is None:
        return False
    words = [w for w in _RE_NAME_SPLIT.split(stem) if w]
    strong = False
    for w in words:
        if w in _STRONG_PLACEHOLDER:
            strong = True
        elif w not in _PLACEHOLDER_WORDS and not _RE_DIGITS.fullmatch(w) and "x" not in w.strip("0123456789"):
            return False
    return strong


def parse_srcset(value: str) -> list[tuple[str, float]]:
    """``srcset`` candidates as ``(url, weight)``; weight = width (``w``), density x 1e6 never mixes: a ``w``
    descriptor gives its width, ``x`` gives density * 1000 (ranked below any width only when compared with
    widths of a different list, which never happens within one list in valid markup), none means 1x."""
    out = []
    if not value:
        return out
    # Split on commas that end a candidate: a URL may contain commas (e.g. Cloudinary "c_fill,w_300"), so a comma
    # only ends a candidate when followed by whitespace, or when the URL part is already complete (descriptor seen).
    n = len(value)
    i = 0
    while i < n:
        while i < n and (value[i] in " \t\n\r\f,"):
            i += 1
        if i >= n:
            break
        j = i
        while j < n and value[j] not in " \t\n\r\f":
            j += 1
        url = value[i:j]
        desc = ""
        if url.endswith(","):
            url = url.rstrip(",")
            i = j
        else:
            k = value.find(",", j)
            # a comma right inside a descriptor list ends the candidate
            if k < 0:
                desc = value[j:].strip()
                i = n
            else:
                desc = value[j:k].strip()
                i = k + 1
        if not url:
            continue
        weight = 1000.0
        for d in desc.split():
            d = d.lower()
            try:
                if d.endswith("w"):
                    weight = float(d[:-1])
                elif d.endswith("x"):
                    weight = float(d[:-1]) * 1000.0
            except ValueError:
                pass
        out.append((url, weight))
    return out


def largest_candidate(value: str) -> str | None:
    """The largest non-placeholder candidate of a srcset (first one on ties)."""
    best, best_w = None, -1.0
    for url, w in parse_srcset(value):
        if w > best_w and not is_placeholder(url):
            best, best_w = url, w
    return best


#: base URL -> "scheme://netloc" for the root-relative fast path ("" when the base is not a plain http(s) URL)
_BASE_PREFIX: dict = {}


def _base_prefix(base: str) -> str:
    prefix = _BASE_PREFIX.get(base)
    if prefix is None:
        prefix = ""
        try:
            parts = urlsplit(base)
            if parts.scheme in ("http", "https") and parts.netloc and base.isascii():
                prefix = f"{parts.scheme}://{parts.netloc}"
        except ValueError:
            pass
        if len(_BASE_PREFIX) > 10_000:
            _BASE_PREFIX.clear()
        _BASE_PREFIX[base] = prefix
    return prefix


def _fast_join(raw: str, base: str) -> str | None:
    """``urljoin(base, raw)`` for the two shapes most image URLs have, without parsing: an absolute http(s) URL
    and a root-relative path.  None when ``raw`` has anything urljoin would rewrite (dot segments, empty ``?``/``#``,
    ``;`` parameters, IPv6 brackets, non-ASCII): the caller then takes the general path."""
    if ";" in raw or "?#" in raw or raw[-1] in "?#" or "[" in raw or "]" in raw or not raw.isascii():
        return None
    if raw.startswith("http://") or raw.startswith("https://"):
        k = raw.index("//") + 2
        if k < len(raw) and raw[k] not in "/?#":
            return raw  # urljoin returns an absolute URL unchanged (its parse/unparse round trip is exact here)
        return None
    if raw[0] == "/" and raw[1:2] != "/" and "/." not in raw and base:
        prefix = _base_prefix(base)
        if prefix:
            return prefix + raw
    return None


def resolve_url(raw: str, base: str) -> str | None:
    """Absolute http(s) URL of ``raw`` against ``base`` (the URL standard's relative resolution, as urljoin does
    for http(s)), or None for other schemes and malformed values."""
    raw = clean_url_attr(raw)
    if not raw or raw.startswith(("data:", "javascript:", "about:", "blob:", "#", "mailto:")):
        return None
    if "\\" in raw:  # the URL standard treats backslash as slash in special (http) URLs
        raw = raw.replace("\\", "/")
    url = _fast_join(raw, base)
    if url is None:
        try:
            url = urljoin(base, raw) if base else raw
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
    if " " in url:
        url = url.replace(" ", "%20")
    return url


def choose_source(attrs: dict, picture_sources: list[str] | None = None,
                  prefer_largest: bool = False) -> str | None:
    """The raw source value of an ``<img>``: a real ``src`` (unless ``prefer_largest`` and a srcset offers a
    candidate), else a lazy-load attribute, else the largest srcset candidate (img then ``<picture>`` sources),
    never a placeholder."""
    src = clean_url_attr(attrs.get("src"))
    real_src = src if src and not is_placeholder(src) else None
    if real_src and not prefer_largest:
        return real_src
    for name in LAZY_SRC_ATTRS:
        v = attrs.get(name)
        if v:
            v = clean_url_attr(v)
            if v and not is_placeholder(v) and " " not in v:
                if real_src is None or not prefer_largest:
                    return v
                break
    for name in SRCSET_ATTRS:
        v = attrs.get(name)
        if v:
            cand = largest_candidate(v)
            if cand:
                return cand
    if picture_sources:
        for v in picture_sources:
            cand = largest_candidate(v)
            if cand:
                return cand
    return real_src


def parse_size(value: str | None) -> int | None:
    """``width``/``height`` attribute as int pixels (``"300"``, ``"300px"``, ``"300.5"``), else None."""
    if not value:
        return None
    if len(value) < 16 and value.isascii() and value.isdigit():
        return int(value)
    m = _RE_SIZE.match(value)
    if not m:
        return None
    try:
        return int(float(m.group(1)))
    except (ValueError, OverflowError):
        return None


#: (class, id) of an <img> -> whether its words mark a boilerplate image (memo: classes repeat)
_BOILER_HAY: dict = {}


def is_boilerplate_image(attrs: dict, raw_src: str, width: int | None, height: int | None) -> bool:
    """Tracking pixels, spacers, logos, avatars, icons, share buttons, ads."""
    if (width and width <= 2) or (height and height <= 2):  # 0 means "unknown" in practice
        return True
    if width is not None and height is not None and width <= 24 and height <= 24:
        return True  # icon-sized
    cls = attrs.get("class")
    idv = attrs.get("id")
    if cls or idv:
        key = (cls, idv)
        hit = _BOILER_HAY.get(key)
        if hit is None:
            hay = " ".join(filter(None, key))
            hit = _RE_BOILER_IMG.search(hay.replace("_", "-")) is not None
            if len(_BOILER_HAY) > 50_000:
                _BOILER_HAY.clear()
            _BOILER_HAY[key] = hit
        if hit:
            return True
    fname = raw_src.rsplit("/", 1)[-1].split("?")[0]
    if fname:
        if fname.isascii():  # same test as _RE_BOILER_FILE: a whole run of letters is one of the words
            for word in _RE_LETTERS.findall(fname.lower()):
                if word in _BOILER_FILE_WORDS:
                    return True
        elif _RE_BOILER_FILE.search(fname.replace("_", "-")):
            return True
    low = raw_src.lower()
    return low.endswith((".ico", ".cur")) or "/avatar" in low or "gravatar.com/" in low


def image_node_meta(page_url: str, raw: str, src: str, alt: str | None = None, title: str | None = None,
                    width: int | None = None, height: int | None = None) -> dict:
    """The metadata of one image node, as every extractor writes it: page URL, the attribute value as found, the
    resolved absolute URL, then alt text, title and the rendered size when the page gives them."""
    meta = {"document_url": page_url, "unformatted_src": raw, "src": src}
    if alt and alt.strip():
        meta["alt_text"] = alt.strip()
    if title and title.strip():
        meta["title"] = title.strip()
    if width is not None:
        meta["rendered_width"] = width
    if height is not None:
        meta["rendered_height"] = height
    return meta


_RE_BASE_TAG = re.compile(r"<base[\s/>]", re.IGNORECASE)


def document_base(tree, html: str, page_url: str) -> str:
    """The URL relative references resolve against: the first ``<base href>`` of the parsed page (``tree``, whose
    markup is ``html``), resolved against the page URL; else the page URL."""
    if _RE_BASE_TAG.search(html) is None:
        return page_url
    node = tree.css_first("base[href]")
    if node is not None:
        href = clean_url_attr(node.attributes.get("href"))
        if href:
            resolved = resolve_url(href, page_url)
            if resolved:
                return resolved
    return page_url
