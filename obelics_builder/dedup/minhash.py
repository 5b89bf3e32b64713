"""Near-duplicate text detection with MinHash and LSH banding (engine-neutral, numpy only).

* Text of a document = its text positions joined by a newline, lower-cased, split into words (``\\w+``).
* Shingles = ``ngram`` consecutive words (5 by default, as the OBELICS/OmniCorpus MinHash dedup); a document with
  fewer words than ``ngram`` has one shingle made of all its words; a document without words has no shingle, no
  band keys, and is never a near duplicate.
* Word hashes are pandas' keyed SipHash (``pd.util.hash_array``: fixed key, so identical in every process, unlike
  Python's salted ``hash``); a shingle hash mixes its word hashes with position constants (uint64 arithmetic).
* ``num_perm`` hash functions ``h_i(x) = (a_i * x + b_i) mod 2**64 >> 32`` (multiply-shift family, ``a_i`` odd, drawn
  from ``seed``); the signature is the per-function minimum over the shingles (uint32).
* LSH: ``bands`` bands of ``rows`` signature values (``bands * rows <= num_perm``); a band key is a 64-bit mix of the
  band index and its rows.  Two documents with Jaccard similarity ``s`` share at least one band key with
  probability ``1 - (1 - s**rows)**bands`` (20 x 6: 0.998 at s=0.8, 0.27 at s=0.5, 0.001 at s=0.2); candidates are
  then verified on the full signature (:func:`jaccard_estimate` ``>= threshold``).

Everything here is vectorised over a batch; the run-wide steps (bucket shuffle, verification, connected components,
keep one per cluster) are in ``obelics_builder.engine.dedup_reductions``.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
#: Largest uint32: the signature value of "no shingle".
EMPTY = np.uint32(0xFFFFFFFF)
#: Shingles per vectorised chunk: the (num_perm x chunk) uint64 block (4 MB at 128 permutations) stays in cache; 2x faster than 32k.
_CHUNK = 4_096


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 -> uint64, wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        return x ^ (x >> np.uint64(31))


def _constants(n: int, salt: int) -> np.ndarray:
    return _mix(np.arange(1, n + 1, dtype=np.uint64) + np.uint64(salt * 0x9E3779B97F4A7C15 % 2**64))


def doc_text(doc: dict) -> str:
    """The text MinHash sees: text positions joined by newlines."""
    return "\n".join(t for t in doc["texts"] if t is not None)


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) coefficients of the ``num_perm`` hash functions (``a`` odd)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2)
    return a, b


def shingle_hashes(words_per_doc: Sequence[Sequence[str]], ngram: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of several documents, concatenated, and the shingle count of each document."""
    import pandas as pd

    counts = np.fromiter((len(w) for w in words_per_doc), dtype=np.int64, count=len(words_per_doc))
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.uint64), np.zeros(len(words_per_doc), np.int64)
    flat = np.empty(total, dtype=object)
    pos = 0
    for w in words_per_doc:
        flat[pos:pos + len(w)] = w
        pos += len(w)
    wh = pd.util.hash_array(flat, categorize=False).astype(np.uint64, copy=False)
    k = _constants(ngram, 7)
    ends = np.cumsum(counts)
    starts = ends - counts
    n_sh = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    out = np.empty(int(n_sh.sum()), dtype=np.uint64)
    with np.errstate(over="ignore"):
        # full n-grams, computed over the whole flat array then masked to those inside one document
        if total >= ngram:
            acc = np.zeros(total - ngram + 1, dtype=np.uint64)
            for j in range(ngram):
                acc += wh[j:total - ngram + 1 + j] * k[j]
            full = _mix(acc)
        else:
            full = np.zeros(0, np.uint64)
        o = 0
        for s, c, m in zip(starts.tolist(), counts.tolist(), n_sh.tolist()):
            if m == 0:
                continue
            if c >= ngram:
                out[o:o + m] = full[s:s + m]
            else:  # short document: one shingle of all its words
                acc1 = np.uint64(0)
                for j in range(c):
                    acc1 += wh[s + j] * k[j]
                out[o] = _mix(np.array([acc1], dtype=np.uint64))[0]
            o += m
    return out, n_sh


