"""Text scores: per-paragraph (``node_*``) and per-document (``doc_*``) quality metrics stored as columns.

``text_score_stage`` removes nothing; :mod:`obelics_builder.quality.decide` applies thresholds afterwards.

Paragraphs
    With ``node.standardize_whitespace`` (default on) the stage first rewrites every text with
    :func:`metrics.standardize_whitespace` (as OBELICS's node filter did to the texts it kept), so the stored texts
    are exactly the ones that were scored; paragraphs are then always ``schema.paragraphs(text)``, which the
    decision stage re-derives to keep the ``node_*`` lists aligned.

Node columns (aligned with ``texts``: None at image positions, one float per paragraph at text positions)
    ``node_words``, ``node_char_repetition``, ``node_word_repetition``, ``node_special_characters``,
    ``node_stopwords``, ``node_flagged_words``, ``node_punctuation`` (with ``node.punctuation.min_words``),
    ``node_common_words``, and, only when the config applies the node check (else a config that applies it
    computes them on demand, :mod:`.lazy`), ``node_lang_score`` (highest probability among
    ``node.lang_id.languages``) and ``node_perplexity`` (with a KenLM model).

Structure columns (with ``node.structure.enabled``, the default recipe's filters; see :mod:`.structure`)
    ``node_kind`` (strings: prose, heading, list, table, code, caption) and ``node_repeated`` (how many identical
    paragraphs come before this one in the document; a sentence of 10 words or more is compared without its numbers,
    so templated copies count).  A check with ``kinds`` applies to those kinds only, one with ``and`` bounds fails
    only when the paragraph is outside them too (:func:`compile_checks`) (``repeated`` is a node check
    like the others, :data:`NODE_CHECKS`); with ``node.structure.headings_follow_section`` a heading is dropped with
    the section it opens (``node:section_removed``).  Documents scored without kinds are all prose.

Doc columns
    OBELICS runs its document filter *after* the paragraph filter, on the node-filtered text.  To keep that exact
    meaning without computing anything twice, the doc metrics are computed on the text that survives the
    configured node checks (``"\\n\\n"``-joined non-empty texts; with ``doc.text_kinds``, only the paragraphs of
    those kinds: code and tables are judged by their node rules, not by prose statistics), and
    ``doc_scored_text_sha1`` records which text that was.  The decision stage rebuilds the surviving text from
    the stored node scores; when its hash matches (the usual case: same node thresholds) it uses the stored doc
    metrics as they are, otherwise (node thresholds changed since scoring) it recomputes the doc metrics of the new
    text and says so in a note.
    Columns: ``doc_words``, ``doc_char_repetition``, ``doc_word_repetition``, ``doc_special_characters``,
    ``doc_stopwords``, ``doc_flagged_words``, ``doc_punctuation`` (with ``doc.punctuation.min_words``),
    ``doc_common_words``, ``doc_lang_score`` (highest probability among ``doc.lang_id.languages``),
    ``doc_perplexity`` (only with a model) and ``doc_scored_text_sha1``; with ``doc.prose``, ``doc_prose_words`` and
    ``doc_prose_<check>``: the ratio metrics of the document's prose, which the prose checks read (:mod:`.prose`).

``general_metadata["language"]`` / ``["language_score"]``: top-1 fastText label and probability of the scored text
(the doc checks' text: the paragraphs that pass the node checks, i.e. the text the document is published with,
before final cleaning), so boilerplate does not sway it and ``language`` agrees with ``doc_lang_score``.  It is the
prediction the doc lang-id check already made (no extra pass).  A document none of whose paragraphs passes (never
published) has none stored: :func:`document_language` predicts it on the whole text where it is read.
Like the doc metrics, it follows the node thresholds: the decision stage sets it again whenever it recomputes the
doc metrics of a changed surviving text, so ``filter`` with new thresholds equals a fresh run with them.

Changing a metric *parameter* (``n`` of a repetition ratio, ``min_words`` of the punctuation ratio, the language
list, a word list or a model) needs a re-scoring; changing a threshold or an ``enabled`` flag does not.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from ..schema import END_OF_DOCUMENT, PARAGRAPH_SEP, paragraphs
from . import metrics as M
from .langid import get_langid
from .lazy import MODEL_CHECKS, node_model_checks, node_model_values
from .perplexity import DISABLED_NOTE, from_config as perplexity_from_config
from .columns import CHECKS
from .prose import ProseConfig, store_prose_metrics
from .structure import KIND_COLUMN, StructureConfig, document_kinds, follow_sections
from .wordlists import config_wordlist

#: Node checks: a paragraph repeating an earlier one of its document (``node_repeated``: how many earlier copies,
#: computed with the node kinds, when ``node.structure.enabled``) first, then the reference's.
NODE_CHECKS: dict[str, str] = {"repeated": "repeated", **CHECKS}
REPEATED_COLUMN = "node_repeated"
NODE_COLUMNS = [f"node_{s}" for s in CHECKS.values()]
DOC_COLUMNS = [f"doc_{s}" for s in CHECKS.values()]
DOC_TEXT_HASH = "doc_scored_text_sha1"
_DIGITS = re.compile(r"\d+")
_TEMPLATE_MIN_WORDS = 10


# ---------------------------------------------------------------------------------------------------------------
# config and resources
# ---------------------------------------------------------------------------------------------------------------

def filters_config(ctx) -> dict:
    """The filter config of a stage context (``ctx.config`` is the loaded filters config; a whole recipe with
    ``filters_config`` is accepted too)."""
    cfg = ctx.config or {}
    if "node" not in cfg and "doc" not in cfg and isinstance(cfg.get("filters_config"), dict):
        cfg = cfg["filters_config"]
    if "node" not in cfg and "doc" not in cfg:
        from ..recipe import load_filters

        cfg = load_filters("obelics")
    return cfg


def _section(cfg: dict, level: str, check: str) -> dict:
    value = (cfg.get(level) or {}).get(check)
    return value if isinstance(value, dict) else {}


class Scorer:
    """Word lists and models for one filter config, set up once per worker (kept in ``ctx.resources``)."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.stopwords = config_wordlist(cfg, "stopwords")
        self.flagged = config_wordlist(cfg, "flagged_words")
        self.common = config_wordlist(cfg, "common_words")
        self.langid = get_langid((cfg.get("lang_id") or {}).get("model") or None)
        self.ppl = perplexity_from_config(cfg)
        self.standardize = bool((cfg.get("node") or {}).get("standardize_whitespace", True))
        self.params = {level: self._params(level) for level in ("node", "doc")}
        #: the node model checks the config applies (the others are computed on demand, see :mod:`.lazy`)
        self.node_models = node_model_checks(cfg, self.ppl is not None)

    def _params(self, level: str) -> dict:
        cfg = self.cfg
        langs = _section(cfg, level, "lang_id").get("languages") or ["en"]
        return {
            "char_n": int(_section(cfg, level, "char_repetition").get("n", 10)),
            "word_n": int(_section(cfg, level, "word_repetition").get("n", 5)),
            "punct_min_words": int(_section(cfg, level, "punctuation").get("min_words", 12 if level == "node" else 0)),
            "languages": [str(x) for x in (langs if isinstance(langs, list) else [langs])],
        }

    def metrics(self, texts: list[str], level: str, models: bool = True) -> list[dict[str, float]]:
        """All metrics (keyed by check name) of each text, at ``level`` ("node" or "doc") parameters
        (``models``: with the language-id score and perplexity)."""
        p = self.params[level]
        out = M.all_metrics_batch(texts, self.stopwords, self.flagged, self.common, p["char_n"], p["word_n"],
                                  p["punct_min_words"])
        if models:
            self._add_models(out, texts, level)
        return out

    def _add_models(self, out: list[dict], texts: list[str], level: str) -> None:
        """Language-id score (and top-1 language, kept under ``_lang``/``_lang_prob``) and perplexity; at node
        level only those of the checks the config applies (:attr:`node_models`)."""
        if level == "node":
            for check, values in node_model_values(self, texts, self.node_models).items():
                for m, v in zip(out, values):
                    m[check] = v
            return
        for m, (lang, prob, score) in zip(out, self.langid.predict_with_scores(texts, self.params[level]["languages"])):
            m["lang_id"] = score
            m["_lang"], m["_lang_prob"] = lang, prob
        if self.ppl is not None:
            for m, t in zip(out, texts):
                m["perplexity"] = self.ppl.perplexity(t)


