"""Recipes (pipelines/*.yaml) and filter configs (filters/*.yaml): loading, defaults, validation."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .resources import FILTERS_DIR, PIPELINES_DIR, find_config


class ConfigError(ValueError):
    pass


def _deep_update(base: dict, override: dict) -> dict:
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_filters(name_or_path: str | Path = "obelics") -> dict:
    """Load a filter config; word-list paths become absolute (relative to the config's folder, falling back to
    the packaged ``filters/`` folder), and ``_path`` records where it came from."""
    path = find_config(name_or_path, FILTERS_DIR)
    cfg = load_yaml(path)
    base = path.parent
    lists = cfg.get("wordlists") or {}
    for key, rel in list(lists.items()):
        if rel is None:
            continue
        p = Path(rel)
        if not p.is_absolute():
            candidates = [base / p, FILTERS_DIR / p]
            p = next((c for c in candidates if c.exists()), candidates[0])
        lists[key] = str(p)
    cfg["wordlists"] = lists
    for section, key in (("perplexity", "model"), ("perplexity", "sentencepiece"), ("lang_id", "model")):
        value = (cfg.get(section) or {}).get(key)
        if value and not Path(value).is_absolute() and (base / value).exists():
            cfg[section][key] = str(base / value)
    cfg["_path"] = str(path)
    return cfg


def load_recipe(name_or_path: str | Path = "obelics", overrides: dict[str, Any] | None = None) -> dict:
    """Load a recipe and its filter config (under ``recipe["filters_config"]``)."""
    path = find_config(name_or_path, PIPELINES_DIR)
    recipe = load_yaml(path)
    if overrides:
        _deep_update(recipe, copy.deepcopy(overrides))
    recipe["_path"] = str(path)
    filters = recipe.get("filters", "obelics")
    fpath = Path(str(filters))
    if not fpath.is_absolute() and (path.parent / fpath).is_file():
        filters = path.parent / fpath
    recipe["filters_config"] = load_filters(filters)
    return recipe


def recipe_for_run(info: dict, filters: str | Path | None = None) -> dict:
    """The recipe a crawl ran with, from its ``OUT/run.json``: the stored effective recipe (with the command line's
    overrides, e.g. ``--mode``, ``--optout-list``), and its filter config reloaded from ``filters`` or the stored path.
    Output folders written before the effective recipe was stored fall back to loading the recipe file."""
    stored = info.get("recipe_config")
    if stored is not None:
        recipe = copy.deepcopy(stored)
    else:
        recipe = load_recipe(info["recipe"])
    recipe["filters_config"] = load_filters(filters or info.get("filters") or recipe.get("filters", "obelics"))
    return recipe
