"""Recipes (pipelines/*.yaml) and filter configs (filters/*.yaml): loading, defaults, validation."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import did_you_mean
from .resources import FILTERS_DIR, PIPELINES_DIR, find_config

#: the recipe ``crawl`` uses without ``--recipe``
DEFAULT_RECIPE = "obelics"


class ConfigError(ValueError):
    """A recipe or filter config that cannot be used (missing, bad YAML, unknown key, bad value): a user mistake,
    shown by the command line as one line with exit code 2."""


#: top-level keys of a recipe (``_path``/``_sha256`` and other ``_`` keys are added by :func:`load_recipe`)
RECIPE_KEYS = ("name", "description", "filters", "filters_config", "read", "extract", "text_scores", "url_dedup",
               "near_dedup", "paragraph_dedup", "optout", "images", "write")
#: top-level keys of a filter config
FILTER_KEYS = ("name", "description", "wordlists", "node", "doc", "lang_id", "perplexity", "image", "final")
#: what a filter config's ``wordlists`` section may name
WORDLIST_KEYS = ("stopwords", "flagged_words", "common_words", "url_ban_words", "spam_words")
#: checks of the ``node`` and ``doc`` levels (besides the check names of ``quality.score.CHECKS``)
LEVEL_EXTRA_KEYS = {"node": ("standardize_whitespace",), "doc": ("number_images",)}
#: what one check may hold
CHECK_KEYS = ("enabled", "min", "max", "n", "languages", "min_words")
#: what ``image.nsfw`` may hold (besides the keys of ``images.nsfw.NSFW_DEFAULTS``)
NSFW_EXTRA_KEYS = ("model_path",)


def check_keys(section: dict, known, where: str) -> None:
    """A ConfigError for the first key of ``section`` not in ``known`` (``_`` keys excepted), with the closest
    known key as a suggestion."""
    for key in section:
        if str(key).startswith("_") or key in known:
            continue
        hint = did_you_mean(key, known) or f" (known: {', '.join(known)})"
        raise ConfigError(f"unknown key {str(key)!r} in {where}{hint}")


def check_filters(cfg: dict, where: str) -> None:
    """The keys of a filter config (top level, word lists, the checks of ``node`` and ``doc`` and what each holds)
    and the word-list files it names; ``where`` names the file in messages."""
    from .quality.score import CHECKS

    check_keys(cfg, FILTER_KEYS, where)
    for section in ("wordlists", "node", "doc", "lang_id", "perplexity", "image", "final"):
        if cfg.get(section) is not None and not isinstance(cfg[section], dict):
            raise ConfigError(f"{section!r} in {where}: expected a mapping, got {type(cfg[section]).__name__}")
    check_keys(cfg.get("wordlists") or {}, WORDLIST_KEYS, f"{where} (wordlists)")
    for level in ("node", "doc"):
        known = (*CHECKS, *LEVEL_EXTRA_KEYS[level])
        section = cfg.get(level) or {}
        check_keys(section, known, f"{where} ({level})")
        for check, value in section.items():
            if isinstance(value, dict):
                check_keys(value, CHECK_KEYS, f"{where} ({level}.{check})")
                for bound in ("min", "max"):
                    b = value.get(bound)
                    if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float))):
                        raise ConfigError(f"{level}.{check}.{bound} in {where}: expected a number, got {b!r}")
            elif check != "standardize_whitespace" and value is not None and not isinstance(value, bool):
                raise ConfigError(f"{level}.{check} in {where}: expected a mapping such as {{enabled: true, "
                                  f"max: 0.1}}, got {value!r}")
    nsfw = (cfg.get("image") or {}).get("nsfw")
    if isinstance(nsfw, dict):
        from .images.nsfw import NSFW_DEFAULTS

        check_keys(nsfw, (*NSFW_DEFAULTS, *NSFW_EXTRA_KEYS), f"{where} (image.nsfw)")


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


def load_filters(name_or_path: str | Path = "obelics", over: dict | None = None) -> dict:
    """Load a filter config; word-list paths become absolute (relative to the config's folder, falling back to
    the packaged ``filters/`` folder), and ``_path`` records where it came from.

    With ``over`` (a loaded filter config: the recipe's, or the one a crawl output ran with), the file is merged
    over it: a config that sets only a few thresholds keeps every other value of ``over``, so the stored scores
    stay valid.  A missing file, an unknown key (with a suggestion) or a missing word list is a ConfigError."""
    try:
        path = find_config(name_or_path, FILTERS_DIR)
    except FileNotFoundError:
        raise ConfigError(f"no filter config {str(name_or_path)!r}: give a YAML file or a packaged name "
                          f"({', '.join(packaged_filters())})") from None
    cfg = load_yaml(path)
    check_filters(cfg, path.name)
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
    for key, value in lists.items():
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"{path.name}: word list {key} = {value}: no such file")
    if over is not None:
        merged = copy.deepcopy({k: v for k, v in over.items() if k != "_path"})
        cfg = _deep_update(merged, cfg)
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
    check_keys(recipe, RECIPE_KEYS, path.name)
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
    try:
        recipe["filters_config"] = load_filters(filters)
    except ConfigError as e:
        raise ConfigError(f"{path.name} (filters: {filters}): {e}") from None
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
    overrides, e.g. ``--mode``, ``--optout-list``) and the filter config it ran with (the stored path), with
    ``filters`` merged over it (keys ``filters`` leaves out keep the run's values).
    Output folders written before the effective recipe was stored fall back to loading the recipe file."""
    stored = info.get("recipe_config")
    if stored is not None:
        recipe = copy.deepcopy(stored)
    else:
        recipe = load_recipe(info["recipe"], check_extractor=False)
    recorded = info.get("filters") or recipe.get("filters", "obelics")
    try:
        ran_with = load_filters(recorded)
    except ConfigError as e:
        raise ConfigError(f"the filter config this output ran with: {e}") from None
    recipe["filters_config"] = load_filters(filters, over=ran_with) if filters else ran_with
    return recipe
