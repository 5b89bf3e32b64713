"""The fetch units of the image-URL plan, per pandas partition: the host of each URL, the unit of each URL, and the
units' files.  Shared by the Dask graph of ``reductions.image_url_plan`` and its in-process path
(``arrow_reductions.url_plan``), so both give the same units."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa


def host_column(df):
    from ..images.hosts import host_of

    return df.assign(host=df["image_url"].map(host_of).astype(df["image_url"].dtype))


def assign_units(df, buckets: int, split: dict):
    """The fetch unit of each URL: a split host's share (by URL hash within the host), else its host's bucket."""
    import numpy as np
    import pandas as pd

    h_host = pd.util.hash_pandas_object(df["host"], index=False).to_numpy(np.uint64)
    unit = (h_host % np.uint64(max(buckets, 1))).astype(np.int64)
    if split:
        first = df["host"].map({h: f for h, (f, _) in split.items()})
        big = first.notna().to_numpy()
        if big.any():
            k = df["host"].map({h: n for h, (_, n) in split.items()}).to_numpy()[big].astype(np.uint64)
            h_url = pd.util.hash_pandas_object(df["image_url"][big], index=False).to_numpy(np.uint64)
            unit[big] = first.to_numpy()[big].astype(np.int64) + (h_url % k).astype(np.int64)
    return df.assign(unit=unit)[["image_url", "host", "unit"]]


def write_units(df, folder: str, shares: dict):
    """Write each unit of a (shuffled) partition: ``bucket=B/urls.parquet``, sorted unique URLs; one small row per
    unit back."""
    import pandas as pd

    from ..images.ledger import urls_digest
    from ..io.parquet import write_table_atomic

    rows = []
    for bucket, g in df.groupby("unit", sort=True):
        urls = sorted(set(g["image_url"].tolist()))
        write_table_atomic(pa.table({"image_url": pa.array(urls, pa.string())}),
                           Path(folder) / f"bucket={int(bucket)}" / "urls.parquet")
        rows.append({"bucket": int(bucket), "urls": len(urls), "hosts": int(g["host"].nunique()),
                     "shares": int(shares.get(int(bucket), 1)), "digest": urls_digest(urls)})
    return pd.DataFrame(rows, columns=["bucket", "urls", "hosts", "shares", "digest"]).astype(
        {"bucket": "int64", "urls": "int64", "hosts": "int64", "shares": "int64", "digest": object})
