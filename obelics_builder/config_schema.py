"""What a filter config (``filters/*.yaml``) and a recipe (``pipelines/*.yaml``) may hold: every key at every depth,
with its type and range, and :func:`problems` that checks a loaded file against it.

The schema is declarative: a :class:`Section` maps key names to specs (:class:`Flag`, :class:`Number`,
:class:`Text`, :class:`Texts`, another :class:`Section`, or :class:`AnyOf` several); a section may add rules that
look at several keys at once (``min <= max``, ``bands * rows <= num_perm``).  :func:`problems` walks a mapping and
returns every problem it finds, one line each, ``key.path: message``; ``recipe.load_recipe`` and
``recipe.load_filters`` raise them all together as one :class:`~obelics_builder.errors.ConfigError` whose lines
start with the file's name.  Unknown keys are named with the nearest valid one (``did you mean``).

Ratios are numbers in [0, 1]; counts are integers >= 0; n-gram sizes are integers >= 1; ``null`` is allowed where it
means "no limit" (a check's ``min``/``max``) or "none" (a model path, a word list).  Keys starting with ``_`` are
the loader's own (``_path``, ``_sha256``) and are not checked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from .errors import did_you_mean

from .quality.structure import KINDS as NODE_KINDS  # what a node check's ``kinds`` may list
#: Parquet codecs ``write.compression`` may name
COMPRESSIONS = ("none", "snappy", "gzip", "brotli", "lz4", "zstd")


# ---------------------------------------------------------------------------------------------------------------
# specs
# ---------------------------------------------------------------------------------------------------------------

def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


@dataclass(frozen=True)
class Spec:
    #: ``null`` is a valid value (it means "no limit" or "none")
    nullable: bool = False

    def check(self, value: Any, path: str) -> list[str]:
        if value is None:
            return [] if self.nullable else [f"{path}: expected {self.describe()}, got null"]
        return self._check(value, path)

    def _check(self, value: Any, path: str) -> list[str]:  # pragma: no cover - every spec overrides it
        raise NotImplementedError

    def describe(self) -> str:
        return "a value"


@dataclass(frozen=True)
class Flag(Spec):
    def _check(self, value, path):
        return [] if isinstance(value, bool) else [f"{path}: expected true or false, got {_show(value)}"]

    def describe(self):
        return "true or false"


@dataclass(frozen=True)
class Number(Spec):
    """A number (``integer``: a whole number) within ``lo``..``hi`` (``lo_open``: ``lo`` itself excluded)."""
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    lo_open: bool = False
    #: how the range reads in a message ("a ratio", "a count"); derived from the bounds when empty
    what: str = ""

    def describe(self):
        if self.what:
            return self.what
        kind = "an integer" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            return f"{kind} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{kind} <= {self.hi:g}"
        return kind

    def _check(self, value, path):
        ok_type = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or (isinstance(value, float) and not math.isfinite(value)):
            return [f"{path}: expected {self.describe()}, got {_show(value)}"]
        too_low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        too_high = self.hi is not None and value > self.hi
        if too_low or too_high:
            return [f"{path}: out of range: expected {self.describe()}, got {value!r}"]
        return []


@dataclass(frozen=True)
class Text(Spec):
    """A string; with ``choices`` (a tuple, or a function returning one, read when checking) one of them."""
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None

    def _choices(self) -> tuple[str, ...] | None:
        c = self.choices
        return tuple(c()) if callable(c) else c

    def describe(self):
        choices = self._choices()
        return f"one of {', '.join(choices)}" if choices else "a string"

    def _check(self, value, path):
        choices = self._choices()
        if not isinstance(value, str) or (not choices and not value):
            return [f"{path}: expected {self.describe() if choices else 'a non-empty string'}, got {_show(value)}"]
        if choices and value not in choices:
            return [f"{path}: unknown value {value!r}"
                    f"{did_you_mean(value, choices) or ' (choose from: ' + ', '.join(choices) + ')'}"]
        return []


@dataclass(frozen=True)
class Texts(Spec):
    """A list of strings (``item``: what each must be); ``one_ok``: a single string is accepted as a list of one."""
    item: Text = field(default_factory=Text)
    one_ok: bool = False
    #: the word for one unknown item in messages ("kind", "format")
    noun: str = "value"
    #: an empty list is refused (what it would mean is said another way, e.g. ``enabled: false``)
    non_empty: str | None = None

    def describe(self):
        return f"a list of {self.noun}s" + (f" ({', '.join(self.item._choices())})" if self.item.choices else "")

    def _check(self, value, path):
        if isinstance(value, str) and self.one_ok:
            value = [value]
        if not isinstance(value, list):
            return [f"{path}: expected {self.describe()}, got {_show(value)}"]
        if not value and self.non_empty:
            return [f"{path}: an empty list: {self.non_empty}"]
        out = []
        for i, v in enumerate(value):
            for p in self.item.check(v, f"{path}[{i}]"):
                out.append(p.replace(": unknown value", f": unknown {self.noun}", 1))
        return out


#: a rule over a whole section: (section value, its path) -> problems
Rule = Callable[[Mapping, str], list]


@dataclass(frozen=True)
class Section(Spec):
    """A mapping of known keys; ``noun`` names a key in messages ("key", "check")."""
    keys: Mapping[str, Spec] = field(default_factory=dict)
    noun: str = "key"
    rules: tuple[Rule, ...] = ()
    #: an example shown when the value is not a mapping
    example: str = ""

    def describe(self):
        return f"a mapping such as {self.example}" if self.example else "a mapping"

    def _check(self, value, path):
        if not isinstance(value, dict):
            return [f"{path}: expected {self.describe()}, got {_show(value)}"]
        out = []
        good = {}  # the keys without a problem: what the rules look at
        for key, v in value.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).startswith("_"):
                continue
            spec = self.keys.get(key)
            if spec is None:
                hint = did_you_mean(key, self.keys) or f" (known: {', '.join(self.keys)})"
                out.append(f"{where}: unknown {self.noun}{hint}")
                continue
            found = spec.check(v, where)
            if not found:
                good[key] = v
            out += found
        for rule in self.rules:
            out += rule(good, path)
        return out


@dataclass(frozen=True)
class StageSections(Spec):
    """A filter config's ``stages:``: the decisions of stages of one's own, a mapping of stage names to mappings
    (their keys are the stage's own, checked by its ``check`` hook when a recipe runs it)."""

    def describe(self):
        return "a mapping of stage names to mappings"

    def _check(self, value, path):
        if not isinstance(value, dict):
            return [f"{path}: expected {self.describe()} (stages: {{my_stage: {{min: 0.2}}}}), got {_show(value)}"]
        return [f"{path}.{name}: expected a mapping (the decisions of the stage {name}), got {_show(v)}"
                for name, v in value.items() if v is not None and not isinstance(v, dict)]


@dataclass(frozen=True)
class AnyOf(Spec):
    """One of several specs (e.g. a check: a mapping, or ``false`` to turn it off); the message of the first one
    is shown when none fits, unless the value has the type of a later one."""
    options: tuple[Spec, ...] = ()

    def describe(self):
        return " or ".join(o.describe() for o in self.options)

    def _check(self, value, path):
        found = []
        for option in self.options:
            p = option.check(value, path)
            if not p:
                return []
            found.append(p)
        for option, p in zip(self.options, found):  # the option of the value's type says the most
            if isinstance(option, Section) and isinstance(value, dict):
                return p
        return [f"{path}: expected {self.describe()}, got {_show(value)}"]


@dataclass(frozen=True)
class Off(Spec):
    """Only ``false`` (a check or section turned off)."""

    def describe(self):
        return "false"

    def _check(self, value, path):
        return [] if value is False else [f"{path}: expected false, got {_show(value)}"]


# ---------------------------------------------------------------------------------------------------------------
# rules over several keys
# ---------------------------------------------------------------------------------------------------------------

def ordered(lo: str, hi: str) -> Rule:
    """``lo`` <= ``hi`` when both are given."""
    def rule(section: Mapping, path: str) -> list[str]:
        a, b = section.get(lo), section.get(hi)
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
        if numbers and a > b:
            return [f"{path}: {lo} ({a!r}) is greater than {hi} ({b!r}): the check can never pass"
                    if lo == "min" else f"{path}: {lo} ({a!r}) is greater than {hi} ({b!r})"]
        return []
    return rule


def _bands_fit(section: Mapping, path: str) -> list[str]:
    bands, rows, perm = section.get("bands", 20), section.get("rows", 6), section.get("num_perm", 128)
    if all(isinstance(x, int) for x in (bands, rows, perm)) and bands * rows > perm:
        return [f"{path}: bands * rows ({bands} * {rows} = {bands * rows}) is more than num_perm ({perm})"]
    return []


# ---------------------------------------------------------------------------------------------------------------
# the filter config
# ---------------------------------------------------------------------------------------------------------------

RATIO = Number(lo=0, hi=1, what="a ratio in [0, 1]")
COUNT = Number(lo=0, integer=True, what="a count (an integer >= 0)")
POSITIVE = Number(lo=1, integer=True, what="an integer >= 1")
NGRAM = Number(lo=1, integer=True, what="an n-gram size (an integer >= 1)")
SECONDS = Number(lo=0, lo_open=True, what="seconds (a number > 0)")
PATH = Text(nullable=True)

#: what a check's ``min`` and ``max`` bound, per check (its score's range)
CHECK_VALUES: dict[str, Number] = {
    "number_words": COUNT,
    "char_repetition": RATIO,
    "word_repetition": RATIO,
    "special_characters": RATIO,
    "stopwords": RATIO,
    "flagged_words": RATIO,
    "punctuation": RATIO,
    "common_words": RATIO,
    "lang_id": RATIO,
    "perplexity": Number(lo=0, what="a perplexity (a number >= 0)"),
    "number_images": COUNT,  # doc level only: applied by the final stage
    "repeated": COUNT,  # node level only: earlier copies of the paragraph in its document
}
#: the score parameters a check has besides enabled/min/max/kinds
CHECK_PARAMS: dict[str, dict[str, Spec]] = {
    "char_repetition": {"n": NGRAM},
    "word_repetition": {"n": NGRAM},
    "punctuation": {"min_words": COUNT},
    "lang_id": {"languages": Texts(one_ok=True, noun="language")},
}
CHECK_KINDS = Texts(item=Text(choices=NODE_KINDS), noun="kind",
                    non_empty="a check for no kind would never apply (to turn it off, set enabled: false)")
#: ``doc.text_kinds``: the node kinds whose paragraphs make the text the doc checks read
DOC_TEXT_KINDS = Texts(item=Text(choices=NODE_KINDS), noun="kind",
                       non_empty="the doc checks would read no text (leave text_kinds out to read every kind)")


def check_spec(check: str, level: str = "node") -> Spec:
    """One node or doc check: ``{enabled, min, max, ...its parameters}`` (node checks also ``kinds``: a document
    has no kind), or ``false`` (off)."""
    bound = replace(CHECK_VALUES[check], nullable=True)  # null: no limit
    keys = {"enabled": Flag(), "min": bound, "max": bound, **CHECK_PARAMS.get(check, {})}
    if level == "node":
        keys["kinds"] = CHECK_KINDS
        keys["and"] = Section(keys={c: Section(keys={"min": replace(CHECK_VALUES[c], nullable=True),
                                                      "max": replace(CHECK_VALUES[c], nullable=True)},
                                               rules=(ordered("min", "max"),), example="{min: 0.001}")
                                    for c in CHECK_VALUES if c not in ("number_images", check)}, noun="check")
    return AnyOf(options=(Section(keys=keys, rules=(ordered("min", "max"),),
                                  example="{enabled: true, max: 0.1}"), Off()))


STRUCTURE = Section(keys={
    "enabled": Flag(),
    "heading_max_words": POSITIVE,
    "caption_max_words": POSITIVE,
    "headings_follow_section": Flag(),
})


def _knows(keys: Mapping, defaults: Iterable[str], where: str) -> None:
    """Every key the code has a default for is in the schema (a key added to the code but not here would make
    every file that sets it invalid): a programming error, caught by the tests."""
    missing = sorted(set(defaults) - set(keys))
    if missing:
        raise RuntimeError(f"config_schema does not know {', '.join(missing)} of {where}: add them")


@lru_cache(maxsize=1)
def filters_schema() -> Section:
    """The whole filter config (built on first use: the check names come from ``quality.score.CHECKS``)."""
    from .images.nsfw import NSFW_DEFAULTS
    from .quality.score import CHECKS, NODE_CHECKS

    from dataclasses import fields

    from .quality.structure import StructureConfig

    _knows(CHECK_VALUES, NODE_CHECKS, "quality.score.NODE_CHECKS")
    _knows(STRUCTURE.keys, [f.name for f in fields(StructureConfig)], "quality.structure.StructureConfig")
    node = {"standardize_whitespace": Flag(), "structure": STRUCTURE, **{c: check_spec(c) for c in NODE_CHECKS}}
    from .quality.prose import PROSE_CHECKS, ProseConfig

    prose = Section(keys={
        "kinds": Texts(item=Text(choices=NODE_KINDS), noun="kind", non_empty="the prose would be empty (leave "
                       "doc.prose out for the doc checks to read text_kinds)"),
        "min_words": COUNT,
        "checks": Texts(item=Text(choices=PROSE_CHECKS), noun="check"),
    })
    _knows(prose.keys, [f.name for f in fields(ProseConfig)], "quality.prose.ProseConfig")
    doc = {"number_images": check_spec("number_images", "doc"), "text_kinds": DOC_TEXT_KINDS, "prose": prose,
           **{c: check_spec(c, "doc") for c in CHECKS}}
    nsfw_keys = {"enabled": Flag(), "threshold": RATIO, "detector": Text(), "batch_size": POSITIVE,
                 "threads": POSITIVE, "model_path": PATH}
    _knows(nsfw_keys, NSFW_DEFAULTS, "images.nsfw.NSFW_DEFAULTS")
    from .align.stage import SCORES, AlignFilter

    image_text = {"min_similarity": Number(lo=-1, hi=1, nullable=True,
                                           what="a cosine similarity in [-1, 1] (null: keep every image)"),
                  "score": Text(choices=SCORES), "drop_unscored": Flag()}
    _knows(image_text, [f.name for f in fields(AlignFilter)], "align.stage.AlignFilter")
    return Section(keys={
        "name": Text(),
        "description": Text(),
        "wordlists": Section(keys={k: PATH for k in ("stopwords", "flagged_words", "common_words", "url_ban_words",
                                                      "spam_words")}, noun="word list", nullable=True),
        "node": Section(keys=node, noun="check", nullable=True),
        "doc": Section(keys=doc, noun="check", nullable=True),
        "lang_id": Section(keys={"model": PATH}, nullable=True),
        "perplexity": Section(keys={"model": PATH, "sentencepiece": PATH}, nullable=True),
        "image": Section(keys={
            "formats": Texts(noun="format"),
            "min_size": COUNT,
            "max_size": COUNT,
            "max_aspect_ratio": Number(lo=0, lo_open=True),
            "banned_url_substrings": Flag(),
            "max_documents_per_url": COUNT,
            "max_pixels": POSITIVE,
            "phash_max_distance": Number(lo=-1, integer=True, what="an integer >= 0 (-1: no near-duplicate marks)"),
            "drop_near_duplicates": Flag(),
            "nsfw": AnyOf(options=(Section(keys=nsfw_keys), Flag())),
        }, rules=(ordered("min_size", "max_size"),), nullable=True),
        "final": Section(keys={
            "dedup_images_in_document": Flag(),
            "captions_follow_images": Flag(),
            "spam_word_ratio_max": RATIO,
            "min_images": COUNT,
            "max_images": COUNT,
        }, rules=(ordered("min_images", "max_images"),), nullable=True),
        # the decisions of the image-text alignment stage (obelics_builder.align, a stage of one's own)
        "image_text": Section(keys=image_text, nullable=True),
        # the decisions of any other stage of one's own, by its name (ctx.filters)
        "stages": StageSections(nullable=True),
    })


# ---------------------------------------------------------------------------------------------------------------
# the recipe
# ---------------------------------------------------------------------------------------------------------------

def _modes() -> tuple[str, ...]:
    from .extract.stage import MODES  # read when checking: the extract package imports recipe.py

    return tuple(sorted(MODES))


@lru_cache(maxsize=1)
def recipe_schema() -> Section:
    from dataclasses import fields

    from .engine.near_dedup import NearConfig  # numpy and pyarrow only: no Dask at import
    from .images.fetch import DEFAULTS as FETCH_DEFAULTS
    from .images.table import RESIZE_MODES
    from .optout.page import PageConsentConfig

    fetch = {
        "concurrency": POSITIVE, "per_host": POSITIVE,
        "connect_timeout_s": SECONDS, "timeout_s": SECONDS,
        "deadline_s": Number(lo=0, lo_open=True, nullable=True, what="seconds (a number > 0, or null)"),
        "read_timeout_s": Number(lo=0, lo_open=True, nullable=True, what="seconds (a number > 0, or null)"),
        "max_bytes": POSITIVE, "redirects": COUNT, "retries": COUNT,
        "backoff_base_s": Number(lo=0), "backoff_max_s": Number(lo=0), "retry_after_max_s": Number(lo=0),
        "allow_private_addresses": Flag(), "allow_addresses": Texts(noun="address"),
        "network": Flag(), "archive_first": Flag(),
        "dns_ttl_s": Number(lo=0), "dns_negative_ttl_s": Number(lo=0),
        "user_agent": Text(), "respect_robots": Flag(), "consent_headers": Flag(),
        "robots_timeout_s": Number(lo=0, lo_open=True, nullable=True, what="seconds (a number > 0, or null)"),
        "image_size": Number(lo=0, integer=True, nullable=True),
        "resize_mode": Text(choices=tuple(RESIZE_MODES), nullable=True),
        # per-host politeness and the host-partitioned plan (defaults: images.hosts.HostPolicy)
        "host_max_urls": POSITIVE, "host_failures_max": COUNT, "per_host_delay_s": Number(lo=0),
        "checkpoint_urls": POSITIVE,
    }
    _knows(fetch, FETCH_DEFAULTS, "images.fetch.DEFAULTS")
    near = {
        "enabled": Flag(), "num_perm": POSITIVE, "bands": POSITIVE, "rows": POSITIVE,
        "threshold": Number(lo=0, hi=1, lo_open=True, what="a similarity in (0, 1]"),
        "ngram": NGRAM, "seed": Number(integer=True),
        "band_rows_per_partition": POSITIVE, "edges_per_partition": POSITIVE, "verify_chunk": POSITIVE,
        "batch_rows": POSITIVE, "band_partitions": POSITIVE, "edge_partitions": POSITIVE,
        "ranks_per_partition": POSITIVE,
    }
    _knows(near, [f.name for f in fields(NearConfig)], "engine.near_dedup.NearConfig")
    page_consent = {"enabled": Flag(), "x_robots_tag": Flag(), "meta_robots": Flag(), "tdm_reservation": Flag(),
                    "noimageai": Flag(), "agent": Text()}
    _knows(page_consent, [f.name for f in fields(PageConsentConfig)], "optout.page.PageConsentConfig")
    return Section(keys={
        "name": Text(),
        "description": Text(),
        "filters": Text(),
        "stages": StageList(nullable=True),
        "read": Section(keys={"max_record_bytes": POSITIVE, "batch_size": POSITIVE, "max_batch_bytes": POSITIVE},
                        nullable=True),
        "extract": Section(keys={"mode": Text(choices=_modes),
                                 "page_time_budget_s": Number(what="seconds (a number; 0 or less: no budget)")},
                           nullable=True),
        "text_scores": Section(keys={"lang_id": Flag()}, nullable=True),
        "page_consent": Section(keys=page_consent, nullable=True),
        "url_dedup": Section(keys={"keep": Text(choices=("latest_warc",))}, nullable=True),
        "near_dedup": Section(keys=near, rules=(_bands_fit,), nullable=True),
        "paragraph_dedup": Section(keys={"enabled": Flag(), "min_count": POSITIVE}, nullable=True),
        "optout": Section(keys={
            "remove_documents_with_opted_out_images": Flag(),
            "local_list": PATH,
            "spawning": Section(keys={
                "enabled": Flag(), "url": PATH, "batch_size": POSITIVE,
                "requests_per_second": Number(lo=0, lo_open=True), "retries": COUNT,
                "backoff_s": Number(lo=0), "max_backoff_s": Number(lo=0), "timeout_s": SECONDS,
                "on_unchecked": Text(choices=("keep", "remove")),
            }, nullable=True),
            "c2pa": Section(keys={"enabled": Flag()}, nullable=True),
        }, nullable=True),
        "images": Section(keys=fetch, nullable=True),
        "image_join": Section(keys={"buckets": Number(lo=1, integer=True, nullable=True),
                                    "rows_per_bucket": POSITIVE, "row_group_rows": POSITIVE}, nullable=True),
        "write": Section(keys={"rows_per_part": POSITIVE, "compression": Text(choices=COMPRESSIONS)}, nullable=True),
    })


# ---------------------------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------------------------

#: what a config file can be
KINDS_OF_FILE = ("recipe", "filters")


def schema(kind: str) -> Section:
    return recipe_schema() if kind == "recipe" else filters_schema()


def problems(data: Any, kind: str) -> list[str]:
    """Every problem of a loaded ``kind`` ("recipe" or "filters") file, one line each: ``key.path: message``."""
    if not isinstance(data, dict):
        return [f"(top level): expected a mapping, got {_show(data)}"]
    if kind == "recipe" and "stages" in data:
        return _stages_problems(data)
    return schema(kind).check(data, "")


@dataclass(frozen=True)
class StageList(Spec):
    """A recipe's ``stages:`` list, checked by :func:`obelics_builder.plan.stages.parse_stages` (its messages name
    the entry: ``stages[3]: ...``)."""

    def describe(self):
        return "a list of stage names"

    def _check(self, value, path):
        from .plan.stages import parse_stages

        return parse_stages(value)[1]


def _stages_problems(data: dict) -> list[str]:
    """A recipe with a ``stages:`` list: checked with the sections of its own stages left to those stages (each a
    mapping or null)."""
    from .plan.stages import RESERVED, custom_name

    stages = data["stages"]
    names = {custom_name(e) for e in stages if isinstance(e, dict)} if isinstance(stages, list) else set()
    found = [f"stages: the name {n!r} is taken by the recipe's own section {n}: (give the entry another `name:`)"
             for n in sorted(names & set(recipe_schema().keys) - RESERVED)]  # (RESERVED: said by parse_stages)
    names -= set(recipe_schema().keys)
    for name in sorted(names & set(data)):
        if data[name] is not None and not isinstance(data[name], dict):
            found.append(f"{name}: expected a mapping (the config of the stage {name}), got {_show(data[name])}")
    return schema("recipe").check({k: v for k, v in data.items() if k not in names}, "") + found


def guess_kind(data: Any, file: str = "") -> str | None:
    """"recipe" or "filters" from a file's top-level keys (then from its folder: ``pipelines/``, ``filters/``), or
    None when neither tells."""
    from pathlib import Path

    scores = {}
    if isinstance(data, dict):
        shared = set(recipe_schema().keys) & set(filters_schema().keys)  # name, description
        for kind in KINDS_OF_FILE:
            scores[kind] = len((set(schema(kind).keys) - shared) & set(data))
    if scores and scores["recipe"] != scores["filters"]:
        return max(scores, key=scores.get)
    parts = Path(file).resolve().parts if file else ()
    if "pipelines" in parts[-3:]:
        return "recipe"
    if "filters" in parts[-3:]:
        return "filters"
    return None
