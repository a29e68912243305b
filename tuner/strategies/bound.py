"""What a depth costs before it trains, and which depths provably cannot win.

Why: under ``efficiency`` (accuracy / seconds) accuracy is at most 1, so a
depth is worth at most ``1 / its seconds``. A deep depth whose seconds alone
put that ceiling below the best depth measured so far can be skipped
unseen (what that saves: benchmarks/RESULTS.md, "Pay only for depths that can win").

**Price** (``tuner.strategies.cost``): a bracket that monotonicity proves
(the fit at the read depths around a depth) and an estimate with its
standard deviation from a cost model over depth, for every depth before it
trains. A cached search may read a depth's price by a short probe of its
plain model (``tuner.trials.probing``) where the model cannot decide alone
(``undecided``); a probe reading is one more reading of seconds, with no accuracy.

**Rule** (``closed``). Depth ``d`` is ruled out when the objective at
accuracy 1 and its price is below the best depth's value by more than
``Z95`` combined standard deviations (the price's, the best value's from the
answer, ``objectives.best``): a one-sided test at about 2.5 %. The price
tested is the fit at the nearest read depth at or below ``d`` with its
standard error (what monotonicity proves), or, beyond the deepest read, the
cost model's estimate at ``d`` with its sd, whichever rules. Every deeper
depth is ruled out with it, since it costs at least as much.

Why the estimate rules only beyond the reads: a backbone's early layers
work on larger activations, so the seconds a layer adds grow the deeper the
cut, and a line extrapolated from shallower readings errs low on average, on
the safe side; but with scattered shallow readings the slope is uncertain
(benchmarks/RESULTS.md, "The cost model's shape"), which is why the
estimate's sd carries the slope's standard error. Between
two reads the same line errs high, and could rule out a depth that wins, so
there only the bracket rules and a probe decides (``undecided``).

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

from objectives import Objective
from objectives.best import answer
from objectives.noise import Z95, estimate_noise, standard_errors
from tuner import stored_keys as keys
from tuner.strategies.cost import CostModel, Price, per_signature

__all__ = ["NO_BOUND", "Price", "Readings", "RuledOut", "has_bound"]

NO_BOUND = {
    "accuracy": "accuracy has no price ceiling (a depth can reach accuracy 1 whatever it costs)",
    "pareto": "a Pareto front keeps any slower depth that is more accurate",
}
"""Objectives under which no depth is ruled out, and why."""


def has_bound(objective: Objective) -> bool:
    """Can a price rule a depth out under ``objective``?"""
    return not objective.is_multi and objective.name not in NO_BOUND


@dataclass(frozen=True)
class RuledOut:
    """Why a depth cannot win: the measured depth whose price rules it out, and the numbers."""

    by_depth: int
    """The depth whose price rules: a read depth at or below (its fit proves the least the
    ruled-out depth costs), or the first depth the cost model prices out."""
    price: float
    """The seconds the ruling used: ``by_depth``'s fit, or the model's estimate there."""
    ceiling: float
    """The most the ruled-out depth can be worth (the objective at accuracy 1 and ``price``)."""
    best_depth: int
    best_value: float
    reason: str

    def as_attrs(self) -> dict[str, object]:
        return {keys.RULED_OUT: self.reason, keys.RULED_OUT_BY: self.by_depth, keys.RULING_PRICE: self.price,
                keys.VALUE_CEILING: self.ceiling, keys.BEST_DEPTH: self.best_depth,
                keys.BEST_VALUE: self.best_value}


class Readings:
    """What the readings so far say, built once per ask-round: the answer (where the objective
    has a bound), the cost model, and each read signature's shallowest depth.

    Why one object: a round rules depths out, may ask whether a probe could decide, and prices
    the depth it trains; each of those needs the same answer and model, which are rebuilt only
    when a probe adds a reading (``with_probe``)."""

    def __init__(self, records: Iterable[Mapping[str, object]], signatures: Sequence[int],
                 probes: Iterable[Mapping[str, object]] = (), *, objective: Objective | None = None,
                 val_examples: int | None = None, device: str | None = None):
        self.records, self.probes = list(records), list(probes)
        self.signatures, self.objective, self.val_examples = signatures, objective, val_examples
        self.device = device
        trained, self.depth_of = per_signature(self.records, signatures)
        noise = estimate_noise(trained, val_examples=val_examples) if self.records else None
        self.model = CostModel(self.records, signatures, self.probes,
                               seconds_cv=noise.seconds_cv if noise else 0.0, device=device)
        self.ranked = (answer(trained, objective, noise)
                       if noise and objective is not None and not objective.is_multi else None)
        """The answer so far, for an accuracy target (``tuner.strategies.early_stop``)."""
        self.answer = self.ranked if objective is not None and has_bound(objective) else None

    def with_probe(self, reading: Mapping[str, object]) -> Readings:
        """The readings with one more probe reading (``{depth, seconds}``)."""
        return Readings(self.records, self.signatures, [*self.probes, reading], objective=self.objective,
                        val_examples=self.val_examples, device=self.device)

    def price(self, depth: int) -> Price:
        """``depth``'s price before it trains (``tuner.strategies.cost``)."""
        return self.model.price(depth)

    def closed(self, depths: Sequence[int]) -> dict[int, RuledOut]:
        """The untrained signatures of ``depths`` ruled out (see the module)."""
        ans = self.answer
        if ans is None:
            return {}
        first = self.unread(depths)
        if self.objective.eligible is None:
            ruling = _first_ceiling(self.model, first, self.objective, self.depth_of[ans.best_depth],
                                    ans.best_value, ans.best_sd)
        else:
            ruling = _cheaper_for_sure(self.model, self.objective, ans.noise)
        if ruling is None:
            return {}
        return {sig: ruling for sig in first if sig >= ruling.from_sig}

    def unread(self, depths: Sequence[int]) -> dict[int, int]:
        """Each signature of ``depths`` no reading has trained, with its shallowest depth, in order."""
        first: dict[int, int] = {}
        for d in sorted(depths):
            if self.signatures[d] not in self.depth_of:
                first.setdefault(self.signatures[d], d)
        return first

    def undecided(self, depth: int) -> bool:
        """Could a price read now rule ``depth`` out? Where the cost model's upper price (``Z95``
        sds, no more than the bracket allows) puts even accuracy 1 below the best value, a probe
        can decide; where no plausible price would, only training tells, and a probe is wasted."""
        if self.answer is None:
            return False
        upper = self.model.price(depth).most(Z95)
        with np.errstate(divide="ignore"):
            ceiling = float(self.objective.values(np.ones(1), np.array([max(upper, 1e-9)]))[0])
        return ceiling < self.answer.best_value


