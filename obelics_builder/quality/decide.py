"""Text decisions: apply the filter config's ``node`` then ``doc`` thresholds to the stored score columns.

Node level (reference §4.2): each paragraph of each text position (``schema.paragraphs``, exactly as the scoring
stage split it) is dropped at the first failing enabled check, in the reference order; END_OF_DOCUMENT paragraphs
are never dropped.  Removals are counted as ``node:<check>`` (unit nodes).  Kept paragraphs are re-joined with
``"\\n\\n"``; a text position left without paragraphs is removed; every ``node_*`` list loses the values of the
removed paragraphs and positions, so it stays aligned with ``texts``.

Doc level (reference §4.3, without ``number_images``, which needs the fetched images and is applied by
:mod:`obelics_builder.quality.final`): a document is dropped at the first failing enabled check, counted as
``doc:<check>``.  The doc metrics must describe the node-filtered text: the stored ``doc_*`` values are used when
``doc_scored_text_sha1`` matches the surviving text (no recomputation — the usual case, same node thresholds as at
scoring time); otherwise the doc metrics of the surviving text are recomputed and stored (word lists, lang-id
model and, when configured, the KenLM model are loaded for that), together with the document's language
(``general_metadata``, which describes the scored text), and a note says that it happened.

Disabled checks are listed in a note.  The node lang-id and perplexity scores are stored only when the scoring
config applied those checks: a config that enables one computes the missing column here first (:mod:`.lazy`, with
a note).  An enabled check whose score column is still absent (perplexity without a model) is skipped with a note,
never silently.  A document whose node columns do not match its texts is rejected with
the error ``node_scores_misaligned`` (``not_scored`` when it has no node columns at all).
"""
from __future__ import annotations

from ..schema import PARAGRAPH_SEP, doc_url, keep_positions, paragraphs
from .lazy import fill_node_scores, node_model_checks
from .metrics import get_words
from .perplexity import DISABLED_NOTE
from .score import (CHECKS, DOC_COLUMNS, DOC_TEXT_HASH, NODE_CHECKS, NODE_COLUMNS, aligned, column_aligned,
                    compile_checks, doc_check_text, doc_text_key, doc_text_kinds, filters_config, first_failure,
                    full_text, get_scorer, node_decisions, node_kinds, store_doc_metrics, store_languages,
                    text_hash)
from .prose import WORDS_COLUMN, ProseConfig, doc_check_values, prose_text, store_prose_metrics
from .structure import StructureConfig

_DOC_CHECKS_HERE = tuple(CHECKS)  # number_images is not a doc metric here (final.py applies it)


def _notes(ctx, cfg: dict, docs: list[dict]) -> None:
    for level, checks in (("node", NODE_CHECKS), ("doc", CHECKS)):
        section = cfg.get(level) or {}
        disabled = [c for c in checks if section.get(c) is False
                    or (isinstance(section.get(c), dict) and not section[c].get("enabled", True))]
        if disabled:
            ctx.note(f"{level} checks disabled by the filter config: {', '.join(disabled)}")
        for check, suffix in checks.items():
            c = section.get(check)
            if not isinstance(c, dict) or not c.get("enabled", True):
                continue
            col = f"{level}_{suffix}"
            if docs and all(col not in d for d in docs):
                if check == "perplexity":
                    ctx.note(f"{level} perplexity check skipped: no perplexity scores. {DISABLED_NOTE}")
                else:
                    ctx.note(f"{level} {check} check skipped: no {col} scores in the input")
    images = (cfg.get("doc") or {}).get("number_images", {})
    if isinstance(images, dict) and images.get("enabled", True):  # (``number_images: false`` turns it off)
        ctx.note("doc number_images check is applied by the final stage, after images are fetched", level=20)