def scoring_inputs(cfg: dict) -> dict:
    """Everything in a filter config that changes the stored scores (not the thresholds), for a scored part's
    fingerprint: metric parameters per level, whitespace standardisation, the word lists' contents (sha1, so a
    config elsewhere naming the same files by another path reuses the scores), lang-id and perplexity models."""
    def digest(path):
        try:
            with open(path, "rb") as f:
                return hashlib.sha1(f.read()).hexdigest()
        except OSError:
            return f"missing:{path}"

    params = {}
    for level in ("node", "doc"):
        langs = _section(cfg, level, "lang_id").get("languages") or ["en"]
        params[level] = {
            "char_n": int(_section(cfg, level, "char_repetition").get("n", 10)),
            "word_n": int(_section(cfg, level, "word_repetition").get("n", 5)),
            "punct_min_words": int(_section(cfg, level, "punctuation").get("min_words", 12 if level == "node" else 0)),
            "languages": [str(x) for x in (langs if isinstance(langs, list) else [langs])],
        }
    lists = cfg.get("wordlists") or {}
    structure = StructureConfig.from_config(cfg)
    out = {
        "params": params,
        "standardize_whitespace": bool((cfg.get("node") or {}).get("standardize_whitespace", True)),
        "wordlists": {k: digest(v) for k, v in sorted(lists.items()) if k in ("stopwords", "flagged_words",
                                                                              "common_words") and v},
        "lang_id": cfg.get("lang_id"),
        "perplexity": cfg.get("perplexity"),
    }
    if structure.enabled:  # absent when off, so outputs scored before node kinds existed keep their fingerprint
        out["structure"] = structure.scoring_inputs()
    return out


