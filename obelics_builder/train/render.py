"""Per-architecture renderers: an interleaved document (text and image items in page order) -> token ids with
atomic image runs, token for token what the transformers processor of the arch produces for the document's text
with one ``<image>`` per image (tests/test_train_processor.py checks it).  Pure functions: no torch, no I/O.

The document's text: consecutive text items are joined by a blank line ("\n\n"); each run of text between images
is one segment, encoded alone (the processors' special tokens split the text there too).  Conventions:

* ``idefics``  (v1, cross-attention, ``IdeficsProcessor`` fed the items): one ``<image>`` per image, wrapped
  ``<fake><image><fake>``; consecutive images share the boundary token, so the second one adds only
  ``<image><fake>``; text segments are stripped of spaces.
* ``idefics2`` (``Idefics2Processor``): ``<fake>`` + ``<image>`` x ``tokens_per_image`` + ``<fake>``, five such runs
  (4 crops + the image) with image splitting; every doubled ``<fake><fake>`` collapsed; a text right after a
  ``<fake>`` that starts with neither a space nor ``<`` gets a leading space.
* ``idefics3`` (``Idefics3Processor``): an unsplit image is ``<fake><global-img>`` + ``<image>`` x n + ``<fake>``;
  a split one is, per tile row, ``<fake><row_r_col_c>`` + ``<image>`` x n per tile and "\n", then "\n" and the
  global image's run.

Every document starts with BOS and ends with EOS.  An image item's value carries its crop layout (``crops``,
``rows``, ``cols`` attributes of ``images.ImageRef``); any other value is one unsplit image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .tokenizer import TokenIds

ARCHS = ("idefics", "idefics2", "idefics3")
MIN_TOKENS = 5


@dataclass(frozen=True)
class ArchSpec:
    """What the data side needs to know about a model: token layout and image preprocessing."""
    arch: str
    tokens_per_image: int
    image_size: int
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def to_dict(self) -> dict:
        return {"arch": self.arch, "tokens_per_image": self.tokens_per_image, "image_size": self.image_size,
                "image_mean": list(self.image_mean), "image_std": list(self.image_std)}

    @classmethod
    def from_dict(cls, d: dict) -> "ArchSpec":
        return cls(arch=d["arch"], tokens_per_image=int(d["tokens_per_image"]), image_size=int(d["image_size"]),
                   image_mean=tuple(d.get("image_mean", (0.5,) * 3)), image_std=tuple(d.get("image_std", (0.5,) * 3)))


@dataclass
class RenderedDoc:
    """Token ids of one (sub-)document; ``spans[i] = (start, end)`` is the atomic token run of image ``i``."""
    ids: list[int]
    spans: list[tuple[int, int]] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    source: str = ""

    @property
    def n_images(self) -> int:
        return len(self.spans)

    @property
    def n_crops(self) -> int:
        """Image slots the document fills in a batch (a split image counts each crop)."""
        return sum(image_layout(v)[0] for v in self.images)


TEXT_SEPARATOR = "\n\n"


def image_layout(value: Any) -> tuple[int, int, int]:
    """(crops, rows, cols) of an image item's value (1, 0, 0 when it carries no layout)."""
    return int(getattr(value, "crops", 1)), int(getattr(value, "rows", 0)), int(getattr(value, "cols", 0))


def image_run(spec: ArchSpec, tok: TokenIds, after_image: bool, layout: tuple[int, int, int] = (1, 0, 0)) -> list[int]:
    """The tokens one image contributes; ``after_image``: the previous item was an image (shared boundary for
    idefics/idefics2)."""
    n = spec.tokens_per_image
    crops, rows, cols = layout
    if spec.arch == "idefics":
        return ([] if after_image else [tok.fake]) + [tok.image] + [tok.fake]
    if spec.arch == "idefics2":
        run = [] if after_image else [tok.fake]
        for _ in range(crops):
            run += [tok.image] * n + [tok.fake]
        return run
    if spec.arch == "idefics3":
        run: list[int] = []
        if rows or cols:
            for r in range(1, rows + 1):
                for c in range(1, cols + 1):
                    run += [tok.fake, tok.tile(r, c)] + [tok.image] * n
                run += list(tok.newline)
            run += list(tok.newline)
        return run + [tok.fake, tok.global_img] + [tok.image] * n + [tok.fake]
    raise ValueError(f"unknown arch {spec.arch!r}; expected one of {ARCHS}")


