"""Errors a user can cause and fix: the command line prints their message as one line and exits with code 2."""
from __future__ import annotations

import difflib
from typing import Iterable


class UsageError(Exception):
    """A mistake in what the user gave (an option, a path, an id, a config): ``str(e)`` says what is wrong and what
    to do.  ``obelics_builder.cli.main`` prints it as ``obelics-build: error: <message>`` and exits with code 2."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class ConfigError(ValueError):
    """A recipe or filter config that cannot be used (missing, bad YAML, unknown key, bad value): a user mistake.

    ``problems`` lists what is wrong, one line each (``FILE: key.path: message``); every problem a file has is
    reported together.  The command line prints one problem as one line and several under a header line, and
    exits with code 2 (no traceback).  Also importable as ``obelics_builder.recipe.ConfigError``."""

    def __init__(self, problems: "str | list[str]") -> None:
        self.problems = [problems] if isinstance(problems, str) else [str(p) for p in problems]
        super().__init__("\n".join(self.problems))
