"""Filter checks of the config and the scan of scored parts (``OUT/parts/scored``): which paragraphs and documents
each check removes, with examples, and the stored score values for the histograms (no metric is recomputed)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from ..quality.score import (NODE_COLUMNS, REPEATED_COLUMN, aligned, column_aligned, document_language, full_text,
                             node_decisions, node_kinds, paragraph_counts, surviving_texts)
from ..quality.lazy import MODEL_CHECKS, fill_node_scores, node_model_checks
from ..quality.prose import WORDS_COLUMN, ProseConfig, prose_column
from ..quality.structure import KIND_COLUMN
from ..schema import END_OF_DOCUMENT, from_arrow, paragraphs
from .html import _as_float, fmt_num, short
from .inputs import _parquet_files

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
    kinds: list[str] | None = None  # node kinds the check applies to (config ``kinds``), None: every kind
    #: a doc check that reads the document's prose (``doc.prose``): judged only from this many words of prose
    prose_min_words: int | None = None
    #: a node check's ``and`` bounds, as text: the paragraph goes only when it is outside them too
    also: str | None = None

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
        if self.also:
            parts.append(f"removed only when also {self.also}")
        if self.prose_min_words is not None:
            parts.append(f"on the prose, from {self.prose_min_words} words of it")
        text = "; ".join(parts) or "no cutoff"
        return f"{text} ({', '.join(self.kinds)})" if self.kinds else text

    def applies_to(self, kind: str | None) -> bool:
        """True when the check judges a paragraph of ``kind`` (every kind when the check has no ``kinds``)."""
        return self.kinds is None or kind in self.kinds

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


#: Keys of a filter config's ``node`` / ``doc`` sections that are settings, not checks.
NOT_CHECKS: dict[str, frozenset[str]] = {"node": frozenset({"structure", "standardize_whitespace"}),
                                         "doc": frozenset({"text_kinds", "prose"})}


def checks_from_config(cfg: dict, columns: Iterable[str]) -> list[Check]:
    """Enabled node and doc checks of a filter config, in config order, each bound to its stored score column (a
    node check keeps its ``kinds``); settings (``node.structure``, ``doc.text_kinds``, anything not a mapping)
    are not checks."""
    cols = list(columns)
    out: list[Check] = []
    prose = ProseConfig.from_config(cfg)
    for level in ("node", "doc"):
        section = cfg.get(level) or {}
        for name, spec in section.items():
            if name in NOT_CHECKS[level] or not isinstance(spec, dict) or not spec.get("enabled", True):
                continue
            column = resolve_column(level, name, cols)
            derived = (level, name) == ("doc", "lang_id")  # falls back to general_metadata language/score
            if column is None and not derived:
                continue
            mn, mx = _as_float(spec.get("min")), _as_float(spec.get("max"))
            langs = spec.get("languages") if name == "lang_id" else None
            kinds = spec.get("kinds") if level == "node" else None  # (kinds are refused on doc checks)
            check = Check(level, name, column, mn, mx, list(langs) if langs else None,
                          int(spec["min_words"]) if spec.get("min_words") else None,
                          [str(k) for k in kinds] if isinstance(kinds, (list, tuple)) else None)
            also = [f"{o} {_outside_text(b)}" for o, b in (spec.get("and") or {}).items()
                    if isinstance(b, dict)] if level == "node" else []
            check.also = ", ".join(also) or None
            if level == "doc" and prose is not None and name in prose.checks and prose_column(name) in cols:
                check.column, check.prose_min_words = prose_column(name), prose.min_words
            out.append(check)
    return out


def _outside_text(bounds: dict) -> str:
    """``{min: 0.001}`` -> ``"< 0.001"``; both bounds -> ``"< LO or > HI"``."""
    parts = [f"{op} {fmt_num(bounds[k])}" for k, op in (("min", "<"), ("max", ">")) if bounds.get(k) is not None]
    return " or ".join(parts)


def _doc_value(check: Check, doc: dict) -> float | None:
    if check.prose_min_words is not None and (_as_float(doc.get(WORDS_COLUMN)) or 0.0) < check.prose_min_words:
        return None  # too little prose to be judged by a prose check (quality.prose)
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
# scanning scored parts: removed examples and score values
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class CheckResult:
    check: Check
    values: list[float] = dataclasses.field(default_factory=list)
    removed: int = 0                       # first-failing removals in the scanned sample
    examples: list[dict] = dataclasses.field(default_factory=list)


#: Node removal reasons of the crawl's node rule that are not a check (a heading dropped with its section).
SECTION_REMOVED = "section_removed"


def scan_scored(out: Path, cfg: dict, max_docs: int, k: int, max_values: int, problems: list[str]) -> tuple[list[CheckResult], dict]:
    """Per check: removals and examples in a sample of the scored parts, and the stored values it judges.

    ``info`` counts what was scanned (``files``, ``documents``, ``paragraphs``), the documents the crawl's text
    filter rejects before any check (``not_scored``: no node score column; ``misaligned``: node score lists that
    do not follow the paragraphs), and in ``node_other`` (reason -> :class:`CheckResult`) the paragraphs removed
    by the node rule for a reason that is not a check (``section_removed``: a heading dropped with its section).
    """
    files = _parquet_files(out / "parts" / "scored")
    info: dict = {"files": len(files), "documents": 0, "paragraphs": 0, "misaligned": 0, "not_scored": 0,
                  "node_other": {}}
    if not files:
        return [], info
    columns: set[str] = set()
    for f in files:
        try:
            columns.update(pq.ParquetFile(f).schema_arrow.names)
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    lazy = _lazy_node_scores(cfg, columns)
    checks = checks_from_config(cfg, columns | set(lazy.get("columns", ())))
    results = [CheckResult(c) for c in checks]
    node_res = [r for r in results if r.check.level == "node"]
    doc_res = [r for r in results if r.check.level == "doc"]
    node_cfg = cfg.get("node") or {}
    lang_model = (cfg.get("lang_id") or {}).get("model") or None  # for the language of an example left without text
    per_file = max(1, math.ceil(max_docs / len(files)))
    for f in files:
        taken = 0
        try:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=512):
                docs = from_arrow(pa.Table.from_batches([batch]))
                if lazy:  # node scores of a check the scoring config did not apply, as `filter` computes them
                    fill_node_scores(docs[: per_file - taken], lazy["scorer"])
                for d in docs[: per_file - taken]:
                    _scan_doc(d, node_res, doc_res, k, max_values, info, node_cfg, lang_model)
                taken += len(docs)
                if taken >= per_file:
                    break
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    return results, info


def _lazy_node_scores(cfg: dict, columns: set[str]) -> dict:
    """When ``cfg`` applies a node model check (lang-id, perplexity with a model) whose column the scored parts
    lack, the scorer that computes it on demand (:mod:`quality.lazy`) and the columns it adds; else ``{}``."""
    wanted = [MODEL_CHECKS[c] for c in node_model_checks(cfg, True)]
    if not any(c not in columns for c in wanted):
        return {}
    from ..quality.score import Scorer

    scorer = Scorer(cfg)
    if scorer.ppl is None:
        wanted = [c for c in wanted if c != MODEL_CHECKS["perplexity"]]
    return {"scorer": scorer, "columns": wanted} if wanted else {}


def _decidable(d: dict, info: dict) -> bool:
    """Whether the crawl's text filter decides ``d`` (else it rejects it as ``not_scored`` or
    ``node_scores_misaligned``, counted in ``info``); the structure columns must follow the paragraphs too."""
    if not any(c in d for c in NODE_COLUMNS):
        info["not_scored"] += 1
        return False
    counts = paragraph_counts(d)
    if not aligned(d) or any(d.get(c) is not None and not column_aligned(d, c, counts)
                             for c in (KIND_COLUMN, REPEATED_COLUMN)):
        info["misaligned"] += 1
        return False
    return True


def _node_value(d: dict, check: Check, i: int, j: int) -> float | None:
    col = d.get(check.column) if check.column else None
    vals = col[i] if isinstance(col, list) and i < len(col) else None
    return _as_float(vals[j]) if isinstance(vals, list) and j < len(vals) else None


def _scan_doc(d: dict, node_res: list[CheckResult], doc_res: list[CheckResult], k: int, max_values: int,
              info: dict, node_cfg: dict | None = None, lang_model: str | None = None) -> None:
    """Which paragraphs of ``d`` the crawl removes and by which check (:func:`quality.score.node_decisions`, the
    rule the text filter applies: the first failing check that applies to the paragraph's kind, then headings
    follow their section), each check's values on the paragraphs of the kinds it judges, then the first failing
    doc check on the stored ``doc_*`` values."""
    if not _decidable(d, info):
        return
    info["documents"] += 1
    url = (d.get("general_metadata") or {}).get("url", "")
    texts = d.get("texts") or []
    decisions = node_decisions(d, node_cfg or {})
    kinds = node_kinds(d)
    has_kinds = isinstance(d.get(KIND_COLUMN), list)
    by_name = {r.check.name: r for r in node_res}
    for i, text in enumerate(texts):
        if text is None:
            continue
        for j, (p, failed) in enumerate(zip(paragraphs(text), decisions[i])):
            info["paragraphs"] += 1
            if p == END_OF_DOCUMENT:
                continue
            kind = kinds[i][j]
            for r in node_res:
                if not r.check.applies_to(kind):
                    continue
                v = _node_value(d, r.check, i, j)
                if v is not None and len(r.values) < max_values:
                    r.values.append(v)
            if failed is None:
                continue
            r = by_name.get(failed)
            if r is None:  # a reason that is not a check of the report (section_removed)
                r = info["node_other"].get(failed)
                if r is None:
                    r = info["node_other"][failed] = CheckResult(Check("node", failed, None, None, None))
            v = _node_value(d, r.check, i, j)
            r.removed += 1
            if len(r.examples) < k:
                why = r.check.fails(v) if r.check.column else None
                if why is None:
                    why = ("heading dropped with the section it opens" if failed == SECTION_REMOVED
                           else f"removed ({failed})")
                r.examples.append({"text": short(p, 700), "value": v, "why": why, "url": url,
                                   "kind": kind if has_kinds else None})
    failed_doc = False
    for r in doc_res:
        v, why = _doc_fails(r.check, d)
        if v is not None and len(r.values) < max_values:
            r.values.append(v)
        if failed_doc or not why:
            continue
        failed_doc = True
        r.removed += 1
        if len(r.examples) < k:
            full = full_text(surviving_texts(d, decisions))
            r.examples.append({"text": short(full, 500) or "(no paragraph survives the node checks)", "value": v, "why": why, "url": url,
                               "images": sum(1 for t in texts if t is None),
                               "language": document_language(d, lang_model)[0]})
