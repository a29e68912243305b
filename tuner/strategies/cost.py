"""What a depth costs before it trains: the cost model over depth, fitted to what was read.

Why a model: the bound (``tuner.strategies.bound``) can only rule out a depth
whose price it knows, and a search reads few depths. The plain protocol's
seconds grow with depth (phase 1 and the validation passes are the same work
at every depth; phase 2's backward pass covers more layers the deeper the
cut), so the readings so far say something about every depth.

**Readings.** Trained trials' seconds and probe readings (``tuner.trials.probing``:
a short probe of the plain model, no accuracy), pooled per weights'
signature (depths that train the same weights share one price) and fitted
monotone over depth (isotonic regression, weighted by readings: one dear
outlier contradicted by a cheaper deeper depth is averaged, not believed).

**Bracket** (``Price.low`` / ``Price.high``): a depth costs at least the fit at the
nearest read depth below it and at most the fit at the nearest one above:
what monotonicity alone proves.

**Estimate** (``Price.seconds`` ± ``Price.sd``): linear in the number of
weight-holding layers that train (the signature) between the read depths
around it, and beyond the deepest (or below the shallowest) along the
weighted least-squares slope of all the fitted values: of the measures of
a depth's work tried, trainable layers fitted the plain readings best without
doubling the deep prices when extrapolated (benchmarks/RESULTS.md, "The cost
model's shape"), and ``MODEL_CV`` is its measured misfit, added to the
readings' own error. With one
signature read there is no slope: the estimate beyond it is its fit, with
no upper end.

Every depth the search trains or rules out stores its price (``as_attrs``),
so the model's miss shows per trial beside what it measured (``show --all``).
Pure pandas/numpy, so the live search and the replay price alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from objectives.noise import pool
from tuner import stored_keys as keys

__all__ = ["CLOSE_BRACKET", "MODEL_CV", "CostModel", "Price", "cost_readings", "monotone_fit"]

MODEL_CV = 0.10
"""Relative error of the linear-in-layers shape between and beyond read depths (see the module)."""

CLOSE_BRACKET = 0.10
"""A depth whose bracket is at most this share of its estimate is priced without a probe of its own
(``Price.closely_bracketed``): seconds grow with depth, so its price lies inside the bracket, and
interpolating errs by at most half of it, 5 %, where a probe's price errs by up to ±10 % against
plain runs (benchmarks/RESULTS.md, session 28)."""


@dataclass(frozen=True)
class Price:
    """The seconds a depth costs, as the readings so far bracket and estimate them."""

    low: float
    """At least (0: nothing read at or below it)."""
    high: float
    """At most (inf: nothing read at or above it)."""
    seconds: float = math.nan
    """The cost model's estimate (nan: nothing read)."""
    sd: float = math.inf
    """Its standard deviation (inf: no slope to extrapolate by)."""

    def as_attrs(self) -> dict[str, float]:
        """No key for an infinite or unknown end: JSON has no infinity (optuna-dashboard reads these)."""
        out = {keys.PRICE_LOW: self.low, keys.PRICE_HIGH: self.high, keys.PRICE: self.seconds, keys.PRICE_SD: self.sd}
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}

    def closely_bracketed(self) -> bool:
        """Read depths on both sides, priced within ``CLOSE_BRACKET`` of each other: a probe
        would add little that interpolating does not already know."""
        return self.low > 0 and math.isfinite(self.high) and self.high - self.low <= CLOSE_BRACKET * self.seconds

    def least(self, z: float) -> float:
        """A lower confidence bound: the bracket's low end, or the estimate less ``z`` sds if higher."""
        return max(self.low, self.seconds - z * self.sd) if math.isfinite(self.sd) else self.low

    def most(self, z: float) -> float:
        """An upper confidence bound: the estimate plus ``z`` sds, within the bracket's high end."""
        return min(self.high, self.seconds + z * self.sd) if math.isfinite(self.sd) else self.high


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


def cost_readings(records: Iterable[Mapping[str, object]],
                  probes: Iterable[Mapping[str, object]] = (), *, device: str | None = None) -> list[dict]:
    """Trained readings and probe readings, as readings of seconds (a probe has no accuracy). A
    reading whose seconds were interpolated (``priced_between``) is the model's own, not a reading;
    one taken on another device than ``device`` is another machine's seconds (one that recorded
    no device, from before devices were recorded, counts)."""
    def here(r: Mapping[str, object]) -> bool:
        return device is None or r.get(keys.DEVICE) in (None, device)

    return [*(dict(r) for r in records if not r.get(keys.PRICED_BETWEEN) and here(r)),
            *({"val_accuracy": math.nan, **p} for p in probes if here(p))]


def per_signature(records: Iterable[Mapping[str, object]],
                  signatures: Sequence[int]) -> tuple[pd.DataFrame, dict[int, int]]:
    """Pooled readings per weights' signature (which grows with depth), and each one's shallowest
    read depth (what messages name)."""
    records = list(records)
    rows = [dict(r, depth=int(signatures[int(r["depth"])])) for r in records]
    depth_of: dict[int, int] = {}
    for r in records:
        sig = int(signatures[int(r["depth"])])
        depth_of[sig] = min(depth_of.get(sig, int(r["depth"])), int(r["depth"]))
    return pool(rows), depth_of


