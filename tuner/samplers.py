"""The strategies that are plain Optuna samplers, by name: a view of ``tuner.strategies``.

Kept for the CLI's ``--sampler`` help and older imports; the one table is
``tuner.strategies.STRATEGIES``.
"""

from __future__ import annotations

import optuna

from tuner.space import DepthSpace
from tuner.strategies import (
    DEFAULT_STRATEGY,
    STARTUP_TRIALS,
    STRATEGIES,
    Setup,
    make_strategy,
)

__all__ = ["SAMPLERS", "DEFAULT_SAMPLER", "STARTUP_TRIALS", "make_sampler"]

SAMPLERS: tuple[str, ...] = tuple(n for n, cls in STRATEGIES.items() if not cls.chooses_depths)
DEFAULT_SAMPLER = DEFAULT_STRATEGY


def make_sampler(name: str, *, space: DepthSpace, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of strategy ``name`` (a bad name is a UsageError)."""
    return make_strategy(name, Setup(space=space, seed=seed or 0)).sampler()
