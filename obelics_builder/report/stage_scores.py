"""The score columns each stage of one's own added (the distributions page's last section): for every custom step
of the run's plan, the ``image_*`` / ``doc_*`` columns its parts (``OUT/parts/<name>/``) have that the parts it
read do not, as histograms; the cutoff lines come from the stage function's ``cutoffs(filters) -> {column: (min,
max)}`` when it has one.  The values are those of what the stage kept (an image it dropped is counted in the
funnel, not shown here)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from .html import esc, fmt_int, svg_histogram


@dataclass
class StageScores:
    name: str
    use: str
    #: column -> stored values (image columns: one per image position, flattened)
    values: dict[str, list[float]] = field(default_factory=dict)
    cutoffs: dict[str, tuple] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _part_files(folder: Path) -> list[Path]:
    """The document parts of a per-part step's folder (``<key>.parquet`` for each completion marker's key)."""
    return [folder / f"{m.stem}.parquet" for m in sorted((folder / "_done").glob("*.json"))
            if (folder / f"{m.stem}.parquet").is_file()]


def scan_stage_scores(out: Path, stats: dict, problems: list[str], max_values: int = 200_000) -> list[StageScores]:
    from ..plan.custom import resolve
    from ..plan.stages import build_plan, stage_filters

    try:
        info = json.loads((out / "run.json").read_text(encoding="utf-8"))
        plan = build_plan(info.get("recipe_config") or {})
    except Exception as e:  # noqa: BLE001 - the report shows what it can
        problems.append(f"cannot read the run's plan for the stages of its own: {type(e).__name__}: {e}")
        return []
    filters = info.get("filters_config") or {}
    found = []
    for step in plan.custom:
        s = StageScores(step.name, step.custom.use)
        st = (stats.get("stages") or {}).get(step.name) or {}
        s.removed = {**st.get("removed", {}), **st.get("images_removed", {})}
        s.notes = list(st.get("notes") or [])
        try:
            cut = getattr(resolve(step.custom.use), "cutoffs", None)
            s.cutoffs = dict(cut(stage_filters(filters, step.name))) if callable(cut) else {}
        except Exception as e:  # noqa: BLE001
            problems.append(f"{step.name}: cannot read its cutoffs: {type(e).__name__}: {e}")
        files = _part_files(step.folder(out))
        before = _part_files(plan.step(step.reads[0]).folder(out))
        had = set(pq.ParquetFile(before[0]).schema_arrow.names) if before else set()
        for f in files:
            names = [n for n in pq.ParquetFile(f).schema_arrow.names
                     if n.startswith(("image_", "doc_")) and n not in had]
            if not names:
                continue
            t = pq.read_table(f, columns=names)
            for n in names:
                vals = s.values.setdefault(n, [])
                for v in t.column(n).to_pylist():
                    for x in (v if isinstance(v, list) else [v]):
                        if isinstance(x, (int, float)) and not isinstance(x, bool) and len(vals) < max_values:
                            vals.append(float(x))
        found.append(s)
    return found


def render_stage_scores(stages: list[StageScores]) -> str:
    if not stages:
        return ""
    body = ["<h3>Stages of your own</h3>",
            '<p class="muted">Score columns each stage of its own added, as stored in its parts (the values of what '
            'it kept); dashed red lines are its cutoffs from the filter config.</p>']
    for s in stages:
        removed = ", ".join(f"{esc(r)}: {fmt_int(n)}" for r, n in sorted(s.removed.items())) or "nothing"
        body.append(f'<h4>{esc(s.name)} <span class="muted small">({esc(s.use)})</span></h4>'
                    f'<p class="small">removed: {removed}</p>')
        body += [f'<p class="warn">{esc(n)}</p>' for n in s.notes]
        if not s.values:
            body.append('<p class="muted">no score columns</p>')
            continue
        charts = []
        for col in sorted(s.values):
            lo, hi = (tuple(s.cutoffs.get(col) or ()) + (None, None))[:2]
            charts.append(svg_histogram(s.values[col], f"{col} ({fmt_int(len(s.values[col]))} values)", lo, hi))
        body.append('<div class="charts">' + "".join(charts) + "</div>")
    return "".join(body)