def get_scorer(ctx) -> Scorer:
    cfg = filters_config(ctx)
    key = ("quality.scorer", id(cfg))
    scorer = ctx.resources.get(key)
    if scorer is None:
        scorer = Scorer(cfg)
        ctx.resources[key] = scorer
    return scorer


# ---------------------------------------------------------------------------------------------------------------
# decisions shared with decide.py (node survivors, first failing check)
# ---------------------------------------------------------------------------------------------------------------

def first_failure(values: dict[str, Any], level_cfg: dict, skip: tuple[str, ...] = ()) -> str | None:
    """The first enabled check (reference order) whose value is outside ``min``/``max``, else None.

    ``values`` maps check name -> value; a check without a value (None or absent) is skipped.
    """
    for check in CHECKS:
        if check in skip:
            continue
        c = level_cfg.get(check)
        if not isinstance(c, dict) or not c.get("enabled", True):
            continue
        v = values.get(check)
        if v is None:
            continue
        lo, hi = c.get("min"), c.get("max")
        if lo is not None and v < lo:
            return check
        if hi is not None and v > hi:
            return check
    return None


def compile_checks(level_cfg: dict, skip: tuple[str, ...] = ()) -> list[tuple]:
    """The enabled node checks as (check, min, max, kinds, also), in order (:data:`NODE_CHECKS`, for
    :func:`node_decisions`); ``kinds`` is the set of node kinds the check applies to (None: every kind); ``also``
    the check's ``and`` bounds as (check, min, max): a paragraph fails the check only when it is outside every
    one of them too (``stopwords: {min: 0.02, and: {punctuation: {min: 0.001}}}``: neither stop words nor
    punctuation), each read from its own stored column."""
    out = []
    for check in NODE_CHECKS:
        c = level_cfg.get(check)
        if check in skip or not isinstance(c, dict) or not c.get("enabled", True):
            continue
        kinds = c.get("kinds")
        also = tuple((other, b.get("min"), b.get("max")) for other, b in (c.get("and") or {}).items())
        out.append((check, c.get("min"), c.get("max"), None if kinds is None else frozenset(kinds), also))
    return out


