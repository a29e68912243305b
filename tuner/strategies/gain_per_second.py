"""Choose the depth with the most expected gain per second of its price.

Why: every depth has a price before it trains (``tuner.strategies.cost``), and
the search's question is value per second, so a sampler blind to prices (TPE)
spends a deep depth's minute where a shallow one's ten seconds might answer as
much. This one scores each free depth by its **expected improvement** over the
best value so far, from a model of the value over log depth, divided by its
price: Quick-Tune's (ICLR 2024) expected improvement per predicted cost, on
this project's known prices. The price's weight decays as the trials are
spent (**cost-cooling**, CArBO): ``EI / price ** (left / total)``, so the last
trials chase the gain whatever it costs.

The model: a Gaussian process over ``log(1 + depth)`` on the study's answer
(``objectives.best``: each read depth's pooled value and its sd under the
study's noise), with a squared-exponential kernel of a fixed length (a fifth
of the range in log depth) and the values' own spread as its variance: few
readings cannot fit more. Before ``STARTUP`` readings it samples as the
random strategy does. Depths whose weights were read, ruled out or stopped
early are not candidates (the ask-round would not train them).

It reads the study through ``tuner.strategies.study_readings`` with the
setup's signatures, as the ask-round does, so it sees the same answer, prices
and ruled-out depths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from tuner import stored_keys as keys
from tuner.store.trials import stopped_trials, trained_count, trial_depth
from tuner.strategies.base import Setup
from tuner.strategies.early_stop import stopped_weights
from tuner.strategies.samplers import _CheapestFirst
from tuner.strategies.study_readings import study_readings

__all__ = ["GainPerSecond", "GainPerSecondSampler", "expected_improvement", "choose_depth"]

STARTUP = 3
"""Readings before the model decides (with fewer, a random depth on the search's scale)."""
LENGTH_SHARE = 0.2
"""The kernel's length, as a share of the range in log(1 + depth)."""


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """E[max(0, value - best)] for normal values (a maximised value)."""
    sd = np.maximum(sd, 1e-12)
    z = (mean - best) / sd
    phi = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    return (mean - best) * cdf + sd * phi


def posterior(x: np.ndarray, y: np.ndarray, noise_sd: np.ndarray, at: np.ndarray,
              length: float) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian process's mean and sd at ``at`` given values ``y`` at ``x`` (each with its sd)."""
    prior_mean = float(np.mean(y))
    variance = max(float(np.var(y)), float(np.mean(noise_sd**2)), 1e-12)

    def kernel(a, b):
        return variance * np.exp(-0.5 * ((a[:, None] - b[None, :]) / length) ** 2)

    k = kernel(x, x) + np.diag(noise_sd**2 + 1e-12 * variance)
    ks = kernel(at, x)
    solve = np.linalg.solve(k, np.column_stack([y - prior_mean, ks.T]))
    mean = prior_mean + ks @ solve[:, 0]
    var = variance - np.einsum("ij,ji->i", ks, solve[:, 1:])
    return mean, np.sqrt(np.maximum(var, 0.0))


def choose_depth(candidates: Sequence[int], prices: Sequence[float], read: dict[int, tuple[float, float]],
                 *, best: float, share_left: float, low: int, high: int) -> int:
    """The candidate with the most expected improvement over ``best`` per second of its price,
    the price weighted by ``share_left`` of the trials (ties: the shallower).

    ``read``: depth -> (value, sd) of the depths read so far (a maximised value)."""
    depths = np.array(sorted(read), dtype=float)
    values = np.array([read[d][0] for d in sorted(read)])
    sds = np.array([read[d][1] for d in sorted(read)])
    x = np.log1p(depths)
    length = LENGTH_SHARE * max(math.log1p(high) - math.log1p(low), 1e-6)
    at = np.log1p(np.asarray(candidates, dtype=float))
    mean, sd = posterior(x, values, sds, at, length)
    gain = expected_improvement(mean, sd, best)
    cost = np.maximum(np.asarray(prices, dtype=float), 1e-9) ** min(1.0, max(0.0, share_left))
    score = gain / cost
    order = np.lexsort((np.asarray(candidates), -score))
    return int(np.asarray(candidates)[order[0]])


class GainPerSecondSampler(optuna.samplers.BaseSampler):
    """Optuna's sampler interface over ``choose_depth``: one independent parameter, the depth."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self._random = optuna.samplers.RandomSampler(seed=setup.seed)

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution):
        depth = self._choose(study)
        if depth is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        return self.setup.space.params_for(depth)[param_name]

    def _choose(self, study: optuna.Study) -> int | None:
        s = self.setup
        space, objective = s.space, s.objective
        signatures = s.signatures or tuple(range(space.high + 1))
        readings = study_readings(study, space=space, signatures=signatures, objective=objective, seed=s.seed)
        ranked = readings.ranked
        if ranked is None or len(ranked.depths) < STARTUP:
            return None
        sign = 1.0 if objective.direction == "maximize" else -1.0
        column = "value" if objective.within is None else keys.VAL_ACCURACY  # what the study is told
        read = {int(d): (sign * float(r[column]), float(r["sd"]) if column == "value" else
                         float(ranked.noise.accuracy_sds(float(r[column]))) / math.sqrt(max(int(r["repeats"]), 1)))
                for d, r in ranked.depths.iterrows()}
        taken = set(readings.closed(space.depths())) | set(stopped_weights(stopped_trials(study), space, signatures))
        taken |= {signatures[trial_depth(t, space)] for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                  if t.params or keys.DEPTH in t.user_attrs}
        candidates = [d for sig, d in readings.unread(space.depths()).items() if sig not in taken]
        if not candidates:
            return None
        prices = [_price(readings.price(d)) for d in candidates]
        left = 1.0 - trained_count(study) / s.trials if s.trials else 1.0
        best = max(v for v, _ in read.values())
        return choose_depth(candidates, prices, read, best=best, share_left=left, low=space.low, high=space.high)


def _price(price) -> float:
    """The estimate, or where the model has none the bracket's known end."""
    if math.isfinite(price.seconds):
        return price.seconds
    return price.low if price.low > 0 else (price.high if math.isfinite(price.high) else 1.0)


class GainPerSecond(_CheapestFirst):
    """Expected improvement per second of price, with cost-cooling (this module)."""

    name = "gain-per-second"
    multi_objective = False

    def sampler(self) -> optuna.samplers.BaseSampler:
        return GainPerSecondSampler(self.setup)

