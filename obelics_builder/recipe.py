"""Recipes (pipelines/*.yaml) and filter configs (filters/*.yaml): loading, defaults, validation."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .resources import FILTERS_DIR, PIPELINES_DIR, find_config

#: the recipe ``crawl`` uses without ``--recipe``
DEFAULT_RECIPE = "obelics"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ExtractConfig:
    """A recipe's ``extract`` section.  These defaults are the defaults of every entry point (``crawl``, ``extract``,
    ``extract_record``, the stage), so a recipe without the section runs our extractor."""

    #: ``default`` (obelics-builder's extractor), ``obelics`` (the OBELICS reference rules, as in the 2023 build) or
    #: ``trafilatura`` (trafilatura 2.3 with images, an optional extra)
    mode: str = "default"
    #: a page that takes longer is dropped with reason ``timeout`` (0 or less: no budget)
    page_time_budget_s: float = 5.0

    @classmethod
    def from_mapping(cls, section: dict | None) -> "ExtractConfig":
        """The section as given in a recipe (missing keys take the defaults above); a mistake is a ConfigError."""
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ConfigError(f"extract: expected a mapping, got {type(section).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"extract: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = {**asdict(cls()), **section}
        if not isinstance(values["mode"], str) or not values["mode"]:
            raise ConfigError(f"extract.mode: expected a mode name, got {values['mode']!r}")
        budget = values["page_time_budget_s"]
        if isinstance(budget, bool) or not isinstance(budget, (int, float)):
            raise ConfigError(f"extract.page_time_budget_s: expected seconds, got {budget!r}")
        return cls(mode=values["mode"], page_time_budget_s=float(budget))

    def as_dict(self) -> dict:
        return asdict(self)


def packaged_recipes() -> list[str]:
    """Names of the recipes shipped with the package (``--recipe NAME``)."""
    return sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml"))


def _deep_update(base: dict, override: dict) -> dict:
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})".replace("\n", " ")) from None
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


def load_recipe(name_or_path: str | Path = DEFAULT_RECIPE, overrides: dict[str, Any] | None = None,
                check_extractor: bool = True) -> dict:
    """Load a recipe and its filter config (under ``recipe["filters_config"]``).  ``overrides`` (e.g. the command
    line's ``--mode`` as ``{"extract": {"mode": ...}}``) are merged over the file.  The ``extract`` section is filled
    in from :class:`ExtractConfig`; ``_path``, ``_sha256`` (of the file) and ``name`` (the file's stem unless it has
    one) say which recipe it is.  An unknown name, bad YAML or a bad section is a :class:`ConfigError`, and so is an
    optional extractor that is not installed (``check_extractor``: off for commands that do not extract)."""
    try:
        path = find_config(name_or_path, PIPELINES_DIR)
    except FileNotFoundError:
        raise ConfigError(f"no recipe {str(name_or_path)!r}: give a YAML file or a packaged recipe "
                          f"({', '.join(packaged_recipes())})") from None
    recipe = load_yaml(path)
    if overrides:
        _deep_update(recipe, copy.deepcopy(overrides))
    try:
        extract = ExtractConfig.from_mapping(recipe.get("extract"))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    from .extract.stage import MODES, check_mode  # here, not at the top: the extract package imports this module

    if extract.mode not in MODES:
        raise ConfigError(f"{path}: unknown extract.mode {extract.mode!r} (choose from: {', '.join(sorted(MODES))})")
    if check_extractor:
        check_mode(extract.mode)  # an optional extractor (trafilatura) not installed: one line, before any work
    recipe["extract"] = extract.as_dict()
    recipe.setdefault("name", path.stem)
    recipe["_path"] = str(path)
    recipe["_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    filters = recipe.get("filters", "obelics")
    fpath = Path(str(filters))
    if not fpath.is_absolute() and (path.parent / fpath).is_file():
        filters = path.parent / fpath
    recipe["filters_config"] = load_filters(filters)
    return recipe


def recipe_provenance(recipe: dict) -> dict:
    """Which recipe and extractor produce the data, for ``run.json``, ``stats.json`` and the dataset card:
    ``recipe`` (path), ``recipe_name``, ``recipe_sha256`` (of the recipe file) and ``extract_mode`` (after
    ``--mode``)."""
    path = recipe.get("_path")
    return {
        "recipe": path,
        "recipe_name": recipe.get("name") or (Path(path).stem if path else None),
        "recipe_sha256": recipe.get("_sha256"),
        "extract_mode": ExtractConfig.from_mapping(recipe.get("extract")).mode,
    }


def recipe_for_run(info: dict, filters: str | Path | None = None) -> dict:
    """The recipe a crawl ran with, from its ``OUT/run.json``: the stored effective recipe (with the command line's
    overrides, e.g. ``--mode``, ``--optout-list``), and its filter config reloaded from ``filters`` or the stored path.
    Output folders written before the effective recipe was stored fall back to loading the recipe file."""
    stored = info.get("recipe_config")
    if stored is not None:
        recipe = copy.deepcopy(stored)
    else:
        recipe = load_recipe(info["recipe"], check_extractor=False)
    recipe["filters_config"] = load_filters(filters or info.get("filters") or recipe.get("filters", "obelics"))
    return recipe
