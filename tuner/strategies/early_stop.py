"""Stop a trial after an epoch when the accuracy its depth needs is out of reach.

Why: every depth has a price before it trains (``tuner.strategies.cost``), so
under an objective that weighs seconds it has an accuracy **target**: what it
must reach at that price to come within noise of the best depth so far. Phase
2 computes its validation accuracy after every epoch anyway; when even an
optimistic **forecast** of the final accuracy stays below the target, the rest
of the trial cannot change the answer, and its seconds are better spent on
another depth. A depth within noise of the best is not needed for a correct
answer (the answer is "the best depth or one within noise of it"), so the
target already gives it the noise margin.

Unlike the bound (``tuner.strategies.bound``) this is not a proof: the
forecast is the largest gain from that epoch to the last seen in this
study's completed trials **at least as deep** as the trial, or a prior until
there are ``MIN_CURVES`` of them, and a curve that rises more than every one
before it is stopped wrongly. Why only deeper ones: on the real-weight
landscapes measured, phase 2's gain grows with depth (the head alone gains
0.2 after its first fine-tune epoch, depths beyond 40 gain 0.4-0.6), so
gains pooled over all depths, shallow ones first, would stop deep trials that
go on to win. What the rule risks is measured on replays, not assumed
(benchmarks/RESULTS.md, "Stopping after an epoch").

``TargetPruner`` is an Optuna pruner: the worker reports each phase-2 epoch
(``trial.report``, step = epoch) and asks ``trial.should_prune()``, so the
decision reads the shared study (several workers share one forecast) and a
stopped trial is stored as Optuna stores any pruned one. The target and the
forecast are pure functions, so a replay stops what a live search stops.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import Objective
from objectives.best import Answer, reading_value_sd
from objectives.noise import Z95
from tuner import stored_keys as keys
from tuner.model.space import DepthSpace
from tuner.store.trials import trial_depth

PRIOR_GAIN = 0.65
"""Until ``MIN_CURVES`` completed curves as deep as a trial: the accuracy it may still gain from
its first phase-2 epoch to its last (in proportion less from a later epoch: 0.325 from the second
of three). The largest single trial's gains measured on real weights are 0.60 and 0.32
(benchmarks/RESULTS.md, "Stopping after an epoch"), so the prior stops only what is far off."""
MIN_CURVES = 3
"""Completed phase-2 curves from which on the study's own largest gain replaces the prior."""


def accuracy_target(objective: Objective | None, ranked: Answer | None, price: float,
                    price_sd: float = 0.0) -> float | None:
    """The val_accuracy a depth priced at ``price`` s (± ``price_sd``) must reach to come within
    noise of ``ranked``'s best depth; None where the objective gives none (``pareto``, or no
    reading or price yet). 0: any accuracy would do."""
    if objective is None or ranked is None or objective.is_multi or not (math.isfinite(price) and price > 0):
        return None
    noise, sd = ranked.noise, price_sd if math.isfinite(price_sd) else 0.0
    if objective.within is not None:  # cheapest-within: be eligible, or raise the bar past the answer
        d, eps = ranked.depths, objective.within
        cheaper = price < float(d.loc[ranked.best_depth, "seconds"])
        need = (float(d["val_accuracy"].max()) - eps if cheaper
                else float(d.loc[ranked.best_depth, "val_accuracy"]) + eps)
        if need > 1.0:
            return 1.0
        return _clip(need - Z95 * math.sqrt(2.0) * float(noise.accuracy_sds(need)))

    def within(accuracy: float) -> bool:
        value = float(objective.values(np.array([accuracy]), np.array([price]))[0])
        spread = reading_value_sd(objective, noise, accuracy, price, sd)
        gap = ranked.best_value - value if objective.direction == "maximize" else value - ranked.best_value
        return gap < Z95 * math.hypot(ranked.best_sd, spread)

    if within(0.0):
        return 0.0
    if not within(1.0):
        return 1.0  # out of reach at any accuracy (the bound rules such depths out where it can)
    low, high = 0.0, 1.0
    for _ in range(30):  # the value rises with accuracy: bisection to 1e-9
        mid = (low + high) / 2
        low, high = (low, mid) if within(mid) else (mid, high)
    return high