class CostModel:
    """The monotone fit of the readings per signature, and a price for any depth from it."""

    def __init__(self, records: Iterable[Mapping[str, object]], signatures: Sequence[int],
                 probes: Iterable[Mapping[str, object]] = (), *, seconds_cv: float = 0.0,
                 device: str | None = None):
        self.signatures = signatures
        self.table, self.depth_of = per_signature(cost_readings(records, probes, device=device), signatures)
        self.fit, self.se = self._fitted(seconds_cv)
        self.slope, self.slope_se = self._slope()

    def _fitted(self, seconds_cv: float) -> tuple[pd.Series, np.ndarray]:
        """The fit at each read signature, and its standard error there: the noise model's over
        the readings it rests on, or their own spread around it when larger (a block averaging
        readings that contradict the order is worth less than its count)."""
        if self.table.empty:
            return pd.Series(dtype=float), np.zeros(0)
        seconds = self.table["seconds"].to_numpy(dtype=float)
        weights = self.table["repeats"].to_numpy(dtype=float)
        fit, n = monotone_fit(seconds, weights)
        spread = np.zeros_like(fit)
        for value in np.unique(fit):
            block = fit == value
            if n[block][0] > 1:
                spread[block] = float(np.sum(weights[block] * (seconds[block] - value) ** 2)) / (n[block][0] - 1)
        return pd.Series(fit, index=self.table.index), np.sqrt(np.maximum((seconds_cv * fit) ** 2, spread) / n)

    def _slope(self) -> tuple[float, float]:
        """Seconds per signature step over all fitted values (weighted least squares, not below 0)."""
        x = self.fit.index.to_numpy(dtype=float)
        if len(x) < 2:
            return math.nan, math.inf
        w = 1.0 / np.maximum(self.se, 1e-6 * np.maximum(self.fit.to_numpy(), 1.0)) ** 2
        xm = float(np.sum(w * x) / np.sum(w))
        sxx = float(np.sum(w * (x - xm) ** 2))
        y = self.fit.to_numpy()
        b = float(np.sum(w * (x - xm) * y) / sxx)
        # Scaled by the points' scatter about the line where it exceeds their errors (misfit).
        scatter = float(np.sum(w * (y - (y @ w / np.sum(w)) - b * (x - xm)) ** 2)) / (len(x) - 2) if len(x) > 2 else 1.0
        return max(b, 0.0), math.sqrt(max(scatter, 1.0) / sxx)

    def price(self, depth: int) -> Price:
        """``depth``'s bracket and estimate (see the module)."""
        low, high, seconds, sd = self.prices([self.signatures[depth]])
        return Price(float(low[0]), float(high[0]), float(seconds[0]), float(sd[0]))

    def prices(self, sigs: Sequence[int]) -> tuple[np.ndarray, ...]:
        """(low, high, estimate, sd) at each of ``sigs``, as arrays: linear between the read
        signatures around one, along the slope beyond them, ``MODEL_CV`` added to the error."""
        sigs = np.asarray(sigs, dtype=float)
        if self.fit.empty:
            nan = np.full(len(sigs), math.nan)
            return np.zeros(len(sigs)), np.full(len(sigs), math.inf), nan, np.full(len(sigs), math.inf)
        x, y, se = self.fit.index.to_numpy(dtype=float), self.fit.to_numpy(), self.se
        i = np.searchsorted(x, sigs, side="right") - 1  # nearest read at or below (-1: none)
        j = np.searchsorted(x, sigs, side="left")  # nearest read at or above (len: none)
        has_low, has_high = i >= 0, j < len(x)
        ic, jc = np.clip(i, 0, len(x) - 1), np.clip(j, 0, len(x) - 1)
        low = np.where(has_low, y[ic], 0.0)
        high = np.where(has_high, y[jc], math.inf)
        span = np.where(x[jc] > x[ic], x[jc] - x[ic], 1.0)
        t = np.where(has_low & has_high, (sigs - x[ic]) / span, 0.0)
        inside = (1 - t) * y[ic] + t * y[jc]
        inside_sd = np.hypot((1 - t) * se[ic], t * se[jc])
        edge = np.where(has_low, ic, jc)  # outside the read range: from its nearest end
        step = sigs - x[edge]
        if math.isnan(self.slope):  # one signature read: no growth to go by
            out, out_sd = y[edge], np.where(has_low, math.inf, se[edge])
        else:
            out, out_sd = np.maximum(y[edge] + self.slope * step, 0.0), np.hypot(se[edge], step * self.slope_se)
        both = has_low & has_high
        seconds = np.where(both, inside, out)
        sd = np.where(both, inside_sd, out_sd)
        return low, high, seconds, np.where(np.isfinite(sd), np.hypot(sd, MODEL_CV * seconds), math.inf)
