"""Image-text alignment: for every kept image, the similarity of the image to the text around it, by a CLIP or
SigLIP model; written as a stage of one's own (the worked example of adding one: README, "The plan, and stages of
your own").

In the recipe (``pipelines/obelics.yaml`` lists it after ``final``, where the images are fetched)::

    stages:
      - ...
      - final
      - {use: "obelics_builder.align:image_text", after: final}
      - ...
    image_text:                 # ctx.config: how to score (AlignConfig); crawl --image-text-model sets model
      model: null               # a CLIP/SigLIP folder or Hub id; null: the stage is disabled (and says so)

and in the filter config, its decisions (``ctx.filters``: AlignFilter; reapplied by ``obelics-build filter``
without scoring again)::

    image_text:
      min_similarity: 0.05      # drop images scoring below (null: keep all)
      score: best               # which score: best (the highest of the contexts), alt, caption, before, after
      drop_unscored: false      # also drop images without that score (no such context, no bytes)

The contexts of an image (each scored when present, empty ones skipped): ``alt`` (its alt text), ``caption`` (the
paragraph next to it whose ``node_kind`` is ``caption``, the one after it first), ``before`` / ``after`` (the
nearest paragraph before / after it: the last paragraph of the nearest text before, the first of the nearest text
after).  Columns (``image_*``: aligned with ``texts``, None at text positions): ``image_align_alt``,
``image_align_caption``, ``image_align_before``, ``image_align_after``, ``image_align`` (the best of them);
``doc_align_mean`` / ``doc_align_min`` (over the document's scored images, after the decision); and in each
image's metadata ``image_text_similarity: {kind: score}`` so the published dataset carries them.

Scores are kept in the stage's cache (``ctx.cache``) by (model revision, image sha256, text): a rerun of the step,
whatever caused it (a new threshold here, a text threshold upstream), scores only what it never scored, and loads
the model only then.  Image bytes come from the image table (``ctx.images``).  Removals are counted per image
(``image_text:below_min_similarity``, ``image_text:unscored``); documents are never removed here (the cleanup
after paragraph dedup applies the image-count bounds again).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import did_you_mean
from ..io.markers import fingerprint
from ..schema import paragraphs

#: the contexts scored, in column order
CONTEXTS = ("alt", "caption", "before", "after")
#: what ``image_text.score`` (filters) may name
SCORES = ("best", *CONTEXTS)
COLUMNS = {k: f"image_align_{k}" for k in CONTEXTS}
BEST = "image_align"
DISABLED = ("image-text alignment disabled: no model configured (crawl --image-text-model HUB_ID_OR_DIR, or the "
            "recipe's image_text.model)")
#: what the cache holds for a pair whose image has no bytes or does not decode
UNSCORED = "unscored"
#: the largest image, in pixels, decoded for scoring (as the image filters' default max_pixels)
MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class AlignConfig:
    """How to score (the recipe's ``image_text:`` section; these are the defaults)."""

    #: a CLIP or SigLIP model: a local folder or a Hub id (None: the stage is disabled)
    model: str | None = None
    #: images (and texts) per forward pass
    batch_size: int = 32
    #: auto (a GPU when there is one), cpu or cuda
    device: str = "auto"
    #: torch threads on CPU (one per worker process by default; null: torch's own default)
    threads: int | None = 1
    #: text tokens scored at most (null: the model's maximum)
    max_text_tokens: int | None = None

    @classmethod
    def from_mapping(cls, section: dict | None) -> "AlignConfig":
        section = section or {}
        return cls(**{f.name: section[f.name] for f in fields(cls) if f.name in section})


@dataclass(frozen=True)
class AlignFilter:
    """The decisions (the filter config's ``image_text:`` section; these are the defaults)."""

    #: images scoring below this are dropped (None: none is)
    min_similarity: float | None = None
    #: which score the threshold reads: best (the highest of the contexts) or one context
    score: str = "best"
    #: drop images without the score the threshold reads (no such context around them, or no bytes)
    drop_unscored: bool = False

    @classmethod
    def from_mapping(cls, section: dict | None) -> "AlignFilter":
        section = section or {}
        return cls(**{f.name: section[f.name] for f in fields(cls) if f.name in section})


def _positive_or_null(v) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0)


