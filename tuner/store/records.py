"""A stored study's measurements as plain records, ranked by the objective it was searched with."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna

from objectives import DEFAULT_OBJECTIVE, Objective, get_objective
from tuner import stored_keys as keys
from tuner.model.space import DepthSpace
from tuner.store.study import recorded_config, recorded_space
from tuner.store.trials import trial_depth
from tuner.stored_keys import protocol_seconds

__all__ = ["PHASE2_SHARE", "phase2_share", "study_objective", "study_records"]

PHASE2_SHARE = "phase2_share"  # a record's: phase 2's share of its protocol seconds


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
    head = study.user_attrs.get(keys.HEAD_PHASE)  # phase 1's metrics, in cached mode
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
             keys.PRICED_BETWEEN: bool(attrs.get(keys.PRICED_BETWEEN)), keys.DEVICE: attrs.get(keys.DEVICE),
             keys.VAL_ACCURACIES: attrs.get(keys.VAL_ACCURACIES), PHASE2_SHARE: phase2_share(attrs, head)}
        )
    return records


def phase2_share(attrs: Mapping[str, Any], head: Mapping[str, Any] | None) -> float | None:
    """A measured trial's phase-2 share of its protocol seconds: a cached one's from the shared
    head phase's seconds, a plain one's from its two phases' wall clock; None if unknown."""
    try:
        if attrs.get(keys.TRIAL_MODE) == "cached":
            return 1.0 - float(head[keys.PROTOCOL_SECONDS]) / float(attrs[keys.PROTOCOL_SECONDS])  # type: ignore[index]
        phases = attrs["phase_seconds"]
        return float(phases[1]) / float(sum(phases))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
