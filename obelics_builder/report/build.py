"""Build the static report of a crawl output folder (``obelics-build report OUT``).

Inputs (all optional except ``stats.json``)::

    OUT/stats.json                       the funnel (per stage documents/nodes/images in/out, removals by reason)
    OUT/documents/part-*.parquet         kept documents: a seeded random sample is rendered interleaved
    OUT/parts/scored/*.parquet           every document before the text decisions, with its stored scores: the
                                         filter config (stats.json run.filters) is reapplied to them to find which
                                         paragraphs/documents each check removes (no metric is recomputed)
    OUT/images/table/part-*.parquet      one row per image URL: thumbnails of kept images, removed-image examples

Output ``OUT/report/``: ``index.html`` (run, funnel chart and table), ``documents-N.html`` (the sample),
``removals.html`` (examples per reason next to the threshold), ``distributions.html`` (histograms with cutoffs) and
``thumbs/*.jpg`` (small JPEGs made from the fetched bytes; nothing is ever hot-linked from the original site).

Every piece of crawled text goes through :func:`esc` (HTML escaping, attributes quoted) and each page carries a
Content-Security-Policy without any script source, so crawled content can neither inject markup nor run code.
Images flagged NSFW (document column ``image_nsfw`` or image-table column ``nsfw``) are never shown, only counted.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import html
import io
import json
import logging
import math
import random
import warnings
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import END_OF_DOCUMENT, from_arrow, paragraphs

log = logging.getLogger("obelics_builder")

#: Funnel order of the document stages (``image_fetch`` counts unique image URLs and is reported apart).
DOC_STAGES = ["read", "extract", "text_scores", "text_filter", "url_dedup", "image_rules", "images", "final"]

#: Score column names tried for each filter check, after ``node_`` / ``doc_`` (first match wins; then any column
#: whose name starts with ``<level>_<check>``).
ALIASES: dict[str, list[str]] = {
    "number_words": ["number_words", "words", "n_words", "num_words", "word_count"],
    "number_images": ["number_images", "images", "n_images", "num_images"],
    "char_repetition": ["char_repetition", "char_repetition_ratio", "character_repetition",
                        "character_repetition_ratio", "char_rep"],
    "word_repetition": ["word_repetition", "word_repetition_ratio", "word_rep"],
    "special_characters": ["special_characters", "special_characters_ratio", "special_character_ratio",
                           "special_char_ratio", "special_chars"],
    "stopwords": ["stopwords", "stopword_ratio", "stopwords_ratio"],
    "flagged_words": ["flagged_words", "flagged_word_ratio", "flagged_words_ratio"],
    "punctuation": ["punctuation", "punctuation_ratio"],
    "common_words": ["common_words", "common_word_ratio", "common_words_ratio"],
    "lang_id": ["lang_id", "lang_id_score", "language_score", "lang_score", "langid"],
    "perplexity": ["perplexity", "ppl"],
}

#: Image-table reasons and the image-config keys that set their threshold.
IMAGE_REASON_KEYS = {
    "format": ["formats"],
    "too_small": ["min_size"],
    "too_large_dimensions": ["max_size"],
    "aspect_ratio": ["max_aspect_ratio"],
    "too_many_pixels": ["max_pixels"],
}

CSP = ("default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")

DEFAULT_NSFW_CUTOFF = 0.5


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
# filter checks from the config
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Check:
    level: str                      # "node" or "doc"
    name: str                       # config key, e.g. "stopwords"
    column: str | None              # stored score column used, None when the value is derived (see value())
    min: float | None
    max: float | None
    languages: list[str] | None = None
    min_words: int | None = None

    @property
    def label(self) -> str:
        return f"{self.level}.{self.name}"

    @property
    def anchor(self) -> str:
        return f"{self.level}-{self.name}"

    def threshold(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"keep if ≥ {fmt_num(self.min)}")
        if self.max is not None:
            parts.append(f"keep if ≤ {fmt_num(self.max)}")
        if self.languages:
            parts.append("language in " + ", ".join(self.languages))
        if self.min_words:
            parts.append(f"checked from {self.min_words} tokens")
        return "; ".join(parts) or "no cutoff"

    def fails(self, value: float | None) -> str | None:
        """Why ``value`` is removed by this check ("below min" / "above max"), else None."""
        if value is None:
            return None
        if self.min is not None and value < self.min:
            return f"{fmt_num(value)} < min {fmt_num(self.min)}"
        if self.max is not None and value > self.max:
            return f"{fmt_num(value)} > max {fmt_num(self.max)}"
        return None


def resolve_column(level: str, name: str, columns: Iterable[str]) -> str | None:
    cols = list(columns)
    for cand in ALIASES.get(name, [name]):
        if f"{level}_{cand}" in cols:
            return f"{level}_{cand}"
    prefix = f"{level}_{name}"
    return next((c for c in sorted(cols) if c.startswith(prefix)), None)


def checks_from_config(cfg: dict, columns: Iterable[str]) -> list[Check]:
    """Enabled node and doc checks of a filter config, in config order, each bound to its stored score column."""
    cols = list(columns)
    out: list[Check] = []
    for level in ("node", "doc"):
        section = cfg.get(level) or {}
        for name, spec in section.items():
            if not isinstance(spec, dict) or not spec.get("enabled", True):
                continue
            column = resolve_column(level, name, cols)
            derived = (level, name) == ("doc", "lang_id")  # falls back to general_metadata language/score
            if column is None and not derived:
                continue
            mn, mx = _as_float(spec.get("min")), _as_float(spec.get("max"))
            langs = spec.get("languages") if name == "lang_id" else None
            out.append(Check(level, name, column, mn, mx, list(langs) if langs else None,
                             int(spec["min_words"]) if spec.get("min_words") else None))
    return out


def _doc_value(check: Check, doc: dict) -> float | None:
    if check.column is not None:
        return _as_float(doc.get(check.column))
    if check.name == "lang_id":
        return _as_float(doc["general_metadata"].get("language_score"))
    return None


def _doc_fails(check: Check, doc: dict) -> tuple[float | None, str | None]:
    value = _doc_value(check, doc)
    why = check.fails(value)
    if why is None and check.languages and check.column is None:
        lang = doc["general_metadata"].get("language")
        if isinstance(lang, str) and lang and lang not in check.languages:
            why = f"language {lang} not in {', '.join(check.languages)}"
    return value, why


# ---------------------------------------------------------------------------------------------------------------
# NSFW
# ---------------------------------------------------------------------------------------------------------------

def nsfw_cutoff(cfg: dict) -> float:
    cands = [DEFAULT_NSFW_CUTOFF]
    for section, key in (("image", "nsfw_max"), ("image", "nsfw"), ("nsfw", "max"), ("nsfw", "threshold")):
        v = _as_float((cfg.get(section) or {}).get(key)) if isinstance(cfg.get(section), dict) else None
        if v is not None:
            cands.append(v)
    return min(cands)


def is_nsfw(value: Any, cutoff: float = DEFAULT_NSFW_CUTOFF) -> bool:
    """True when an NSFW flag/score says the image must not be shown (a bool, a probability or a label)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return not math.isnan(float(value)) and float(value) >= cutoff
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "nsfw", "unsafe", "porn", "hentai", "sexy")
    if isinstance(value, dict):  # e.g. {"porn": 0.9, "neutral": 0.1}
        return any(is_nsfw(v, cutoff) for k, v in value.items() if str(k).lower() not in ("neutral", "drawings", "safe"))
    return bool(value)


