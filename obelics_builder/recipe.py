"""Recipes (pipelines/*.yaml) and filter configs (filters/*.yaml): loading, defaults, validation.

What each may hold (every key, its type and range) is :mod:`obelics_builder.config_schema`; the loaders here check
a file against it before returning it, and raise every problem of the file at once as one :class:`ConfigError`."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from . import config_schema
from .errors import ConfigError, did_you_mean
from .resources import FILTERS_DIR, PIPELINES_DIR, find_config

#: the recipe ``crawl`` uses without ``--recipe``
DEFAULT_RECIPE = "obelics"


def display(path: Path) -> str:
    """A config file as messages name it: as the user gave it, or where a packaged name was found."""
    return str(path)


def config_problems(data: dict, kind: str, path: Path) -> list[str]:
    """Every problem of a loaded recipe or filter config (``kind``: "recipe" or "filters", see
    :mod:`obelics_builder.config_schema`), each line ``FILE: key.path: message``; a filter config's word lists
    are also looked up (and made absolute in ``data``) when its ``wordlists`` section is well formed."""
    found = config_schema.problems(data, kind)
    if kind == "filters" and not any(p.startswith("wordlists") for p in found):
        found += _resolve_wordlists(data, path)
    return [f"{display(path)}: {p}" for p in found]


def _resolve_wordlists(cfg: dict, path: Path) -> list[str]:
    """Word-list paths made absolute (relative to the config's folder, falling back to the packaged ``filters/``
    folder); a list that names no file is a problem."""
    lists = cfg.get("wordlists") or {}
    missing = []
    for key, rel in list(lists.items()):
        if rel is None or str(key).startswith("_"):
            continue
        p = Path(rel)
        if not p.is_absolute():
            candidates = [path.parent / p, FILTERS_DIR / p]
            p = next((c for c in candidates if c.exists()), candidates[0])
        lists[key] = str(p)
        if not p.is_file():
            missing.append(f"wordlists.{key}: no such file: {rel}" + (f" (looked for {p})" if str(p) != rel else ""))
    cfg["wordlists"] = lists
    return missing


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
            raise ConfigError(f"extract: unknown key(s) {', '.join(unknown)}{did_you_mean(unknown[0], sorted(known))} "
                              f"(known: {', '.join(sorted(known))})")
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


def packaged_filters() -> list[str]:
    """Names of the filter configs shipped with the package (``--filters NAME``)."""
    return sorted(p.stem for p in FILTERS_DIR.glob("*.yaml"))


def find_filters(name_or_path: str | Path) -> Path:
    """The file of a filter config given as a path or a packaged name, or a ConfigError listing the packaged ones."""
    try:
        return find_config(name_or_path, FILTERS_DIR)
    except FileNotFoundError:
        raise ConfigError(f"no filter config {str(name_or_path)!r}: give a YAML file or a packaged name "
                          f"({', '.join(packaged_filters())})") from None


def load_filters(name_or_path: str | Path = "obelics", over: dict | None = None) -> dict:
    """Load a filter config; word-list paths become absolute (relative to the config's folder, falling back to
    the packaged ``filters/`` folder), and ``_path`` records where it came from.

    With ``over`` (a loaded filter config: the recipe's, or the one a crawl output ran with), a file without a
    ``name`` is an overlay, merged over it: a config that sets only a few thresholds keeps every other value of
    ``over``, so the stored scores stay valid.  A file with a ``name`` (the packaged configs, the tuning notebook's)
    is a whole config and is used as written, so ``--filters obelics`` means the reference thresholds, not them
    mixed with the recipe's structure rules.  A missing file is a ConfigError, and so is a file with any problem
    (unknown key or check, wrong type, value out of range, min above max, a word list that names no file): every
    problem of the file at once, checked against :mod:`obelics_builder.config_schema` (the file as written, before
    the merge)."""
    path = find_filters(name_or_path)
    cfg = load_yaml(path)
    found = config_problems(cfg, "filters", path)
    if found:
        raise ConfigError(found)
    base = path.parent
    for section, key in (("perplexity", "model"), ("perplexity", "sentencepiece"), ("lang_id", "model")):
        value = (cfg.get(section) or {}).get(key)
        if value and not Path(value).is_absolute() and (base / value).exists():
            cfg[section][key] = str(base / value)
    if over is not None and not cfg.get("name"):
        merged = copy.deepcopy({k: v for k, v in over.items() if k != "_path"})
        cfg = _deep_update(merged, cfg)
    cfg["_path"] = str(path)
    return cfg


def load_recipe(name_or_path: str | Path = DEFAULT_RECIPE, overrides: dict[str, Any] | None = None,
                check_extractor: bool = True) -> dict:
    """Load a recipe and its filter config (under ``recipe["filters_config"]``).  ``overrides`` (e.g. the command
    line's ``--mode`` as ``{"extract": {"mode": ...}}``) are merged over the file.  The ``extract`` section is filled
    in from :class:`ExtractConfig`, ``page_consent`` from :class:`~obelics_builder.optout.page.PageConsentConfig`, ``stages`` (when absent) with the built-in stages; ``_path``, ``_sha256`` (of the file) and ``name`` (the file's stem unless it has
    one) say which recipe it is.  An unknown name or bad YAML is a :class:`ConfigError`, and so is any problem of
    the recipe (checked against :mod:`obelics_builder.config_schema`) or of its filter config, all reported
    together; so is an optional extractor that is not installed (``check_extractor``: off for commands that do not
    extract)."""
    try:
        path = find_config(name_or_path, PIPELINES_DIR)
    except FileNotFoundError:
        raise ConfigError(f"no recipe {str(name_or_path)!r}: give a YAML file or a packaged recipe "
                          f"({', '.join(packaged_recipes())})") from None
    recipe = load_yaml(path)
    found = config_problems(recipe, "recipe", path)
    filters = recipe.get("filters", "obelics")
    filters_config = None
    if isinstance(filters, str) and filters:
        fpath = Path(filters)
        if not fpath.is_absolute() and (path.parent / fpath).is_file():
            filters = path.parent / fpath
        try:
            filters_config = load_filters(filters)
        except ConfigError as e:
            if e.problems[0].startswith("no filter config"):
                found += [f"{display(path)}: filters: {p}" for p in e.problems]
            else:
                found += e.problems  # they name the filter config's file
    if not found:  # the stages of one's own can be imported (here, before any work)
        from .plan.stages import import_problems

        found += [f"{display(path)}: {p}" for p in import_problems(recipe.get("stages"))]
    if found:
        raise ConfigError(found)
    if overrides:
        _deep_update(recipe, copy.deepcopy(overrides))
    try:
        extract = ExtractConfig.from_mapping(recipe.get("extract"))
    except ConfigError as e:
        raise ConfigError(f"{display(path)}: {e}") from None
    from .extract.stage import MODES, check_mode  # here, not at the top: the extract package imports this module

    if extract.mode not in MODES:
        raise ConfigError(f"{display(path)}: extract.mode: unknown value {extract.mode!r} "
                          f"(choose from: {', '.join(sorted(MODES))})")
    if check_extractor:
        check_mode(extract.mode)  # an optional extractor (trafilatura) not installed: one line, before any work
    recipe["extract"] = extract.as_dict()
    from .optout.page import PageConsentConfig

    try:
        recipe["page_consent"] = PageConsentConfig.from_mapping(recipe.get("page_consent")).as_dict()
    except ConfigError as e:
        raise ConfigError(f"{display(path)}: {e}") from None
    if recipe.get("stages") is None:  # the built-in plan (run.json records the order a run had)
        from .plan.builtin import STAGES

        recipe["stages"] = list(STAGES)
    recipe.setdefault("name", path.stem)
    recipe["_path"] = str(path)
    recipe["_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    recipe["filters_config"] = filters_config
    return recipe


def check_file(path: str | Path, kind: str | None = None) -> str:
    """Check one recipe or filter config file as the commands that take it would (``kind``: "recipe" or "filters";
    guessed from its keys, then its folder, when None).  Returns the kind; a problem is a :class:`ConfigError`
    (all of them).  A recipe's filter config is checked with it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: {'is a folder, not a file' if p.is_dir() else 'no such file'}")
    data = load_yaml(p)
    kind = kind or config_schema.guess_kind(data, str(p))
    if kind is None:
        raise ConfigError(f"{path}: cannot tell whether this is a recipe or a filter config (its keys are "
                          f"neither's): give --kind recipe or --kind filters")
    if kind == "recipe":
        load_recipe(p, check_extractor=False)
    else:
        load_filters(p)
    return kind


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
    overrides, e.g. ``--mode``, ``--optout-list``) and the filter config it ran with (the stored effective config:
    a ``filter --config`` run records the merged one; older outputs: the file at the stored path), with
    ``filters`` merged over it (keys ``filters`` leaves out keep the run's values).
    Output folders written before the effective recipe was stored fall back to loading the recipe file."""
    stored = info.get("recipe_config")
    if stored is not None:
        recipe = copy.deepcopy(stored)
    else:
        recipe = load_recipe(info["recipe"], check_extractor=False)
    if isinstance(info.get("filters_config"), dict):  # the effective config, stored since merges were recorded
        ran_with = copy.deepcopy(info["filters_config"])
    else:
        recorded = info.get("filters") or recipe.get("filters", "obelics")
        try:
            ran_with = load_filters(recorded)
        except ConfigError as e:
            raise ConfigError([f"the filter config this output ran with: {p}" for p in e.problems]) from None
    recipe["filters_config"] = load_filters(filters, over=ran_with) if filters else ran_with
    return recipe
