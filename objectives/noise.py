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
* **Seeds.** Training on CPU is deterministic for a given seed (cached and
  plain trials agree to the last digit), so repeats under the *same* seed
  show timing noise only. Accuracy noise is estimated from depths read under
  two or more seeds (a record's ``seed``; ``tuner.store.records.study_records``
  gives each trial its own seed if it stored one, else the study's), and a
  depth's mean accuracy averages over its distinct seeds, not its readings.
  Records without a ``seed`` count as independent readings.
* **Small validation sets.** A reading's accuracy sd is never below the
  binomial sd of the study's validation images, sqrt(p(1-p)/n) at the
  depth's accuracy (``NoiseModel.val_examples``): the seeds' spread cannot
  show that part, as every seed reads the same images.
* **Before any repeat** the stated default ``DEFAULT_NOISE`` applies
  (accuracy sd 0.015, seconds cv 15 %; the figures behind them are in
  README.md, "What best means").
* **Shrinkage.** Two confirmation repeats give an estimate on 1-2 degrees
  of freedom, which can be near zero by luck (two readings that agree) and
  would call every gap significant. The study's variance is therefore
  pooled with the default's as if the default were ``PRIOR_DF`` degrees of
  freedom of readings (a scaled inverse-chi-squared prior): the default
  dominates a study's first repeats and fades as repeats accumulate.
* **A depth's mean** then has standard errors ``sd / sqrt(seeds)``
  (accuracy) and ``cv * mean / sqrt(n)`` (seconds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_ACCURACY_SD",
    "DEFAULT_NOISE",
    "DEFAULT_SECONDS_CV",
    "PRIOR_DF",
    "Z95",
    "NoiseModel",
    "estimate_noise",
    "pool",
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
# The defaults weigh as much as this many degrees of freedom of a study's
# own repeats: with 2 confirmations (2 df) the default still has two thirds
# of the weight, with 20 df one sixth.
PRIOR_DF = 4

Z95 = 1.96
"""Normal quantile of a two-sided 95 % interval; also the 'within noise' threshold."""

POOLED_COLUMNS = ("val_accuracy", "seconds", "val_accuracy_std", "seconds_std", "repeats",
                  "seeds")


@dataclass(frozen=True)
class NoiseModel:
    """Study-wide noise of one reading: accuracy sd (absolute), seconds cv (relative).

    ``accuracy_df`` / ``seconds_df`` are how many degrees of freedom of the
    study's own repeats each figure rests on (sum of ``n - 1`` over the
    depths it pools), besides the default's ``PRIOR_DF``; 0 means the figure
    is the stated default.
    """

    accuracy_sd: float = DEFAULT_ACCURACY_SD
    seconds_cv: float = DEFAULT_SECONDS_CV
    accuracy_df: int = 0
    seconds_df: int = 0
    val_examples: int | None = None
    """Validation images behind each accuracy: a reading's sd is at least its binomial sd."""

    def accuracy_sds(self, accuracy) -> np.ndarray:
        """Each reading's accuracy sd: the study's, or the binomial sd of ``val_examples`` where larger.

        On 48 validation images an accuracy of 0.7 has a binomial sd of 0.066:
        four times the default, and no number of seeds removes it (the images
        are the same). Half an image is added to either count, so that 0 and 1
        keep a small sd of their own."""
        accuracy = np.asarray(accuracy, dtype=float)
        sd = np.full(accuracy.shape, self.accuracy_sd)
        if self.val_examples:
            n = float(self.val_examples)
            p = (np.clip(accuracy, 0.0, 1.0) * n + 0.5) / (n + 1.0)
            sd = np.maximum(sd, np.sqrt(p * (1.0 - p) / n))
        return sd

    @property
    def is_default(self) -> bool:
        return self.accuracy_df == 0 and self.seconds_df == 0

    def accuracy_sd_at(self, accuracy: float | None) -> tuple[float, str]:
        """The accuracy sd a reading at ``accuracy`` is given, and where it comes from: the
        binomial floor of the validation images, the study's repeats, or the prior."""
        study = _source(self.accuracy_df, "no depth read under two seeds yet")
        if accuracy is None or not math.isfinite(accuracy):
            return self.accuracy_sd, study
        used = float(self.accuracy_sds(accuracy))
        if used > self.accuracy_sd:
            return used, (f"the binomial sd of {self.val_examples} validation images at "
                          f"{accuracy:.3f}; the study's own {self.accuracy_sd:.3f} is {study}")
        return used, study + (f", at least the binomial sd of {self.val_examples} validation images"
                              if self.val_examples else "")

    def describe(self, accuracy: float | None = None) -> str:
        """One phrase: the figures used for a reading at ``accuracy`` (the best depth's), and
        where they come from."""
        sd, source = self.accuracy_sd_at(accuracy)
        return (f"noise per reading: accuracy sd {sd:.3f} ({source}), "
                f"seconds {100 * self.seconds_cv:.0f} % ({_source(self.seconds_df, 'no depth repeated yet')})")

    def as_dict(self, accuracy: float | None = None) -> dict[str, object]:
        """``accuracy_sd`` is the sd used for a reading at ``accuracy``; ``study_accuracy_sd`` the
        study-wide figure before the validation set's binomial floor."""
        sd, source = self.accuracy_sd_at(accuracy)
        return {"accuracy_sd": sd, "accuracy_sd_source": source, "study_accuracy_sd": self.accuracy_sd,
                "seconds_cv": self.seconds_cv, "accuracy_df": self.accuracy_df, "seconds_df": self.seconds_df,
                "val_examples": self.val_examples, "default": self.is_default}


DEFAULT_NOISE = NoiseModel()


def _source(df: int, none: str) -> str:
    """Where a noise figure comes from: ``df`` degrees of freedom of repeats, or the default."""
    return f"from repeats, {df} df, with the default as {PRIOR_DF}" if df else f"default, {none}"


def pool(records: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """Readings ``{depth, val_accuracy, seconds[, seed]}`` -> one row per depth, indexed by depth.

    Columns: means ``val_accuracy``, ``seconds``; sample sds
    ``val_accuracy_std``, ``seconds_std`` (NaN for one reading);
    ``repeats`` (readings of that depth); ``seeds`` (distinct seeds among
    them; a reading without a seed counts as one of its own).
    """
    rows = list(records)
    df = pd.DataFrame(rows, columns=["depth", "val_accuracy", "seconds"])
    df = df.astype({"depth": int, "val_accuracy": float, "seconds": float})
    # a reading without a seed is independent: give it a key no other reading has
    df["seed"] = [repr(r["seed"]) if r.get("seed") is not None else f"own:{i}"
                  for i, r in enumerate(rows)]
    g = df.groupby("depth").agg(
        val_accuracy=("val_accuracy", "mean"),
        seconds=("seconds", "mean"),
        val_accuracy_std=("val_accuracy", "std"),
        seconds_std=("seconds", "std"),
        repeats=("val_accuracy", "size"),
        seeds=("seed", "nunique"),
    )
    g.index = g.index.astype(int)
    g.index.name = "depth"
    return g.sort_index()[list(POOLED_COLUMNS)]


def _seeds(table: pd.DataFrame) -> pd.Series:
    """Distinct seeds per depth (a table without the column: every reading its own)."""
    return table["seeds"] if "seeds" in table.columns else table["repeats"]


def _pooled_sd(sd: pd.Series, df: pd.Series) -> tuple[float, int]:
    ok = (df > 0) & sd.notna()
    total = float(df[ok].sum())
    if total <= 0:
        return math.nan, 0
    return math.sqrt(float((df[ok] * sd[ok] ** 2).sum()) / total), int(total)


def estimate_noise(table: pd.DataFrame, *, default: NoiseModel = DEFAULT_NOISE,
                   val_examples: int | None = None) -> NoiseModel:
    """The noise model of a pooled table (``pool``'s columns): its repeats, else ``default``.

    Accuracy pools depths read under two or more seeds, seconds every
    repeated depth; each figure is shrunk toward the default (``PRIOR_DF``)
    and is the default alone without repeats of its own.
    """
    seeds = _seeds(table)
    acc_sd, acc_df = _pooled_sd(table["val_accuracy_std"],
                                (seeds - 1).where(seeds >= 2, 0).astype(float))
    positive = table["seconds"] > 0
    cv = (table["seconds_std"] / table["seconds"]).where(positive)
    sec_cv, sec_df = _pooled_sd(cv, (table["repeats"] - 1).where(positive, 0).astype(float))
    val_examples = val_examples or default.val_examples
    if acc_df == 0 and sec_df == 0:
        return default if val_examples == default.val_examples else replace(default, val_examples=val_examples)
    return NoiseModel(accuracy_sd=shrunk(acc_sd, acc_df, default.accuracy_sd),
                      seconds_cv=shrunk(sec_cv, sec_df, default.seconds_cv),
                      accuracy_df=acc_df, seconds_df=sec_df, val_examples=val_examples)


def shrunk(sd: float, df: int, default: float, prior_df: int = PRIOR_DF) -> float:
    """A study's sd on ``df`` degrees of freedom, pooled with ``default`` worth ``prior_df``."""
    if not df:
        return default
    return math.sqrt((df * sd**2 + prior_df * default**2) / (df + prior_df))


def standard_errors(table: pd.DataFrame, noise: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors of each depth's mean accuracy (over its seeds) and mean seconds."""
    n = np.maximum(table["repeats"].to_numpy(dtype=float), 1.0)
    n_seeds = np.maximum(_seeds(table).to_numpy(dtype=float), 1.0)
    se_acc = noise.accuracy_sds(table["val_accuracy"].to_numpy(dtype=float)) / np.sqrt(n_seeds)
    se_sec = noise.seconds_cv * table["seconds"].to_numpy(dtype=float) / np.sqrt(n)
    return se_acc, se_sec