def document_segments(items: Sequence[tuple[str, Any]], arch: str) -> list[tuple[str, Any]]:
    """Items -> segments: consecutive texts joined by ``TEXT_SEPARATOR``, the arch's text rules applied (v1: strip
    spaces; idefics2: a leading space after an image), empty texts dropped; images kept as they are."""
    out: list[tuple[str, Any]] = []
    for kind, value in items:
        if kind == "text":
            if not value:
                continue
            if out and out[-1][0] == "text":
                out[-1] = ("text", out[-1][1] + TEXT_SEPARATOR + value)
            else:
                out.append(("text", value))
        elif kind == "image":
            out.append(("image", value))
        else:
            raise ValueError(f"unknown item kind {kind!r}")
    final: list[tuple[str, Any]] = []
    for k, (kind, value) in enumerate(out):
        if kind == "text":
            if arch == "idefics":
                value = value.strip(" ")
            elif arch == "idefics2" and k > 0 and not (value[0].isspace() or value[0] == "<"):
                value = " " + value
            if not value:
                continue
        final.append((kind, value))
    return final


def render_segments(segments: Sequence[tuple[str, Any]], tok: TokenIds, spec: ArchSpec,
                    source: str = "") -> RenderedDoc:
    """Segments whose texts are already token ids (see ``document_segments``) -> a ``RenderedDoc`` with BOS...EOS."""
    ids: list[int] = [tok.bos]
    spans: list[tuple[int, int]] = []
    images: list[Any] = []
    prev = None
    for kind, value in segments:
        if kind == "text":
            ids.extend(value)
            prev = "text"
        else:
            run = image_run(spec, tok, after_image=(prev == "image"), layout=image_layout(value))
            start = len(ids)
            ids.extend(run)
            spans.append((start, len(ids)))
            images.append(value)
            prev = "image"
    ids.append(tok.eos)
    return RenderedDoc(ids=ids, spans=spans, images=images, source=source)


def render_document(items: Sequence[tuple[str, Any]], encode: Callable[[str], list[int]], tok: TokenIds,
                    spec: ArchSpec, source: str = "") -> RenderedDoc:
    """``items``: ``("text", str)`` / ``("image", value)`` in document order -> a ``RenderedDoc`` with BOS...EOS.
    ``encode`` tokenizes one text segment without special tokens."""
    segs = [(k, encode(v) if k == "text" else v) for k, v in document_segments(items, spec.arch)]
    return render_segments(segs, tok, spec, source)


def usable(doc: RenderedDoc, eos: int | None = None) -> str | None:
    """None if ``doc`` can train, else the rejection reason: no image, too few tokens, or no text token after the
    first image (its image(s) sit at the very end, so nothing attends to them)."""
    if doc.n_images == 0:
        return "no_image"
    if len(doc.ids) < MIN_TOKENS:
        return "too_short"
    covered = set()
    for s, e in doc.spans:
        covered.update(range(s, e))
    last = len(doc.ids) - 1
    tail = [i for i in range(doc.spans[0][1], len(doc.ids))
            if i not in covered and not (i == last and eos is not None and doc.ids[i] == eos)]
    if not tail:
        return "image_only_at_end"
    return None


def split_document(doc: RenderedDoc, max_len: int, max_images: int, bos: int, eos: int | None = None) -> tuple[list[RenderedDoc], dict]:
    """Cut a rendered document into windows of at most ``max_len`` tokens and ``max_images`` image crops (a split
    image counts each crop and stays whole), never inside an image run.  Windows after the first start with a fresh
    BOS (truncated windows carry no EOS).  Returns the usable windows and a ``{reason: count}`` of dropped ones."""
    dropped: dict[str, int] = {}
    if doc.n_images == 0:
        return [], {"no_image": 1}
    crops = [image_layout(v)[0] for v in doc.images]
    if any(e - s > max_len - 1 for s, e in doc.spans):
        return [], {"image_longer_than_row": 1}
    if max(crops) > max_images:
        return [], {"image_more_crops_than_row": 1}
    if len(doc.ids) <= max_len and sum(crops) <= max_images:
        why = usable(doc, eos)
        return ([doc], {}) if why is None else ([], {why: 1})
    span_at = {s: (e, k) for k, (s, e) in enumerate(doc.spans)}
    out: list[RenderedDoc] = []
    pos, n = 0, len(doc.ids)
    first = True
    while pos < n:
        ids: list[int] = [] if first else [bos]
        spans: list[tuple[int, int]] = []
        images: list[Any] = []
        used = 0
        while pos < n:
            if pos in span_at:
                end, k = span_at[pos]
                if used + crops[k] > max_images or len(ids) + (end - pos) > max_len:
                    break
                used += crops[k]
                spans.append((len(ids), len(ids) + end - pos))
                images.append(doc.images[k])
                ids.extend(doc.ids[pos:end])
                pos = end
            else:
                if len(ids) + 1 > max_len:
                    break
                ids.append(doc.ids[pos])
                pos += 1
        if not first and len(ids) == 1 and pos >= n:  # only the fresh BOS: nothing left
            break
        first = False
        window = RenderedDoc(ids=ids, spans=spans, images=images, source=doc.source)
        why = usable(window, eos)
        if why is None:
            out.append(window)
        else:
            dropped[why] = dropped.get(why, 0) + 1
    return out, dropped
