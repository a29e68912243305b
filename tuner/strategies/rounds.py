"""One ask-round: how the live search and the replay both get their next depth to train.

Why one: the live oracle (``tuner.search.oracle``) and the offline replay
(``tuner.analysis.replay``) used to do these steps each in its own loop, kept
equal only by a test. Like Optuna's single trial loop (``_optimize.py``:
ask, run, tell, in one place for every caller), ``ask_round`` is the one
place that decides before asking (``tuner.strategies.decision``), asks the
study, records the depth, gives a repeat its seed, decides after asking, and
carries out what needs no training: a depth whose weights were read is told
their pooled readings, a depth that cannot win is ruled out
(``tuner.strategies.bound``, stored as a PRUNED trial), a trial another
worker is already training gives way. What is left to the caller is what
is its own: the oracle's heartbeats, waits and Keras Tuner statuses, the
replay's landscape readings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import Objective
from objectives.noise import pool
from tuner import stored_keys as keys
from tuner.errors import TrialError
from tuner.model.space import DepthSpace
from tuner.store.trials import (
    enqueue,
    measured_trials,
    queued_count,
    requeue,
    stopped_trials,
    trial_depth,
    was_queued,
)
from tuner.stored_keys import protocol_seconds
from tuner.strategies import bound
from tuner.strategies.confirm import confirmation_seed
from tuner.strategies.early_stop import accuracy_target, stopped_weights
from tuner.strategies.study_readings import probe_reading, study_readings
from tuner.strategies.decision import (
    NUDGE_ATTRS,
    Asked,
    Decision,
    Kind,
    Seen,
    Snapshot,
    after_asking,
)
from tuner.strategies.registry import Strategy, decide_before_asking

__all__ = ["Alone", "Elsewhere", "Outcome", "Search", "ask_round", "give_way", "pooled_told"]


class Elsewhere(Protocol):
    """The trials other workers are running (the live oracle reads them from the study)."""

    def running(self) -> list[FrozenTrial]:
        """Alive on other workers, each with its depth."""

    def ahead_of(self, number: int) -> list[FrozenTrial]:
        """Those asked before trial ``number`` that still run, each with its depth."""

    def claim(self, trial: optuna.Trial) -> None:
        """Mark a just-asked trial as this worker's (a probe may keep it a while before it trains)."""


class Alone:
    """No other worker (the replay, a single process)."""

    def running(self) -> list[FrozenTrial]:
        return []

    def ahead_of(self, number: int) -> list[FrozenTrial]:
        return []

    def claim(self, trial: optuna.Trial) -> None:
        pass


@dataclass(frozen=True)
class Search:
    """What stays the same from one round to the next."""

    study: optuna.Study
    space: DepthSpace
    strategy: Strategy
    signatures: Sequence[int]
    trials: int | None
    """Trainings in all (ruled-out and answered depths do not count)."""
    objective: Objective | None = None
    """What a re-suggested depth is told and the bound rules by; None: the source trial's values, no bound."""
    base_seed: int = 0
    budget_seconds: float | None = None
    elsewhere: Elsewhere = field(default_factory=Alone)
    prober: Callable[[int], dict | None] | None = None
    """Seconds of a depth by a probe without training (``tuner.trials.probing``: what
    ``protocol_seconds`` and ``steady_seconds`` would be), for depths beyond every reading;
    None where a probe is not worth it."""
    interpolates: bool = False
    """Cached trials: a depth closely bracketed by probed ones is given its step costs
    (``keys.PRICED_BETWEEN``) and skips its own probe."""
    device: str | None = None
    """Where this search's trials train (``keys.DEVICE``): the cost model prices from readings
    taken there (and from older ones that recorded none); None: every reading (a replay)."""
    stop_early: bool = False
    """Give each depth a sampler trains an accuracy target (``keys.TARGET``), so that it can be
    stopped after an epoch (``tuner.strategies.early_stop``)."""


@dataclass(frozen=True)
class Outcome:
    """What one round did: STOP or WAIT (nothing asked), or what became of the asked trial."""

    kind: Kind
    reason: str = ""
    trial: optuna.Trial | None = None
    depth: int | None = None
    pause: bool = False
    """Wait a while before the next round."""
    repeats: int = 0
    """Carry into the next round (``Snapshot.repeats``)."""


