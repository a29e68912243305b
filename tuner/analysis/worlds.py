"""The noisy worlds a replay draws from a landscape, and the truth its answers are judged by.

Why apart from the replay: the noise model of a landscape (per-depth
accuracy sd and seconds cv: its own spread, else pooled, else the defaults
``objectives.noise.DEFAULT_NOISE``) and the judgement of an answer (the
landscape's mean values, an accuracy bar, the best depth between the
measured ones, relative regret) are what ``compare`` reports against; the
replay loop only draws readings from them (``tuner.analysis.replay``'s
docstring says how).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from objectives.best import best_depth, depth_values, within_noise
from objectives.noise import DEFAULT_ACCURACY_SD, DEFAULT_SECONDS_CV, NoiseModel
from tuner.analysis.landscape import Landscape

__all__ = ["judged_values", "make_world", "noise_arrays", "reading", "regret", "true_best",
           "within_noise_of_best"]


def noise_arrays(land: Landscape) -> tuple[np.ndarray, np.ndarray]:
    """Per-depth accuracy sd and seconds cv (own spread, else pooled, else the defaults)."""
    t = land.table
    sd = np.array(t["val_accuracy_std"], dtype=float)
    cv = np.array(t["seconds_std"] / t["seconds"], dtype=float)
    for arr, default in ((sd, DEFAULT_ACCURACY_SD), (cv, DEFAULT_SECONDS_CV)):
        known = arr[~np.isnan(arr)]
        pooled = math.sqrt(float(np.mean(known**2))) if known.size else default
        arr[np.isnan(arr)] = pooled
    return sd, cv


def make_world(land: Landscape, *, seed: int, noise_scale: float = 1.0) -> pd.DataFrame:
    """One noisy realisation of ``land`` (indexed by depth), reproducible from ``seed``.

    Column ``value`` holds the landscape objective's value (efficiency by default).
    """
    sd, cv = noise_arrays(land)
    rng = np.random.default_rng(seed)
    z_acc = rng.standard_normal(len(land.table))
    z_sec = rng.standard_normal(len(land.table))
    sd, cv = sd * noise_scale, cv * noise_scale
    acc = np.clip(land.table["val_accuracy"].to_numpy() + sd * z_acc, 0.0, 1.0)
    sec = land.table["seconds"].to_numpy() * np.exp(cv * z_sec - cv**2 / 2)
    value = land.objective_spec.values(acc, sec)
    return pd.DataFrame(
        {"val_accuracy": acc, "seconds": sec, "value": value}, index=land.table.index
    )


def reading(land: Landscape, sd: np.ndarray, cv: np.ndarray, *, seed: int, depth: int,
             k: int) -> tuple[float, float]:
    """Reading ``k >= 1`` of ``depth`` (a repeat): new noise, reproducible from (seed, depth, k)."""
    i = land.table.index.get_loc(depth)
    z_acc, z_sec = np.random.default_rng([seed, depth, k]).standard_normal(2)
    acc = float(np.clip(land.table["val_accuracy"].iloc[i] + sd[i] * z_acc, 0.0, 1.0))
    sec = float(land.table["seconds"].iloc[i] * np.exp(cv[i] * z_sec - cv[i] ** 2 / 2))
    return acc, sec


def judged_values(landscape: Landscape) -> pd.Series:
    """Each depth's true value by the landscape's objective, as a final answer is judged.

    A depth below the objective's accuracy bar (cheapest-within: more than EPS
    under the best mean accuracy) is worth nothing: the worst value there is.
    """
    objective = landscape.objective_spec
    values = landscape.values.astype(float)
    if objective.eligible is not None:
        # The bar comes from the measured range, as the best depth does (``true_best``):
        # an extrapolated depth neither sets it nor clears it.
        inside = _measured_range(landscape)
        accuracy = landscape.table["val_accuracy"].where(inside).to_numpy(dtype=float)
        worst = -math.inf if objective.direction == "maximize" else math.inf
        values = values.where(np.asarray(objective.eligible(accuracy), dtype=bool), worst)
    return values


def _measured_range(landscape: Landscape) -> pd.Series:
    """True for the depths between the shallowest and the deepest measured one."""
    measured = landscape.measured_depths
    depths = landscape.table.index.to_series()
    if not measured:
        return depths == depths  # all
    return (depths >= min(measured)) & (depths <= max(measured))


def true_best(landscape: Landscape) -> tuple[int, float]:
    """The best depth of the (interpolated) landscape between its shallowest and deepest
    measured depth (never an extrapolated one), and its value.

    For efficiency and accuracy it is a measured depth (the formula is monotone
    between two interpolated points); under an accuracy bar the cheapest depth
    that clears it can lie between two measured ones.
    """
    inside = landscape.table[_measured_range(landscape).to_numpy()]
    depth = best_depth(inside, landscape.objective_spec)
    return depth, float(judged_values(landscape).loc[depth])


def regret(value: float, best: float, direction: str) -> float:
    """Relative regret of an answer worth ``value`` against the best depth's ``best``:
    the share of the best value lost (maximised objectives) or the extra share paid
    (minimised ones); 0 at the best, inf for an answer below the accuracy bar."""
    return 1.0 - value / best if direction == "maximize" else value / best - 1.0


def within_noise_of_best(landscape: Landscape, *, noise_scale: float = 1.0) -> set[int]:
    """The best depth and every depth whose mean value is within noise of it.

    The answer's test (``objectives.best``) with one reading per depth under
    the replayed noise (pooled over depths): ``|v_d - v_best| < 1.96 *
    sqrt(sd_d^2 + sd_best^2)``. Without noise only the best depth (and exact ties).
    A depth below the objective's accuracy bar (on the mean landscape) never is.
    """
    sd, cv = noise_arrays(landscape)
    noise = NoiseModel(accuracy_sd=float(np.sqrt(np.mean(sd**2))) * noise_scale,
                       seconds_cv=float(np.sqrt(np.mean(cv**2))) * noise_scale)
    table = landscape.table.assign(repeats=1, seeds=1)
    vals = depth_values(table, landscape.objective_spec, noise)
    best = true_best(landscape)[0]
    clears_bar = np.isfinite(judged_values(landscape).to_numpy())
    tie = (vals["value"] == vals.loc[best, "value"]).to_numpy(dtype=bool)
    close = clears_bar & (within_noise(vals, best).to_numpy(dtype=bool) | tie)
    return {int(d) for d in vals.index[close]} | {best}
