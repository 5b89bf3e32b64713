"""Doc-aware greedy packing of rendered documents into rows, and collation into model inputs.  Pure functions
(numpy only): no torch, no I/O.

* ``pack_documents``: first-fit into rows of at most ``max_len`` tokens and ``max_images`` image crops (a split image
  counts each crop, as m4 counts them against its per-row cap, and its runs stay one unit); a (sub-)document is
  never split across rows (``render.split_document`` cuts long ones first, never inside an image run); rows without
  an image are dropped.
* ``image_attention_index``: for IDEFICS v1 cross-attention, the row-local index of the image each token sees: the
  most recent image of the *same document* at or before it, -1 when none (so attention resets after a document ends).
* ``collate``: rows -> ``input_ids``, ``attention_mask``, ``labels`` (-100 on pad and ``<image>``), ``pixel_values``
  (B, crops, 3, H, W) (contiguous; the crops come from the image processor, padding slots only are all-zero), and the
  per-arch masks (``pixel_attention_mask`` from the image processor, zero-padded like its own batch padding).
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
    n_crops: int = 0

    def add(self, d: RenderedDoc) -> None:
        off = len(self.ids)
        self.ids.extend(d.ids)
        self.doc.extend([self.n_docs] * len(d.ids))
        self.spans.extend((s + off, e + off) for s, e in d.spans)
        self.images.extend(d.images)
        self.n_docs += 1
        self.n_crops += d.n_crops


def pack_documents(docs: list[RenderedDoc], max_len: int, max_images: int) -> list[PackedRow]:
    """Greedy first-fit packing (``max_images`` caps the crops of a row); rows come out in creation order
    (deterministic for a given input order)."""
    rows: list[PackedRow] = []
    for d in docs:
        nc = d.n_crops
        if len(d.ids) > max_len or nc > max_images:
            raise ValueError("split documents with render.split_document before packing")
        for r in rows:
            if len(r.ids) + len(d.ids) <= max_len and r.n_crops + nc <= max_images:
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


def _as_crops(im) -> tuple[np.ndarray, np.ndarray | None]:
    """An already preprocessed image: (3, h, w) or (crops, 3, h, w) array, or a (pixels, mask) pair."""
    if isinstance(im, tuple):
        return im
    a = np.asarray(im, np.float32)
    return (a[None] if a.ndim == 3 else a), None


def collate(rows: list[PackedRow], spec: ArchSpec, tok: TokenIds, pad_to: int | None = None,
            pixels=None) -> dict[str, np.ndarray]:
    """Rows -> a batch of numpy arrays.  ``pixels(image) -> (crops x 3 x h x w, crops x h x w mask or None)``
    preprocesses a row's image (``images.ImagePrep.pixels``); without it the images are already arrays."""
    B = len(rows)
    L = pad_to or max(len(r.ids) for r in rows)
    prepared = [[(pixels(im) if pixels is not None else _as_crops(im)) for im in r.images] for r in rows]
    n_img = max(1, max(sum(pv.shape[0] for pv, _ in p) for p in prepared))
    H = max([pv.shape[2] for p in prepared for pv, _ in p] or [spec.image_size])
    W = max([pv.shape[3] for p in prepared for pv, _ in p] or [spec.image_size])
    input_ids = np.full((B, L), tok.pad, np.int64)
    attention = np.zeros((B, L), np.int64)
    pixel_values = np.zeros((B, n_img, 3, H, W), np.float32)
    pam = np.zeros((B, n_img, H, W), np.bool_) if spec.arch != "idefics" else None
    image_mask = np.zeros((B, L, max(1, max(len(r.images) for r in rows))), np.int64) \
        if spec.arch == "idefics" else None
    for b, r in enumerate(rows):
        n = len(r.ids)
        input_ids[b, :n] = r.ids
        attention[b, :n] = 1
        k = 0
        for pv, mask in prepared[b]:
            c, _, h, w = pv.shape
            pixel_values[b, k:k + c, :, :h, :w] = pv
            if pam is not None:
                pam[b, k:k + c, :h, :w] = True if mask is None else mask
            k += c
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
        out["pixel_attention_mask"] = pam
    return out