def _outside(v, lo, hi) -> bool:
    return v is not None and ((lo is not None and v < lo) or (hi is not None and v > hi))


def node_kinds(doc: dict, paras: list[list[str] | None] | None = None) -> list[list[str] | None]:
    """The stored ``node_kind`` column, or every paragraph ``prose`` when the document has none (scored without
    ``node.structure``); ``paras``: the paragraphs of ``doc["texts"]`` when the caller has them."""
    kinds = doc.get(KIND_COLUMN)
    if isinstance(kinds, list):
        return kinds
    if paras is None:
        paras = [None if t is None else paragraphs(t) for t in doc["texts"]]
    return [None if ps is None else ["prose"] * len(ps) for ps in paras]


def node_decisions(doc: dict, node_cfg: dict, paras: list[list[str] | None] | None = None,
                   checks: list | None = None, structure: StructureConfig | None = None) -> list[list[str | None] | None]:
    """The node decisions of one document, from its stored columns: the one rule both the scoring stage (to know
    which text the doc metrics describe) and the decision stage apply.  Per position None (image) or, per
    paragraph, the first failing check for its kind (None = kept; END_OF_DOCUMENT is always kept; a check without
    a value passes), then headings follow their section; read column by column.  ``paras`` (the paragraphs of
    ``doc["texts"]``), ``checks`` (:func:`compile_checks` of ``node_cfg``) and ``structure`` may be given by a
    caller that has them."""
    if paras is None:
        paras = [None if t is None else paragraphs(t) for t in doc["texts"]]
    checks = compile_checks(node_cfg) if checks is None else checks
    structure = StructureConfig.from_config({"node": node_cfg}) if structure is None else structure
    # an ``and`` bound whose column is absent (a model check without its model) rescues nothing: the check then
    # stands alone, as a missing column is never a pass
    cols = [(check, lo, hi, only, doc.get(f"node_{NODE_CHECKS[check]}"),
             [(a, olo, ohi) for o, olo, ohi in also if (a := doc.get(f"node_{NODE_CHECKS[o]}")) is not None])
            for check, lo, hi, only, also in checks]
    cols = [c for c in cols if c[4] is not None]
    kinds = node_kinds(doc, paras)
    out: list[list[str | None] | None] = []
    for i, (ps, ks) in enumerate(zip(paras, kinds)):
        if ps is None:
            out.append(None)
            continue
        fails: list[str | None] = []
        for j, (p, k) in enumerate(zip(ps, ks)):
            failed = None
            if p != END_OF_DOCUMENT:
                for check, lo, hi, only, col, also in cols:
                    if only is not None and k not in only:
                        continue
                    if _outside(col[i][j], lo, hi) and all(_outside(a[i][j], alo, ahi) for a, alo, ahi in also):
                        failed = check
                        break
            fails.append(failed)
        out.append(fails)
    if structure.enabled and structure.headings_follow_section:
        follow_sections(kinds, out)
    return out


def surviving_texts(doc: dict, decisions: list) -> list[str | None]:
    """``texts`` after dropping failed paragraphs ("" where every paragraph failed, None at images)."""
    out: list[str | None] = []
    for text, fails in zip(doc["texts"], decisions):
        if text is None:
            out.append(None)
            continue
        paras = paragraphs(text)
        out.append(PARAGRAPH_SEP.join(p for p, f in zip(paras, fails) if f is None))
    return out


def full_text(texts: list[str | None]) -> str:
    """The document text: non-empty texts joined by a blank line."""
    return PARAGRAPH_SEP.join(t for t in texts if t)


