"""Doc-aware greedy packing of rendered documents into rows, and collation into model inputs.  Pure functions
(numpy only): no torch, no I/O.

* ``pack_documents``: first-fit into rows of at most ``max_len`` tokens and ``max_images`` images; a (sub-)document is
  never split across rows (``render.split_document`` cuts long ones first, never inside an image run); rows without
  an image are dropped.
* ``image_attention_index``: for IDEFICS v1 cross-attention, the row-local index of the image each token sees: the
  most recent image of the *same document* at or before it, -1 when none (so attention resets after a document ends).
* ``collate``: rows -> ``input_ids``, ``attention_mask``, ``labels`` (-100 on pad and ``<image>``), ``pixel_values``
  (contiguous, real images never zero: padding slots only are zero), and the per-arch masks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .render import ArchSpec, RenderedDoc
from .tokenizer import TokenIds

IGNORE = -100


@dataclass
class PackedRow:
    ids: list[int] = field(default_factory=list)
    doc: list[int] = field(default_factory=list)          # per token: ordinal of its document within the row
    spans: list[tuple[int, int]] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    n_docs: int = 0

    def add(self, d: RenderedDoc) -> None:
        off = len(self.ids)
        self.ids.extend(d.ids)
        self.doc.extend([self.n_docs] * len(d.ids))
        self.spans.extend((s + off, e + off) for s, e in d.spans)
        self.images.extend(d.images)
        self.n_docs += 1


def pack_documents(docs: list[RenderedDoc], max_len: int, max_images: int) -> list[PackedRow]:
    """Greedy first-fit packing; rows come out in creation order (deterministic for a given input order)."""
    rows: list[PackedRow] = []
    for d in docs:
        if len(d.ids) > max_len or d.n_images > max_images:
            raise ValueError("split documents with render.split_document before packing")
        for r in rows:
            if len(r.ids) + len(d.ids) <= max_len and len(r.images) + d.n_images <= max_images:
                r.add(d)
                break
        else:
            r = PackedRow()
            r.add(d)
            rows.append(r)
    return [r for r in rows if r.images]


def image_attention_index(row: PackedRow, image_token: int) -> list[int]:
    """Per token, the row-local index of the latest image of the same document whose ``<image>`` token is at or
    before it; -1 if none."""
    image_at: dict[int, int] = {}
    for k, (s, e) in enumerate(row.spans):
        for p in range(s, e):
            if row.ids[p] == image_token:
                image_at[p] = k
                break
    out, cur, cur_doc = [], -1, None
    for p, d in enumerate(row.doc):
        if d != cur_doc:
            cur, cur_doc = -1, d
        if p in image_at:
            cur = image_at[p]
        out.append(cur)
    return out


def preprocess_image(img, spec: ArchSpec) -> np.ndarray:
    """A PIL image -> float32 (3, S, S) normalised array; never exactly all-zero (the Idefics2/3 models treat an
    all-zero image as padding and drop it)."""
    from PIL import Image

    S = spec.image_size
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != (S, S):
        img = img.resize((S, S), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float32) * (1.0 / 255.0)
    a = (a - np.asarray(spec.image_mean, np.float32)) / np.asarray(spec.image_std, np.float32)
    a = np.ascontiguousarray(a.transpose(2, 0, 1))
    if not a.any():
        a[0, 0, 0] = 1e-3
    return a


def collate(rows: list[PackedRow], spec: ArchSpec, tok: TokenIds, pad_to: int | None = None) -> dict[str, np.ndarray]:
    """Rows (with images already preprocessed to (3, S, S) arrays) -> a batch of numpy arrays."""
    B = len(rows)
    L = pad_to or max(len(r.ids) for r in rows)
    n_img = max(1, max(len(r.images) for r in rows))
    S = spec.image_size
    input_ids = np.full((B, L), tok.pad, np.int64)
    attention = np.zeros((B, L), np.int64)
    pixel_values = np.zeros((B, n_img, 3, S, S), np.float32)
    image_mask = np.zeros((B, L, n_img), np.int64) if spec.arch == "idefics" else None
    for b, r in enumerate(rows):
        n = len(r.ids)
        input_ids[b, :n] = r.ids
        attention[b, :n] = 1
        for k, im in enumerate(r.images):
            pixel_values[b, k] = im
        if image_mask is not None:
            for p, k in enumerate(image_attention_index(r, tok.image)):
                if k >= 0:
                    image_mask[b, p, k] = 1
    labels = input_ids.copy()
    labels[attention == 0] = IGNORE
    labels[input_ids == tok.image] = IGNORE
    out = {"input_ids": input_ids, "attention_mask": attention, "labels": labels,
           "pixel_values": np.ascontiguousarray(pixel_values)}
    if image_mask is not None:
        out["image_attention_mask"] = image_mask
    else:
        pam = np.zeros((B, n_img, S, S), np.bool_)
        for b, r in enumerate(rows):
            pam[b, :len(r.images)] = True
        out["pixel_attention_mask"] = pam
    return out
