"""The pipeline as a declared plan: steps that say what they are, read, write and are configured by
(:mod:`.builtin`, :mod:`.model`), ordered by the recipe's ``stages:`` list (:mod:`.stages`), with stages of one's
own by dotted path (:mod:`.custom`), fingerprinted by one rule (:mod:`.model`) and run or evaluated by
:mod:`.run` (``obelics-build plan`` prints the evaluation)."""
from .model import CustomSpec, Plan, RunInputs, Step
from .stages import build_plan, stage_problems

__all__ = ["CustomSpec", "Plan", "RunInputs", "Step", "build_plan", "stage_problems"]
