"""HTML building blocks of the report: escaping, number formatting, inline SVG charts and the page frame.

Every piece of crawled text goes through :func:`esc` (HTML escaping, attributes quoted) and each page carries a
Content-Security-Policy without any script source, so crawled content can neither inject markup nor run code.
"""
from __future__ import annotations

import html
import math
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Funnel order of the document stages (``image_fetch`` counts unique image URLs and is reported apart).
DOC_STAGES = ["read", "extract", "text_scores", "page_consent", "text_filter", "url_dedup", "image_rules", "images", "final"]

CSP = ("default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")


# ---------------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------------

def esc(value: Any) -> str:
    """HTML-escape any value for text and (double-quoted) attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def safe_href(url: Any) -> str | None:
    """``url`` escaped for an href when it is a plain http(s) URL, else None (no javascript:, data:, ...)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return esc(url.strip())


def link(url: Any, text: Any | None = None) -> str:
    href = safe_href(url)
    label = esc(url if text is None else text)
    if href is None:
        return label
    return f'<a href="{href}" rel="noopener noreferrer nofollow" target="_blank">{label}</a>'


def fmt_int(n: Any) -> str:
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return esc(n)


def fmt_num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        if float(v).is_integer():
            return f"{int(v):,}"
        return f"{v:.4g}"
    return esc(v)


def short(text: str, n: int) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


def _as_float(v: Any) -> float | None:
    if v is None or isinstance(v, (bool, str)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _css() -> str:
    return resources.files(__package__).joinpath("assets", "report.css").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# stage names and anchors
# ---------------------------------------------------------------------------------------------------------------

def _stage_names(stages: dict) -> list[str]:
    """The document stages in stats.json's order (the plan's funnel: a stage of one's own where it ran), or the
    built-in order first when the built-in ones are not in that order (a stats dict put together by hand)."""
    names = [n for n in stages if n != "image_fetch"]
    if [n for n in names if n in DOC_STAGES] == [n for n in DOC_STAGES if n in stages]:
        return names
    return [n for n in DOC_STAGES if n in stages] + [n for n in stages if n not in DOC_STAGES and n != "image_fetch"]


def _anchor(stage: str, reason: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{stage}-{reason}")
    return f"r-{safe}"


# ---------------------------------------------------------------------------------------------------------------
# SVG charts
# ---------------------------------------------------------------------------------------------------------------

UNITS = [("documents", "Documents", "var(--doc)", "#2f6fb5"),
         ("nodes", "Paragraphs", "var(--node)", "#3f9a5b"),
         ("images", "Images", "var(--img)", "#c27a1a")]


def svg_funnel(stages: dict, unit: str, title: str, color: str) -> str:
    """A horizontal bar chart: the input of the first stage, then each stage's output."""
    names = _stage_names(stages)
    if not names:
        return ""
    # stages before the first one that counts this unit (e.g. paragraphs before extraction) are left out
    first = next((i for i, n in enumerate(names)
                  if stages[n].get(f"{unit}_in") or stages[n].get(f"{unit}_out")), 0)
    names = names[first:]
    first_in = int(stages[names[0]].get(f"{unit}_in", 0) or 0)
    rows = [("input", f"{names[0]} in", first_in, "in")] if first_in else []
    rows += [(n, n, int(stages[n].get(f"{unit}_out", 0) or 0), "out") for n in names]
    top = max([r[2] for r in rows] + [1])
    label_w, bar_w, row_h, pad = 110, 260, 22, 26
    width, height = label_w + bar_w + 90, pad + row_h * len(rows) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{esc(title)} funnel" class="funnel" data-unit="{esc(unit)}">',
             f'<text x="4" y="16" font-size="13" font-weight="bold">{esc(title)}</text>']
    for i, (stage, label, value, kind) in enumerate(rows):
        y = pad + i * row_h
        w = 0 if top == 0 else max(1.0 if value else 0.0, bar_w * value / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{esc(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}" '
                     f'opacity="{0.55 if kind == "in" else 0.9}"><title>{esc(label)}: {value:,}</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11" class="bar-value" '
                     f'data-stage="{esc(names[0] if stage == "input" else stage)}" data-key="{esc(unit)}_{kind}" '
                     f'data-value="{value}">{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_reasons(stages: dict, limit: int = 24) -> str:
    """Horizontal bars of the largest removal/error counts, one per (stage, unit, reason)."""
    colors = {"removed": "#2f6fb5", "nodes_removed": "#3f9a5b", "images_removed": "#c27a1a", "errors": "#c62828"}
    items = []
    for name in _stage_names(stages) + (["image_fetch"] if "image_fetch" in stages else []):
        for key in colors:
            for reason, n in (stages[name].get(key) or {}).items():
                if n:
                    items.append((int(n), name, key, reason))
    if not items:
        return ""
    items.sort(key=lambda t: -t[0])
    items = items[:limit]
    top = items[0][0]
    label_w, bar_w, row_h = 250, 300, 18
    width, height = label_w + bar_w + 70, 44 + row_h * len(items)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="removals by reason" class="reasons">',
             '<text x="4" y="16" font-size="13" font-weight="bold">Removals by reason (largest first)</text>']
    lx = 4
    for key, label in (("removed", "documents"), ("nodes_removed", "paragraphs"), ("images_removed", "images"),
                       ("errors", "errors")):
        parts.append(f'<rect x="{lx}" y="24" width="10" height="10" fill="{colors[key]}"/>'
                     f'<text x="{lx + 14}" y="33" font-size="11">{label}</text>')
        lx += 24 + 7 * len(label)
    for i, (n, name, key, reason) in enumerate(items):
        y = 40 + i * row_h
        w = max(1.0, bar_w * n / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">'
                     f'{esc(short(f"{name} · {reason}", 40))}</text>')
        color = colors["images_removed"] if name == "image_fetch" and key == "removed" else colors[key]
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" fill="{color}">'
                     f'<title>{esc(name)} {esc(key)} {esc(reason)}: {n:,}</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="11">{n:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _quantile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def svg_histogram(values: list[float], title: str, cut_min: float | None = None, cut_max: float | None = None,
                  bins: int = 40, width: int = 460, height: int = 170) -> str:
    """An inline SVG histogram with dashed cutoff lines and the share each cutoff removes."""
    vals = sorted(v for v in values if v is not None and math.isfinite(v))
    n = len(vals)
    if n == 0:
        return f'<div class="chart"><b>{esc(title)}</b><p class="muted">no values</p></div>'
    lo, hi = vals[0], _quantile(vals, 0.99)
    off_chart = []
    for c in (cut_min, cut_max):
        if c is None:
            continue
        span = max(hi - lo, 1e-9)
        if lo - 0.5 * span <= c <= hi + 0.5 * span or c <= vals[-1]:
            lo, hi = min(lo, c), max(hi, c)
        else:
            off_chart.append(c)
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    step = (hi - lo) / bins
    counts = [0] * bins
    for v in vals:
        k = int((v - lo) / step) if v < hi else bins - 1
        counts[min(bins - 1, max(0, k))] += 1
    top = max(counts) or 1
    left, right, ptop, pbot = 44, 10, 22, 20
    pw, ph = width - left - right, height - ptop - pbot

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * pw

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{esc(title)} histogram" class="hist">',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{esc(title)}</text>',
             f'<line x1="{left}" y1="{ptop + ph}" x2="{left + pw}" y2="{ptop + ph}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{ptop + 8}" font-size="10" text-anchor="end">{top:,}</text>',
             f'<text x="{left - 4}" y="{ptop + ph}" font-size="10" text-anchor="end">0</text>']
    bw = pw / bins
    for i, c in enumerate(counts):
        if not c:
            continue
        h = ph * c / top
        a, b = lo + i * step, lo + (i + 1) * step
        parts.append(f'<rect x="{left + i * bw:.1f}" y="{ptop + ph - h:.1f}" width="{max(bw - 1, 0.5):.1f}" '
                     f'height="{h:.1f}" fill="#5b8fc7"><title>[{fmt_num(a)}, {fmt_num(b)}): {c:,}</title></rect>')
    for v, anchor in ((lo, "start"), ((lo + hi) / 2, "middle"), (hi, "end")):
        parts.append(f'<text x="{x(v):.1f}" y="{ptop + ph + 13}" font-size="10" text-anchor="{anchor}">'
                     f'{esc(fmt_num(v))}{"+" if v == hi and vals[-1] > hi else ""}</text>')
    captions = [f"{n:,} values"]
    for c, kind in ((cut_min, "min"), (cut_max, "max")):
        if c is None:
            continue
        share = sum(1 for v in vals if (v < c if kind == "min" else v > c)) / n
        captions.append(f"{kind} {fmt_num(c)} removes {share:.1%}")
        if c in off_chart:
            continue
        cx = x(c)
        parts.append(f'<line x1="{cx:.1f}" y1="{ptop - 4}" x2="{cx:.1f}" y2="{ptop + ph}" stroke="#c62828" '
                     f'stroke-width="2" stroke-dasharray="5,3" class="cutoff" data-cutoff="{esc(c)}"/>')
        parts.append(f'<text x="{cx + (3 if kind == "min" else -3):.1f}" y="{ptop + 6}" font-size="10" '
                     f'fill="#c62828" text-anchor="{"start" if kind == "min" else "end"}">{kind} {esc(fmt_num(c))}</text>')
    if off_chart:
        captions.append("cutoff off chart: " + ", ".join(fmt_num(c) for c in off_chart))
    parts.append("</svg>")
    return f'<div class="chart">{"".join(parts)}<p class="small muted caption">{esc(" · ".join(captions))}</p></div>'