@dataclass(frozen=True)
class _Ruling(RuledOut):
    from_sig: int = 0
    """Every untrained signature from this one on is ruled out."""


def _passes(objective: Objective, seconds: np.ndarray, sd: np.ndarray, best_value: float,
            best_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Is even accuracy 1 at ``seconds`` (± ``sd``) below ``best_value`` beyond noise? With the ceilings."""
    seconds = np.maximum(np.asarray(seconds, dtype=float), 1e-9)
    ones = np.ones_like(seconds)
    with np.errstate(divide="ignore", invalid="ignore"):
        ceiling = objective.values(ones, seconds)
        h = 1e-6 * seconds
        slope = (objective.values(ones, seconds + h) - objective.values(ones, seconds - h)) / (2 * h)
        gap_sd = np.sqrt((slope * sd) ** 2 + best_sd**2)
        return (best_value - ceiling > Z95 * gap_sd) & np.isfinite(sd), ceiling


def _first_ceiling(model: CostModel, first: Mapping[int, int], objective: Objective, best: int,
                   best_value: float, best_sd: float) -> _Ruling | None:
    """The shallowest untrained signature whose price puts even accuracy 1 significantly below
    the best value: by the fit at the read depth below it, or by the cost model's estimate."""
    sigs = np.array(list(first), dtype=int)
    if not len(sigs):
        return None
    _, _, estimate, sd = model.prices(sigs)
    x = model.fit.index.to_numpy()
    i = np.searchsorted(x, sigs, side="right") - 1
    ic = np.clip(i, 0, len(x) - 1)
    by_fit, fit_ceiling = _passes(objective, model.fit.to_numpy()[ic], np.where(i >= 0, model.se[ic], np.nan),
                                  best_value, best_sd)
    beyond = sigs > x[-1]  # between reads only the bracket rules (see the module)
    by_model, model_ceiling = _passes(objective, estimate, np.where(beyond & (sd > 0), sd, np.nan),
                                      best_value, best_sd)
    hit = np.flatnonzero(by_fit | by_model)
    if not len(hit):
        return None
    k = int(hit[0])
    sig = int(sigs[k])
    if by_fit[k]:
        by, seconds, ceiling = model.depth_of[int(x[ic[k]])], float(model.fit.iloc[ic[k]]), float(fit_ceiling[k])
        priced = f"depth {by} costs {seconds:.1f} s (monotone fit)"
    else:
        by, seconds, ceiling = first[sig], float(estimate[k]), float(model_ceiling[k])
        priced = f"depth {by} is priced at {seconds:.1f} ± {sd[k]:.1f} s (cost model)"
    return _Ruling(int(by), seconds, ceiling, best, best_value,
                   f"{priced} and every deeper depth at least that: even at accuracy 1 that is worth "
                   f"{ceiling:.4g}, below the best so far (depth {best}, {best_value:.4g}) beyond noise",
                   from_sig=sig)


def _cheaper_for_sure(model: CostModel, objective: Objective, noise) -> _Ruling | None:
    """cheapest-within: the first read depth priced significantly above the measured seconds of
    one that stays eligible for sure (what the answer will rank it by); the bracket only."""
    table = model.table
    se_acc, se_sec = standard_errors(table, noise)
    acc = table["val_accuracy"].to_numpy(dtype=float)
    measured = table["seconds"].to_numpy(dtype=float)
    sec = model.fit.to_numpy()
    sure = [i for i in range(len(table))
            if bool(objective.eligible(np.array([acc[i] - Z95 * se_acc[i], 1.0]))[0])]
    if not sure:
        return None
    c = min(sure, key=lambda i: measured[i])
    for i, sig in enumerate(table.index):
        if sec[i] - measured[c] > Z95 * math.hypot(model.se[i], se_sec[c]):
            d, dc = model.depth_of[int(sig)], model.depth_of[int(table.index[c])]
            return _Ruling(
                d, float(sec[i]), math.inf, dc, float(measured[c]),
                f"depth {d} costs {sec[i]:.1f} s (monotone fit) and every deeper depth at least that, "
                f"beyond noise above depth {dc} ({measured[c]:.1f} s), whose accuracy clears the "
                "bar even against a perfect depth", from_sig=int(sig))
    return None
