"""The report's pages apart from the documents: the index (run, summary, funnel), removals and distributions."""
from __future__ import annotations

import json
from typing import Any

from .checks import Check, CheckResult
from .html import (UNITS, _anchor, _stage_names, esc, fmt_int, fmt_num, link, short, svg_funnel, svg_histogram,
                   svg_reasons)

#: Image-table reasons and the image-config keys that set their threshold.
IMAGE_REASON_KEYS = {
    "format": ["formats"],
    "too_small": ["min_size"],
    "too_large_dimensions": ["max_size"],
    "aspect_ratio": ["max_aspect_ratio"],
    "too_many_pixels": ["max_pixels"],
}


# ---------------------------------------------------------------------------------------------------------------
# index: run, summary, funnel
# ---------------------------------------------------------------------------------------------------------------

def _kv_table(rows: list[tuple[str, str]], cls: str = "") -> str:
    return f'<table class="{cls}">' + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _num_td(stage: str, key: str, value: Any) -> str:
    v = int(value or 0)
    return f'<td class="num" data-stage="{esc(stage)}" data-key="{esc(key)}" data-value="{v}">{v:,}</td>'


def _cpu_td(stage: str, s: dict) -> str:
    """The stage's CPU seconds (a dash for a stats.json written before they were counted)."""
    v = s.get("cpu_seconds")
    if v is None:
        return f'<td class="num muted" data-stage="{esc(stage)}" data-key="cpu_seconds">–</td>'
    return (f'<td class="num" data-stage="{esc(stage)}" data-key="cpu_seconds" data-value="{float(v):.3f}">'
            f'{fmt_num(v)}</td>')


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
            "<th colspan=3>images</th><th rowspan=2>seconds</th><th rowspan=2>CPU seconds</th></tr><tr>"
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
            + f'<td class="num">{fmt_num(s.get("seconds"))}</td>' + _cpu_td(n, s) + "</tr>")
    body.append(f'<table id="funnel-table">{head}{"".join(rows)}</table>')
    body.append('<p class="muted small">seconds: wall time, CPU seconds: CPU time, both summed over the tasks of a '
                'stage (a part of the work between stages, such as the run-wide dedup groupings, is in none)</p>')

    if "image_fetch" in stages:
        s = stages["image_fetch"]
        body.append("<h3>Image fetch (unit: unique image URL)</h3><table id=\"image-fetch-table\"><tr><th>URLs in</th>"
                    "<th>usable</th><th>removed</th><th>errors</th><th>seconds (summed)</th><th>CPU seconds</th></tr><tr>"
                    + _num_td("image_fetch", "documents_in", s.get("documents_in"))
                    + _num_td("image_fetch", "documents_out", s.get("documents_out"))
                    + _num_td("image_fetch", "removed", sum((s.get("removed") or {}).values()))
                    + _num_td("image_fetch", "errors", sum((s.get("errors") or {}).values()))
                    + f'<td class="num">{fmt_num(s.get("seconds"))}</td>' + _cpu_td("image_fetch", s)
                    + "</tr></table>")

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


# ---------------------------------------------------------------------------------------------------------------
# removals and distributions pages
# ---------------------------------------------------------------------------------------------------------------

#: Node removal reasons that are not a check, and what they mean (shown in place of a threshold).
NOT_A_CHECK = {"section_removed": "not a check: a heading that passed its checks is dropped with the section it "
                                  "opens (node.structure.headings_follow_section)"}


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
    skipped = ""
    if scan.get("not_scored"):
        skipped += f' {scan["not_scored"]:,} documents without node scores were skipped (the text filter rejects them: not_scored).'
    if scan.get("misaligned"):
        skipped += (f' {scan["misaligned"]:,} documents had node score lists not aligned with their paragraphs and were '
                    'skipped (the text filter rejects them: node_scores_misaligned).')
    body.append('<p class="muted">Text examples come from <code>parts/scored</code> (documents before the text decisions)'
                ' with their stored scores: each paragraph is decided by the text filter\'s own node rule (the first '
                'failing check that applies to its kind, then headings follow their section) and each document is '
                f'shown under the first doc check it fails. Scanned: {scan.get("documents", 0):,} documents, '
                f'{scan.get("paragraphs", 0):,} paragraphs from {scan.get("files", 0)} parts.' + skipped + "</p>")
    shown_reasons: set[tuple[str, str]] = set()
    other = list((scan.get("node_other") or {}).values())
    for level, title in (("node", "Paragraph checks (text filter, node level)"), ("doc", "Document checks (text filter, doc level)")):
        rs = [r for r in results if r.check.level == level]
        body.append(f"<h3>{esc(title)}</h3>")
        if not rs:
            body.append('<p class="muted">no enabled check with a stored score column was found</p>')
        for r in rs + (other if level == "node" else []):
            c = r.check
            hits = _stats_count_for(c, stages)
            for stage, reason, _ in hits:
                shown_reasons.add((stage, reason))
            anchors = "".join(f'<a id="{esc(_anchor(stage, reason))}"></a>' for stage, reason, _ in hits)
            in_stats = ", ".join(f"{esc(stage)}/{esc(reason)}: {n:,}" for stage, reason, n in hits) or "–"
            if any(r is o for o in other):
                rule = (NOT_A_CHECK.get(c.name, "not a check of the filter config") + " · removed for this reason in "
                        f'the scanned sample: <b data-check="{esc(c.label)}">{r.removed:,}</b>')
            else:
                rule = (f'threshold: <b>{esc(c.threshold())}</b> · score column: <code>{esc(c.column or "derived")}</code>'
                        ' · removed first by this check in the scanned sample: '
                        f'<b data-check="{esc(c.label)}">{r.removed:,}</b>')
            body.append(f'<section class="check" id="{esc(c.anchor)}">{anchors}<h3>{esc(c.label)}</h3>'
                        f'<p>{rule} · in stats.json: {in_stats}</p>')
            if not r.examples:
                body.append('<p class="muted small">no removed example in the scanned sample</p>')
            for ex in r.examples:
                extra = ""
                if level == "doc":
                    extra = f" · images: {ex.get('images')} · language: {esc(ex.get('language'))}"
                elif ex.get("kind"):
                    extra = f" · kind: {esc(ex['kind'])}"
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
            'decisions (parts/scored); a paragraph check\'s values are those of the paragraphs of the kinds it '
            'applies to (after its name); dashed red lines are the config cutoffs, the caption gives the share each '
            'cutoff removes on its own.</p>']
    for level, title in (("node", "Paragraph (node) scores"), ("doc", "Document scores")):
        rs = [r for r in results if r.check.level == level]
        body.append(f"<h3>{esc(title)}</h3>")
        if not rs:
            body.append('<p class="muted">no scores found</p>')
            continue
        body.append('<div class="charts">' + "".join(
            svg_histogram(r.values, f"{r.check.label} ({r.check.column or 'derived'})"
                          + (f" · {', '.join(r.check.kinds)}" if r.check.kinds else ""), r.check.min, r.check.max)
            for r in rs) + "</div>")
    return "".join(body)
