"""Apply the image table to documents: keep usable images (with their measured metadata), drop the rest.

For each image position the table row of its URL decides:

* no row -> ``image:not_fetched``; a row with a ``reason`` -> ``image:<reason>`` (fetch error, decode rejection or
  a filter of :mod:`.table`);
* a usable row -> ``original_width``, ``original_height``, ``format``, ``sha256`` are added to the metadata, any
  ``"NN%"`` rendered size becomes ``round(original * NN / 100)`` (deleted when unparsable, reference §3.2), and
  the §4.2 size rule is applied to the rendered sizes when present -> ``image:rendered_size``.

* the table's ``nsfw`` score, ``phash`` and near-duplicate marks are copied into the metadata (``nsfw``,
  ``phash``, ``phash_group``, ``near_duplicate``; ``stored_width``/``stored_height`` when the bytes were resized);
  with ``image.drop_near_duplicates: true`` a near-duplicate image (not its group's representative) is removed
  -> ``image:near_duplicate``.

Removed positions go through :func:`obelics_builder.schema.keep_positions` so every aligned ``node_*``/``image_*``
list stays aligned.  One document rule runs here, the OBELICS NSFW rule: a document with any kept image whose
``nsfw`` score is over ``image.nsfw.threshold`` is removed (reason ``nsfw``).  When no image of the batch carries a
score the stage notes loudly that NSFW filtering is disabled (see :mod:`.nsfw`).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from ..schema import keep_positions
from ..stats import StageContext
from .nsfw import nsfw_config
from .table import image_filter_config

_RENDERED = (("rendered_width", "original_width"), ("rendered_height", "original_height"))


def _image_cfg_from_ctx(ctx: StageContext) -> dict:
    cfg = ctx.config or {}
    if isinstance(cfg.get("image"), dict):
        return image_filter_config(cfg)
    fc = cfg.get("filters_config")
    if isinstance(fc, dict) and isinstance(fc.get("image"), dict):
        return image_filter_config(fc)
    return image_filter_config({k: cfg[k] for k in ("min_size", "max_size") if k in cfg})


def convert_rendered(value: Any, original: int) -> int | None:
    """A rendered size as an int in px: ints stay, ``"NN%"`` -> ``round(original*NN/100)``; None if unparsable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 1e9 else None
    if isinstance(value, str):
        v = value.strip()
        try:
            if v.endswith("%"):
                pct = float(v[:-1].strip())
                if pct != pct or abs(pct) > 1e6:
                    return None
                return round(original * pct / 100)
            if v.lower().endswith("px"):
                v = v[:-2].strip()
            return int(float(v)) if v else None
        except (ValueError, OverflowError):
            return None
    return None


def apply_image_table(docs: list[dict], table_by_url: dict[str, dict], ctx: StageContext,
                      image_cfg: dict | None = None) -> list[dict]:
    """Stage body: measure/keep or remove every image position (see module docstring)."""
    cfg = image_filter_config(image_cfg) if image_cfg is not None else _image_cfg_from_ctx(ctx)
    lo, hi = int(cfg["min_size"]), int(cfg["max_size"])
    ncfg = nsfw_config({"image": cfg})
    nsfw_on = bool(ncfg.get("enabled", True))
    threshold = float(ncfg["threshold"])
    drop_near = bool(cfg.get("drop_near_duplicates", False))
    removed: Counter = Counter()
    kept_docs: list[dict] = []
    scored = unscored = 0
    for doc in docs:
        texts = doc["texts"]
        keep = [True] * len(texts)
        for i, text in enumerate(texts):
            if text is not None:
                continue
            url = doc["images"][i]
            row = table_by_url.get(url) if url else None
            if row is None:
                reason = "not_fetched"
            elif row.get("reason"):
                reason = str(row["reason"])
            else:
                reason = None
                meta = doc["metadata"][i]
                if not isinstance(meta, dict):
                    meta = doc["metadata"][i] = {"src": url}
                meta["original_width"] = int(row["width"])
                meta["original_height"] = int(row["height"])
                meta["format"] = row["format"]
                meta["sha256"] = row["sha256"]
                for col, mkey in (("phash", "phash"), ("phash_group", "phash_group"),
                                  ("image_near_duplicate", "near_duplicate"), ("nsfw", "nsfw")):
                    if row.get(col) is not None:
                        meta[mkey] = round(float(row[col]), 4) if col == "nsfw" else row[col]
                if row.get("stored_width") and (row["stored_width"], row.get("stored_height")) != (
                        row["width"], row["height"]):
                    meta["stored_width"], meta["stored_height"] = int(row["stored_width"]), int(row["stored_height"])
                if drop_near and row.get("image_near_duplicate"):
                    reason = "near_duplicate"
                for rkey, okey in _RENDERED:
                    if rkey not in meta:
                        continue
                    px = convert_rendered(meta[rkey], meta[okey])
                    if px is None:
                        del meta[rkey]
                        continue
                    meta[rkey] = px
                    if not lo <= px <= hi:
                        reason = "rendered_size"
            if reason is not None:
                keep[i] = False
                removed[f"image:{reason}"] += 1
        if not all(keep):
            keep_positions(doc, keep)
        worst = None
        if nsfw_on:
            for i, url in enumerate(doc["images"]):
                if url is None:
                    continue
                s = (doc["metadata"][i] or {}).get("nsfw")
                if s is None:
                    unscored += 1
                else:
                    scored += 1
                    worst = s if worst is None else max(worst, s)
        if worst is not None and worst > threshold:
            ctx.remove("nsfw")
        else:
            kept_docs.append(doc)
    for reason, n in sorted(removed.items()):
        ctx.remove(reason, n, unit="images")
    if not nsfw_on:
        ctx.note("NSFW filtering disabled by config (image.nsfw.enabled: false)")
    elif unscored and not scored:
        ctx.note("NSFW filtering DISABLED: no kept image carries an nsfw score (no detector installed? "
                 "pip install 'obelics-builder[nsfw]')")
    return kept_docs


def apply_images_stage(docs: list[dict], ctx: StageContext) -> list[dict]:
    """The same as a plain stage: the table comes from ``ctx.resources["image_table"]`` (url -> row)."""
    table = ctx.resources.get("image_table")
    if table is None:
        raise KeyError("apply_images_stage needs ctx.resources['image_table'] (url -> row)")
    return apply_image_table(docs, table, ctx)
