"""What every depth strategy is: a sampler for the study and a queue of depths it wants.

Why a module of its own: the strategy families (``samplers``, ``gain_per_second``,
``listed``, the ``with_confirmations`` wrapper) each build on these, and the registry
that names them (``tuner.strategies.registry``) imports them all, so none imports the registry.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import optuna
from optuna.trial import TrialState

from objectives import Objective, get_objective
from tuner.model.space import DepthSpace
from tuner.store.trials import trial_depth

__all__ = ["Queued", "Setup", "Strategy", "completed_values"]

Queued = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Setup:
    """What a strategy may read besides the study: one object for live runs and replays."""

    space: DepthSpace
    seed: int = 0
    trials: int | None = None
    """Trainings in all (``--trials``; compare's ``--trials`` per replay); None: until the strategy has nothing left."""
    objective: Objective = field(default_factory=lambda: get_objective("efficiency"))
    dataset: str | None = None
    """The dataset's name (the thesis' grids differ per dataset)."""
    depths: tuple[int, ...] | None = None
    """A sweep's depths (None: the whole range)."""
    repeats: int = 1
    """A sweep's readings per depth."""
    signatures: tuple[int, ...] | None = None
    """Which weights each depth trains (``tuner.model.signatures``: depths of one signature are
    one reading), for a strategy that reads prices; None: every depth its own."""


class Strategy:
    """One way to choose depths; subclasses set ``name`` and override what differs."""

    name: ClassVar[str] = "sampler"
    chooses_depths: ClassVar[bool] = False
    """True: the sampler is never asked, and an empty ``queue`` ends the run."""
    multi_objective: ClassVar[bool] = True
    """False: ranks one value per depth, so ``--objective pareto`` is refused."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    def sampler(self) -> optuna.samplers.BaseSampler:
        """The sampler the study asks when nothing is queued (never, if ``chooses_depths``)."""
        return optuna.samplers.RandomSampler(seed=self.setup.seed)

    def queue(self, study: optuna.Study) -> list[Queued]:
        """Depths to queue now, in order, with their user attributes (asked when none waits)."""
        return []


def completed_values(study: optuna.Study, space: DepthSpace) -> dict[int, float]:
    """Mean objective per depth over every COMPLETE trial (repeats and equivalents too)."""
    values: dict[int, list[float]] = defaultdict(list)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        values[trial_depth(t, space)].append(t.value)
    return {d: sum(v) / len(v) for d, v in values.items()}
