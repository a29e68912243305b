"""Repeated readings of a depth pooled, and one noise model that gives every depth an uncertainty.

Why: timings of one depth move by tens of percent between runs on a shared
machine and accuracy by a point or more between seeds, so a single reading
says little. This module is pure pandas/numpy (no TensorFlow, no Optuna).

The method, kept deliberately simple:

* **Pooling.** Readings of one depth are averaged: mean, sample sd and count
  ``repeats`` per depth (``pool``).
* **Noise model.** One absolute sd for accuracy and one *relative* sd
  (coefficient of variation) for seconds, for the whole study: timings scale
  with the depth's cost, accuracy noise does not. Estimated from the study's
  own repeats as the within-depth variance pooled over every depth with two or
  more readings, each weighted by its degrees of freedom ``n - 1`` (the
  within-group variance of a one-way ANOVA). A depth's own sd of two or three
  readings is too unstable to use alone (two readings can agree exactly), so
  every depth, repeated or not, uses the pooled model.
* **Before any repeat** the stated default ``DEFAULT_NOISE`` applies
  (accuracy sd 0.015, seconds cv 15 %; the figures behind them are in
  README.md, "What best means").
* **A depth's mean** then has standard errors ``sd / sqrt(n)`` (accuracy)
  and ``cv * mean / sqrt(n)`` (seconds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_ACCURACY_SD",
    "DEFAULT_SECONDS_CV",
    "DEFAULT_NOISE",
    "Z95",
    "NoiseModel",
    "pool",
    "estimate_noise",
    "standard_errors",
]

# Defaults before a study has repeats (see README.md, "What best means"):
# seconds: plain fit_seconds of one depth, three runs on this 2-core machine,
# spread 9-43 % of the median (range / 1.7 ~ sd of 5-25 %, pooled 17 %);
# cached protocol_seconds pooled 8 %; the thesis' neighbouring stage-3 depths
# 5-13 %. 15 % sits between the two trial modes, on the cautious side.
# accuracy: the thesis' stage-3 neighbours spread by sd 0.002-0.014, and the
# binomial sd alone of 734 tf_flowers validation images at 0.89 is 0.012;
# seeds add to that, hence 0.015.
DEFAULT_ACCURACY_SD = 0.015
DEFAULT_SECONDS_CV = 0.15

Z95 = 1.96
"""Normal quantile of a two-sided 95 % interval; also the 'within noise' threshold."""

POOLED_COLUMNS = ("val_accuracy", "fit_seconds", "val_accuracy_std", "fit_seconds_std", "repeats")


@dataclass(frozen=True)
class NoiseModel:
    """Study-wide noise of one reading: accuracy sd (absolute), seconds cv (relative).

    ``degrees_of_freedom`` is how many repeat readings the estimate rests on
    (sum of ``n - 1`` over repeated depths); 0 means the stated default.
    """

    accuracy_sd: float = DEFAULT_ACCURACY_SD
    seconds_cv: float = DEFAULT_SECONDS_CV
    degrees_of_freedom: int = 0
    repeated_depths: int = 0

    @property
    def is_default(self) -> bool:
        return self.degrees_of_freedom == 0

    def describe(self) -> str:
        """One phrase: the figures and where they come from."""
        source = ("default, no depth repeated yet" if self.is_default else
                  f"from {self.repeated_depths} repeated depth"
                  f"{'s' if self.repeated_depths != 1 else ''}, {self.degrees_of_freedom} df")
        return (f"noise per reading: accuracy sd {self.accuracy_sd:.3f}, "
                f"seconds {100 * self.seconds_cv:.0f} % ({source})")

    def as_dict(self) -> dict[str, object]:
        return {"accuracy_sd": self.accuracy_sd, "seconds_cv": self.seconds_cv,
                "degrees_of_freedom": self.degrees_of_freedom,
                "repeated_depths": self.repeated_depths, "default": self.is_default}


DEFAULT_NOISE = NoiseModel()


def pool(records: Iterable[Mapping[str, float]]) -> pd.DataFrame:
    """Readings ``{depth, val_accuracy, fit_seconds}`` -> one row per depth, indexed by depth.

    Columns: means ``val_accuracy``, ``fit_seconds``; sample sds
    ``val_accuracy_std``, ``fit_seconds_std`` (NaN for one reading);
    ``repeats`` (readings of that depth).
    """
    df = pd.DataFrame(list(records), columns=["depth", "val_accuracy", "fit_seconds"])
    df = df.astype({"depth": int, "val_accuracy": float, "fit_seconds": float})
    g = df.groupby("depth").agg(
        val_accuracy=("val_accuracy", "mean"),
        fit_seconds=("fit_seconds", "mean"),
        val_accuracy_std=("val_accuracy", "std"),
        fit_seconds_std=("fit_seconds", "std"),
        repeats=("val_accuracy", "size"),
    )
    g.index = g.index.astype(int)
    g.index.name = "depth"
    return g.sort_index()[list(POOLED_COLUMNS)]


def estimate_noise(table: pd.DataFrame, *, default: NoiseModel = DEFAULT_NOISE) -> NoiseModel:
    """The noise model of a pooled table (``pool``'s columns): its repeats, else ``default``."""
    rep = table[(table["repeats"] >= 2) & table["val_accuracy_std"].notna()
                & table["fit_seconds_std"].notna() & (table["fit_seconds"] > 0)]
    df = (rep["repeats"] - 1).to_numpy(dtype=float)
    if df.sum() <= 0:
        return default
    acc_var = float(np.sum(df * rep["val_accuracy_std"].to_numpy(dtype=float) ** 2) / df.sum())
    cv = (rep["fit_seconds_std"] / rep["fit_seconds"]).to_numpy(dtype=float)
    cv_var = float(np.sum(df * cv**2) / df.sum())
    return NoiseModel(accuracy_sd=math.sqrt(acc_var), seconds_cv=math.sqrt(cv_var),
                      degrees_of_freedom=int(df.sum()), repeated_depths=len(rep))


def standard_errors(table: pd.DataFrame, noise: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors of each depth's mean accuracy and mean seconds under ``noise``."""
    n = np.maximum(table["repeats"].to_numpy(dtype=float), 1.0)
    se_acc = noise.accuracy_sd / np.sqrt(n)
    se_sec = noise.seconds_cv * table["fit_seconds"].to_numpy(dtype=float) / np.sqrt(n)
    return se_acc, se_sec
