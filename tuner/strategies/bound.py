"""What a depth costs before it trains, and which depths provably cannot win.

Why: under ``efficiency`` (accuracy / seconds) accuracy is at most 1, so a
depth is worth at most ``1 / its seconds``. A deep depth whose seconds alone
put that ceiling below the best depth measured so far can be skipped
unseen; on the issue's real-data search such depths took 42 % of the wall
clock and could not have won.

**Price.** The plain protocol's seconds grow with depth: phase 1 and the
validation passes are the same work at every depth, and phase 2's backward
pass covers more layers the deeper the cut. The readings are noisy (one
shallow reading can come out dearer than a deeper one), so the cost model
is the monotone (isotonic) regression of the pooled readings over depth,
each weighted by its count: neighbours that contradict the order are
averaged into one block (pool-adjacent-violators), and a block's value
rests on all its readings. A depth then costs at least the fit at the
nearest measured depth below it and at most the fit at the nearest one
above (``price``; no upper end beyond the deepest reading); equivalent
depths share one price. Every trained trial stores the bracket it was given
(``price_low``, ``price_high``; no ``price_high``: no upper end) beside what
it measured, so the model's misses show per trial.

**Probed prices.** A cached search may price a depth beyond the deepest
reading by a short probe of its plain model (``tuner.trials.pricing``)
before deciding to train it; such a price is one more reading of seconds
for the cost model (``prices``), with no accuracy.

**Rule** (``closed``). Depth ``d`` is ruled out by a measured depth ``d' <= d``
when the objective at accuracy 1 and the fit's seconds at ``d'`` is below
the best depth's value by more than ``Z95`` combined standard deviations
(the fit's from the study's seconds noise over its block's readings, the
best value's from the answer, ``objectives.best``): a one-sided test at
about 2.5 %. Every depth beyond a ruling depth is ruled out with it, since
it costs at least as much.

* ``efficiency``, ``steady-efficiency``: as above, with the seconds each counts.
* ``accuracy``: the ceiling is accuracy 1 whatever the price, so nothing is
  ruled out; ``pareto``: a slower depth that is more accurate stays on the
  front, so there is no ceiling either.
* ``cheapest-within:EPS``: a depth is worth nothing once a cheaper depth
  stays eligible whatever the others measure; a measured depth ``c`` does so
  only when its accuracy (less its noise) is within EPS of a perfect 1.0 (a
  more accurate depth could raise the bar above it otherwise). Then a depth
  priced significantly above ``c`` is ruled out. With the thesis' accuracies
  (0.86-0.996) and any EPS below ~0.04 that never happens: it is safe, and rare.

Pure pandas/numpy on the study's records (``tuner.store.records``), so the
live search and the replay rule out the same depths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from objectives import Objective
from objectives.best import answer
from objectives.noise import Z95, estimate_noise, pool, standard_errors

__all__ = ["NO_BOUND", "Price", "RuledOut", "closed", "has_bound", "monotone_fit", "price"]

NO_BOUND = {
    "accuracy": "accuracy has no price ceiling (a depth can reach accuracy 1 whatever it costs)",
    "pareto": "a Pareto front keeps any slower depth that is more accurate",
}
"""Objectives under which no depth is ruled out, and why."""


def has_bound(objective: Objective) -> bool:
    """Can a price rule a depth out under ``objective``?"""
    return not objective.is_multi and objective.name not in NO_BOUND


@dataclass(frozen=True)
class Price:
    """The seconds a depth costs, as bracketed by the readings so far."""

    low: float
    """At least (0: nothing measured at or below it)."""
    high: float
    """At most (inf: nothing measured at or above it)."""

    def as_attrs(self) -> dict[str, float]:
        """No ``price_high`` for no upper end: JSON has no infinity (optuna-dashboard reads these)."""
        return {"price_low": self.low, **({"price_high": self.high} if math.isfinite(self.high) else {})}


@dataclass(frozen=True)
class RuledOut:
    """Why a depth cannot win: the measured depth whose price rules it out, and the numbers."""

    by_depth: int
    price: float
    """``by_depth``'s mean seconds: the least the ruled-out depth costs."""
    ceiling: float
    """The most the ruled-out depth can be worth (the objective at accuracy 1 and ``price``)."""
    best_depth: int
    best_value: float
    reason: str

    def as_attrs(self) -> dict[str, object]:
        return {"ruled_out": self.reason, "ruled_out_by": self.by_depth, "ruling_price": self.price,
                "value_ceiling": self.ceiling, "best_depth": self.best_depth,
                "best_value": self.best_value}