def doc_text_kinds(cfg: dict) -> frozenset | None:
    """``doc.text_kinds``: the node kinds whose paragraphs make the text the doc checks read (None: every kind)."""
    kinds = (cfg.get("doc") or {}).get("text_kinds")
    return None if kinds is None else frozenset(kinds)


def doc_text_key(check_text: str, kept_text: str, text_kinds: frozenset | None, prose: str | None = None) -> str:
    """What ``doc_scored_text_sha1`` hashes: the doc checks' text and, with ``text_kinds``, the whole kept text too
    (``number_words`` counts every kept paragraph, code and tables included: a page of tables is not short), and,
    with ``doc.prose``, the prose its prose checks read (:mod:`.prose`)."""
    key = check_text if text_kinds is None else check_text + "\x00" + kept_text
    return key if prose is None else key + "\x00\x00" + prose


def doc_check_text(doc: dict, text_kinds: frozenset | None) -> str:
    """The text the doc checks read: the document's text, or only its paragraphs of ``text_kinds`` (code and
    tables are judged by their own node rules, not by prose statistics), joined by a blank line."""
    if text_kinds is None:
        return full_text(doc["texts"])
    return PARAGRAPH_SEP.join(p for t, ks in zip(doc["texts"], node_kinds(doc)) if t
                              for p, k in zip(paragraphs(t), ks) if k in text_kinds)


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def store_doc_metrics(doc: dict, text: str, values: dict[str, float]) -> None:
    for check, suffix in CHECKS.items():
        if check in values:
            doc[f"doc_{suffix}"] = float(values[check])
        else:
            doc.pop(f"doc_{suffix}", None)
    doc[DOC_TEXT_HASH] = text_hash(text)


def store_languages(docs: list[dict], scored: list[str], values: list[dict]) -> None:
    """``general_metadata`` language and score of each document (see the module docstring): the top-1 prediction
    already made on its scored text (``values[i]["_lang"]``).  A document whose scored text is empty (no paragraph
    passes the node checks: it is never published) gets none; :func:`document_language` computes it where it is
    read (the report's examples), so no second prediction runs on every such page."""
    for doc, text, v in zip(docs, scored, values):
        gm = doc.setdefault("general_metadata", {})
        if text.strip():
            gm["language"] = v["_lang"]
            gm["language_score"] = round(float(v["_lang_prob"]), 4)
        else:
            gm.pop("language", None)
            gm.pop("language_score", None)


def document_language(doc: dict, model_path: str | None = None) -> tuple[str | None, float | None]:
    """(language, score) of a document: the stored ones, or, for a document scored without (its scored text is
    empty), the top-1 prediction on its whole text (``doc`` as scored: its texts before the node checks)."""
    gm = doc.get("general_metadata") or {}
    if gm.get("language"):
        return gm["language"], gm.get("language_score")
    lang, prob = get_langid(model_path).predict([full_text(doc.get("texts") or [])])[0]
    return lang, round(float(prob), 4)


def paragraph_counts(doc: dict) -> list[int | None]:
    """Per position: None (image) or the number of paragraphs of the text."""
    return [None if t is None else len(paragraphs(t)) for t in doc["texts"]]


def column_aligned(doc: dict, col: str, counts: list[int | None] | None = None) -> bool:
    """True if ``doc[col]`` has None at images and one value per paragraph at each text position."""
    counts = paragraph_counts(doc) if counts is None else counts
    values = doc.get(col)
    if not isinstance(values, list) or len(values) != len(counts):
        return False
    for n, v in zip(counts, values):
        if n is None:
            if v is not None:
                return False
        elif not isinstance(v, list) or len(v) != n:
            return False
    return True


def aligned(doc: dict, counts: list[int | None] | None = None) -> bool:
    """True if the document has our node columns and each of them matches the paragraphs of its texts
    (``counts``: :func:`paragraph_counts` of the document, when the caller has them)."""
    counts = paragraph_counts(doc) if counts is None else counts
    present = [c for c in NODE_COLUMNS if doc.get(c) is not None]
    return bool(present) and all(column_aligned(doc, c, counts) for c in present)


