"""Final cleaning (OBELICS step 13, reference §3.3), applied after images are fetched and filtered.

Per document, in this order:

1. in-document image dedup (``final.dedup_images_in_document``): keep the first image position of each ``src``
   and, when the fetched metadata has one, of each ``sha256``; later ones are removed
   (``final:duplicate_image``, unit images);
   with ``final.captions_follow_images`` (the structured filters), a paragraph of kind ``caption`` (``node_kind``,
   :mod:`.structure`: a short line next to an image when it was scored) that no longer stands next to an image
   (the image stages or this dedup removed it) is removed with it (``final:orphan_caption``, unit nodes);
2. spam paragraphs: a paragraph is kept only if its spam-word ratio (filter word splitter, list
   ``wordlists.spam_words``) is below ``final.spam_word_ratio_max`` (0.12) (``final:spam_paragraph``, unit nodes).
   A run cleans twice (after the image stages, then after paragraph dedup, which only removes paragraphs): the
   second pass, given ``ctx.resources["spam_checked"]``, knows that every paragraph it gets passed this check
   under the same config (the first pass's output, fingerprinted with it) and does not score them again;
3. clean: text positions without paragraphs are removed and adjacent texts merged with ``"\\n\\n"``;
4. inside each text an END_OF_DOCUMENT paragraph directly following another one is removed
   (``final:repeated_end_of_document``, unit nodes);
5. if the last position is a text whose last paragraph is END_OF_DOCUMENT, that paragraph is removed
   (``final:trailing_end_of_document``, unit nodes);
6. clean again.

Then the document is removed when it has no text (``final:no_text``), when all its text is END_OF_DOCUMENT
markers (``final:only_end_of_document``), when it has fewer than ``final.min_images`` images
(``final:too_few_images``) or more than ``final.max_images`` (``final:too_many_images``).  The image-count
bounds of the doc filter (``doc.number_images``, when enabled) apply here too, because only now are the images
known: the effective bounds are the tighter of the two.

Score columns stay consistent: ``node_*`` lists lose the values of removed paragraphs and are concatenated when
texts merge (merged paragraphs keep their own scores); ``image_*`` lists follow the positions.  A ``node_*`` column
that did not match the paragraphs of the texts on input is dropped from that document (it could not be kept
aligned).
"""
from __future__ import annotations

from ..schema import END_OF_DOCUMENT, PARAGRAPH_SEP, paragraphs
from .metrics import get_words
from .score import column_aligned, filters_config, paragraph_counts
from .structure import KIND_COLUMN
from .wordlists import config_wordlist


class _Pos:
    """One position of a document while it is being cleaned."""

    __slots__ = ("paras", "image", "meta", "node", "imgv")

    def __init__(self, paras, image, meta, node, imgv):
        self.paras = paras  # list[str] for a text position, None for an image
        self.image = image
        self.meta = meta
        self.node = node  # {col: list of per-paragraph values} (text positions)
        self.imgv = imgv  # {col: value} for image_* columns

    @property
    def is_text(self) -> bool:
        return self.paras is not None


def _image_bounds(cfg: dict) -> tuple[int, int]:
    final = cfg.get("final") or {}
    lo = int(final.get("min_images", 1))
    hi = int(final.get("max_images", 30))
    ni = (cfg.get("doc") or {}).get("number_images")
    if isinstance(ni, dict) and ni.get("enabled", True):
        if ni.get("min") is not None:
            lo = max(lo, int(ni["min"]))
        if ni.get("max") is not None:
            hi = min(hi, int(ni["max"]))
    return lo, hi


def _explode(doc: dict) -> tuple[list[_Pos], list[str], list[str]]:
    texts = doc["texts"]
    n = len(texts)
    counts = paragraph_counts(doc)
    node_cols = []
    for c in [c for c in doc if c.startswith("node_")]:
        if column_aligned(doc, c, counts):
            node_cols.append(c)
        else:  # could not be kept aligned through the edits below
            doc.pop(c)
    image_cols = [c for c in doc if c.startswith("image_") and isinstance(doc[c], list) and len(doc[c]) == n]
    positions = []
    for i, t in enumerate(texts):
        if t is None:
            positions.append(_Pos(None, doc["images"][i], doc["metadata"][i], {},
                                  {c: doc[c][i] for c in image_cols}))
        else:
            positions.append(_Pos(paragraphs(t), None, None, {c: list(doc[c][i]) for c in node_cols},
                                  {c: doc[c][i] for c in image_cols}))
    return positions, node_cols, image_cols


def _implode(doc: dict, positions: list[_Pos], node_cols: list[str], image_cols: list[str]) -> None:
    doc["texts"] = [PARAGRAPH_SEP.join(p.paras) if p.is_text else None for p in positions]
    doc["images"] = [None if p.is_text else p.image for p in positions]
    doc["metadata"] = [None if p.is_text else p.meta for p in positions]
    for c in node_cols:
        doc[c] = [p.node[c] if p.is_text else None for p in positions]
    for c in image_cols:
        doc[c] = [p.imgv.get(c) for p in positions]