def _per_signature(records: Iterable[Mapping[str, object]],
                   signatures: Sequence[int]) -> tuple[pd.DataFrame, dict[int, int]]:
    """Pooled readings per weights' signature (which grows with depth), and each one's shallowest
    measured depth (what messages name)."""
    rows = [dict(r, depth=int(signatures[int(r["depth"])])) for r in records]
    depth_of: dict[int, int] = {}
    for r in records:
        sig = int(signatures[int(r["depth"])])
        depth_of[sig] = min(depth_of.get(sig, int(r["depth"])), int(r["depth"]))
    return pool(rows), depth_of


def monotone_fit(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic (non-decreasing) least-squares fit of ``values`` in their order, by
    pool-adjacent-violators; returns the fit and the weight each fitted value rests on."""
    blocks: list[list[float]] = []  # [weighted sum, weight, members]
    for v, w in zip(values, weights):
        blocks.append([float(v) * float(w), float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last)]
    fit = [s / w for s, w, n in blocks for _ in range(int(n))]
    rests_on = [w for _, w, n in blocks for _ in range(int(n))]
    return np.asarray(fit, dtype=float), np.asarray(rests_on, dtype=float)


def _fitted_seconds(table: pd.DataFrame, seconds_cv: float) -> tuple[pd.Series, np.ndarray]:
    """The monotone cost model at each measured signature, and its standard error there.

    The error is the noise model's over the readings the value rests on, or the
    readings' own spread around it when that is larger: a block that averages
    readings contradicting the order (one dear outlier) is worth less than its count."""
    seconds = table["fit_seconds"].to_numpy(dtype=float)
    weights = table["repeats"].to_numpy(dtype=float)
    fit, n = monotone_fit(seconds, weights)
    spread = np.zeros_like(fit)
    for value in np.unique(fit):
        block = fit == value
        if n[block][0] > 1:
            spread[block] = float(np.sum(weights[block] * (seconds[block] - value) ** 2)) / (n[block][0] - 1)
    se = np.sqrt(np.maximum((seconds_cv * fit) ** 2, spread) / n)
    return pd.Series(fit, index=table.index), se


def price(depth: int, records: Iterable[Mapping[str, object]], signatures: Sequence[int],
          prices: Iterable[Mapping[str, object]] = ()) -> Price:
    """``depth``'s seconds, bracketed by the cost model at the measured depths around it.

    ``prices``: seconds read by a probe without training (``{depth, fit_seconds}``), which the
    cost model takes as readings too."""
    table, _ = _per_signature(_cost_readings(records, prices), signatures)
    seconds, _ = _fitted_seconds(table, 0.0)
    sig = signatures[depth]
    below, above = seconds[seconds.index <= sig], seconds[seconds.index >= sig]
    return Price(float(below.iloc[-1]) if len(below) else 0.0,
                 float(above.iloc[0]) if len(above) else math.inf)


def _cost_readings(records: Iterable[Mapping[str, object]],
                   prices: Iterable[Mapping[str, object]]) -> list[dict]:
    """Trained readings and probed prices, as readings of seconds (a probe has no accuracy)."""
    return [*map(dict, records), *({"val_accuracy": math.nan, **p} for p in prices)]


def closed(records: Iterable[Mapping[str, object]], *, depths: Sequence[int],
           signatures: Sequence[int], objective: Objective,
           prices: Iterable[Mapping[str, object]] = (),
           val_examples: int | None = None) -> dict[int, RuledOut]:
    """The untrained signatures of ``depths`` ruled out by the readings so far (see the module).

    ``records``: trained readings (``{depth, val_accuracy, fit_seconds[, seed]}``); ``prices``:
    probed prices of untrained depths (``{depth, fit_seconds}``), which price but do not rank;
    ``val_examples``: the study's validation images (the best's binomial floor, ``objectives.noise``)."""
    records = list(records)
    if not records or not has_bound(objective):
        return {}
    trained, depth_of = _per_signature(records, signatures)
    ans = answer(trained, objective, estimate_noise(trained, val_examples=val_examples))
    costs, cost_depth_of = _per_signature(_cost_readings(records, prices), signatures)
    se_acc, se_sec = standard_errors(costs, ans.noise)
    fit, se_fit = _fitted_seconds(costs, ans.noise.seconds_cv)
    # By depth from here on (what the reasons name), the model's seconds in place of the readings.
    costs = costs.assign(measured_seconds=costs["fit_seconds"], fit_seconds=fit).rename(index=cost_depth_of)
    if objective.eligible is None:
        ruling = _ceilings(costs, se_fit, objective, depth_of[ans.best_depth], ans.best_value,
                           ans.best_sd)
    else:
        ruling = _cheaper_for_sure(costs, se_acc, se_sec, se_fit, objective)
    out: dict[int, RuledOut] = {}
    current: RuledOut | None = None
    for d in sorted(depths):
        sig = signatures[d]
        if sig in cost_depth_of:
            current = ruling.get(cost_depth_of[sig]) or current  # the nearest ruling at or below d
        if sig not in depth_of and current is not None:
            out.setdefault(sig, current)
    return out


def _ceilings(table: pd.DataFrame, se_sec: np.ndarray, objective: Objective, best: int,
              best_value: float, best_sd: float) -> dict[int, RuledOut]:
    """Measured depths whose seconds put even accuracy 1 significantly below the best value."""
    sec = table["fit_seconds"].to_numpy(dtype=float)
    ceiling = objective.values(np.ones_like(sec), sec)
    h = np.maximum(1e-9, 1e-6 * sec)
    slope = (objective.values(np.ones_like(sec), sec + h) - objective.values(np.ones_like(sec), sec - h)) / (2 * h)
    gap_sd = np.sqrt((slope * se_sec) ** 2 + best_sd**2)
    out = {}
    for i, d in enumerate(table.index):
        if best_value - ceiling[i] > Z95 * gap_sd[i]:
            out[int(d)] = RuledOut(
                int(d), float(sec[i]), float(ceiling[i]), best, best_value,
                f"depth {d} costs {sec[i]:.1f} s (monotone fit) and every deeper depth at least that: even at "
                f"accuracy 1 that is worth {ceiling[i]:.4g}, below the best so far (depth {best}, "
                f"{best_value:.4g}) beyond noise")
    return out


def _cheaper_for_sure(table: pd.DataFrame, se_acc: np.ndarray, se_sec: np.ndarray,
                      se_fit: np.ndarray, objective: Objective) -> dict[int, RuledOut]:
    """cheapest-within: measured depths priced significantly above the measured seconds of one
    that stays eligible for sure (what the answer will rank it by)."""
    acc = table["val_accuracy"].to_numpy(dtype=float)
    sec = table["fit_seconds"].to_numpy(dtype=float)
    measured = table["measured_seconds"].to_numpy(dtype=float)
    sure = [i for i in range(len(table))
            if bool(objective.eligible(np.array([acc[i] - Z95 * se_acc[i], 1.0]))[0])]
    if not sure:
        return {}
    c = min(sure, key=lambda i: measured[i])
    out = {}
    for i, d in enumerate(table.index):
        if sec[i] - measured[c] > Z95 * math.hypot(se_fit[i], se_sec[c]):
            out[int(d)] = RuledOut(
                int(d), float(sec[i]), math.inf, int(table.index[c]), float(measured[c]),
                f"depth {d} costs {sec[i]:.1f} s (monotone fit) and every deeper depth at least that, "
                f"beyond noise above depth {table.index[c]} ({measured[c]:.1f} s), whose accuracy clears the "
                "bar even against a perfect depth")
    return out
