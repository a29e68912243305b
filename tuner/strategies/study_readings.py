"""A study's readings as one ``Readings`` (``tuner.strategies.bound``): what the ask-round rules
and prices by, and what a strategy that weighs prices reads (``gain_per_second``).

Why one function: the round and a strategy's sampler must see the same answer, prices and
ruled-out depths; each building them from the study in its own way would drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from objectives import Objective
from tuner import stored_keys as keys
from tuner.model.space import DepthSpace
from tuner.store.records import study_records
from tuner.store.study import study_val_examples
from tuner.store.trials import trial_depth
from tuner.strategies.bound import Readings, has_bound

__all__ = ["probe_reading", "study_readings"]


def study_readings(study: optuna.Study, *, space: DepthSpace, signatures: Sequence[int],
                   objective: Objective | None, seed: int, device: str | None = None,
                   ranked: bool = True) -> Readings:
    """The study's trained readings (in ``objective``'s seconds; none without one) and probe
    readings. ``ranked`` False (a strategy that trains what it lists) gives the cost model
    alone: no answer, no bound, no targets."""
    records = (study_records(study, space=space, objective=objective, seed=seed)
               if objective is not None else [])
    ranks = objective if ranked else None
    probes = ([probe_reading(ranks, trial_depth(t, space), t.user_attrs[keys.PROBED])
               for t in study.get_trials(deepcopy=False)
               if keys.PROBED in t.user_attrs and t.state != TrialState.COMPLETE]
              if ranks is not None and has_bound(ranks) else [])
    return Readings(records, signatures, probes, objective=ranks,
                    val_examples=study_val_examples(study), device=device)


def probe_reading(objective: Objective, depth: int, probed: dict) -> dict:
    """A probe's seconds as a reading of ``depth`` (no accuracy), in the objective's seconds."""
    return {"depth": depth, "seconds": objective.seconds(probed), keys.DEVICE: probed.get(keys.DEVICE)}
