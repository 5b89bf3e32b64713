"""The recipe's ``stages:`` list -> a :class:`~.model.Plan`.

``stages:`` names the built-in stages (:data:`~.builtin.STAGES`, all of them, in that order: each reads what the
one before wrote) and places stages of one's own among them::

    stages:
      - read
      - ...
      - text_scores
      - {use: "mypkg.scores:clip_score", after: text_scores}   # name: clip_score (the function's), config: the
      - text_filter                                            # recipe's top-level ``clip_score:`` section
      - ...

A custom entry without ``after`` runs after the entry listed before it.  A recipe without ``stages:`` runs the
built-in ones.  Every problem is one line naming the entry (``stages[3]: unknown stage 'text_scroes' (did you
mean 'text_scores'?)``).
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import ConfigError, did_you_mean
from .builtin import BUILTIN, CUSTOM_AFTER, NOT_DOCUMENTS, STAGES
from .model import CustomSpec, Plan, RunInputs, Step

#: what a stage of one's own may be called (it names a folder and a recipe section)
_NAME_OK = "letters, digits and _ (starting with a letter)"
#: names a stage of one's own cannot take: the built-in stages and steps, the folders under OUT/parts
#: (``parts/<name>`` would be another's; a recipe's own sections are refused by config_schema)
RESERVED = frozenset(STAGES) | {s.name for s in BUILTIN} | {s.writes.split("/")[1] for s in BUILTIN
                                                               if s.writes.startswith("parts/")}


def _valid_name(name: str) -> bool:
    return bool(name) and name[0].isalpha() and all(c.isalnum() or c == "_" for c in name) and name.isascii()


def custom_name(entry: dict) -> str:
    """The name of a custom entry: its ``name``, else its function's."""
    use = str(entry.get("use") or "")
    return str(entry.get("name") or use.replace(":", ".").rsplit(".", 1)[-1])


def import_problems(stages) -> list[str]:
    """Problems importing the functions a well-formed ``stages:`` list names."""
    found: list[str] = []
    for i, entry in enumerate(stages or []):
        if isinstance(entry, dict) and isinstance(entry.get("use"), str):
            found += _import_problem(entry["use"], f"stages[{i}].use")
    return found


def parse_stages(stages, check_import: bool = False) -> tuple[list[CustomSpec], list[str]]:
    """The custom stages of a ``stages:`` value (None: the built-in list) and every problem of it."""
    if stages is None:
        return [], []
    if not isinstance(stages, list):
        return [], [f"stages: expected a list of stage names, got {type(stages).__name__}"]
    problems: list[str] = []
    builtin: list[str] = []
    custom: list[CustomSpec] = []
    seen: list[str] = []
    for i, entry in enumerate(stages):
        where = f"stages[{i}]"
        if isinstance(entry, str):
            if entry not in STAGES:
                problems.append(f"{where}: unknown stage {entry!r}{did_you_mean(entry, STAGES + tuple(seen))} "
                                f"(a stage of your own is {{use: \"module:function\", after: STAGE}})")
            elif entry in builtin:
                problems.append(f"{where}: {entry!r} is listed twice")
            else:
                builtin.append(entry)
                seen.append(entry)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("use"), str) or not entry.get("use"):
            problems.append(f"{where}: expected a stage name or {{use: \"module:function\", after: STAGE}}")
            continue
        unknown = sorted(set(entry) - {"use", "after", "name"})
        if unknown:
            problems.append(f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], ('use', 'after', 'name'))}"
                            f" (known: use, after, name)")
            continue
        name, use = custom_name(entry), entry["use"]
        after = entry.get("after", seen[-1] if seen else None)
        if not _valid_name(name):
            problems.append(f"{where}.name: {name!r} cannot name a stage ({_NAME_OK})")
        elif name in RESERVED or name in seen:
            problems.append(f"{where}: the name {name!r} is taken (give the entry another `name:`)")
        elif after is None:
            problems.append(f"{where}: a stage of your own needs `after: STAGE` (it is listed first)")
        elif after not in seen and after not in STAGES:
            names = STAGES + tuple(s.name for s in custom)
            problems.append(f"{where}.after: unknown stage {after!r}{did_you_mean(after, names)}")
        elif after not in CUSTOM_AFTER and after not in {s.name for s in custom}:
            problems.append(f"{where}.after: a stage of your own runs between two per-part steps, after one of "
                            f"{', '.join(CUSTOM_AFTER)} (or another of your own), not after {after!r}")
        else:
            if check_import:
                problems += _import_problem(use, f"{where}.use")
            custom.append(CustomSpec(name=name, use=use, after=after))
            seen.append(name)
    missing = [s for s in STAGES if s not in builtin]
    misspelled = any("unknown stage" in p for p in problems)  # then what is "missing" is that one, said already
    if missing and not misspelled:
        problems.append(f"stages: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing: the built-in "
                        f"stages all run, in their order ({', '.join(STAGES)}); turn one off in its own section "
                        f"(e.g. near_dedup.enabled: false)")
    elif not missing and builtin != list(STAGES):
        wrong = next(a for a, b in zip(builtin, STAGES) if a != b)
        problems.append(f"stages: {wrong!r} is out of place: the built-in stages run in their order, each reading "
                        f"what the one before wrote ({', '.join(STAGES)})")
    return custom, problems


