"""A run of a plan (:class:`Run`), on an :class:`~obelics_builder.engine.Engine` or evaluated against OUT without running
anything (``obelics-build plan``): both walk the same steps and compute every fingerprint by the same rule
(:mod:`.model`), so what ``plan`` says a rerun skips is what the run skips."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..io.markers import read_marker
from ..stats import Stats
from .model import Plan, RunInputs, Step, run_fingerprint, same_units, unit_fingerprint, whole


@dataclass
class StepReport:
    """What a step does (or, evaluated, would do) in this run."""

    step: Step
    #: the step's fingerprint (a map step's: over its units); None when it depends on steps not run yet
    fingerprint: str | None
    #: how many units it has (1 for a reduction); None when not known yet (image partitions before the image plan)
    units: int | None
    #: how many of them are done with this fingerprint (a rerun skips them)
    skip: int
    note: str = ""


@dataclass(frozen=True)
class Unit:
    """One unit of a map step: ``key`` (its WARC key, for reads part by part), ``name`` (its marker),
    ``identity`` (the rule's) and ``item`` (what its task gets, with its fingerprint)."""

    key: str
    name: str
    identity: list
    item: Any


@dataclass
class Run:
    plan: Plan
    out: Path
    inputs: RunInputs
    refs: list
    keys: list[str]
    #: None: evaluate only (nothing is executed or written)
    engine: Any = None
    archive_refs: tuple = ()
    stats: Stats = field(default_factory=Stats)
    #: each step's output fingerprint: per unit key (a map step) or one (a reduction); None where unknown
    fps: dict[str, Any] = field(default_factory=dict)
    reports: list[StepReport] = field(default_factory=list)
    #: what a step hands to later ones (e.g. the number of image partitions)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def dry(self) -> bool:
        return self.engine is None

    @property
    def recipe(self) -> dict:
        return self.inputs.recipe

    def folder(self, name: str) -> Path:
        return self.plan.step(name).folder(self.out)

    def source(self, step: Step) -> Path:
        """The folder of the parts a ``parts`` step maps over (its first read)."""
        return self.folder(step.reads[0])

    # ---- the rule ------------------------------------------------------------------------------------------
    def read_fp(self, step: Step, name: str, key: str | None = None) -> str | None:
        value = self.fps.get(name)
        if isinstance(value, dict):
            if key is not None and same_units(step, self.plan.step(name)):
                return value.get(key)
            return None if any(v is None for v in value.values()) else whole(value)
        return value

    def _reads(self, step: Step, key: str | None) -> list | None:
        reads = [self.read_fp(step, r, key) for r in step.reads if r not in step.by_content]
        return None if any(r is None for r in reads) else reads

    def unit_fp(self, step: Step, identity: list, key: str | None = None) -> str | None:
        reads = self._reads(step, key)
        return None if reads is None else unit_fingerprint(identity, reads, step.config(self.inputs))

    def run_fp(self, step: Step) -> str | None:
        reads = self._reads(step, None)
        return None if reads is None else run_fingerprint(reads, step.config(self.inputs))

    # ---- executing ------------------------------------------------------------------------------------------
    def map_units(self, step: Step, units: list[Unit], task: Callable, *args: Any, desc: str = "",
                  progress: Callable | None = None, compare: str = "fingerprint") -> None:
        """Run ``task((item, fp), *args)`` for every unit (a unit whose marker holds ``fp`` in ``compare`` returns
        its stored stats at once), merge the stats, and record each unit's output fingerprint."""
        folder = step.folder(self.out)
        planned = [(u, self.unit_fp(step, u.identity, u.key)) for u in units]
        done = [fp is not None and (read_marker(folder, u.name) or {}).get(compare) == fp for u, fp in planned]
        fps = {u.key: fp for u, fp in planned}
        self.reports.append(StepReport(step, None if None in fps.values() else whole(fps), len(units), sum(done)))
        if not self.dry:
            # each unit's stats folded into the run's as they come (in unit order), not kept in a list
            self.engine.map(task, [(u.item, fp) for u, fp in planned], *args, desc=desc, progress=progress,
                            fold=self.stats.merge)
        if step.output == "input":
            self.fps[step.name] = fps
        else:  # what the markers say the units wrote (unknown for a unit that is still to run)
            self.fps[step.name] = {u.key: (read_marker(folder, u.name) or {}).get("fingerprint")
                                   if (ok or not self.dry) else None for (u, _), ok in zip(planned, done)}

    def reduce(self, step: Step, execute: Callable[[str, bool], None],
               content: Callable[[], str | None] | None = None, done: Callable[[], bool] | None = None) -> None:
        """Run a reduction: ``execute(fp, done)``; its output fingerprint is ``fp`` or, for a step whose output is
        ``content``, ``content()`` (read after it ran)."""
        fp = self.run_fp(step)
        folder = step.folder(self.out)
        ok = (step.marker is not None and fp is not None and read_marker(folder, step.marker, fp) is not None
              and (done is None or done()))
        self.reports.append(StepReport(step, fp, 1, int(ok), "" if step.marker else "always runs: cheap, no marker"))
        if not self.dry:
            execute(fp, ok)
        if step.output == "input":
            self.fps[step.name] = fp
        else:
            self.fps[step.name] = content() if (ok or not self.dry) and content is not None else None

    def unknown(self, step: Step, note: str) -> None:
        """A step whose units are not known before the steps it reads have run (evaluation only)."""
        self.reports.append(StepReport(step, None, None, 0, note))
        self.fps[step.name] = None