# ---------------------------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------------------------

class _Paragraphs:
    """Word and character counts of a batch of paragraphs, kept to build the doc metrics without rescanning.

    The doc text is the surviving paragraphs joined by ``"\\n\\n"``, so its words are the concatenation of their
    words (the separator is a word break), and its length, special characters (each separator adds two special
    ``"\\n"``), punctuation and ``[\\w']+`` tokens are sums (no token spans a separator): only the repetition
    ratios (whose n-grams cross paragraph boundaries), language id and perplexity look at the doc text again.
    """

    def __init__(self, scorer: Scorer, paras: list[str]) -> None:
        self.words = [M.get_words(t) for t in paras]
        cc = M.char_class_counts(paras)
        self.length, self.special = cc["length"], cc["special"]
        self.punct, self.word_tokens = cc["punct"], cc["word_tokens"]
        self.stop = [sum(map(scorer.stopwords.__contains__, w)) for w in self.words]
        self.flag = [sum(map(scorer.flagged.__contains__, w)) for w in self.words]
        self.common = [sum(map(scorer.common.__contains__, w)) for w in self.words]

    def columns(self, scorer: Scorer, paras: list[str]) -> dict[str, list[float]]:
        """The node metrics of ``paras`` (the paragraphs this object counted) as one list per check (check name ->
        one float per paragraph; the model checks only those the config applies): the values :meth:`_values` gives,
        built column by column instead of a dict per paragraph."""
        p = scorer.params["node"]
        n_words = [len(w) for w in self.words]
        word_n, pmw = p["word_n"], p["punct_min_words"]
        wrep = M.word_repetition_ratio_fast
        ratios = [M.ratios_from_counts(*c, pmw) for c in zip(self.length, self.special, self.punct, self.word_tokens)]
        out = {
            "number_words": [float(nw) for nw in n_words],
            "char_repetition": [float(v) for v in M.char_repetition_ratios(paras, p["char_n"])],
            # (a paragraph with fewer than ``word_n`` words has no n-gram: 0.0, as the function returns)
            "word_repetition": [float(wrep(w, word_n)) if nw >= word_n > 0 else 0.0
                                for w, nw in zip(self.words, n_words)],
            "special_characters": [float(sp) for sp, _ in ratios],
            "stopwords": [c / nw if nw else 0.0 for c, nw in zip(self.stop, n_words)],
            "flagged_words": [c / nw if nw else 0.0 for c, nw in zip(self.flag, n_words)],
            "punctuation": [float(pu) for _, pu in ratios],
            "common_words": [c / nw if nw else 0.0 for c, nw in zip(self.common, n_words)],
        }
        for check, values in node_model_values(scorer, paras, scorer.node_models).items():
            out[check] = [float(v) for v in values]
        return out

    #: the keys of :meth:`_values` (the doc metrics without the models)
    KEYS = ("number_words", "char_repetition", "word_repetition", "special_characters", "stopwords",
            "flagged_words", "punctuation", "common_words")

    @staticmethod
    def _values(nw, stop, flag, common, length, special, punct, word_tokens, punct_min_words, crep, wrep) -> dict:
        sp, pu = M.ratios_from_counts(length, special, punct, word_tokens, punct_min_words)
        return {
            "number_words": float(nw),
            "char_repetition": crep,
            "word_repetition": wrep,
            "special_characters": sp,
            "stopwords": stop / nw if nw else 0.0,
            "flagged_words": flag / nw if nw else 0.0,
            "punctuation": pu,
            "common_words": common / nw if nw else 0.0,
        }

    def doc_metrics(self, scorer: Scorer, kept: list[list[int]], texts: list[str],
                    models: bool = True) -> list[dict[str, float]]:
        """Doc metrics of each ``texts[d]`` = the paragraphs ``kept[d]`` joined by a blank line (``models``: with
        the language-id score and perplexity)."""
        p = scorer.params["doc"]
        crep = M.char_repetition_ratios(texts, p["char_n"])
        out = []
        for d, idx in enumerate(kept):
            seps = 2 * (len(idx) - 1) if idx else 0
            words = [w for i in idx for w in self.words[i]]
            out.append(self._values(
                len(words), sum(self.stop[i] for i in idx), sum(self.flag[i] for i in idx),
                sum(self.common[i] for i in idx), sum(self.length[i] for i in idx) + seps,
                sum(self.special[i] for i in idx) + seps, sum(self.punct[i] for i in idx),
                sum(self.word_tokens[i] for i in idx), p["punct_min_words"], crep[d],
                M.word_repetition_ratio_fast(words, p["word_n"])))
        if models:
            scorer._add_models(out, texts, "doc")
        return out