# ---------------------------------------------------------------------------------------------------------------
# SVG charts
# ---------------------------------------------------------------------------------------------------------------

UNITS = [("documents", "Documents", "var(--doc)", "#2f6fb5"),
         ("nodes", "Paragraphs", "var(--node)", "#3f9a5b"),
         ("images", "Images", "var(--img)", "#c27a1a")]


def svg_funnel(stages: dict, unit: str, title: str, color: str) -> str:
    """A horizontal bar chart: the input of the first stage, then each stage's output."""
    names = [n for n in DOC_STAGES if n in stages] + [n for n in stages if n not in DOC_STAGES and n != "image_fetch"]
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


# ---------------------------------------------------------------------------------------------------------------
# index: run, summary, funnel
# ---------------------------------------------------------------------------------------------------------------

def _kv_table(rows: list[tuple[str, str]], cls: str = "") -> str:
    return f'<table class="{cls}">' + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _stage_names(stages: dict) -> list[str]:
    return [n for n in DOC_STAGES if n in stages] + [n for n in stages if n not in DOC_STAGES and n != "image_fetch"]


def _num_td(stage: str, key: str, value: Any) -> str:
    v = int(value or 0)
    return f'<td class="num" data-stage="{esc(stage)}" data-key="{esc(key)}" data-value="{v}">{v:,}</td>'