def _import_problem(use: str, where: str) -> list[str]:
    from .custom import resolve

    try:
        resolve(use)
    except (ImportError, AttributeError, TypeError) as e:
        hint = " (is its package installed, or its folder on PYTHONPATH?)" if isinstance(e, ModuleNotFoundError) else ""
        return [f"{where}: cannot use {use!r}: {type(e).__name__}: {e}{hint}"]
    return []


def stage_problems(recipe: dict) -> list[str]:
    """Every problem of a recipe's ``stages:``, its custom stages imported."""
    return parse_stages(recipe.get("stages"), check_import=True)[1]


def _section(name: str):
    def config(inp: RunInputs) -> list:
        return [inp.recipe.get(name) or {}]
    return config


def build_plan(recipe: dict) -> Plan:
    """The plan of a (loaded) recipe: the built-in steps with the custom ones inserted after the stage each
    follows; a step after an inserted one reads it instead of the step it follows.  A problem is a ConfigError."""
    custom, problems = parse_stages(recipe.get("stages"))
    if problems:
        raise ConfigError(problems)
    steps: list[Step] = list(BUILTIN)
    last: dict[str, str] = {}  # a stage -> the last one inserted after it (several after one run in list order)
    for spec in custom:
        anchor = last.get(spec.after, spec.after)
        last[spec.after] = spec.name
        at = next(i for i, s in enumerate(steps) if s.stages[-1:] == (anchor,))
        before = steps[at]
        step = Step(spec.name, "parts", (spec.name,), (before.name,), f"parts/{spec.name}",
                    (f"recipe: {spec.name}", f"filters: {spec.name} (its decisions)"), _config(spec),
                    products=before.products, custom=spec,
                    what=f"{spec.use} (a stage of your own)")
        later = [replace(s, reads=tuple(step.name if r == before.name else r for r in s.reads))
                 for s in steps[at + 1:]]
        steps = steps[:at + 1] + [step] + later
    funnel = tuple(n for s in steps for n in s.stages if n not in NOT_DOCUMENTS)
    return Plan(steps=tuple(steps), funnel=funnel)


def stage_filters(filters_config: dict | None, name: str) -> dict:
    """The decisions of the stage of one's own ``name`` in a filter config (``ctx.filters``): its section under
    ``stages:`` (``stages: {NAME: {...}}``, any stage), or a top-level section of its name that
    :mod:`obelics_builder.config_schema` declares (``image_text:``); ``{}`` when there is none."""
    fc = filters_config or {}
    return dict((fc.get("stages") or {}).get(name) or fc.get(name) or {})


def _config(spec: CustomSpec):
    section = _section(spec.name)

    def config(inp: RunInputs) -> list:
        decisions = stage_filters(inp.recipe.get("filters_config"), spec.name)
        # its filter-config section (its decisions), when the filter config has one
        return [spec.use, *section(inp)] + ([decisions] if decisions else [])
    return config


def check_problems(recipe: dict) -> list[str]:
    """What the stages of one's own say is wrong with their sections, before any work: a stage function may
    carry ``check(config: dict, filters: dict) -> list[str]`` (its recipe section and its filter-config section,
    as ``ctx.config`` / ``ctx.filters`` will hold them; a missing model, a bad option), each problem one line."""
    from .custom import resolve

    custom, problems = parse_stages(recipe.get("stages"))
    if problems:
        return problems
    found: list[str] = []
    for spec in custom:
        check = getattr(resolve(spec.use), "check", None)
        if callable(check):
            found += [f"{spec.name}: {p}" for p in check(dict(recipe.get(spec.name) or {}),
                                                          stage_filters(recipe.get("filters_config"), spec.name))]
    return found