def _keep_paragraphs(pos: _Pos, keep: list[bool]) -> None:
    pos.paras = [p for p, k in zip(pos.paras, keep) if k]
    for c, values in pos.node.items():
        pos.node[c] = [v for v, k in zip(values, keep) if k]


def _clean(positions: list[_Pos]) -> list[_Pos]:
    """Remove texts without paragraphs; merge adjacent texts (paragraph lists and node values concatenated)."""
    out: list[_Pos] = []
    for p in positions:
        if p.is_text and not p.paras:
            continue
        if p.is_text and out and out[-1].is_text:
            last = out[-1]
            last.paras = last.paras + p.paras
            for c in last.node:
                last.node[c] = last.node[c] + p.node.get(c, [])
            continue
        out.append(p)
    return out


def _drop_orphan_captions(positions: list[_Pos], ctx) -> None:
    """Captions follow their image: a ``caption`` paragraph at the edge of its text that faced an image when it was
    scored and faces none now (another text, or the document's edge) is removed."""
    n = len(positions)
    for i, p in enumerate(positions):
        kinds = p.node.get(KIND_COLUMN) if p.is_text else None
        if not kinds:
            continue
        image_before = i > 0 and not positions[i - 1].is_text
        image_after = i + 1 < n and not positions[i + 1].is_text
        keep = [True] * len(p.paras)
        for j in {0, len(p.paras) - 1}:
            if kinds[j] == "caption" and not (j == 0 and image_before) and not (j == len(p.paras) - 1 and image_after):
                keep[j] = False
        if not all(keep):
            ctx.remove("final:orphan_caption", keep.count(False), unit="nodes")
            _keep_paragraphs(p, keep)


def final_cleaning_stage(docs: list[dict], ctx) -> list[dict]:
    """OBELICS final processing and the final document rules (see the module docstring)."""
    cfg = filters_config(ctx)
    final = cfg.get("final") or {}
    dedup = bool(final.get("dedup_images_in_document", True))
    captions_follow = bool(final.get("captions_follow_images", False))
    spam_max = float(final.get("spam_word_ratio_max", 0.12))
    spam_words = config_wordlist(cfg, "spam_words")
    lo, hi = _image_bounds(cfg)
    spam_checked = bool(ctx.resources.get("spam_checked"))
    verdicts: dict[str, bool] = {}
    kept: list[dict] = []
    for doc in docs:
        positions, node_cols, image_cols = _explode(doc)

        # 1. in-document image dedup
        if dedup:
            seen_src: set[str] = set()
            seen_sha: set[str] = set()
            unique = []
            for p in positions:
                if not p.is_text:
                    meta = p.meta if isinstance(p.meta, dict) else {}
                    src = meta.get("src") or p.image
                    sha = meta.get("sha256")
                    if src in seen_src or (sha and sha in seen_sha):
                        ctx.remove("final:duplicate_image", unit="images")
                        continue
                    seen_src.add(src)
                    if sha:
                        seen_sha.add(sha)
                unique.append(p)
            positions = unique
        if captions_follow:
            _drop_orphan_captions(positions, ctx)

        # 2. spam paragraphs (a verdict is a function of the paragraph: computed once per batch)
        for p in positions:
            if not p.is_text or spam_checked:
                continue
            keep = []
            for para in p.paras:
                ok = verdicts.get(para)
                if ok is None:
                    words = get_words(para)
                    ratio = sum(map(spam_words.__contains__, words)) / len(words) if words else 0.0
                    ok = verdicts[para] = ratio < spam_max
                keep.append(ok)
            if not all(keep):
                ctx.remove("final:spam_paragraph", keep.count(False), unit="nodes")
                _keep_paragraphs(p, keep)

        # 3. clean
        positions = _clean(positions)

        # 4. repeated END_OF_DOCUMENT paragraphs inside a text
        for p in positions:
            if not p.is_text:
                continue
            keep = [not (j > 0 and para == END_OF_DOCUMENT and p.paras[j - 1] == END_OF_DOCUMENT)
                    for j, para in enumerate(p.paras)]
            if not all(keep):
                ctx.remove("final:repeated_end_of_document", keep.count(False), unit="nodes")
                _keep_paragraphs(p, keep)

        # 5. trailing END_OF_DOCUMENT
        if positions and positions[-1].is_text and positions[-1].paras and positions[-1].paras[-1] == END_OF_DOCUMENT:
            last = positions[-1]
            ctx.remove("final:trailing_end_of_document", unit="nodes")
            _keep_paragraphs(last, [True] * (len(last.paras) - 1) + [False])

        # 6. clean again
        positions = _clean(positions)

        # document rules
        text_paras = [para for p in positions if p.is_text for para in p.paras]
        n_img = sum(1 for p in positions if not p.is_text)
        if not text_paras:
            reason = "final:no_text"
        elif all(para == END_OF_DOCUMENT for para in text_paras):
            reason = "final:only_end_of_document"
        elif n_img < lo:
            reason = "final:too_few_images"
        elif n_img > hi:
            reason = "final:too_many_images"
        else:
            reason = None
        if reason is not None:
            ctx.remove(reason)
            continue
        _implode(doc, positions, node_cols, image_cols)
        kept.append(doc)
    return kept
