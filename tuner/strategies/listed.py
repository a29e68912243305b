"""Strategies that choose their depths: the thesis' narrowing, its exact grids, a sweep.

They never let the sampler be asked: ``queue`` lists what to train next, read
from the study alone (so a resumed or parallel search comes to the same
list), and an empty list ends the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import optuna
from optuna.trial import TrialState

from tuner import stored_keys as keys
from tuner.errors import UsageError
from tuner.store.trials import measured_trials, trial_depth
from tuner.strategies.base import Queued, Setup, Strategy, completed_values
from tuner.strategies.narrowing import THESIS_STAGE3, next_stage, thesis_plan

__all__ = ["Narrowing", "Sweep", "ThesisGrids", "parse_depths"]


class Narrowing(Strategy):
    """The thesis' coarse-to-fine rule (``tuner.strategies.narrowing``), stage by stage from the study."""

    name = "narrowing"
    chooses_depths = True
    multi_objective = False

    def queue(self, study: optuna.Study) -> list[Queued]:
        space = self.setup.space
        stage = next_stage(completed_values(study, space), low=space.low, high=space.high)
        return [(d, {keys.CHOSEN_BY: self.name}) for d in stage]


class Sweep(Strategy):
    """Every listed depth, ``repeats`` times; a repeat trains with a seed of its own.

    A depth that trains exactly the weights of one measured before it is
    queued once and answered from that measurement (``reused_from``). A
    repeat (``measure_again``) gets the seed ``confirmation_seed(base,
    trial number)`` from the search, so repeats measure seed noise too.
    """

    name = "sweep"
    chooses_depths = True

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        space = setup.space
        depths = setup.depths if setup.depths is not None else tuple(space.depths())
        outside = [d for d in depths if not space.low <= d <= space.high]
        if outside:
            raise UsageError(f"depth {outside[0]} is outside {space.low}..{space.high}: "
                             f"fix --depths or the depth range of {self.name}")
        if setup.repeats < 1:
            raise UsageError("--repeats must be 1 or more")
        self.depths = list(dict.fromkeys(depths))

    def queue(self, study: optuna.Study) -> list[Queued]:
        space = self.setup.space
        trained = Counter(trial_depth(t, space) for t in measured_trials(study))
        seen = {trial_depth(t, space) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        out: list[Queued] = []
        for d in self.depths:
            if trained[d] == 0:
                if d not in seen:  # first time: trained, or answered from an equivalent depth
                    out.append((d, {keys.CHOSEN_BY: self.name}))
                continue
            again = {keys.CHOSEN_BY: self.name, keys.MEASURE_AGAIN: True}
            out.extend((d, dict(again)) for _ in range(self.setup.repeats - trained[d]))
        return out


def parse_depths(text: str, *, low: int, high: int) -> list[int]:
    """'0-10,20,30-40:5' -> depths (``sweep --depths``); ranges are inclusive, ':N' is a step."""
    depths: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            span, _, step = part.partition(":")
            a, sep, b = span.partition("-")
            lo, hi = int(a), int(b) if sep else int(a)
            depths.extend(range(lo, hi + 1, int(step) if step else 1))
        except ValueError:
            raise UsageError(f"--depths {text!r}: write depths like 0-40, 0,5,10 or 0-100:10") from None
    if not depths:
        raise UsageError("--depths is empty: list at least one depth")
    bad = [d for d in depths if not low <= d <= high]
    if bad:
        raise UsageError(f"depth {bad[0]} is outside {low}..{high}: fix --depths")
    return depths


class ThesisGrids(Sweep):
    """The 13 depths the thesis trained for its dataset, in its order, whatever they measure."""

    name = "thesis-grids"
    multi_objective = False

    def __init__(self, setup: Setup) -> None:
        stage3 = THESIS_STAGE3.get(setup.dataset or "")
        if stage3 is None:
            where = (f"not {setup.dataset!r}: drop --thesis-grids to narrow by the rule"
                     if setup.dataset else "and a thesis landscape (thesis:5.1..thesis:5.4)")
            raise UsageError(f"--thesis-grids knows the thesis' depths for "
                             f"{', '.join(THESIS_STAGE3)} only, {where}")
        depths = tuple(dict.fromkeys(d for stage in thesis_plan(stage3) for d in stage))
        super().__init__(replace(setup, depths=depths, repeats=1))
