"""Per-architecture renderers: an interleaved document (text and image items in page order) -> token ids with
atomic image runs.  Pure functions: no torch, no I/O.

Conventions (see the trainer notes):

* ``idefics``  (v1, cross-attention): one ``<image>`` per image, wrapped ``<fake><image><fake>``; consecutive images
  share the boundary token, so the second one adds only ``<image><fake>``.
* ``idefics2``: ``<fake>`` + ``<image>`` x ``tokens_per_image`` + ``<fake>``, the doubled boundary between adjacent
  images collapsed.
* ``idefics3``: ``<fake><global-img>`` + ``<image>`` x ``tokens_per_image`` + ``<fake>`` per image (no splitting).

Every document starts with BOS and ends with EOS; consecutive text items are joined by a blank line.
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


def image_run(spec: ArchSpec, tok: TokenIds, after_image: bool) -> list[int]:
    """The tokens one image contributes; ``after_image``: the previous item was an image (shared boundary)."""
    n = spec.tokens_per_image
    if spec.arch == "idefics":
        return ([] if after_image else [tok.fake]) + [tok.image] + [tok.fake]
    if spec.arch == "idefics2":
        return ([] if after_image else [tok.fake]) + [tok.image] * n + [tok.fake]
    if spec.arch == "idefics3":
        return [tok.fake, tok.global_img] + [tok.image] * n + [tok.fake]
    raise ValueError(f"unknown arch {spec.arch!r}; expected one of {ARCHS}")


def render_document(items: Sequence[tuple[str, Any]], encode: Callable[[str], list[int]], tok: TokenIds,
                    spec: ArchSpec, separator: Sequence[int] = (), source: str = "") -> RenderedDoc:
    """``items``: ``("text", str)`` / ``("image", payload)`` in document order -> a ``RenderedDoc`` with BOS...EOS.
    ``encode`` tokenizes a text without special tokens; ``separator`` is put between consecutive texts."""
    ids: list[int] = [tok.bos]
    spans: list[tuple[int, int]] = []
    images: list[Any] = []
    prev = None
    for kind, value in items:
        if kind == "text":
            if not value:
                continue
            if prev == "text":
                ids.extend(separator)
            ids.extend(encode(value))
            prev = "text"
        elif kind == "image":
            run = image_run(spec, tok, after_image=(prev == "image"))
            start = len(ids)
            ids.extend(run)
            spans.append((start, len(ids)))
            images.append(value)
            prev = "image"
        else:
            raise ValueError(f"unknown item kind {kind!r}")
    ids.append(tok.eos)
    return RenderedDoc(ids=ids, spans=spans, images=images, source=source)


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
    """Cut a rendered document into windows of at most ``max_len`` tokens and ``max_images`` images, never inside
    an image run.  Windows after the first start with a fresh BOS (truncated windows carry no EOS).  Returns the
    usable windows and a ``{reason: count}`` of dropped ones."""
    dropped: dict[str, int] = {}
    if doc.n_images == 0:
        return [], {"no_image": 1}
    if any(e - s > max_len - 1 for s, e in doc.spans):
        return [], {"image_longer_than_row": 1}
    if len(doc.ids) <= max_len and doc.n_images <= max_images:
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
        while pos < n:
            if pos in span_at:
                end, k = span_at[pos]
                if len(spans) >= max_images or len(ids) + (end - pos) > max_len:
                    break
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