def config_problems(section: dict) -> list[str]:
    """Problems of the recipe's ``image_text:`` section (its keys and values; the model itself: model.py)."""
    found = []
    known = [f.name for f in fields(AlignConfig)]
    for k in sorted(set(section) - set(known)):
        found.append(f"unknown key {k!r}{did_you_mean(k, known)} (known: {', '.join(known)})")
    if section.get("model") is not None and not (isinstance(section["model"], str) and section["model"].strip()):
        found.append(f"model: expected a folder or a Hub id (or null), got {section['model']!r}")
    if "batch_size" in section and not (_positive_or_null(section["batch_size"]) and section["batch_size"]):
        found.append(f"batch_size: expected an integer > 0, got {section['batch_size']!r}")
    for k in ("threads", "max_text_tokens"):
        if k in section and not _positive_or_null(section[k]):
            found.append(f"{k}: expected an integer > 0 or null, got {section[k]!r}")
    if "device" in section and section["device"] not in ("auto", "cpu", "cuda"):
        found.append(f"device: expected auto, cpu or cuda, got {section['device']!r}")
    return found


def check(config: dict, filters: dict) -> list[str]:
    """Before any work (the plan calls it): the section's problems, then why the model cannot be used."""
    found = config_problems(config)
    if found:
        return found
    cfg = AlignConfig.from_mapping(config)
    if cfg.model is None:
        return []
    from .model import model_problem

    problem = model_problem(cfg.model)
    if problem is None and cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            problem = "device: cuda, but torch sees no GPU here (use device: auto or cpu)"
    return [problem] if problem else []


def cutoffs(filters: dict) -> dict[str, tuple[float | None, float | None]]:
    """The report's cutoff lines: the column the threshold reads and its minimum."""
    dec = AlignFilter.from_mapping(filters)
    return {BEST if dec.score == "best" else COLUMNS[dec.score]: (dec.min_similarity, None)}


# ---------------------------------------------------------------------------------------------------------------
# contexts
# ---------------------------------------------------------------------------------------------------------------

def _paragraphs_of(doc: dict, j: int) -> tuple[list[str], list | None]:
    paras = paragraphs(doc["texts"][j])
    kinds = (doc.get("node_kind") or [None] * len(doc["texts"]))[j]
    return paras, (kinds if isinstance(kinds, list) and len(kinds) == len(paras) else None)


def image_contexts(doc: dict, i: int) -> dict[str, str]:
    """The texts of the image at position ``i``: ``{context: text}`` for the contexts it has (non-empty)."""
    texts = doc["texts"]
    out: dict[str, str] = {}
    alt = ((doc["metadata"][i] or {}).get("alt_text") or "").strip()
    if alt:
        out["alt"] = alt
    before = next((j for j in range(i - 1, -1, -1) if texts[j] is not None), None)
    after = next((j for j in range(i + 1, len(texts)) if texts[j] is not None), None)
    caption = None
    for j, pick in ((after, 0), (before, -1)):
        if j is None:
            continue
        paras, kinds = _paragraphs_of(doc, j)
        if not paras:
            continue
        text = paras[pick].strip()
        if text:
            out["after" if pick == 0 else "before"] = text
            if caption is None and kinds is not None and kinds[pick] == "caption":
                caption = text
    if caption:
        out["caption"] = caption
    return out


# ---------------------------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------------------------

def _score_missing(todo: dict[str, tuple[str, str]], need_images: dict[str, str], cfg: AlignConfig, ctx) -> dict:
    """Scores of ``todo`` (cache key -> (image id, text)) with the model; image id -> URL in ``need_images``.
    The pairs of an image without bytes or that does not decode are :data:`UNSCORED` (counted)."""
    from ..images.decode import open_reduced
    from .model import load_scorer

    scorer = ctx.resources.get("image_text_scorer")
    if scorer is None:
        scorer = ctx.resources["image_text_scorer"] = load_scorer(cfg.model, cfg.device, cfg.threads,
                                                                  cfg.batch_size, cfg.max_text_tokens)
    data = ctx.images.get_many(need_images.values()) if ctx.images is not None else {}
    ids, images = [], []
    for image_id, url in need_images.items():
        body = (data.get(url) or (None,))[0]
        if body is None:
            ctx.add("images_without_bytes")
            continue
        try:
            images.append(open_reduced(body, MAX_PIXELS, scorer.side))
            ids.append(image_id)
        except Exception:  # noqa: BLE001 - an image that no longer decodes is not scored, and counted
            ctx.add("images_undecodable")
    row = {image_id: n for n, image_id in enumerate(ids)}
    texts = sorted({t for image_id, t in todo.values() if image_id in row})
    col = {t: n for n, t in enumerate(texts)}
    out: dict = {key: UNSCORED for key, (image_id, _) in todo.items() if image_id not in row}
    if not ids or not texts:
        return out
    im = scorer.image_embeddings(images)
    tx = scorer.text_embeddings(texts)
    ctx.add("images_embedded", len(ids))
    ctx.add("texts_embedded", len(texts))
    for key, (image_id, text) in todo.items():
        if image_id in row:
            out[key] = float((im[row[image_id]] * tx[col[text]]).sum())
    return out


