"""Perceptual hashes and run-wide near-duplicate grouping.

* :func:`phash_hex` — the 64-bit DCT pHash of :mod:`imagehash` as 16 hex digits (``None`` when it cannot be
  computed).
* :func:`near_duplicate_groups` — groups of images whose pHashes are within ``max_distance`` bits (Hamming), found
  without comparing every pair: the 64 bits are split into ``max_distance + 1`` bands; by the pigeonhole principle
  two hashes at distance <= d agree exactly on at least one band, so only hashes sharing a band value are compared
  (then verified with a popcount) and joined with union-find.  Identical hashes collapse first, so a flood of blank
  images costs nothing.  Each group is named by its smallest sha256 (or URL when there is no sha256); the member
  with the smallest ``(sha256, url)`` is the representative, every other member is a near-duplicate.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Iterator

from PIL import Image


def phash_hex(im: Image.Image) -> str | None:
    import imagehash

    try:
        return str(imagehash.phash(im))
    except Exception:
        return None


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _bands(n_bands: int, bits: int = 64) -> list[tuple[int, int]]:
    """``[(shift, mask)]`` splitting ``bits`` into ``n_bands`` contiguous bands of near-equal width."""
    n_bands = max(1, min(n_bands, bits))
    base, extra = divmod(bits, n_bands)
    out, shift = [], 0
    for i in range(n_bands):
        width = base + (1 if i < extra else 0)
        out.append((shift, (1 << width) - 1))
        shift += width
    return out


def hashed_rows(rows: Iterable[tuple[str, str | None, str | None]]) -> Iterator[tuple[str, str, int]]:
    """``(url, sha256, phash_hex)`` rows -> ``(url, key, hash)`` for the rows with a valid pHash; the key is the
    sha256, else the URL (the identity near-duplicate grouping works on)."""
    for url, sha, ph in rows:
        if not ph:
            continue
        try:
            h = int(ph, 16)
        except ValueError:
            continue
        yield url, sha or url, h


def near_duplicate_groups(rows: Iterable[tuple[str, str | None, str | None]], max_distance: int = 4
                          ) -> dict[str, tuple[str, bool]]:
    """``rows``: ``(url, sha256, phash_hex)``.  Returns ``url -> (group, is_near_duplicate)`` for hashed rows.

    Rows without a pHash are left out.  ``max_distance < 0`` disables grouping (every row its own group).
    """
    items = list(hashed_rows(rows))
    # union-find over distinct hash values
    values = sorted({h for _, _, h in items})
    parent = {h: h for h in values}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    if max_distance >= 0 and len(values) > 1 and max_distance > 0:
        for shift, mask in _bands(max_distance + 1):
            buckets: dict[int, list[int]] = defaultdict(list)
            for h in values:
                buckets[(h >> shift) & mask].append(h)
            for members in buckets.values():
                if len(members) < 2:
                    continue
                for i, a in enumerate(members):
                    for b in members[i + 1:]:
                        if hamming(a, b) <= max_distance:
                            union(a, b)
    # groups of rows (rows with the same hash are always one group when max_distance >= 0)
    groups: dict[object, list[tuple[str, str]]] = defaultdict(list)
    for url, key, h in items:
        root = find(h) if max_distance >= 0 else (url,)
        groups[root].append((key, url))
    out: dict[str, tuple[str, bool]] = {}
    for members in groups.values():
        members.sort()
        name = members[0][0]
        rep_url = members[0][1]
        for key, url in members:
            out[url] = (name, url != rep_url)
    return out