def repeat_key(p: str) -> str:
    """What :func:`_repeats` compares: the stripped paragraph; a sentence of ``_TEMPLATE_MIN_WORDS`` words or more
    without its numbers (a templated copy: the same text with other numbers).  The words are counted only up to
    that many (``split`` with a limit: the count is the same whenever it matters)."""
    key = p.strip()
    if len(key.split(None, _TEMPLATE_MIN_WORDS - 1)) >= _TEMPLATE_MIN_WORDS:
        key = _DIGITS.sub("0", key)
    return key


def _repeats(all_paras: list[str], spans: list[tuple[int, int] | None],
             keys: list[str] | None = None) -> list[list[float] | None]:
    """``node_repeated`` of one document: per paragraph, how many identical paragraphs (after stripping) come
    before it in the document (extractors repeat a page's responsive copies, and pages repeat their own blocks);
    ``keys``: :func:`repeat_key` of each of ``all_paras`` when the caller has them."""
    seen: dict[str, int] = {}
    out: list[list[float] | None] = []
    for sp in spans:
        if sp is None:
            out.append(None)
            continue
        counts = []
        for k in range(sp[0], sp[0] + sp[1]):
            key = repeat_key(all_paras[k]) if keys is None else keys[k]
            n = seen.get(key, 0)
            counts.append(float(n) if all_paras[k] != END_OF_DOCUMENT else 0.0)
            seen[key] = n + 1
        out.append(counts)
    return out