# ---------------------------------------------------------------------------------------------------------------
# page frame
# ---------------------------------------------------------------------------------------------------------------

class Pages:
    def __init__(self, dest: Path, title: str, n_doc_pages: int) -> None:
        self.dest, self.title, self.n_doc_pages = dest, title, n_doc_pages
        self.css = _css()
        self.written: list[Path] = []

    def nav(self, current: str) -> str:
        items = [("index.html", "Funnel"), ("documents-1.html", "Documents"), ("removals.html", "Removals"),
                 ("distributions.html", "Distributions")]
        out = []
        for href, label in items:
            cur = current == href or (href.startswith("documents") and current.startswith("documents"))
            cls = ' class="current"' if cur else ""
            out.append(f'<a href="{href}"{cls}>{label}</a>')
        return "".join(out)

    def write(self, name: str, heading: str, body: str) -> Path:
        page = (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"referrer\" content=\"no-referrer\">"
            "<link rel=\"icon\" href=\"data:,\">"
            f"<title>{esc(heading)} · {esc(self.title)}</title><style>{self.css}</style></head><body>"
            f"<header class=\"top\"><h1>{esc(self.title)}</h1><nav>{self.nav(name)}</nav></header>"
            f"<main><h2 id=\"page-title\">{esc(heading)}</h2>{body}</main></body></html>\n"
        )
        path = self.dest / name
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
        self.written.append(path)
        return path