def _apply_nodes(doc: dict, decisions: list, ctx, paras: list, counts: list) -> None:
    """Drop failed paragraphs (and their node values), then emptied text positions (``paras``, ``counts``: the
    paragraphs of the texts and their numbers)."""
    texts = doc["texts"]
    node_cols = []
    for c in [c for c in doc if c.startswith("node_")]:
        if column_aligned(doc, c, counts):
            node_cols.append(c)
        else:  # another stage's node column that does not follow the paragraphs: cannot be kept aligned
            doc.pop(c)
    keep_pos: list[bool] = []
    for i, (text, fails) in enumerate(zip(texts, decisions)):
        if text is None:
            keep_pos.append(True)
            continue
        ps = paras[i]
        for f in fails:
            if f is not None:
                ctx.remove(f"node:{f}", unit="nodes")
        kept = [j for j, f in enumerate(fails) if f is None]
        if len(kept) != len(ps) or PARAGRAPH_SEP.join(ps) != text:
            texts[i] = PARAGRAPH_SEP.join(ps[j] for j in kept)
            for col in node_cols:
                values = doc[col][i]
                if values is not None:
                    doc[col][i] = [values[j] for j in kept]
        keep_pos.append(bool(kept))
    if not all(keep_pos):
        keep_positions(doc, keep_pos)


def text_filter_stage(docs: list[dict], ctx) -> list[dict]:
    """Apply node then doc thresholds from stored scores; counts ``node:<check>`` and ``doc:<check>``."""
    cfg = filters_config(ctx)
    node_cfg = cfg.get("node") or {}
    doc_cfg = cfg.get("doc") or {}
    if node_model_checks(cfg, True):  # node lang-id/perplexity scores the scoring config did not need: now
        filled = fill_node_scores(docs, get_scorer(ctx))
        if filled:
            ctx.note(f"node scores computed on demand (their check was off when the documents were scored): "
                     f"{', '.join(filled)}", level=20)
    _notes(ctx, cfg, docs)
    text_kinds = doc_text_kinds(cfg)
    prose = ProseConfig.from_config(cfg)
    checks, structure = compile_checks(node_cfg), StructureConfig.from_config({"node": node_cfg})
    out: list[dict] = []
    recomputed: list[tuple[dict, str, str, str | None]] = []  # (doc, doc checks' text, hashed key, prose)
    for doc in docs:
        if not any(c in doc for c in NODE_COLUMNS):
            ctx.error("not_scored", url=doc_url(doc), message="document has no node_* score columns")
            continue
        paras = [None if t is None else paragraphs(t) for t in doc["texts"]]  # split once per document
        counts = [None if ps is None else len(ps) for ps in paras]
        if not aligned(doc, counts):
            ctx.error("node_scores_misaligned", url=doc_url(doc),
                      message="node_* score lists do not match the paragraphs of texts")
            continue
        _apply_nodes(doc, node_decisions(doc, node_cfg, paras, checks, structure), ctx, paras, counts)
        kept_text = full_text(doc["texts"])
        text = kept_text if text_kinds is None else doc_check_text(doc, text_kinds)
        ptext = None if prose is None else prose_text(doc, node_kinds(doc), prose)
        key = doc_text_key(text, kept_text, text_kinds, ptext)
        if doc.get(DOC_TEXT_HASH) != text_hash(key) or not any(c in doc for c in DOC_COLUMNS) \
                or (prose is not None and WORDS_COLUMN not in doc):
            recomputed.append((doc, text, key, ptext))
        out.append(doc)

    if recomputed:
        scorer = get_scorer(ctx)
        texts = [t for _, t, _, _ in recomputed]
        values = scorer.metrics(texts, "doc")
        pvalues = [None] * len(recomputed)
        if prose is not None:
            pvalues = scorer.metrics([p for _, _, _, p in recomputed], "doc", models=False)
        for (doc, text, key, _), v, pv in zip(recomputed, values, pvalues):
            if text_kinds is not None:  # the document's length counts every kept paragraph
                v["number_words"] = float(len(get_words(full_text(doc["texts"]))))
            store_doc_metrics(doc, key, v)
            store_prose_metrics(doc, pv)
        # the language follows the scored text, by the scoring stage's rule
        store_languages([d for d, _, _, _ in recomputed], texts, values)
        ctx.note("doc metrics recomputed on the node-filtered text for documents whose surviving text differs "
                 "from the one scored (node thresholds changed since scoring)", level=20)

    kept: list[dict] = []
    for doc in out:
        failed = first_failure(doc_check_values(doc, CHECKS, prose), doc_cfg)
        if failed is not None:
            ctx.remove(f"doc:{failed}")
            continue
        kept.append(doc)
    return kept
