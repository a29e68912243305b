"""Confirmation repeats for any strategy: ``NAME+confirmN`` (the rule is ``tuner.strategies.confirm``'s)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from tuner import stored_keys as keys
from tuner.errors import UsageError
from tuner.store.records import study_records
from tuner.store.trials import measured_trials, stopped_trials
from tuner.strategies.base import Queued, Strategy
from tuner.strategies.confirm import in_confirm_phase, next_confirmation

__all__ = ["Confirmed"]


class Confirmed(Strategy):
    """``inner`` with the last ``count`` trainings of the budget kept for confirmation repeats.

    The rule is ``tuner.strategies.confirm``'s: re-measure the leader or its runner-up
    while they are within noise; otherwise (and before the last ``count``)
    ``inner`` decides. A confirmation is queued with user attributes
    ``confirm`` and ``measure_again``; the search gives it its own seed.
    """

    def __init__(self, inner: Strategy, count: int) -> None:
        super().__init__(inner.setup)
        if count < 0:
            raise UsageError(f"--confirm {count}: give 0 (no confirmations) or more")
        if count and inner.setup.trials is None:
            raise UsageError(f"{inner.name}+confirm{count}: confirmation repeats come at the end "
                             "of a budget of trials (--trials); this run has none")
        self.inner, self.count = inner, count
        self.name = f"{inner.name}+confirm{count}"  # type: ignore[misc]
        self.chooses_depths = inner.chooses_depths  # type: ignore[misc]
        self.multi_objective = inner.multi_objective  # type: ignore[misc]

    def sampler(self) -> optuna.samplers.BaseSampler:
        return self.inner.sampler()

    def queue(self, study: optuna.Study) -> list[Queued]:
        depth = self.confirmation(study)
        if depth is None:
            return self.inner.queue(study)
        return [(depth, {keys.CHOSEN_BY: "confirm", keys.CONFIRM: True, keys.MEASURE_AGAIN: True})]

    def confirmation(self, study: optuna.Study) -> int | None:
        """The depth to measure again now, or None (not in the last ``count``, or separated)."""
        setup = self.setup
        measured = measured_trials(study)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        confirmed = sum(1 for t in [*measured, *running] if t.user_attrs.get(keys.CONFIRM))
        stopped = stopped_trials(study)  # trainings too: they count toward --trials
        if not self.count or not in_confirm_phase(trials=int(setup.trials or 0),
                                                  trained=len(measured) + len(stopped) + len(running),
                                                  confirm=self.count, confirmed=confirmed):
            return None
        records = study_records(study, space=setup.space, objective=setup.objective, seed=setup.seed)
        return next_confirmation(records, setup.objective)
