"""Word lists: one word per line, UTF-8, loaded once per path into a frozenset."""
from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=64)
def _load(path: str) -> frozenset[str]:
    with open(path, encoding="utf-8") as f:
        return frozenset(w for w in (line.strip() for line in f) if w and not w.startswith("#"))


def load_wordlist(path: str | Path) -> frozenset[str]:
    """The words of a list file (blank lines and ``#`` comment lines ignored); cached per resolved path."""
    return _load(str(Path(path).expanduser().resolve()))


def config_wordlist(config: dict, key: str) -> frozenset[str]:
    """The list ``config["wordlists"][key]`` (a path, made absolute by ``recipe.load_filters``).

    Raises ``ValueError`` when the config names no such list and ``FileNotFoundError`` when the file is missing.
    """
    path = (config.get("wordlists") or {}).get(key)
    if not path:
        raise ValueError(f"filter config has no word list {key!r} (wordlists.{key})")
    return load_wordlist(path)
