"""The best depth: one ranking for every command, with the value's uncertainty.

``best_depth`` is the one function that ranks depths by an objective (``show``,
``report``, ``compare``, ``live-compare`` and landscapes all call it);
``answer`` adds the uncertainty: "best depth k, value v ± u; depths a, b, c
are within noise of it".

Method (README.md, "What best means"):

* each depth's value is the objective's formula on its pooled means
  (mean accuracy, mean seconds);
* its sd comes from the standard errors of those means under the study's
  noise model (``objectives.noise``), propagated through the formula to first
  order (delta method, numerical derivatives, so any formula works);
* the interval is normal, ``value ± 1.96 sd`` (about 95 %);
* another depth is **within noise** of the best when the two values differ
  by less than ``1.96 * sqrt(sd_best² + sd_other²)``: the difference is not
  significant in a two-sided 5 % z-test. (Overlapping 95 % intervals would
  be a much looser test, at about 0.6 % for equal sds.)

Ties in value go to the shallower depth (cheaper to train). Noise between
depths is taken as independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from objectives import Objective
from objectives.noise import Z95, NoiseModel, estimate_noise, standard_errors

CHOICES = ("best", "cheapest", "most-accurate")

__all__ = ["CHOICES", "Answer", "answer", "best_depth", "depth_values", "pareto_front", "reading_value_sd",
           "within_noise"]


def _order(values: np.ndarray, depths: np.ndarray, objective: Objective) -> np.ndarray:
    """Positions from best to worst; ties to the shallower depth."""
    key = -values if objective.direction == "maximize" else values
    key = np.where(np.isnan(key), np.inf, key)
    return np.lexsort((depths, key))


def _eligible(table: pd.DataFrame, objective: Objective) -> np.ndarray:
    if objective.eligible is None:
        return np.ones(len(table), dtype=bool)
    return np.asarray(objective.eligible(table["val_accuracy"].to_numpy(dtype=float)), dtype=bool)


def best_depth(table: pd.DataFrame, objective: Objective) -> int:
    """The best depth of a per-depth table (index depth; mean ``val_accuracy``, ``seconds``)."""
    values = objective.values(table["val_accuracy"], table["seconds"])
    depths = table.index.to_numpy(dtype=int)
    ok = _eligible(table, objective)
    order = _order(np.where(ok, values, np.nan), depths, objective)
    return int(depths[order[0]])


def pareto_front(table: pd.DataFrame) -> list[int]:
    """Depths no other depth beats on both mean accuracy (higher) and mean seconds (lower),
    cheapest first (ties in seconds: the more accurate, then the shallower)."""
    acc = table["val_accuracy"].to_numpy(dtype=float)
    sec = table["seconds"].to_numpy(dtype=float)
    depths = table.index.to_numpy(dtype=int)
    front, best_acc = [], -np.inf
    for i in np.lexsort((depths, -acc, sec)):
        if acc[i] > best_acc:
            front.append(int(depths[i]))
            best_acc = acc[i]
    return front


def _value_sd(objective: Objective, acc: np.ndarray, sec: np.ndarray,
              se_acc: np.ndarray, se_sec: np.ndarray) -> np.ndarray:
    """First-order sd of formula(acc, sec), numerical partial derivatives."""
    ha = np.maximum(1e-6, 1e-6 * np.abs(acc))
    hs = np.maximum(1e-9, 1e-6 * np.abs(sec))
    f = objective.values
    d_acc = (f(acc + ha, sec) - f(acc - ha, sec)) / (2 * ha)
    d_sec = (f(acc, sec + hs) - f(acc, sec - hs)) / (2 * hs)
    return np.sqrt((d_acc * se_acc) ** 2 + (d_sec * se_sec) ** 2)


def reading_value_sd(objective: Objective, noise: NoiseModel, accuracy: float, seconds: float,
                     seconds_sd: float = 0.0) -> float:
    """The sd of one new reading's value at ``accuracy`` and ``seconds``, under the study's noise
    (and a price's own ``seconds_sd``, where the seconds are not yet measured)."""
    se_acc = noise.accuracy_sds(np.array([accuracy]))
    se_sec = np.array([math.hypot(seconds * noise.seconds_cv, seconds_sd)])
    return float(_value_sd(objective, np.array([accuracy]), np.array([seconds]), se_acc, se_sec)[0])


def depth_values(table: pd.DataFrame, objective: Objective, noise: NoiseModel) -> pd.DataFrame:
    """Per depth: the objective's ``value``, its ``sd``, the 95 % interval ``low``/``high``."""
    acc = table["val_accuracy"].to_numpy(dtype=float)
    sec = table["seconds"].to_numpy(dtype=float)
    se_acc, se_sec = standard_errors(table, noise)
    value = objective.values(acc, sec)
    sd = _value_sd(objective, acc, sec, se_acc, se_sec)
    return pd.DataFrame(
        {"val_accuracy": acc, "seconds": sec, "repeats": table["repeats"].to_numpy(dtype=int),
         "value": value, "sd": sd, "low": value - Z95 * sd, "high": value + Z95 * sd,
         "eligible": _eligible(table, objective)},
        index=table.index,
    )


def within_noise(values: pd.DataFrame, best: int) -> pd.Series:
    """Which depths of ``depth_values``' table are within noise of depth ``best``: the two values
    differ by less than ``1.96 * sqrt(sd_best² + sd_other²)``."""
    b = values.loc[best]
    return (values["value"] - b["value"]).abs() < Z95 * np.sqrt(values["sd"] ** 2 + b["sd"] ** 2)


@dataclass(frozen=True)
class Answer:
    """The best depth by an objective, its value with a 95 % interval, and the depths within noise."""

    objective: Objective
    best_depth: int
    best_value: float
    best_sd: float
    best_interval: tuple[float, float]
    within_noise: list[int]
    noise: NoiseModel
    depths: pd.DataFrame = field(repr=False)
    front: list[int] = field(default_factory=list)
    """The accuracy/seconds Pareto front of the measured depths, cheapest first."""

    def chosen(self, how: str = "best") -> int:
        """A depth to hand over: the best, or the cheapest / most accurate of it and those within noise.

        A search often ends with several depths the readings cannot tell
        apart; which of them to train for use is the user's call."""
        if how == "best":
            return self.best_depth
        if how not in CHOICES:
            raise ValueError(f"unknown choice {how!r}: use one of {', '.join(CHOICES)}")
        near = self.depths.loc[[self.best_depth, *self.within_noise]]
        if how == "cheapest":  # ties: the more accurate, then the shallower
            order = np.lexsort((near.index.to_numpy(), -near["val_accuracy"].to_numpy(), near["seconds"].to_numpy()))
        else:  # ties: the cheaper, then the shallower
            order = np.lexsort((near.index.to_numpy(), near["seconds"].to_numpy(), -near["val_accuracy"].to_numpy()))
        return int(near.index[order[0]])

    def choices_line(self) -> str:
        """Under the best-depth line when depths are within noise: which ``export --choose`` takes which."""
        if not self.within_noise:
            return ""
        d = self.depths
        cheap, acc = self.chosen("cheapest"), self.chosen("most-accurate")
        if cheap == acc == self.best_depth:
            return ""
        cost = f"{d.loc[cheap, 'seconds']:.1f} s"
        accuracy = f"val_accuracy {d.loc[acc, 'val_accuracy']:.4f}"
        if cheap == acc:
            said = f"depth {cheap} is both the cheapest ({cost}) and the most accurate ({accuracy})"
        else:
            said = f"cheapest depth {cheap} ({cost}), most accurate depth {acc} ({accuracy})"
        return f"among them: {said}; export --choose cheapest / most-accurate takes it instead of the best"

    @property
    def half_width(self) -> float:
        return (self.best_interval[1] - self.best_interval[0]) / 2

    def line(self) -> str:
        """One readable line: best depth, value ± 95 % half-width, the depths within noise."""
        row = self.depths.loc[self.best_depth]
        n = int(row["repeats"])
        unit = " s" if self.objective.eligible is not None else ""
        facts = [f"{n} reading{'s' if n != 1 else ''}",
                 f"mean val_accuracy {row['val_accuracy']:.4f}", f"{row['seconds']:.1f} s"]
        if self.objective.eligible is not None:
            top = self.depths["val_accuracy"].idxmax()
            facts.append(f"best accuracy {self.depths.loc[top, 'val_accuracy']:.4f} at depth {top}")
        others = ", ".join(str(d) for d in self.within_noise) or "none"
        front = ""
        if self.objective.is_multi:
            d = self.depths
            front = "; Pareto front: " + ", ".join(
                f"{k} ({d.loc[k, 'val_accuracy']:.4f}, {d.loc[k, 'seconds']:.1f} s)"
                for k in self.front)
        return (f"best depth: {self.best_depth}, {self.objective.shown_as} {self.best_value:.4g} "
                f"± {self.half_width:.2g}{unit} (95 %; {', '.join(facts)}); "
                f"within noise of it: {others}{front} [{self.noise.describe(self.best_accuracy)}]")

    @property
    def best_accuracy(self) -> float:
        """The best depth's mean accuracy: where the noise it is judged by is read."""
        return float(self.depths.loc[self.best_depth, "val_accuracy"])

    def as_dict(self) -> dict[str, object]:
        """The json fields of ``show``: best_depth, best_value, best_interval, within_noise, ..."""
        return {
            "objective": self.objective.name,
            "best_depth": self.best_depth,
            "best_value": self.best_value,
            "best_sd": self.best_sd,
            "best_interval": [float(v) for v in self.best_interval],
            "within_noise": list(self.within_noise),
            "choices": {how: self.chosen(how) for how in CHOICES},
            "pareto_front": list(self.front),
            "noise": self.noise.as_dict(self.best_accuracy),
            "depths": [{"depth": int(d), **{k: _plain(v) for k, v in r.items()}}
                       for d, r in zip(self.depths.index, self.depths.to_dict("records"))],
        }


def _plain(v):
    """numpy scalars as JSON-friendly Python values."""
    return v.item() if hasattr(v, "item") else v


def answer(table: pd.DataFrame, objective: Objective, noise: NoiseModel | None = None, *,
           val_examples: int | None = None) -> Answer:
    """Rank the measured depths of a pooled table (``objectives.noise.pool``) and say how sure that is.

    ``noise`` defaults to the model estimated from the table's own repeats, with
    ``val_examples`` validation images behind each accuracy (``objectives.noise``).
    Depths with no reading (``repeats == 0``, interpolated) are left out.
    """
    table = table[table["repeats"] > 0]
    if table.empty:
        raise ValueError("no measured depth to rank")
    noise = noise if noise is not None else estimate_noise(table, val_examples=val_examples)
    vals = depth_values(table, objective, noise)
    best = best_depth(table, objective)
    b = vals.loc[best]
    close = vals["eligible"] & within_noise(vals, best) & (vals.index != best)
    vals = vals.assign(within_noise=close.to_numpy(dtype=bool))
    return Answer(
        objective=objective, best_depth=best, best_value=float(b["value"]), best_sd=float(b["sd"]),
        best_interval=(float(b["low"]), float(b["high"])),
        within_noise=[int(d) for d in vals.index[close.to_numpy(dtype=bool)]],
        noise=noise, depths=vals, front=pareto_front(table),
    )
