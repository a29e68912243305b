"""Optuna's samplers as depth strategies: TPE (the default), GP, random, grid.

TPE, GP and random train the range's shallowest depth first in a new study
(``_CheapestFirst``), then let their Optuna sampler suggest.
"""

from __future__ import annotations

import optuna

from tuner import stored_keys as keys
from tuner.errors import UsageError
from tuner.strategies.base import Queued, Strategy

__all__ = ["CHEAPEST_FIRST", "GP", "STARTUP_TRIALS", "TPE", "Grid", "Random"]

# Budgets here are ~13 trials; Optuna's default of 10 random start-up trials
# would leave TPE and GP almost nothing to decide.
STARTUP_TRIALS = 4


CHEAPEST_FIRST = {keys.CHOSEN_BY: "cheapest-first"}
"""User attributes of a sampler's first depth."""


class _CheapestFirst(Strategy):
    """A sampler that trains the shallowest depth of the range first, then samples.

    Why: before any reading nothing can be ruled out (``tuner.strategies.bound``),
    and a first random suggestion deep in the range costs as much as a plain
    trial even in cached mode (on the log scale a quarter of them land beyond
    depth 40 of MobileNetV2's 154). The shallowest
    depth is the cheapest (a cached depth 0 reuses the head phase: ~3 s), and
    its value is the first best for the bound to rule dear depths out by.
    Replayed on the thesis tables it changed no answer beyond the noise of 50
    seeds and saved 1-3 % of the training seconds (benchmarks/RESULTS.md)."""

    def queue(self, study: optuna.Study) -> list[Queued]:
        if study.get_trials(deepcopy=False):
            return []
        return [(self.setup.space.low, dict(CHEAPEST_FIRST))]


class TPE(_CheapestFirst):
    """Optuna's TPE (the default: best on the thesis tables, benchmarks/RESULTS.md)."""

    name = "tpe"

    def sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=self.setup.seed, n_startup_trials=STARTUP_TRIALS,
                                          constant_liar=True)


class GP(_CheapestFirst):
    """Optuna's Gaussian-process sampler (needs torch and scipy)."""

    name = "gp"

    def sampler(self) -> optuna.samplers.BaseSampler:
        try:
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            raise UsageError(
                f"the 'gp' sampler needs torch and scipy ({exc.name} is missing): "
                "pip install 'depth-tuner[gp]' (a CPU build of torch is enough), "
                "or pick --strategy tpe|random|grid"
            ) from None
        return optuna.samplers.GPSampler(seed=self.setup.seed, n_startup_trials=STARTUP_TRIALS)


class Random(_CheapestFirst):
    """Uniform on the depth scale."""

    name = "random"


class _GridThatDoesNotStop(optuna.samplers.GridSampler):
    """GridSampler whose used-up grid leaves stopping to the search.

    Optuna's calls ``study.stop()`` after the last grid point's trial, which
    raises outside ``study.optimize``: the search tells trials itself, and
    stops once every depth is measured (``tuner.strategies.decision``)."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


class Grid(Strategy):
    """Every depth of the range once, in Optuna's GridSampler order."""

    name = "grid"

    def sampler(self) -> optuna.samplers.BaseSampler:
        space = self.setup.space
        grid = [space.params_for(d)[space.param_name] for d in space.depths()]
        return _GridThatDoesNotStop({space.param_name: grid}, seed=self.setup.seed)