def ask_round(search: Search, repeats: int = 0) -> Outcome:
    """Decide, ask the study for one trial, and settle it unless it is to be trained (``Kind.TRAIN``)."""
    study, space = search.study, search.space
    readings = _readings(search)
    ruled = _ruled(search, readings)
    decision, snap = decide_before_asking(_snapshot(search, ruled, repeats), search.strategy,
                                          study, space)
    if decision.kind in (Kind.STOP, Kind.WAIT):
        return Outcome(decision.kind, decision.reason, pause=decision.kind is Kind.WAIT,
                       repeats=decision.repeats)
    trial = study.ask(space.distributions())
    depth = space.depth_of(trial.params)
    space.record(trial, depth)
    search.elsewhere.claim(trial)
    again = bool(trial.user_attrs.get(keys.MEASURE_AGAIN))  # a sweep's or a confirmation's repeat
    if again:  # a new reading of a measured depth: under a seed of its own (seed noise too)
        trial.set_user_attr(keys.SEED, confirmation_seed(search.base_seed, trial.number))
    # After asking, in this order (tuner.strategies.decision.Asked says why): the
    # trials asked before this one that still run, then the measured ones.
    ahead = _seen(search, search.elsewhere.ahead_of(trial.number))
    measured = measured_trials(study)
    decision = after_asking(snap, Asked(trial.number, depth, again=again, queued=was_queued(trial),
                                        ahead=ahead, measured=_seen(search, measured)))
    if decision.kind is Kind.TRAIN and not again and _worth_probing(search, depth, readings):
        decision, ruled, readings = _probe(search, trial, depth, decision, readings)
    if decision.kind in (Kind.TRAIN, Kind.RULE_OUT):
        priced = readings.price(depth)
        for key, value in priced.as_attrs().items():
            trial.set_user_attr(key, value)  # what it was priced at, beside what it will measure
        if (decision.kind is Kind.TRAIN and search.interpolates and not again
                and keys.PROBED not in trial.user_attrs and priced.closely_bracketed()):
            between = _priced_between(search, depth, readings)
            if between is not None:
                trial.set_user_attr(keys.PRICED_BETWEEN, between)
        if decision.kind is Kind.TRAIN and search.stop_early and not again and not search.strategy.chooses_depths:
            target = accuracy_target(search.objective, readings.ranked, priced.seconds, priced.sd)
            if target is not None:
                trial.set_user_attr(keys.TARGET, target)
    out = Outcome(decision.kind, decision.reason, trial, depth, repeats=decision.repeats)
    if decision.kind is Kind.TRAIN:
        return out
    if decision.kind is Kind.ANSWER:
        trial.set_user_attr(keys.REUSED_FROM, decision.source)
        study.tell(trial, pooled_told(search, measured, depth, decision.source))
    elif decision.kind is Kind.RULE_OUT:
        sig = search.signatures[depth]  # ruled out by the bound, or its weights were stopped early
        for key, value in (ruled[sig].as_attrs() if sig in ruled else {keys.RULED_OUT: decision.reason}).items():
            trial.set_user_attr(key, value)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        give_way(search, trial, decision.reason, again_later=decision.requeue)
        if decision.then_wait:
            return replace(out, pause=True)
    if decision.nudge is not None:
        enqueue(study, space, decision.nudge, dict(NUDGE_ATTRS))
    return out


def _worth_probing(search: Search, depth: int, readings: bound.Readings) -> bool:
    """Probe only where the cost model is unsure: where a price it finds plausible would rule
    the depth out, but it cannot tell alone (``bound.Readings.undecided``)."""
    return search.prober is not None and _ruled_by(search) is not None and readings.undecided(depth)


def _probe(search: Search, trial: optuna.Trial, depth: int, decision: Decision, readings: bound.Readings
           ) -> tuple[Decision, dict[int, bound.RuledOut], bound.Readings]:
    """Price ``depth`` by a probe before training it; rule it out if the price says it cannot win."""
    try:
        probed = search.prober(depth)
    except TrialError as exc:  # no price: train it, as without a probe
        trial.set_user_attr(keys.PROBE_ERROR, str(exc)[:300])
        return decision, {}, readings
    if probed is None:  # not worth a probe at this depth (the prober knows the trial mode)
        return decision, {}, readings
    trial.set_user_attr(keys.PROBED, probed)
    readings = readings.with_probe(probe_reading(search.objective, depth, probed))
    ruled = _ruled(search, readings)
    sig = search.signatures[depth]
    if sig not in ruled:
        return decision, ruled, readings
    ruled[sig] = replace(ruled[sig], reason=f"probed: {ruled[sig].reason}")
    return replace(decision, kind=Kind.RULE_OUT, reason=ruled[sig].reason), ruled, readings


def _priced_between(search: Search, depth: int, readings: bound.Readings) -> dict | None:
    """A cached trial's phase-2 step costs without a probe of its own, for a depth whose price
    the read depths around it bracket closely (``Price.closely_bracketed``): interpolated in the
    weights' signature between theirs, where both have probed step costs. A repeat still
    probes: its spread is what the study's seconds noise is estimated from."""
    sig, read = search.signatures[depth], readings.model.fit.index
    below, above = int(read[read < sig].max()), int(read[read > sig].min())
    costs = _step_costs(search)
    if below not in costs or above not in costs:
        return None
    t = (sig - below) / (above - below)
    (step0, trace0), (step1, trace1) = costs[below], costs[above]
    return {"depths": [readings.model.depth_of[below], readings.model.depth_of[above]],
            "train_step": (1 - t) * step0 + t * step1, "train_trace": (1 - t) * trace0 + t * trace1}


