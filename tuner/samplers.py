"""Optuna samplers by name: the one table ``search``, ``compare`` and the API read."""

from __future__ import annotations

from collections.abc import Callable

import optuna

from tuner.errors import UsageError
from tuner.space import DepthSpace

# Budgets here are ~13 trials; Optuna's default of 10 random start-up trials
# would leave TPE and GP almost nothing to decide.
STARTUP_TRIALS = 4


def _tpe(space: DepthSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=STARTUP_TRIALS, constant_liar=True
    )


def _gp(space: DepthSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    try:
        import scipy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the 'gp' sampler needs torch and scipy ({exc.name} is missing): "
            "pip install 'depth-tuner[gp]' (a CPU build of torch is enough), "
            "or pick --sampler tpe|random|grid"
        ) from None
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=STARTUP_TRIALS)


def _random(space: DepthSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _grid(space: DepthSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    grid = [space.params_for(d)[space.param_name] for d in space.depths()]
    return optuna.samplers.GridSampler({space.param_name: grid}, seed=seed)


SAMPLERS: dict[str, Callable[[DepthSpace, int | None], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "gp": _gp,
    "random": _random,
    "grid": _grid,
}

DEFAULT_SAMPLER = "tpe"


def make_sampler(
    name: str, *, space: DepthSpace, seed: int | None = None
) -> optuna.samplers.BaseSampler:
    try:
        factory = SAMPLERS[name]
    except KeyError:
        raise UsageError(
            f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}"
        ) from None
    return factory(space, seed)