def signatures(docs_or_texts: Iterable, num_perm: int = 128, seed: int = 1, ngram: int = 5) -> np.ndarray:
    """MinHash signatures, shape ``(n, num_perm)`` uint32; a document without words gets all :data:`EMPTY`.

    Accepts documents (dicts with ``texts``) or plain strings.
    """
    texts = [x if isinstance(x, str) else doc_text(x) for x in docs_or_texts]
    words = [tokenize(t) for t in texts]
    a, b = permutations(num_perm, seed)
    sig = np.full((len(texts), num_perm), EMPTY, dtype=np.uint32)
    sh, n_sh = shingle_hashes(words, ngram)
    if sh.size == 0:
        return sig
    doc_ids = np.flatnonzero(n_sh)
    counts = n_sh[doc_ids]
    ends = np.cumsum(counts)
    starts = ends - counts
    # group documents into chunks of about _CHUNK shingles (a document is never split)
    i = 0
    n = len(doc_ids)
    # (num_perm x shingles) blocks: each hash function's values of a document are contiguous, so the per-document
    # minimum (reduceat along the last axis) runs ~4x faster than over (shingles x num_perm) rows
    buf = np.empty((num_perm, min(_CHUNK, sh.size)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        while i < n:
            j = int(np.searchsorted(ends, starts[i] + _CHUNK, side="right"))
            j = max(j, i + 1)
            lo, hi = int(starts[i]), int(ends[j - 1])
            if hi - lo > buf.shape[1]:  # one document longer than a chunk
                buf = np.empty((num_perm, hi - lo), dtype=np.uint64)
            block = buf[:, :hi - lo]
            np.multiply(a[:, None], sh[None, lo:hi], out=block)
            block += b[:, None]
            # the high 32 bits are monotone in the 64-bit value: take the minimum first, shift once per document
            mins = np.minimum.reduceat(block, (starts[i:j] - lo).astype(np.int64), axis=1)
            sig[doc_ids[i:j]] = (mins.T >> np.uint64(32)).astype(np.uint32)
            i = j
    return sig


def is_empty(sig: np.ndarray) -> np.ndarray:
    """Rows that are the signature of a document without words."""
    return np.all(sig == EMPTY, axis=1)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """LSH band keys, shape ``(n, bands)`` uint64 (the band index is mixed in, so keys of different bands differ)."""
    if bands * rows > sig.shape[1]:
        raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {sig.shape[1]}")
    k = _constants(rows, 11)
    out = np.empty((sig.shape[0], bands), dtype=np.uint64)
    s64 = sig.astype(np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            acc = np.full(sig.shape[0], np.uint64(band + 1) * np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
            for r in range(rows):
                acc = _mix(acc ^ (s64[:, band * rows + r] * k[r]))
            out[:, band] = acc
    return out


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature values (row-wise for 2-D inputs): an unbiased estimate of the Jaccard index."""
    return np.mean(np.asarray(sig_a) == np.asarray(sig_b), axis=-1)


def shingle_set(text: str, ngram: int = 5) -> set[tuple[str, ...]]:
    """Exact shingle set (for tests and evaluation): the Jaccard index the signatures estimate."""
    w = tokenize(text)
    if not w:
        return set()
    if len(w) < ngram:
        return {tuple(w)}
    return {tuple(w[i:i + ngram]) for i in range(len(w) - ngram + 1)}


def jaccard(a: str, b: str, ngram: int = 5) -> float:
    sa, sb = shingle_set(a, ngram), shingle_set(b, ngram)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """Probability that two documents of Jaccard ``s`` share a band key."""
    return 1.0 - (1.0 - s ** rows) ** bands
