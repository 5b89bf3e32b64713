"""Image bytes by URL for a stage of one's own (``ctx.images`` of :mod:`obelics_builder.plan.custom`).

One process's index of the image table's URLs (URL -> file, row group, row), built once from the ``url`` column,
then only the row groups a batch needs are read (an LRU cache bounded in bytes keeps the recent ones).  The index
grows with the table (fine for millions of rows, not for a whole dump's: a URL-hash keyed lookup like
:mod:`obelics_builder.dataset.image_bytes` would be the next step); the dataset shards no longer use it.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import pyarrow.parquet as pq


class ImageStore:
    """Image bytes by URL from ``OUT/images/table/part-*.parquet`` (rows with ``data`` set are usable).

    Builds a URL -> (file, row group, row) index from the ``url`` column once, then reads only the row groups a
    batch of documents needs (a small LRU cache bounded in bytes keeps recently used row groups).
    """

    def __init__(self, out: str | Path, cache_bytes: int = 512 * 2**20) -> None:
        self.files = sorted((Path(out) / "images" / "table").glob("part-*.parquet"))
        self.index: dict[str, tuple[int, int, int]] = {}
        self.cache: OrderedDict[tuple[int, int], tuple[list, list, int]] = OrderedDict()
        self.cache_bytes = cache_bytes
        self.cached = 0
        self._pf: dict[int, pq.ParquetFile] = {}
        for fi, path in enumerate(self.files):
            pf = pq.ParquetFile(path)
            if "url" not in pf.schema_arrow.names or "data" not in pf.schema_arrow.names:
                continue
            self._pf[fi] = pf
            for rg in range(pf.num_row_groups):
                urls = pf.read_row_group(rg, columns=["url"]).column("url").to_pylist()
                for row, url in enumerate(urls):
                    if url is not None and url not in self.index:
                        self.index[url] = (fi, rg, row)

    def __len__(self) -> int:
        return len(self.index)

    def _row_group(self, fi: int, rg: int) -> tuple[list, list]:
        key = (fi, rg)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key][:2]
        pf = self._pf[fi]
        cols = ["data", "format"] if "format" in pf.schema_arrow.names else ["data"]
        t = pf.read_row_group(rg, columns=cols, use_threads=False)  # (Arrow's threads: ~2x the CPU for the bytes)
        data = t.column("data").to_pylist()
        fmts = t.column("format").to_pylist() if "format" in cols else [None] * len(data)
        size = t.nbytes
        self.cache[key] = (data, fmts, size)
        self.cached += size
        while self.cached > self.cache_bytes and len(self.cache) > 1:
            _, (_d, _f, n) = self.cache.popitem(last=False)
            self.cached -= n
        return data, fmts

    def get_many(self, urls: Iterable[str]) -> dict[str, tuple[bytes, str | None]]:
        """``{url: (bytes, format)}`` for the URLs whose bytes are stored."""
        wanted: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for url in set(u for u in urls if u):
            loc = self.index.get(url)
            if loc is not None:
                wanted.setdefault(loc[:2], []).append((url, loc[2]))
        found: dict[str, tuple[bytes, str | None]] = {}
        for key in sorted(wanted):
            data, fmts = self._row_group(*key)
            for url, row in wanted[key]:
                if data[row]:
                    found[url] = (data[row], fmts[row])
        return found
