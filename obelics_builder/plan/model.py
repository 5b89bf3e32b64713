"""What a plan is made of, and the one fingerprint rule (no Dask, no I/O besides reading markers).

A :class:`Step` is one resumable unit kind of the pipeline.  It declares:

* ``kind``: ``warcs`` (one task per WARC), ``parts`` (one task per document part; there is one part per WARC, under
  the same key), ``images`` (one task per image-URL partition) or ``run`` (one run-wide reduction);
* ``stages``: the names of the recipe's ``stages:`` list it runs, each counted in stats.json (``()`` for a
  reduction: it removes nothing itself, the per-part step after it does);
* ``reads``: the steps whose outputs it reads (a ``parts`` step's first read is the part it maps over);
* ``writes``: its folder under OUT (outputs, and the completion markers under ``_done/``);
* ``sections``: the recipe (``recipe:``) or filter config (``filters:``) sections that configure it, and ``config``:
  their values, what it is fingerprinted with;
* ``output``: what a step reading it sees as its fingerprint: ``input`` (its own fingerprint, by the rule) or
  ``content`` (a digest of what it wrote, for outputs that a rerun may not reproduce: fetched images, opt-out
  lookups).

The rule, for every step (:func:`unit_fingerprint`, :func:`run_fingerprint`)::

    fingerprint(unit) = H(*identity(unit), *[fp of each read], *config)

``identity`` is what the unit is about (a WARC: its name and the dump; a part: its key; an image partition: the
digest of its URLs, which the image plan writes beside them; a reduction: nothing).  The fp of a read is, for a ``warcs``/``parts`` step read by a step over the same
parts, that part's output fingerprint; otherwise the whole step's: a reduction's, or for a map step
``H([(unit, its output fingerprint), ...])`` over its units.  A step's output fingerprint is its own (``output:
input``) or the digest in its marker (``output: content``).  One exception, declared (``by_content``): an image
partition's identity is its URLs, read from the image plan, so the plan enters through them and not through its
fingerprint (a new document elsewhere in the run does not refetch every partition).

A unit whose marker holds its fingerprint is skipped; anything else is recomputed.  So changing one step's config
reruns that step and, through the chain, the steps after it, and nothing before it; a step whose output is
``content`` (a refetch, a retry of failed images) reruns what reads it only when what it wrote changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..io.markers import fingerprint, read_marker

#: what a step maps over (``run``: a run-wide reduction)
KINDS = ("warcs", "parts", "images", "run")


@dataclass(frozen=True)
class RunInputs:
    """What a run is given besides its recipe; the config of some steps depends on it (fingerprinted with it)."""

    recipe: dict
    warc_names: tuple[str, ...] = ()
    dump: str | None = None
    archive_names: tuple[str, ...] = ()
    fetch_overrides: dict = field(default_factory=dict)
    #: environment facts a step's output depends on (e.g. whether a Spawning key is set; never the key itself)
    env: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CustomSpec:
    """A user's stage from the recipe: ``{use: "pkg.module:function", after: STAGE, name: NAME}``; its config is
    the recipe's top-level section named ``name`` (``{}`` when absent)."""

    name: str
    use: str
    after: str


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    stages: tuple[str, ...]
    reads: tuple[str, ...]
    writes: str
    sections: tuple[str, ...]
    config: Callable[[RunInputs], list]
    output: str = "input"
    #: the marker key of a reduction (``None``: it always runs; cheap and idempotent)
    marker: str | None = None
    #: a map step's marker name per unit (``{key}``: the WARC's key; ``{index}``: its position in the run)
    unit_name: str = "{key}"
    #: reads whose content is the unit's identity (an image partition's URLs): they enter the fingerprint through
    #: the identity, not through their own fingerprint (a new document elsewhere does not refetch every partition)
    by_content: tuple[str, ...] = ()
    #: side tables written beside each part (``<key>.<product>.parquet``), read by later steps
    products: tuple[str, ...] = ()
    #: one line for ``plan``
    what: str = ""
    custom: CustomSpec | None = None

    def folder(self, out: str | Path) -> Path:
        return Path(out) / self.writes


@dataclass(frozen=True)
class Plan:
    """The steps in run order (each reads only steps before it) and the recipe's stage list they came from."""

    steps: tuple[Step, ...]
    #: the document stages in funnel order (stats.json's ``stages`` order and accounting chain)
    funnel: tuple[str, ...]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def custom(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.custom is not None)


# ---------------------------------------------------------------------------------------------------------------
# the rule
# ---------------------------------------------------------------------------------------------------------------

def unit_fingerprint(identity: list, reads: list, config: list) -> str:
    """The fingerprint of one unit of a map step: ``H(*identity, *reads, *config)``."""
    return fingerprint(*identity, *reads, *config)


def run_fingerprint(reads: list, config: list) -> str:
    """The fingerprint of a run-wide reduction: ``H(*reads, *config)``."""
    return fingerprint(*reads, *config)


def whole(unit_fps: dict[str, Any]) -> str:
    """The fingerprint of a map step as a whole, from its units' (in unit order)."""
    return fingerprint([(u, fp) for u, fp in unit_fps.items()])


def marker_fingerprints(folder: Path, keys: list[str]) -> dict[str, str | None]:
    """Each unit's fingerprint as its marker says (None: no marker, the unit is not done)."""
    return {k: (read_marker(folder, k) or {}).get("fingerprint") for k in keys}


def same_units(a: Step, b: Step) -> bool:
    """Whether ``a`` reads ``b`` part by part (both map over the run's WARC keys)."""
    return a.kind in ("warcs", "parts") and b.kind in ("warcs", "parts")
