"""``obelics-build filter OUT --config NEW.yaml`` equals a fresh crawl with ``--filters NEW.yaml``, without
rereading WARCs (the per-WARC scored parts and their markers are left untouched)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from obelics_builder.resources import FILTERS_DIR

from quality_out import cli, crawl, sample_out


def _stricter(dest: Path) -> Path:
    """The default recipe's filters with changed decisions: thresholds, the kinds checks apply to, whether
    headings follow their section, the kinds of text the doc checks read (none of them changes a stored score)."""
    cfg = yaml.safe_load((FILTERS_DIR / "obelics-structured.yaml").read_text(encoding="utf-8"))
    # word lists stay relative: load_filters falls back to the packaged filters/ folder, so they resolve to the
    # same paths as at crawl time (the scored parts' fingerprint includes the word-list paths)
    cfg["name"] = "stricter"
    cfg["node"]["stopwords"].update(enabled=True, min=0.4)  # node threshold: doc metrics must follow the new text
    cfg["node"]["special_characters"].update(enabled=True, max=0.2, kinds=["prose", "list"])
    cfg["node"]["number_words"].update(min=4, kinds=["list", "caption"])
    # a check off at crawl time, whose scores were not stored: `filter` computes them (quality.lazy)
    cfg["node"]["lang_id"].update(enabled=True, min=0.3)
    cfg["node"]["structure"]["headings_follow_section"] = False
    cfg["doc"]["text_kinds"] = ["prose"]
    cfg["doc"]["word_repetition"]["max"] = 0.15
    cfg["doc"]["number_words"]["min"] = 40
    dest.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return dest


def _text_parts(out: Path) -> dict[str, list[dict]]:
    parts = {}
    for f in sorted((out / "parts" / "text").glob("*.parquet")):
        t = pq.read_table(f)
        parts[f.name] = t.select(sorted(t.column_names)).to_pylist()
    return parts


def _scored_state(out: Path) -> dict[str, tuple[int, int]]:
    folder = out / "parts" / "scored"
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _paragraphs(parts: dict) -> int:
    return sum(len([p for p in t.split("\n\n") if p.strip()]) for name, rows in parts.items()
               if not name.endswith(".keys.parquet") for r in rows for t in r["texts"] if t)


def test_filter_equals_fresh_crawl_without_rereading_warcs(tmp_path):
    out = sample_out(tmp_path / "out")
    new = _stricter(tmp_path / "strict.yaml")
    before_text = _text_parts(out)
    scored_before = _scored_state(out)
    assert any(k.startswith("_done/") for k in scored_before)

    r = cli("filter", str(out), "--config", str(new), "--scheduler", "sync", "--quiet")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert _scored_state(out) == scored_before  # per-WARC parts and markers untouched: no WARC was reread
    assert all("node_lang_score" not in pq.read_schema(f).names for f in (out / "parts" / "scored").glob("*.parquet"))
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["run"]["filters"] == str(new.resolve()) or Path(stats["run"]["filters"]).resolve() == new.resolve()

    fresh = tmp_path / "fresh"
    r = crawl(fresh, "--filters", str(new))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    refiltered, fresh_text = _text_parts(out), _text_parts(fresh)
    assert refiltered.keys() == fresh_text.keys() and refiltered
    for name in refiltered:
        assert len(refiltered[name]) == len(fresh_text[name]), name
        for a, b in zip(refiltered[name], fresh_text[name]):
            assert a == b  # documents, texts and every node_*/doc_* score (and the URL keys sidecar)
    # the stricter thresholds did change the output (the comparison is not vacuous)
    assert _paragraphs(refiltered) < _paragraphs(before_text)
    # (document counts need not fall: dropping low-quality paragraphs can let a document pass the doc checks)
    assert refiltered != before_text
    assert stats["stages"]["text_filter"]["nodes_removed"].get("node:lang_id", 0) >= 1
    assert any("computed on demand" in n for n in stats["notes"])
