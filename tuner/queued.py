"""Strategies that choose their depths themselves, run live through the search.

The thesis' narrowing and a sweep do not ask a sampler: they queue depths in
the stored Optuna study, and the same oracle, hypermodel and objective train
them. Each ``refill`` is a pure function of what the study holds, so a
killed run resumes exactly like ``search``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import TrialState

from tuner.errors import UsageError
from tuner.narrowing import next_stage, thesis_plan
from tuner.space import DepthSpace
from tuner.study import measured_trials, trial_depth

Refill = Callable[[optuna.Study], list[tuple[int, dict]]]

# The thesis' stage-3 depths, by the dataset they were chosen for.
THESIS_STAGE3 = {"cats_vs_dogs": range(3, 8), "tf_flowers": range(18, 23)}


def completed_values(study: optuna.Study, space: DepthSpace) -> dict[int, float]:
    """Mean objective per depth over every COMPLETE trial (repeats and equivalents too)."""
    values: dict[int, list[float]] = defaultdict(list)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        values[trial_depth(t, space)].append(t.value)
    return {d: sum(v) / len(v) for d, v in values.items()}


def narrowing_refill(space: DepthSpace) -> Refill:
    """The next stage of the thesis' narrowing rule (tuner.narrowing) on the measured values."""

    def refill(study: optuna.Study) -> list[tuple[int, dict]]:
        stage = next_stage(completed_values(study, space), low=space.low, high=space.high)
        return [(d, {"chosen_by": "narrowing"}) for d in stage]

    return refill


def thesis_grids_refill(space: DepthSpace, *, dataset: str) -> Refill:
    """The 13 depths the thesis trained for this dataset, whatever they measure."""
    stage3 = THESIS_STAGE3.get(dataset)
    if stage3 is None:
        raise UsageError(
            f"--thesis-grids knows the thesis' depths for {', '.join(THESIS_STAGE3)} only, "
            f"not {dataset!r}: drop --thesis-grids to narrow by the rule"
        )
    depths = sorted({d for stage in thesis_plan(list(stage3)) for d in stage})
    return sweep_refill(space, depths=depths, repeats=1, chosen_by="thesis-grids")


def sweep_refill(space: DepthSpace, *, depths: Sequence[int], repeats: int,
                 chosen_by: str = "sweep") -> Refill:
    """Every listed depth, ``repeats`` times; equivalent depths are not trained again.

    A depth that trains exactly the weights of one listed before it is
    queued once and answered from that measurement (``reused_from``).
    """
    outside = [d for d in depths if not space.low <= d <= space.high]
    if outside:
        raise UsageError(f"depth {outside[0]} is outside {space.low}..{space.high}: fix --depths")

    def refill(study: optuna.Study) -> list[tuple[int, dict]]:
        trained = Counter(trial_depth(t, space) for t in measured_trials(study))
        seen = {trial_depth(t, space) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        out = []
        for d in dict.fromkeys(depths):
            if trained[d] == 0:
                if d not in seen:  # first time: trained, or answered from an equivalent depth
                    out.append((d, {"chosen_by": chosen_by}))
                continue
            again = {"chosen_by": chosen_by, "measure_again": True}
            out.extend((d, dict(again)) for _ in range(repeats - trained[d]))
        return out

    return refill


def parse_depths(text: str, *, low: int, high: int) -> list[int]:
    """'0-10,20,30-40:5' -> depths; ranges are inclusive, ':N' is a step."""
    depths: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            span, _, step = part.partition(":")
            a, sep, b = span.partition("-")
            lo, hi = int(a), int(b) if sep else int(a)
            depths.extend(range(lo, hi + 1, int(step) if step else 1))
        except ValueError:
            raise UsageError(f"--depths {text!r}: write depths like 0-154, 0,5,10 or 0-100:10") from None
    if not depths:
        raise UsageError("--depths is empty: list at least one depth")
    bad = [d for d in depths if not low <= d <= high]
    if bad:
        raise UsageError(f"depth {bad[0]} is outside {low}..{high}: fix --depths")
    return depths