def _step_costs(search: Search) -> dict[int, tuple[float, float]]:
    """Per read signature, the mean probed phase-2 step and trace: of trained cached trials
    (not interpolated ones) and of probes before training."""
    per: dict[int, list[tuple[float, float]]] = {}
    for t in search.study.get_trials(deepcopy=False):
        a = t.user_attrs
        own = t.state == TrialState.COMPLETE and keys.REUSED_FROM not in a and not a.get(keys.PRICED_BETWEEN)
        for source in (a if own else {}, a.get(keys.PROBED) or {}):
            if keys.PHASE2_TRAIN_STEP in source:
                sig = search.signatures[trial_depth(t, search.space)]
                per.setdefault(sig, []).append((float(source[keys.PHASE2_TRAIN_STEP]),
                                                float(source[keys.PHASE2_TRAIN_TRACE])))
    return {sig: (sum(s for s, _ in v) / len(v), sum(tr for _, tr in v) / len(v)) for sig, v in per.items()}


def give_way(search: Search, trial: optuna.Trial, reason: str, *, again_later: bool = False) -> None:
    """End a just-asked trial untrained; a queued depth goes back to the queue."""
    trial.set_user_attr(keys.FAIL_REASON, reason)
    search.study.tell(trial, state=TrialState.FAIL)
    if again_later and was_queued(trial):
        requeue(search.study, search.space, trial, retry_of=trial.user_attrs.get(keys.RETRY_OF, trial.number))


def pooled_told(search: Search, measured: list[FrozenTrial], depth: int, source: int) -> list[float]:
    """What a re-suggested depth is told: the pooled readings of its weights, not one reading.

    One pooling rule for the study and the answer (``objectives.noise.pool``),
    keyed by the weights' signature, since equivalent depths train the same weights."""
    sig = search.signatures[depth]
    same = [t for t in measured if search.signatures[trial_depth(t, search.space)] == sig]
    if search.objective is None or len(same) < 2:
        return next(t for t in measured if t.number == source).values
    row = pool({"depth": sig, "val_accuracy": float(t.user_attrs[keys.VAL_ACCURACY]),
                "seconds": search.objective.seconds(t.user_attrs)} for t in same).iloc[0]
    return search.objective.told(float(row["val_accuracy"]), float(row["seconds"]))


def _ruled_by(search: Search) -> Objective | None:
    """The objective depths are ruled out by; None for a strategy that chooses its depths (a
    sweep, the narrowing: they train what they list), without an objective, or one without a bound."""
    objective = search.objective
    if objective is None or search.strategy.chooses_depths or not bound.has_bound(objective):
        return None
    return objective


def _readings(search: Search) -> bound.Readings:
    """What the study's readings say this round: one answer and cost model for all its questions
    (the answer rules depths out where the objective has a bound, and sets their targets)."""
    return study_readings(search.study, space=search.space, signatures=search.signatures,
                          objective=search.objective, seed=search.base_seed, device=search.device,
                          ranked=not search.strategy.chooses_depths)  # a list is trained as listed


def _ruled(search: Search, readings: bound.Readings) -> dict[int, bound.RuledOut]:
    """The signatures that cannot win (none without an objective that rules: ``readings.answer``)."""
    return readings.closed(search.space.depths())


def _snapshot(search: Search, ruled: dict[int, bound.RuledOut], repeats: int) -> Snapshot:
    """The study as the round's rules read it (measured first, then in flight, as always)."""
    measured = measured_trials(search.study)
    stopped = stopped_trials(search.study)  # their protocol seconds: those they used
    spent = sum(protocol_seconds(t.user_attrs) for t in [*measured, *stopped] if keys.FIT_SECONDS in t.user_attrs)
    running = search.elsewhere.running()
    closed = {**stopped_weights(stopped, search.space, search.signatures),
              **{sig: r.reason for sig, r in ruled.items()}}  # the bound's reason where both rule
    return Snapshot(
        measured=_seen(search, measured), running=_seen(search, running),
        depths=search.space.depths(), signatures=search.signatures, trials=search.trials,
        stopped=len(stopped), budget_seconds=search.budget_seconds, seconds_spent=spent,
        chooses_depths=search.strategy.chooses_depths, queued=queued_count(search.study),
        repeats=repeats, closed=closed,
        best=next((r.best_depth for r in ruled.values()), None))


def _seen(search: Search, trials: list) -> tuple[Seen, ...]:
    out = []
    for t in trials:
        depth = trial_depth(t, search.space)
        out.append(Seen(t.number, depth, search.signatures[depth]))
    return tuple(out)