def text_score_stage(docs: list[dict], ctx) -> list[dict]:
    """Add ``node_*``/``doc_*`` score columns and the document language; removes nothing."""
    scorer = get_scorer(ctx)
    cfg = scorer.cfg
    if scorer.ppl is None:
        ctx.note(DISABLED_NOTE)
    node_cfg = cfg.get("node") or {}

    # 1. paragraphs of every text position (after whitespace standardisation, written back)
    all_paras: list[str] = []
    layout: list[list[tuple[int, int] | None]] = []  # per doc, per position: (start, count) or None
    for doc in docs:
        texts = doc["texts"]
        if scorer.standardize:
            texts = doc["texts"] = [None if t is None else M.standardize_whitespace(t) for t in texts]
        spans = []
        for t in texts:
            if t is None:
                spans.append(None)
                continue
            paras = paragraphs(t)
            spans.append((len(all_paras), len(paras)))
            all_paras.extend(paras)
        layout.append(spans)

    # 2. node metrics, batched over the whole batch; a paragraph repeated within the batch (menus, share buttons,
    #    footers of one site) is scored once, as every node metric is a function of the paragraph alone
    slot: dict[str, int] = {}
    ref = [slot.setdefault(p, len(slot)) for p in all_paras]
    unique = list(slot)
    counts = _Paragraphs(scorer, unique)
    unique_values = counts.columns(scorer, unique)
    node_keys = [c for c in CHECKS if c not in MODEL_CHECKS or c in scorer.node_models]
    for check in node_keys:
        name = f"node_{CHECKS[check]}"
        flat = unique_values[check]
        flat = [flat[r] for r in ref]
        for doc, spans in zip(docs, layout):
            doc[name] = [None if span is None else flat[span[0]:span[0] + span[1]] for span in spans]
    for check, col in MODEL_CHECKS.items():
        if check not in scorer.node_models:  # computed on demand by a config that applies the check (.lazy)
            for doc in docs:
                doc.pop(col, None)
    structure = StructureConfig.from_config(cfg)
    if structure.enabled:  # the repeat key of each unique paragraph, once
        unique_keys = [repeat_key(p) for p in unique]
        repeat_keys = [unique_keys[r] for r in ref]
    for doc, spans in zip(docs, layout):
        if structure.enabled:
            doc[KIND_COLUMN] = document_kinds(
                doc["texts"], [None if sp is None else all_paras[sp[0]:sp[0] + sp[1]] for sp in spans],
                doc["node_words"], structure)
            doc[REPEATED_COLUMN] = _repeats(all_paras, spans, repeat_keys)
        else:
            doc.pop(KIND_COLUMN, None)
            doc.pop(REPEATED_COLUMN, None)

    # 3. node decisions (node_decisions on the columns just stored: what decide.py applies), then doc metrics on
    #    the node-filtered text (see module docstring), reusing the paragraph counts; the language of that text
    #    (and, with doc.prose, the metrics of its prose: .prose)
    kept: list[list[tuple[int, bool, bool]]] = []  # per doc: (paragraph, read by the doc checks, prose)
    checks = compile_checks(node_cfg)
    text_kinds = doc_text_kinds(cfg)
    prose = ProseConfig.from_config(cfg)
    prose_kinds = frozenset(prose.kinds) if prose is not None else frozenset()
    for doc, spans in zip(docs, layout):
        paras = [None if sp is None else all_paras[sp[0]:sp[0] + sp[1]] for sp in spans]
        kinds = node_kinds(doc, paras)
        fails = node_decisions(doc, node_cfg, paras, checks, structure)
        kept.append([(sp[0] + j, text_kinds is None or k in text_kinds, k in prose_kinds)
                     for sp, fs, ks in zip(spans, fails, kinds) if sp is not None
                     for j, (f, k) in enumerate(zip(fs, ks)) if f is None])
    doc_texts = [PARAGRAPH_SEP.join(all_paras[k] for k, read, _ in idx if read) for idx in kept]
    read_refs = [[ref[k] for k, read, _ in idx if read] for idx in kept]
    doc_values = counts.doc_metrics(scorer, read_refs, doc_texts)
    prose_texts: list[str | None] = [None] * len(docs)
    prose_values: list[dict | None] = [None] * len(docs)
    if prose is not None:
        prose_texts = [PARAGRAPH_SEP.join(all_paras[k] for k, _, p in idx if p) for idx in kept]
        prose_refs = [[ref[k] for k, _, p in idx if p] for idx in kept]
        # a document whose prose is the text its doc checks read (the same paragraphs: the same text) has the
        # same metrics: copied, not computed twice
        own = [d for d in range(len(docs)) if prose_refs[d] != read_refs[d]]
        computed = iter(counts.doc_metrics(scorer, [prose_refs[d] for d in own], [prose_texts[d] for d in own],
                                           models=False))
        own_set = set(own)
        prose_values = [next(computed) if d in own_set else {k: doc_values[d][k] for k in _Paragraphs.KEYS}
                        for d in range(len(docs))]
    for doc, text, values, idx, ptext, pvalues in zip(docs, doc_texts, doc_values, kept, prose_texts, prose_values):
        kept_text = text
        if text_kinds is not None:  # the document's length counts every kept paragraph (see doc_text_key)
            values["number_words"] = float(sum(len(counts.words[ref[k]]) for k, _, _ in idx))
            kept_text = PARAGRAPH_SEP.join(all_paras[k] for k, _, _ in idx)
        store_doc_metrics(doc, doc_text_key(text, kept_text, text_kinds, ptext), values)
        store_prose_metrics(doc, pvalues)
    store_languages(docs, doc_texts, doc_values)
    return docs