def render_index(stats: dict, problems: list[str]) -> str:
    run, summary, stages = stats.get("run") or {}, stats.get("summary") or {}, stats.get("stages") or {}
    body = []
    warcs = run.get("warcs") or []
    run_rows = [("dump", esc(run.get("dump"))), ("WARCs", f"{len(warcs):,}" + (
        f' <span class="muted small">({esc(short(", ".join(map(str, warcs[:3])), 300))}{", …" if len(warcs) > 3 else ""})</span>' if warcs else "")),
        ("recipe", f"<code>{esc(run.get('recipe'))}</code>"), ("filters", f"<code>{esc(run.get('filters'))}</code>"),
        ("started", esc(run.get("started"))), ("seconds", fmt_num(run.get("seconds"))),
        ("version", esc(run.get("obelics_builder_version")))]
    extra = [(k, esc(short(json.dumps(v, ensure_ascii=False, default=str), 300))) for k, v in run.items()
             if k not in ("dump", "warcs", "recipe", "filters", "started", "seconds", "obelics_builder_version")]
    body.append("<h3>Run</h3>" + _kv_table(run_rows + extra))
    acc = summary.get("accounted")
    srows = [(k, f'<span data-summary="{esc(k)}">{fmt_int(summary.get(k))}</span>')
             for k in ("records_in", "documents", "paragraphs", "images", "unique_image_urls", "image_urls_usable")
             if k in summary]
    srows.append(("every record accounted", '<span class="good">yes</span>' if acc else '<span class="bad">no</span>'))
    body.append("<h3>Summary</h3>" + _kv_table(srows))
    for p in list(summary.get("accounting_problems") or []):
        body.append(f'<p class="warn">accounting: {esc(p)}</p>')
    notes = stats.get("notes") or []
    if notes:
        body.append("<h3>Notes</h3><ul>" + "".join(f'<li class="warn">{esc(n)}</li>' for n in notes) + "</ul>")
    for p in problems:
        body.append(f'<p class="warn">report: {esc(p)}</p>')

    body.append('<h3 id="funnel">Funnel</h3><div class="charts">' + "".join(
        f'<div class="chart">{svg_funnel(stages, unit, title, hexcolor)}</div>' for unit, title, _, hexcolor in UNITS)
        + (f'<div class="chart">{svg_reasons(stages)}</div>' if svg_reasons(stages) else "") + "</div>")
    names = _stage_names(stages)
    head = ("<tr><th rowspan=2>stage</th><th colspan=4>documents</th><th colspan=3>paragraphs</th>"
            "<th colspan=3>images</th><th rowspan=2>seconds</th></tr><tr>"
            + "".join(f'<th class="num">{h}</th>' for h in ("in", "out", "removed", "errors", "in", "out", "removed",
                                                             "in", "out", "removed")) + "</tr>")
    rows = []
    for n in names:
        s = stages[n]
        rows.append(
            f'<tr data-stage="{esc(n)}"><th>{esc(n)}</th>' + _num_td(n, "documents_in", s.get("documents_in"))
            + _num_td(n, "documents_out", s.get("documents_out"))
            + _num_td(n, "removed", sum((s.get("removed") or {}).values()))
            + _num_td(n, "errors", sum((s.get("errors") or {}).values()))
            + _num_td(n, "nodes_in", s.get("nodes_in")) + _num_td(n, "nodes_out", s.get("nodes_out"))
            + _num_td(n, "nodes_removed", sum((s.get("nodes_removed") or {}).values()))
            + _num_td(n, "images_in", s.get("images_in")) + _num_td(n, "images_out", s.get("images_out"))
            + _num_td(n, "images_removed", sum((s.get("images_removed") or {}).values()))
            + f'<td class="num">{fmt_num(s.get("seconds"))}</td></tr>')
    body.append(f'<table id="funnel-table">{head}{"".join(rows)}</table>')

    if "image_fetch" in stages:
        s = stages["image_fetch"]
        body.append("<h3>Image fetch (unit: unique image URL)</h3><table id=\"image-fetch-table\"><tr><th>URLs in</th>"
                    "<th>usable</th><th>removed</th><th>errors</th><th>seconds (summed)</th></tr><tr>"
                    + _num_td("image_fetch", "documents_in", s.get("documents_in"))
                    + _num_td("image_fetch", "documents_out", s.get("documents_out"))
                    + _num_td("image_fetch", "removed", sum((s.get("removed") or {}).values()))
                    + _num_td("image_fetch", "errors", sum((s.get("errors") or {}).values()))
                    + f'<td class="num">{fmt_num(s.get("seconds"))}</td></tr></table>')

    rrows = []
    for n in names + (["image_fetch"] if "image_fetch" in stages else []):
        s = stages[n]
        for key, unit in (("removed", "documents"), ("nodes_removed", "paragraphs"), ("images_removed", "images"),
                          ("errors", "errors")):
            for reason, count in sorted((s.get(key) or {}).items(), key=lambda kv: -kv[1]):
                unit_label = "image URLs" if n == "image_fetch" and key != "errors" else unit
                rrows.append(
                    f'<tr><td>{esc(n)}</td><td>{esc(unit_label)}</td><td><a href="removals.html#{esc(_anchor(n, reason))}">'
                    f'{esc(reason)}</a></td><td class="num" data-stage="{esc(n)}" data-kind="{esc(key)}" '
                    f'data-reason="{esc(reason)}" data-value="{int(count)}">{int(count):,}</td></tr>')
    body.append('<h3 id="reasons">Removals by reason</h3>' + (
        '<table id="reasons-table"><tr><th>stage</th><th>unit</th><th>reason</th><th class="num">count</th></tr>'
        + "".join(rrows) + "</table>" if rrows else '<p class="muted">nothing was removed</p>'))
    return "".join(body)


def _anchor(stage: str, reason: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{stage}-{reason}")
    return f"r-{safe}"


# ---------------------------------------------------------------------------------------------------------------
# reading inputs
# ---------------------------------------------------------------------------------------------------------------

def _parquet_files(folder: Path, pattern: str = "*.parquet") -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern)
                  if not p.name.startswith(".") and not p.name.endswith((".keys.parquet", ".pairs.parquet")))


