"""A stored study's measurements as plain records, ranked by the objective it was searched with."""

from __future__ import annotations

import math

import optuna

from objectives import DEFAULT_OBJECTIVE, Objective, get_objective
from tuner import stored_keys as keys
from tuner.model.space import DepthSpace
from tuner.store.study import recorded_config, recorded_space
from tuner.store.trials import trial_depth
from tuner.stored_keys import protocol_seconds

__all__ = ["study_objective", "study_records"]


def study_objective(study: optuna.Study) -> str:
    """The objective a study was searched with (efficiency for studies that recorded none)."""
    name = recorded_config(study).get("objective") or DEFAULT_OBJECTIVE
    get_objective(name)  # an unknown name is a usage error here, not later
    return name


def study_records(study: optuna.Study, *, space: DepthSpace | None = None,
                  objective: Objective | None = None, seed: int | None = None) -> list[dict[str, float]]:
    """One record per trained COMPLETE trial (reused measurements skipped), in trial order.

    ``seconds`` holds the seconds the study's objective counts (what the
    training cost is ``protocol_seconds``, whatever the objective); ``seed`` is
    the trial's own (user attr ``seed``) if it stored one, else the study's:
    repeats under one seed show timing noise only (``objectives.noise``). ``space``,
    ``objective`` and ``seed`` default to the study's recorded ones (a strategy
    passes its own: a replay's in-memory study records none).
    """
    space = space or recorded_space(study)
    objective = objective or get_objective(study_objective(study))
    study_seed = recorded_config(study).get("protocol", {}).get("seed", 0) if seed is None else seed
    records = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if keys.REUSED_FROM in attrs:
            continue
        depth = trial_depth(trial, space)
        if keys.VAL_ACCURACY not in attrs or keys.FIT_SECONDS not in attrs:
            continue
        try:
            acc, sec = float(attrs[keys.VAL_ACCURACY]), objective.seconds(attrs)
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(acc) and math.isfinite(sec) and sec > 0):
            continue
        records.append(
            {"number": trial.number, "depth": depth, "val_accuracy": acc, "seconds": sec,
             "protocol_seconds": protocol_seconds(attrs), "seed": attrs.get(keys.SEED, study_seed),
             keys.PRICED_BETWEEN: bool(attrs.get(keys.PRICED_BETWEEN)), keys.DEVICE: attrs.get(keys.DEVICE)}
        )
    return records
