"""Node scores of the model checks (``lang_id``, ``perplexity``), computed only for a config that enables them.

Language identification and perplexity are the expensive node metrics (fastText on every unique paragraph costs
about as much as every other text metric together), and the packaged filter configs disable both node checks.
The scoring stage therefore computes ``node_lang_score`` / ``node_perplexity`` only when the filter config it
scores with enables the node check (:func:`node_model_checks`).  A config applied later that enables one of them
(``obelics-build filter OUT --config FILE``, the report of such a run) gets the missing column computed then, on
the stored texts, by :func:`fill_node_scores`: the same function of the paragraph the scoring stage would have
applied (a paragraph's score does not depend on its batch), so a reapplied config equals a fresh crawl with it.
A missing column is never treated as a pass: perplexity without a model stays absent and the decisions say so.
"""
from __future__ import annotations

from typing import Any

from ..schema import paragraphs

#: Node checks whose scores are computed on demand -> their column.
MODEL_CHECKS: dict[str, str] = {"lang_id": "node_lang_score", "perplexity": "node_perplexity"}


def check_enabled(level_cfg: dict, check: str) -> bool:
    """Whether a check of a ``node``/``doc`` section is applied (a mapping without ``enabled: false``)."""
    c = (level_cfg or {}).get(check)
    return isinstance(c, dict) and bool(c.get("enabled", True))


def node_model_checks(cfg: dict, has_perplexity_model: bool) -> tuple[str, ...]:
    """The model checks whose node scores a filter config needs (perplexity only with a model)."""
    node = cfg.get("node") or {}
    # a model check named in another enabled check's ``and`` bounds is needed too
    bounds = {o for c, v in node.items() if check_enabled(node, c) and isinstance(v.get("and"), dict) for o in v["and"]}
    return tuple(c for c in MODEL_CHECKS if (check_enabled(node, c) or c in bounds)
                 and (c != "perplexity" or has_perplexity_model))


def node_model_values(scorer: Any, paras: list[str], checks: tuple[str, ...]) -> dict[str, list[float]]:
    """The ``checks`` scores of each paragraph (check name -> one float per paragraph), as the scoring stage
    stores them: the highest probability among ``node.lang_id.languages``; the KenLM perplexity."""
    out: dict[str, list[float]] = {}
    if "lang_id" in checks:
        langs = scorer.params["node"]["languages"]
        out["lang_id"] = [float(s) for _, _, s in scorer.langid.predict_with_scores(paras, langs)]
    if "perplexity" in checks and scorer.ppl is not None:
        out["perplexity"] = [float(scorer.ppl.perplexity(p)) for p in paras]
    return out


def fill_node_scores(docs: list[dict], scorer: Any) -> list[str]:
    """Add the node model scores that ``scorer``'s config enables and ``docs`` lack (scored under a config that
    did not need them); each unique paragraph is scored once.  Only documents with node score columns are filled
    (the others are rejected as unscored).  Returns the columns computed (empty when nothing was missing)."""
    checks = node_model_checks(scorer.cfg, scorer.ppl is not None)
    computed: list[str] = []
    for check in checks:
        col = MODEL_CHECKS[check]
        todo = [d for d in docs if d.get(col) is None and any(k.startswith("node_") for k in d)]
        if not todo:
            continue
        slot: dict[str, int] = {}
        layout = []
        for d in todo:
            layout.append([None if t is None else [slot.setdefault(p, len(slot)) for p in paragraphs(t)]
                           for t in d["texts"]])
        values = node_model_values(scorer, list(slot), (check,)).get(check)
        if values is None:
            continue
        for d, spans in zip(todo, layout):
            d[col] = [None if refs is None else [values[r] for r in refs] for refs in spans]
        computed.append(col)
    return computed