def sample_documents(out: Path, n: int, seed: int, problems: list[str]) -> list[dict]:
    """A seeded random sample of ``n`` kept documents (in file/row order), each with ``_part``/``_row``."""
    files = []
    for f in _parquet_files(out / "documents", "part-*.parquet"):
        try:
            files.append((f, pq.ParquetFile(f).metadata.num_rows))
        except Exception as e:  # noqa: BLE001 - a damaged part is reported, not fatal
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    total = sum(r for _, r in files)
    if total == 0 or n <= 0:
        return []
    picks = sorted(random.Random(seed).sample(range(total), min(n, total)))
    docs: list[dict] = []
    base = 0
    for f, rows in files:
        local = [i - base for i in picks if base <= i < base + rows]
        base += rows
        if not local:
            continue
        try:
            table = pq.read_table(f).take(pa.array(local, pa.int64()))
            for row, d in zip(local, from_arrow(table)):
                d["_part"], d["_row"] = f.name, row
                docs.append(d)
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    return docs


def load_image_data(out: Path, urls: set[str], problems: list[str]) -> dict[str, dict]:
    """Image-table rows (with bytes) for ``urls``."""
    found: dict[str, dict] = {}
    if not urls:
        return found
    for f in _parquet_files(out / "images" / "table", "part-*.parquet"):
        try:
            names = pq.ParquetFile(f).schema_arrow.names
            cols = [c for c in ("url", "data", "format", "width", "height", "nsfw", "reason") if c in names]
            t = pq.read_table(f, columns=cols, filters=[("url", "in", sorted(urls))])
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read image table {f.name}: {type(e).__name__}: {e}")
            continue
        for row in t.to_pylist():
            found[row["url"]] = row
    return found


