"""Where packaged files live: recipes, filter configs, word lists, the sample mirror.

``pipelines/`` and ``filters/`` sit at the top of the repository (where notebooks and users edit them) and are linked
into the package, so ``pip install .`` carries them and they are found from any working directory.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PIPELINES_DIR = PACKAGE_DIR / "pipelines"
FILTERS_DIR = PACKAGE_DIR / "filters"
WORDLISTS_DIR = FILTERS_DIR / "wordlists"
SAMPLE_MIRROR = PACKAGE_DIR / "data" / "sample"


def find_config(name_or_path: str | Path, folder: Path) -> Path:
    """A config given as a path (absolute or relative to the cwd) or as a packaged name (``obelics``,
    ``obelics.yaml``) inside ``folder``."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    for candidate in (folder / str(name_or_path), folder / f"{name_or_path}.yaml", folder / p.name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no config {name_or_path!r} (looked at {p} and in {folder})")