def image_text(docs: list[dict], ctx) -> list[dict]:
    """Score every image against its contexts, write the columns, drop images below the threshold."""
    cfg = AlignConfig.from_mapping(ctx.config)
    dec = AlignFilter.from_mapping(ctx.filters)
    if cfg.model is None:
        ctx.note(DISABLED)
        if dec.min_similarity is not None or dec.drop_unscored:
            ctx.note("the filter config's image_text decisions (min_similarity, drop_unscored) are NOT applied: "
                     "nothing is scored without a model")
        return docs
    if ctx.images is None:
        ctx.note("image-text alignment: no image bytes here (the stage runs after final); nothing scored")
        return docs
    revision = ctx.resources.get("image_text_revision")
    if revision is None:
        from .model import model_revision

        revision = ctx.resources["image_text_revision"] = model_revision(cfg.model)
    # 1. every (image, context) of the batch, and its cached score
    wanted: list[tuple[int, int, dict[str, str]]] = []
    keys: dict[tuple[str, str], str] = {}
    scores: dict[str, float | None] = {}
    todo: dict[str, tuple[str, str]] = {}
    need_images: dict[str, str] = {}
    for d, doc in enumerate(docs):
        for i, url in enumerate(doc["images"]):
            if url is None:
                continue
            contexts = image_contexts(doc, i)
            wanted.append((d, i, contexts))
            image_id = (doc["metadata"][i] or {}).get("sha256") or url
            for text in contexts.values():
                key = keys.setdefault((image_id, text), fingerprint(revision, image_id, text))
                if key in scores or key in todo:
                    continue
                cached = ctx.cache.get(key) if ctx.cache is not None else None
                if cached is not None:
                    scores[key] = None if cached == UNSCORED else cached
                else:
                    todo[key] = (image_id, text)
                    need_images[image_id] = url
    ctx.add("images_seen", len(wanted))
    ctx.add("pairs_cached", len(scores))
    # 2. what no earlier run scored: the model (loaded only now)
    if todo:
        fresh = _score_missing(todo, need_images, cfg, ctx)
        for key, value in fresh.items():
            scores[key] = None if value == UNSCORED else value
            if ctx.cache is not None:
                ctx.cache.put(key, value)  # an unscorable image too: a rerun does not load the model for it
        ctx.add("pairs_scored", sum(1 for v in fresh.values() if v != UNSCORED))
    # 3. columns and the decision
    by_doc: dict[int, list[tuple[int, dict[str, str]]]] = {}
    for d, i, contexts in wanted:
        by_doc.setdefault(d, []).append((i, contexts))
    for d, doc in enumerate(docs):
        n = len(doc["texts"])
        cols = {c: [None] * n for c in (*COLUMNS.values(), BEST)}
        keep = [True] * n
        for i, contexts in by_doc.get(d, []):
            image_id = (doc["metadata"][i] or {}).get("sha256") or doc["images"][i]
            got = {k: scores.get(keys[(image_id, t)]) for k, t in contexts.items()}
            got = {k: v for k, v in got.items() if v is not None}
            for k, v in got.items():
                cols[COLUMNS[k]][i] = v
            best = max(got.values()) if got else None
            cols[BEST][i] = best
            meta = doc["metadata"][i]
            if isinstance(meta, dict):
                meta = dict(meta)
                meta.pop("image_text_similarity", None)
                if got:
                    meta["image_text_similarity"] = {k: round(got[k], 6) for k in CONTEXTS if k in got}
                doc["metadata"][i] = meta
            ctx.add("images_scored" if got else "images_unscored")
            value = best if dec.score == "best" else got.get(dec.score)
            if value is None:
                if dec.drop_unscored:
                    keep[i] = False
                    ctx.remove("image_text:unscored", unit="images")
            elif dec.min_similarity is not None and value < dec.min_similarity:
                keep[i] = False
                ctx.remove("image_text:below_min_similarity", unit="images")
        doc.update(cols)
        if not all(keep):
            from ..schema import keep_positions

            keep_positions(doc, keep)
        kept = [v for v in doc[BEST] if v is not None]
        doc["doc_align_mean"] = sum(kept) / len(kept) if kept else None
        doc["doc_align_min"] = min(kept) if kept else None
    return docs


image_text.check = check
image_text.cutoffs = cutoffs