def make_thumb(data: bytes, path: Path, px: int, max_pixels: int) -> tuple[int, int] | None:
    """Write a small JPEG thumbnail of ``data`` to ``path``; its size, or None when the bytes do not decode."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > max_pixels:
                    return None
                im.draft("RGB", (px, px))
                im = im.convert("RGBA") if im.mode in ("P", "LA", "PA") else im
                if im.mode == "RGBA":
                    bg = Image.new("RGB", im.size, (255, 255, 255))
                    bg.paste(im, mask=im.getchannel("A"))
                    im = bg
                elif im.mode != "RGB":
                    im = im.convert("RGB")
                im.thumbnail((px, px))
                tmp = path.with_name(f".{path.name}.tmp")
                im.save(tmp, "JPEG", quality=80, optimize=True)
                tmp.replace(path)
                return im.size
    except Exception:  # noqa: BLE001 - undecodable bytes: the page shows a placeholder
        return None


# ---------------------------------------------------------------------------------------------------------------
# documents pages
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ImageCounts:
    shown: int = 0
    nsfw_hidden: int = 0
    missing: int = 0


def _thumb_for(url: str, table: dict[str, dict], thumbs: Path, px: int, max_pixels: int,
               cache: dict[str, tuple[str, int, int] | None]) -> tuple[str, int, int] | None:
    if url in cache:
        return cache[url]
    row = table.get(url)
    result = None
    if row and row.get("data"):
        name = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:24] + ".jpg"
        size = make_thumb(row["data"], thumbs / name, px, max_pixels)
        if size:
            result = (f"thumbs/{name}", size[0], size[1])
    cache[url] = result
    return result


def render_document(doc: dict, idx: int, table: dict[str, dict], thumbs: Path, px: int, max_pixels: int,
                    cutoff: float, counts: ImageCounts, cache: dict) -> str:
    gm = doc.get("general_metadata") or {}
    url = gm.get("url", "")
    lang = gm.get("language")
    lang_s = f"{esc(lang)} ({fmt_num(_as_float(gm.get('language_score')))})" if lang else "–"
    meta = (f'<div class="meta">#{idx} · {link(url)}<br>language: {lang_s} · dump: {esc(gm.get("dump"))} · '
            f'fetched: {esc(gm.get("fetch_date"))} · <code>{esc(doc.get("_part"))}</code> row {doc.get("_row")}</div>')
    nsfw_col = doc.get("image_nsfw") if isinstance(doc.get("image_nsfw"), list) else None
    body = []
    texts, images, metas = doc.get("texts") or [], doc.get("images") or [], doc.get("metadata") or []
    for i, text in enumerate(texts):
        if text is not None:
            for p in paragraphs(text):
                if p.strip() == END_OF_DOCUMENT:
                    body.append('<p class="muted small">[end of document marker]</p>')
                else:
                    body.append(f"<p>{esc(p)}</p>")
            continue
        img_url = images[i] if i < len(images) else None
        m = metas[i] if i < len(metas) and isinstance(metas[i], dict) else {}
        flag = nsfw_col[i] if nsfw_col is not None and i < len(nsfw_col) else None
        row = table.get(img_url or "") or {}
        if is_nsfw(flag, cutoff) or is_nsfw(row.get("nsfw"), cutoff):
            counts.nsfw_hidden += 1
            body.append('<figure><span class="hidden-img nsfw">image hidden: flagged NSFW</span></figure>')
            continue
        thumb = _thumb_for(img_url, table, thumbs, px, max_pixels, cache) if img_url else None
        alt = m.get("alt_text") or ""
        ow, oh = m.get("original_width"), m.get("original_height")
        cap = f'{link(img_url, short(img_url or "", 120))}' + (f" · {fmt_num(ow)}×{fmt_num(oh)}" if ow and oh else "")
        if alt:
            cap += f" · alt: {esc(short(str(alt), 200))}"
        if thumb:
            counts.shown += 1
            src, w, h = thumb
            body.append(f'<figure><img class="thumb" src="{esc(src)}" width="{w}" height="{h}" alt="{esc(short(str(alt), 200))}">'
                        f'<figcaption>{cap}</figcaption></figure>')
        else:
            counts.missing += 1
            body.append(f'<figure><span class="hidden-img missing">no image bytes in the image table</span>'
                        f'<figcaption>{cap}</figcaption></figure>')
    doc_scores = sorted(k for k in doc if k.startswith("doc_"))
    scores = "".join(f"<tr><td>{esc(k)}</td><td class=\"num\">{fmt_num(doc[k])}</td></tr>" for k in doc_scores)
    node_cols = sorted(k for k in doc if k.startswith("node_") and isinstance(doc[k], list))
    node_rows = []
    if node_cols:
        for i, text in enumerate(texts):
            if text is None:
                continue
            paras = paragraphs(text)
            for j, p in enumerate(paras):
                cells = []
                for c in node_cols:
                    vals = doc[c][i] if i < len(doc[c]) else None
                    v = vals[j] if isinstance(vals, list) and j < len(vals) else None
                    cells.append(f'<td class="num">{fmt_num(v)}</td>')
                node_rows.append(f"<tr><td>{esc(short(p, 60))}</td>{''.join(cells)}</tr>")
    node_table = ""
    if node_rows:
        node_table = ("<details><summary>paragraph scores</summary><table class=\"scores\"><tr><th>paragraph</th>"
                      + "".join(f"<th>{esc(c[5:])}</th>" for c in node_cols) + "</tr>" + "".join(node_rows)
                      + "</table></details>")
    score_block = (f'<details><summary>document scores ({len(doc_scores)})</summary><table class="scores">{scores}</table>'
                   "</details>" if doc_scores else "")
    return f'<article class="doc" data-url="{esc(url)}">{meta}<div class="body">{"".join(body)}</div>{score_block}{node_table}</article>'


# ---------------------------------------------------------------------------------------------------------------
# scanning scored parts: removed examples and score values
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class CheckResult:
    check: Check
    values: list[float] = dataclasses.field(default_factory=list)
    removed: int = 0                       # first-failing removals in the scanned sample
    examples: list[dict] = dataclasses.field(default_factory=list)


def scan_scored(out: Path, cfg: dict, max_docs: int, k: int, max_values: int, problems: list[str]) -> tuple[list[CheckResult], dict]:
    files = _parquet_files(out / "parts" / "scored")
    info = {"files": len(files), "documents": 0, "paragraphs": 0, "misaligned": 0}
    if not files:
        return [], info
    columns: set[str] = set()
    for f in files:
        try:
            columns.update(pq.ParquetFile(f).schema_arrow.names)
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    checks = checks_from_config(cfg, columns)
    results = [CheckResult(c) for c in checks]
    node_res = [r for r in results if r.check.level == "node"]
    doc_res = [r for r in results if r.check.level == "doc"]
    per_file = max(1, math.ceil(max_docs / len(files)))
    for f in files:
        taken = 0
        try:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=512):
                docs = from_arrow(pa.Table.from_batches([batch]))
                for d in docs[: per_file - taken]:
                    _scan_doc(d, node_res, doc_res, k, max_values, info)
                taken += len(docs)
                if taken >= per_file:
                    break
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    return results, info


def _scan_doc(d: dict, node_res: list[CheckResult], doc_res: list[CheckResult], k: int, max_values: int,
              info: dict) -> None:
    info["documents"] += 1
    url = (d.get("general_metadata") or {}).get("url", "")
    texts = d.get("texts") or []
    surviving: list[str] = []
    for i, text in enumerate(texts):
        if text is None:
            continue
        paras = paragraphs(text)
        cols = {}
        for r in node_res:
            col = d.get(r.check.column)
            vals = col[i] if isinstance(col, list) and i < len(col) else None
            if isinstance(vals, list) and len(vals) != len(paras):
                info["misaligned"] += 1
                vals = None
            cols[r.check.column] = vals
        for j, p in enumerate(paras):
            info["paragraphs"] += 1
            if p.strip() == END_OF_DOCUMENT:
                surviving.append(p)
                continue
            failed = False
            for r in node_res:
                vals = cols[r.check.column]
                v = _as_float(vals[j]) if vals is not None else None
                if v is not None and len(r.values) < max_values:
                    r.values.append(v)
                if failed:
                    continue
                why = r.check.fails(v)
                if why:
                    failed = True
                    r.removed += 1
                    if len(r.examples) < k:
                        r.examples.append({"text": short(p, 700), "value": v, "why": why, "url": url})
            if not failed:
                surviving.append(p)
    failed = False
    for r in doc_res:
        v, why = _doc_fails(r.check, d)
        if v is not None and len(r.values) < max_values:
            r.values.append(v)
        if failed or not why:
            continue
        failed = True
        r.removed += 1
        if len(r.examples) < k:
            full = "\n\n".join(surviving) if node_res else "\n\n".join(t for t in texts if t)
            r.examples.append({"text": short(full, 500) or "(no paragraph survives the node checks)", "value": v, "why": why, "url": url,
                               "images": sum(1 for t in texts if t is None),
                               "language": (d.get("general_metadata") or {}).get("language")})


def scan_image_table(out: Path, cutoff: float, k: int, problems: list[str]) -> tuple[dict[str, int], dict[str, list[dict]], int]:
    """Per-reason counts and a few examples of unusable image URLs; NSFW-flagged rows are only counted."""
    counts: dict[str, int] = defaultdict(int)
    examples: dict[str, list[dict]] = defaultdict(list)
    nsfw = 0
    for f in _parquet_files(out / "images" / "table", "part-*.parquet"):
        try:
            names = pq.ParquetFile(f).schema_arrow.names
            cols = [c for c in ("url", "status", "error", "source", "width", "height", "format", "reason", "nsfw")
                    if c in names]
            rows = pq.read_table(f, columns=cols).to_pylist()
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read image table {f.name}: {type(e).__name__}: {e}")
            continue
        for r in rows:
            flagged = is_nsfw(r.get("nsfw"), cutoff) or "nsfw" in str(r.get("reason") or "").lower()
            if flagged:
                nsfw += 1
            reason = r.get("reason")
            if not reason:
                continue
            counts[reason] += 1
            if not flagged and len(examples[reason]) < k:
                examples[reason].append(r)
    return dict(counts), dict(examples), nsfw


# ---------------------------------------------------------------------------------------------------------------
# removals and distributions pages
# ---------------------------------------------------------------------------------------------------------------

def _stats_count_for(check: Check, stages: dict) -> list[tuple[str, str, int]]:
    key = "nodes_removed" if check.level == "node" else "removed"
    exact, loose = [], []
    for name, s in stages.items():
        for reason, n in (s.get(key) or {}).items():
            if reason == f"{check.level}:{check.name}" or reason == f"{check.level}_{check.name}":
                exact.append((name, reason, int(n)))
            elif check.name in reason:
                loose.append((name, reason, int(n)))
    return exact or loose


def _image_threshold(reason: str, img_cfg: dict) -> str:
    keys = IMAGE_REASON_KEYS.get(reason)
    if keys:
        return "; ".join(f"{k} = {esc(img_cfg.get(k))}" for k in keys if k in img_cfg) or "–"
    if reason.startswith("http_") or reason in ("timeout", "unsafe_address", "too_big", "connection"):
        return "fetch failed"
    return "–"


def render_removals(stats: dict, results: list[CheckResult], scan: dict, img_counts: dict, img_examples: dict,
                    nsfw_count: int, cfg: dict, cfg_problem: str | None) -> str:
    stages = stats.get("stages") or {}
    body = []
    if cfg_problem:
        body.append(f'<p class="warn">{esc(cfg_problem)}</p>')
    body.append('<p class="muted">Text examples come from <code>parts/scored</code> (documents before the text decisions)'
                f' with their stored scores: the filter config is reapplied in order and each paragraph or document is '
                f'shown under the first check it fails. Scanned: {scan.get("documents", 0):,} documents, '
                f'{scan.get("paragraphs", 0):,} paragraphs from {scan.get("files", 0)} parts.'
                + (f' {scan["misaligned"]:,} text positions had score lists not aligned with their paragraphs and were '
                   'skipped.' if scan.get("misaligned") else "") + "</p>")
    shown_reasons: set[tuple[str, str]] = set()
    for level, title in (("node", "Paragraph checks (text filter, node level)"), ("doc", "Document checks (text filter, doc level)")):
        rs = [r for r in results if r.check.level == level]
        body.append(f"<h3>{esc(title)}</h3>")
        if not rs:
            body.append('<p class="muted">no enabled check with a stored score column was found</p>')
            continue
        for r in rs:
            c = r.check
            hits = _stats_count_for(c, stages)
            for stage, reason, _ in hits:
                shown_reasons.add((stage, reason))
            anchors = "".join(f'<a id="{esc(_anchor(stage, reason))}"></a>' for stage, reason, _ in hits)
            in_stats = ", ".join(f"{esc(stage)}/{esc(reason)}: {n:,}" for stage, reason, n in hits) or "–"
            body.append(
                f'<section class="check" id="{esc(c.anchor)}">{anchors}<h3>{esc(c.label)}</h3>'
                f'<p>threshold: <b>{esc(c.threshold())}</b> · score column: <code>{esc(c.column or "derived")}</code> · '
                f'removed first by this check in the scanned sample: <b data-check="{esc(c.label)}">{r.removed:,}</b>'
                f' · in stats.json: {in_stats}</p>')
            if not r.examples:
                body.append('<p class="muted small">no removed example in the scanned sample</p>')
            for ex in r.examples:
                extra = ""
                if level == "doc":
                    extra = f" · images: {ex.get('images')} · language: {esc(ex.get('language'))}"
                body.append(f'<div class="example"><span class="why">{esc(c.name)} = {esc(ex["why"])} · '
                            f'{link(ex["url"], short(ex["url"], 100))}{extra}</span>{esc(ex["text"])}</div>')
            body.append("</section>")

    img_cfg = cfg.get("image") or {}
    body.append('<h3 id="images">Images (image table, unit: unique image URL)</h3>')
    body.append(f'<p>Images flagged NSFW are never shown, only counted: <b id="nsfw-count">{nsfw_count:,}</b> '
                'flagged in the image table.</p>')
    if not img_counts:
        body.append('<p class="muted">no unusable image URL in the image table</p>')
    for reason, n in sorted(img_counts.items(), key=lambda kv: -kv[1]):
        shown_reasons.add(("image_fetch", reason))
        body.append(f'<section class="image-reason" id="{esc(_anchor("image_fetch", reason))}"><h3>{esc(reason)}: {n:,}</h3>'
                    f'<p>threshold: <b>{_image_threshold(reason, img_cfg)}</b></p>')
        exs = img_examples.get(reason) or []
        if exs:
            body.append("<table><tr><th>URL</th><th>status</th><th>error</th><th>source</th><th>size</th>"
                        "<th>format</th></tr>" + "".join(
                            f"<tr><td>{esc(short(e.get('url') or '', 120))}</td><td>{esc(e.get('status'))}</td>"
                            f"<td>{esc(short(str(e.get('error') or ''), 160))}</td><td>{esc(e.get('source'))}</td>"
                            f"<td>{esc(e.get('width'))}×{esc(e.get('height'))}</td><td>{esc(e.get('format'))}</td></tr>"
                            for e in exs) + "</table>")
        elif "nsfw" in reason.lower():
            body.append('<p class="muted small">NSFW: counted only, never shown</p>')
        body.append("</section>")

    body.append("<h3>Other removals and errors (from stats.json)</h3>")
    fcfg_final = cfg.get("final") or {}
    any_other = False
    for name in _stage_names(stages) + (["image_fetch"] if "image_fetch" in stages else []):
        s = stages[name]
        for key, unit in (("removed", "documents"), ("nodes_removed", "paragraphs"), ("images_removed", "images"),
                          ("errors", "errors")):
            for reason, n in sorted((s.get(key) or {}).items(), key=lambda kv: -kv[1]):
                if (name, reason) in shown_reasons:
                    continue
                shown_reasons.add((name, reason))
                any_other = True
                exs = [e for e in s.get("examples") or [] if e.get("reason") == reason][:5]
                thr = ""
                if name == "final" and fcfg_final:
                    thr = " · final config: " + esc(", ".join(f"{k}={v}" for k, v in fcfg_final.items()))
                elif name == "image_rules":
                    thr = (" · image config: " + esc(f"banned_url_substrings={img_cfg.get('banned_url_substrings')}, "
                                                     f"max_documents_per_url={img_cfg.get('max_documents_per_url')}"))
                body.append(f'<section id="{esc(_anchor(name, reason))}"><p><b>{esc(name)}</b> · {esc(unit)} · '
                            f'<b>{esc(reason)}</b>: {int(n):,}{thr}</p>')
                if exs:
                    body.append("<table><tr><th>url</th><th>file</th><th>offset</th><th>message</th></tr>" + "".join(
                        f"<tr><td>{esc(short(str(e.get('url') or ''), 120))}</td><td>{esc(e.get('file'))}</td>"
                        f"<td>{esc(e.get('offset'))}</td><td>{esc(short(str(e.get('message') or ''), 300))}</td></tr>"
                        for e in exs) + "</table>")
                body.append("</section>")
    if not any_other:
        body.append('<p class="muted">none</p>')
    return "".join(body)


def render_distributions(results: list[CheckResult], scan: dict) -> str:
    body = [f'<p class="muted">Stored scores of {scan.get("documents", 0):,} scanned documents before the text '
            'decisions (parts/scored); dashed red lines are the config cutoffs, the caption gives the share each '
            'cutoff removes on its own.</p>']
    for level, title in (("node", "Paragraph (node) scores"), ("doc", "Document scores")):
        rs = [r for r in results if r.check.level == level]
        body.append(f"<h3>{esc(title)}</h3>")
        if not rs:
            body.append('<p class="muted">no scores found</p>')
            continue
        body.append('<div class="charts">' + "".join(
            svg_histogram(r.values, f"{r.check.label} ({r.check.column or 'derived'})", r.check.min, r.check.max)
            for r in rs) + "</div>")
    return "".join(body)


# ---------------------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------------------

def _load_cfg(stats: dict, out: Path) -> tuple[dict, str | None]:
    from ..recipe import load_filters

    path = (stats.get("run") or {}).get("filters")
    if not path:
        try:
            path = json.loads((out / "run.json").read_text(encoding="utf-8")).get("filters")
        except (OSError, ValueError):
            path = None
    try:
        if path and Path(path).exists():
            return load_filters(path), None
        return load_filters("obelics"), (f"filter config {path!r} not found; thresholds shown are the packaged "
                                         "defaults (filters/obelics.yaml)")
    except Exception as e:  # noqa: BLE001
        return {}, f"cannot load the filter config {path!r}: {type(e).__name__}: {e}"


def build_report(out: str | Path, dest: str | Path | None = None, *, sample: int = 30, per_page: int = 10,
                 examples: int = 5, max_scan_docs: int = 20000, max_values: int = 200_000, thumb_px: int = 256,
                 seed: int = 0) -> Path:
    """Write the report of crawl output ``out`` to ``dest`` (default ``OUT/report``); returns ``index.html``'s path.

    Raises ``FileNotFoundError`` when ``OUT/stats.json`` is missing and ``ValueError`` when it is not valid JSON.
    """
    out = Path(out)
    stats_path = out / "stats.json"
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{stats_path} not found: not a finished crawl output folder") from None
    except ValueError as e:
        raise ValueError(f"{stats_path} is not valid JSON: {e}") from None
    if not isinstance(stats, dict):
        raise ValueError(f"{stats_path}: expected a JSON object")
    dest = Path(dest) if dest is not None else out / "report"
    thumbs = dest / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    cfg, cfg_problem = _load_cfg(stats, out)
    cutoff = nsfw_cutoff(cfg)
    max_pixels = int((cfg.get("image") or {}).get("max_pixels") or 89478485)

    docs = sample_documents(out, sample, seed, problems)
    urls = {u for d in docs for u in (d.get("images") or []) if u}
    table = load_image_data(out, urls, problems)
    per_page = max(1, per_page)
    n_pages = max(1, math.ceil(len(docs) / per_page))
    title = f"obelics-builder report · {out.resolve().name}"
    pages = Pages(dest, title, n_pages)

    counts, cache = ImageCounts(), {}
    for p in range(n_pages):
        chunk = docs[p * per_page:(p + 1) * per_page]
        nav = ['<div class="pager">'] + [
            f'<span class="current">{i + 1}</span>' if i == p else f'<a href="documents-{i + 1}.html">{i + 1}</a>'
            for i in range(n_pages)] + ["</div>"]
        rendered = [render_document(d, p * per_page + j + 1, table, thumbs, thumb_px, max_pixels, cutoff, counts, cache)
                    for j, d in enumerate(chunk)]
        intro = (f'<p class="muted">A seeded random sample (seed {seed}) of {len(docs):,} kept documents from '
                 '<code>documents/</code>, rendered as they will be trained on: paragraphs and images in order. '
                 'Thumbnails are made from the fetched bytes.</p>')
        empty = '<p class="muted">no kept documents</p>' if not docs else ""
        pages.write(f"documents-{p + 1}.html", f"Documents (page {p + 1} of {n_pages})",
                    intro + "".join(nav) + empty + "".join(rendered) + "".join(nav))
    for old in dest.glob("documents-*.html"):
        stem = old.stem.split("-", 1)[1]
        if not stem.isdigit() or int(stem) > n_pages:
            old.unlink()

    results, scan = scan_scored(out, cfg, max_scan_docs, examples, max_values, problems)
    img_counts, img_examples, nsfw_count = scan_image_table(out, cutoff, examples, problems)
    pages.write("removals.html", "Removals",
                render_removals(stats, results, scan, img_counts, img_examples, nsfw_count, cfg, cfg_problem))
    pages.write("distributions.html", "Score distributions", render_distributions(results, scan))
    index_body = render_index(stats, problems)
    index_body += (f'<h3>Sample</h3><p><a href="documents-1.html">{len(docs):,} sampled documents</a>: '
                   f'<span id="images-shown">{counts.shown:,}</span> images shown, '
                   f'<span id="images-nsfw-hidden">{counts.nsfw_hidden:,}</span> hidden as NSFW, '
                   f'<span id="images-missing">{counts.missing:,}</span> without bytes.</p>'
                   f'<p class="muted small">generated {esc(_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))}</p>')
    index = pages.write("index.html", "Funnel", index_body)
    for p in problems:
        log.warning("report: %s", p)
    return index
