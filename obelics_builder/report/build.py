"""Build the static report of a crawl output folder (``obelics-build report OUT``).

Inputs (all optional except ``stats.json``)::

    OUT/stats.json                       the funnel (per stage documents/nodes/images in/out, removals by reason)
    OUT/documents/part-*.parquet         kept documents: a seeded random sample is rendered interleaved
    OUT/parts/scored/*.parquet           every document before the text decisions, with its stored scores: the
                                         filter config (stats.json run.filters) is reapplied to them to find which
                                         paragraphs/documents each check removes (no metric is recomputed; the
                                         paragraphs by the text filter's own rule, quality.score.node_decisions)
    OUT/images/table/part-*.parquet      one row per image URL: thumbnails of kept images, removed-image examples

Output ``OUT/report/``: ``index.html`` (run, funnel chart and table), ``documents-N.html`` (the sample),
``removals.html`` (examples per reason next to the threshold), ``distributions.html`` (histograms with cutoffs; the
score columns of the stages of one's own, :mod:`.stage_scores`) and
``thumbs/*.jpg`` (small JPEGs made from the fetched bytes; nothing is ever hot-linked from the original site).

Every piece of crawled text goes through :func:`esc` (HTML escaping, attributes quoted) and each page carries a
Content-Security-Policy without any script source, so crawled content can neither inject markup nor run code.
Images flagged NSFW (document column ``image_nsfw`` or image-table column ``nsfw``) are never shown, only counted.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
from pathlib import Path

# the report's pieces, re-exported: ``from obelics_builder.report.build import esc, ...`` keeps working
from .checks import (ALIASES, Check, CheckResult, _doc_fails, _doc_value, checks_from_config,  # noqa: F401
                     resolve_column, scan_scored)
from .documents import ImageCounts, _thumb_for, make_thumb, render_document  # noqa: F401
from .html import (CSP, DOC_STAGES, UNITS, Pages, _anchor, _as_float, _css, _quantile, _stage_names,  # noqa: F401
                   esc, fmt_int, fmt_num, link, safe_href, short, svg_funnel, svg_histogram, svg_reasons)
from .inputs import (DEFAULT_NSFW_CUTOFF, _parquet_files, is_nsfw, load_image_data, nsfw_cutoff,  # noqa: F401
                     sample_documents, scan_image_table)
from .pages import (IMAGE_REASON_KEYS, _image_threshold, _kv_table, _num_td, _stats_count_for,  # noqa: F401
                    render_distributions, render_index, render_removals)

log = logging.getLogger("obelics_builder")

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
    from .stage_scores import render_stage_scores, scan_stage_scores

    pages.write("distributions.html", "Score distributions", render_distributions(results, scan)
                + render_stage_scores(scan_stage_scores(out, stats, problems, max_values)))
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