def _clip(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


@dataclass(frozen=True)
class Forecast:
    """After ``epoch`` of ``epochs``: the accuracy now, the best the trial could still reach,
    and whether that is below its ``target``."""

    epoch: int
    epochs: int
    accuracy: float
    possible: float
    target: float
    from_curves: int
    """Completed curves the gain came from (fewer than ``MIN_CURVES``: the prior counted too)."""

    @property
    def stop(self) -> bool:
        return self.epoch < self.epochs and self.possible < self.target

    def reason(self) -> str:
        basis = (f"the largest gain of {self.from_curves} completed trials as deep or deeper"
                 if self.from_curves >= MIN_CURVES
                 else f"a prior gain of {prior_gain(self.epoch, self.epochs):.3g}"
                 + (f" or {self.from_curves} trials' largest" if self.from_curves else ""))
        return (f"epoch {self.epoch}: {self.accuracy:.4f}, needed {self.target:.4f}, best possible by "
                f"epoch {self.epochs} ~{self.possible:.4f} ({basis})")


def forecast(accuracy: float, *, epoch: int, epochs: int, target: float,
             curves: Iterable[tuple[int, Sequence[float]]], depth: int = 0) -> Forecast:
    """The optimistic forecast after phase-2 ``epoch`` (1-based) of ``epochs`` at ``depth``: the
    accuracy now plus the largest gain from that epoch to the last among ``curves`` (each a
    completed trial's depth and its accuracy after every phase-2 epoch) at ``depth`` or deeper,
    never less than the prior's until ``MIN_CURVES`` of them."""
    full = [list(c) for d, c in curves if d >= depth and len(c) >= epochs]
    gains = [float(c[epochs - 1]) - float(c[epoch - 1]) for c in full]
    gain = max(gains, default=-math.inf)
    if len(full) < MIN_CURVES:
        gain = max(gain, prior_gain(epoch, epochs))
    possible = min(1.0, accuracy + max(gain, 0.0))
    return Forecast(epoch, epochs, float(accuracy), possible, float(target), len(full))


def prior_gain(epoch: int, epochs: int) -> float:
    """What a trial may still gain after ``epoch`` of ``epochs`` before there are curves: ``PRIOR_GAIN``
    from the first epoch, in proportion less from a later one."""
    return PRIOR_GAIN * (epochs - epoch) / max(epochs - 1, 1)


def study_curves(trials: Iterable[FrozenTrial]) -> list[tuple[int, list[float]]]:
    """The depth and phase-2 curve (``val_accuracies``) of each completed trial that trained."""
    return [(int(t.user_attrs[keys.DEPTH]), list(map(float, t.user_attrs[keys.VAL_ACCURACIES])))
            for t in trials
            if t.state == TrialState.COMPLETE and keys.REUSED_FROM not in t.user_attrs
            and t.user_attrs.get(keys.VAL_ACCURACIES) and keys.DEPTH in t.user_attrs]


class TargetPruner(optuna.pruners.BasePruner):
    """Prune a trial after a phase-2 epoch whose forecast (``forecast``) misses the target its
    depth was given before training (user attribute ``target``); trials without one go on.

    ``last`` is this process's latest forecast, so the worker can store why it stopped."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.last: Forecast | None = None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        target, step = trial.user_attrs.get(keys.TARGET), trial.last_step
        if target is None or step is None or step >= self.epochs:
            return False
        curves = study_curves(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        self.last = forecast(trial.intermediate_values[step], epoch=step, epochs=self.epochs,
                             target=float(target), curves=curves, depth=int(trial.user_attrs.get(keys.DEPTH, 0)))
        return self.last.stop


def report_epoch(trial: optuna.Trial, accuracy: float, *, epoch: int, epochs: int, asks: bool) -> bool:
    """Report phase 2's ``accuracy`` after ``epoch`` to the trial, as the live worker and the replay
    both do; whether to stop it now (only a trial given a target ``asks``). Optuna takes
    intermediate values of one-objective studies only."""
    if len(trial.study.directions) > 1 or not math.isfinite(accuracy):
        return False
    trial.report(accuracy, epoch)
    return asks and epoch < epochs and trial.should_prune()


def stopped_weights(stopped: Iterable[FrozenTrial], space: DepthSpace, signatures: Sequence[int]) -> dict[int, str]:
    """The weights' signatures of trials stopped early, with why: suggested again, they are not
    trained again (the ask-round rules them out; a strategy does not offer them)."""
    closed: dict[int, str] = {}
    for t in stopped:
        closed.setdefault(signatures[trial_depth(t, space)],
                          f"trial #{t.number} stopped it early: {t.user_attrs[keys.STOPPED]}")
    return closed
