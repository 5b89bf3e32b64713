"""``obelics-build config check FILE...``: check recipes and filter configs without running anything."""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Check recipes (pipelines/*.yaml) and filter configs (filters/*.yaml) as crawl, filter and images would, without
running anything: unknown keys and check names (with the nearest valid one), wrong types, values out of range
(ratios in [0, 1], counts >= 0, n-gram sizes >= 1), min above max, word lists that name no file, a recipe's filter
config. Which kind a file is comes from its keys (then its folder); --kind says it outright.
Prints `FILE: OK (recipe|filter config)` or one line per problem (`FILE: key.path: message`); exit code 1 when any
file has a problem.

Examples:
  obelics-build config check filters/my-thresholds.yaml
  obelics-build config check pipelines/*.yaml filters/*.yaml
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("check", help="check recipe and filter config files",
                       description="Check recipe and filter config files without running anything.")
    c.add_argument("files", nargs="+", metavar="FILE", help="recipe or filter config YAML files")
    c.add_argument("--kind", choices=["recipe", "filters"], default=None,
                   help="what the files are (default: told from each file's keys, then its folder)")
    from ..cli import _add_common

    _add_common(c, default=argparse.SUPPRESS)  # -v/--debug after `check` too


def check_files(files: list[str], kind: str | None = None) -> int:
    """Check each file and print the result; 0 when every file is valid, else 1."""
    from ..recipe import ConfigError, check_file

    bad = 0
    for f in files:
        try:
            found = check_file(f, kind)
        except ConfigError as e:
            bad += 1
            for p in e.problems:
                print(" ".join(p.split()))
            continue
        print(f"{f}: OK ({'recipe' if found == 'recipe' else 'filter config'})")
    return 1 if bad else 0


def run(args: argparse.Namespace) -> int:
    return check_files(args.files, args.kind)
