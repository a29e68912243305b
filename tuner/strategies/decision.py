"""What the search does next, as pure functions of a snapshot of the study.

Why pure: the rules of the oracle (budgets, the queue of a strategy that
chooses its depths, equivalent depths answered from a stored trial, the
nudge after repeated suggestions, rival workers) used to be one loop mixed
with storage reads and sleeps, the hardest place of the tool to change
safely. Here they read plain data (``Snapshot``, ``Asked``) and return a
``Decision``; the oracle (``tuner.search.oracle``) takes the snapshots and carries
the decisions out, and the offline replay (``tuner.analysis.replay``) calls the same
functions, so live runs and replays cannot drift apart. Nothing here imports
Optuna or TensorFlow (``tests/test_decision.py`` checks the rules case by case).

A round has two steps:

1. ``before_asking(snapshot)``: stop, wait, ask the strategy to queue
   depths first (``REFILL``, then decide again on the new queue), or ask
   the study for a trial.
2. ``after_asking(snapshot, asked)``: the trial just asked is trained, answered
   from the readings of the same weights, ruled out (its price says it cannot
   win, ``tuner.strategies.bound``), or gives way to another worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from tuner import stored_keys as keys

__all__ = [
    "MAX_REPEATS",
    "NUDGE_ATTRS",
    "Asked",
    "Decision",
    "Kind",
    "Seen",
    "Snapshot",
    "after_asking",
    "before_asking",
    "nearest_free",
]

# After this many suggestions in a row that only repeat a measured depth
# (TPE does that in one integer dimension), the nearest unmeasured depth is
# queued so the budget buys new information (live search and replay alike).
MAX_REPEATS = 3

NUDGE_ATTRS = {keys.CHOSEN_BY: "nearest-unmeasured"}
"""User attributes of a depth queued by the nudge."""


class Kind(str, Enum):
    """What to do: before asking (the first four) or with the trial just asked (the rest)."""

    STOP = "stop"
    WAIT = "wait"
    REFILL = "refill"
    ASK = "ask"
    TRAIN = "train"
    ANSWER = "answer"
    RULE_OUT = "rule_out"
    GIVE_WAY = "give_way"


@dataclass(frozen=True)
class Seen:
    """One trial as the rules see it: number, depth, and the signature of the weights it trains.

    Equivalent depths (a depth that adds only layers without weights) share a
    signature: the rules compare signatures, never depths."""

    number: int
    depth: int
    sig: int


@dataclass(frozen=True)
class Snapshot:
    """The study as seen at the start of a round, before asking it for a trial."""

    measured: tuple[Seen, ...]
    """Trials that trained and completed (not those answered from another), in trial order."""
    running: tuple[Seen, ...]
    """Trials alive on other workers (not this worker's, not stale)."""
    depths: Sequence[int]
    """The depth range, in order."""
    signatures: Sequence[int]
    """The weights' signature, indexed by depth."""
    trials: int | None = None
    """Trainings in all; None: until the strategy or the range has nothing left."""
    stopped: int = 0
    """Trials stopped after an epoch (``tuner.strategies.early_stop``): trainings, as Optuna
    counts pruned trials, though not readings."""
    budget_seconds: float | None = None
    seconds_spent: float = 0.0
    """Protocol seconds of the measured and the stopped trials (for ``budget_seconds``)."""
    chooses_depths: bool = False
    """The strategy queues every depth; an empty queue after a refill ends the run."""
    queued: int = 0
    """Trials waiting in the study's queue."""
    refilled: bool = False
    """The strategy was asked for depths in this round (``queued`` counts them)."""
    repeats: int = 0
    """Suggestions answered from stored trials or ruled out in a row, since the last training or nudge."""
    closed: Mapping[int, str] = field(default_factory=dict)
    """Signatures ruled out (``tuner.strategies.bound``): why each cannot win. Only for a
    strategy that does not choose its depths (a sweep or the narrowing trains what it lists)."""
    best: int | None = None
    """The best depth so far, where the nudge after ruled-out suggestions goes (None: the
    suggestion's nearest free depth): next to a ruled-out region the free depths are the
    dearest ones, and walking down its edge one depth a training buys little."""


@dataclass(frozen=True)
class Asked:
    """The trial just asked, and the study as seen after asking it.

    Read in this order after asking: the trials asked before this one that
    still run elsewhere (``ahead``), then the measured ones. A trial that
    finished in between shows in the second, so a result that landed while
    this worker asked is never trained again; two workers that asked at once
    both see each other, and only the later trial gives way."""

    number: int
    depth: int
    again: bool = False
    """A new reading of a measured depth (``measure_again``: a sweep's or a confirmation's repeat)."""
    queued: bool = False
    """It came from the study's queue (not from the sampler)."""
    ahead: tuple[Seen, ...] = ()
    measured: tuple[Seen, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What to do, and why (``reason`` is what a stopped run or a failed trial reports)."""

    kind: Kind
    reason: str = ""
    depth: int | None = None
    """TRAIN, ANSWER, GIVE_WAY: the asked trial's depth."""
    source: int | None = None
    """ANSWER: the measured trial of the same weights (the latest) that answers it."""
    nudge: int | None = None
    """A depth to queue (with ``NUDGE_ATTRS``): the nearest one whose weights are free."""
    requeue: bool = False
    """GIVE_WAY: the asked trial's depth goes back to the queue."""
    then_wait: bool = False
    """GIVE_WAY: wait a while before the next round (a queued depth waits for its twin)."""
    repeats: int = 0
    """The snapshot's ``repeats`` to carry into the next round."""


def nearest_free(depths: Iterable[int], signatures: Sequence[int], near: int,
                 taken: set[int]) -> int | None:
    """The depth closest to ``near`` (ties: shallower) whose weights' signature is not taken."""
    free = [d for d in depths if signatures[d] not in taken]
    return min(free, key=lambda d: (abs(d - near), d)) if free else None


def _taken(s: Snapshot) -> set[int]:
    """Signatures with nothing left to learn: measured, in flight, or ruled out."""
    return {t.sig for t in s.measured} | {t.sig for t in s.running} | set(s.closed)


def _any_free(s: Snapshot) -> bool:
    taken = _taken(s)
    return any(s.signatures[d] not in taken for d in s.depths)


def before_asking(s: Snapshot) -> Decision:
    """Stop, wait, refill the strategy's queue, or ask the study for a trial."""
    n = len(s.measured) + s.stopped
    if s.trials is not None and n >= s.trials:
        stopped = f" ({s.stopped} of them stopped early)" if s.stopped else ""
        return Decision(Kind.STOP, f"{s.trials} asked for, {n} measured{stopped}",
                        repeats=s.repeats)
    if s.budget_seconds is not None and s.seconds_spent >= s.budget_seconds:
        return Decision(Kind.STOP, f"{s.seconds_spent:.0f} s of training spent "
                                   f"(budget {s.budget_seconds:.0f} s)", repeats=s.repeats)
    if s.trials is not None and n + len(s.running) >= s.trials:
        return Decision(Kind.WAIT, "the rest of the trials are running on other workers",
                        repeats=s.repeats)
    if s.chooses_depths:
        if not s.queued and not s.refilled:
            return Decision(Kind.REFILL, "nothing is queued: the strategy queues its next depths",
                            repeats=s.repeats)
        if not s.queued:
            if s.running:  # what runs elsewhere may decide the next stage
                return Decision(Kind.WAIT, "the strategy's next depths wait for trials running elsewhere",
                                repeats=s.repeats)
            return Decision(Kind.STOP, "the strategy has no more depths to train", repeats=s.repeats)
        return Decision(Kind.ASK, "a queued depth", repeats=s.repeats)
    if not _any_free(s):
        ruled = " or ruled out" if s.closed else ""
        return Decision(Kind.STOP, f"every depth in the range (up to layers without weights) is "
                                   f"measured{ruled}", repeats=s.repeats)
    if not s.queued and not s.refilled:  # confirmation repeats, for a sampler's strategy
        return Decision(Kind.REFILL, "nothing is queued: the strategy may queue depths",
                        repeats=s.repeats)
    return Decision(Kind.ASK, "a queued depth" if s.queued else "the sampler suggests", repeats=s.repeats)


def after_asking(s: Snapshot, a: Asked) -> Decision:
    """Train the asked trial, answer it from stored readings, rule it out, or give way to another worker.

    ``s`` is the round's snapshot from before asking: the nudge avoids the
    weights in flight then, besides those measured now and those ruled out."""
    sig = s.signatures[a.depth]
    latest = {t.sig: t for t in a.measured}  # the latest reading of each weights
    flying = {t.sig for t in s.running}
    if (sig in latest or sig in s.closed) and not a.again:
        # Nothing to learn from this suggestion: nudge after MAX_REPEATS in a row.
        repeats, nudge = s.repeats + 1, None
        if repeats >= MAX_REPEATS and not s.chooses_depths:
            repeats = 0
            near = a.depth if sig in latest or s.best is None else s.best
            nudge = nearest_free(s.depths, s.signatures, near, set(latest) | flying | set(s.closed))
        if sig in latest:
            source = latest[sig].number
            return Decision(Kind.ANSWER, f"trial #{source} trained the same weights", depth=a.depth,
                            source=source, nudge=nudge, repeats=repeats)
        return Decision(Kind.RULE_OUT, s.closed[sig], depth=a.depth, nudge=nudge, repeats=repeats)
    if s.trials is not None and len(a.measured) + len(a.ahead) + s.stopped >= s.trials:
        return Decision(Kind.GIVE_WAY, "the remaining trials are running on other workers",
                        depth=a.depth, requeue=a.queued, repeats=s.repeats)
    rival = [t.number for t in a.ahead if t.sig == sig]
    if rival and not a.again:
        reason = f"the same weights are being trained in trial #{rival[0]}"
        if s.chooses_depths:  # a queued depth waits for its twin's result
            return Decision(Kind.GIVE_WAY, reason, depth=a.depth, requeue=a.queued, then_wait=True,
                            repeats=s.repeats)
        nudge = nearest_free(s.depths, s.signatures, a.depth, set(latest) | flying | set(s.closed) | {sig})
        return Decision(Kind.GIVE_WAY, reason, depth=a.depth, nudge=nudge, repeats=s.repeats)
    return Decision(Kind.TRAIN, "a repeat: a new reading" if a.again else "new weights",
                    depth=a.depth, repeats=0)
