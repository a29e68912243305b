"""The oracle's rules (tuner.strategies.decision) case by case, on plain snapshots: no study, no TensorFlow.

Depths 0..9; depth 1 adds only layers without weights, so it trains the
same weights as depth 0 (signature 0). Measured trials are numbered 0, 1,
... in the order given; trials running elsewhere from 100 on.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from tuner.strategies.decision import (
    MAX_REPEATS,
    Asked,
    Kind,
    Seen,
    Snapshot,
    after_asking,
    before_asking,
    nearest_free,
)

SIG = (0, 0, 2, 3, 4, 5, 6, 7, 8, 9)
DEPTHS = range(10)
ALL_WEIGHTS = (0, 2, 3, 4, 5, 6, 7, 8, 9)  # every depth's weights, once


def measured(*depths: int) -> tuple[Seen, ...]:
    return tuple(Seen(i, d, SIG[d]) for i, d in enumerate(depths))


def running(*depths: int, first: int = 100) -> tuple[Seen, ...]:
    return tuple(Seen(first + i, d, SIG[d]) for i, d in enumerate(depths))


def snap(m=(), r=(), **kw) -> Snapshot:
    return Snapshot(measured=measured(*m), running=running(*r), depths=DEPTHS, signatures=SIG, **kw)


# -- before asking: (snapshot, kind, words of the reason) ----------------------------

BEFORE = {
    "trials reached": (snap((3, 5, 7), trials=3), Kind.STOP, "3 asked for, 3 measured"),
    "trials reached, whatever still runs": (snap((3, 5), (7,), trials=2), Kind.STOP, "2 asked for"),
    "seconds budget spent": (snap((3,), trials=10, budget_seconds=100.0, seconds_spent=100.0, queued=1),
                             Kind.STOP, "100 s of training spent (budget 100 s)"),
    "seconds budget not yet spent": (snap((3,), budget_seconds=100.0, seconds_spent=99.0, queued=1),
                                     Kind.ASK, ""),
    "the rest runs elsewhere": (snap((3, 5), (7,), trials=3), Kind.WAIT, "running on other workers"),
    "no total: no count stops it": (snap((3, 5, 7, 8), (9,), queued=1), Kind.ASK, ""),
    # a strategy that chooses its depths
    "queue empty: ask the strategy first": (snap((3,), trials=5, chooses_depths=True), Kind.REFILL, ""),
    "queue empty after refill, work in flight": (snap((3,), (5,), trials=5, chooses_depths=True, refilled=True),
                                                 Kind.WAIT, "running elsewhere"),
    "queue empty after refill, nothing in flight": (snap((3,), trials=5, chooses_depths=True, refilled=True),
                                                    Kind.STOP, "the strategy has no more depths to train"),
    "a queued depth": (snap((3,), trials=5, chooses_depths=True, queued=2), Kind.ASK, "queued"),
    "queued repeats after every depth is measured": (snap(ALL_WEIGHTS, chooses_depths=True, queued=1),
                                                     Kind.ASK, ""),
    # a sampler's strategy
    "every depth measured (equivalents included)": (snap(ALL_WEIGHTS, queued=1), Kind.STOP,
                                                    "every depth in the range"),
    "every depth measured or in flight": (snap(ALL_WEIGHTS[:-1], (9,), trials=20, queued=1),
                                          Kind.STOP, "every depth in the range"),
    "every depth measured or ruled out": (snap((0, 2, 3, 4), trials=20, refilled=True,
                                            closed={5: "", 6: "", 7: "", 8: "", 9: ""}),
                                          Kind.STOP, "measured or ruled out"),
    "one depth free": (snap(ALL_WEIGHTS[:-1], queued=1), Kind.ASK, "queued"),
    "queue empty: the strategy may queue confirmations": (snap((3,), trials=5), Kind.REFILL, ""),
    "queue still empty after refill: the sampler": (snap((3,), trials=5, refilled=True), Kind.ASK, "sampler"),
}


@pytest.mark.parametrize("case", list(BEFORE))
def test_before_asking(case):
    s, kind, words = BEFORE[case]
    d = before_asking(s)
    assert d.kind is kind
    assert words in d.reason
    assert d.repeats == s.repeats  # carried through: only a trial's fate changes it


def test_before_asking_carries_the_repeats():
    assert before_asking(snap((3,), queued=1, repeats=2)).repeats == 2


# -- after asking: (snapshot, asked, expected fields) ------------------------------

def asked(depth, m=(), ahead=(), number=50, **kw) -> Asked:
    return Asked(number, depth, ahead=ahead, measured=measured(*m), **kw)


AFTER = {
    "new weights: train": (
        snap((3,), trials=5), asked(5, (3,)),
        {"kind": Kind.TRAIN, "depth": 5, "repeats": 0}),
    "a training ends a run of answers": (
        snap((3,), trials=5, repeats=2), asked(5, (3,)),
        {"kind": Kind.TRAIN, "repeats": 0}),
    "an equivalent depth is answered from the stored trial": (
        snap((0,), trials=5), asked(1, (0,)),
        {"kind": Kind.ANSWER, "depth": 1, "source": 0, "nudge": None, "repeats": 1}),
    "the latest reading of the weights answers": (
        snap((0, 3, 0), trials=5), asked(0, (0, 3, 0)),
        {"kind": Kind.ANSWER, "source": 2}),
    "a result that landed while asking answers": (
        snap((), (3,), trials=5), asked(3, (3,)),
        {"kind": Kind.ANSWER, "source": 0}),
    f"the {MAX_REPEATS}rd answer in a row nudges to the nearest free depth (ties: shallower)": (
        snap((3,), trials=9, repeats=MAX_REPEATS - 1), asked(3, (3,)),
        {"kind": Kind.ANSWER, "source": 0, "nudge": 2, "repeats": 0}),
    "the nudge skips weights measured, in flight, and their equivalents": (
        snap((2,), (1,), trials=9, repeats=MAX_REPEATS - 1), asked(2, (2,)),
        {"kind": Kind.ANSWER, "nudge": 3, "repeats": 0}),
    "no free depth: no nudge": (
        snap(ALL_WEIGHTS, repeats=MAX_REPEATS - 1), asked(4, ALL_WEIGHTS),
        {"kind": Kind.ANSWER, "nudge": None, "repeats": 0}),
    "a strategy that chooses its depths is never nudged": (
        snap((3,), trials=9, chooses_depths=True, repeats=MAX_REPEATS - 1), asked(3, (3,), queued=True),
        {"kind": Kind.ANSWER, "nudge": None, "repeats": MAX_REPEATS}),
    "a ruled-out depth is not trained": (
        snap((3,), trials=5, closed={7: "too dear"}), asked(7, (3,)),
        {"kind": Kind.RULE_OUT, "depth": 7, "reason": "too dear", "nudge": None, "repeats": 1}),
    f"the {MAX_REPEATS}rd ruled-out suggestion in a row nudges near the best depth": (
        snap((3, 5), trials=9, repeats=MAX_REPEATS - 1, closed={7: "x", 8: "x", 9: "x"}, best=3),
        asked(9, (3, 5)),
        {"kind": Kind.RULE_OUT, "nudge": 2, "repeats": 0}),
    "the nudge after an answer skips ruled-out depths": (
        snap((4,), trials=9, repeats=MAX_REPEATS - 1, closed={2: "x", 3: "x", 5: "x"}), asked(4, (4,)),
        {"kind": Kind.ANSWER, "nudge": 6, "repeats": 0}),
    "a repeat of a measured depth is never ruled out": (
        snap((3,), trials=5, closed={3: "x"}), asked(3, (3,), again=True, queued=True),
        {"kind": Kind.TRAIN}),
    "a repeat (measure_again) of a measured depth trains": (
        snap((3,), trials=5, repeats=1), asked(3, (3,), again=True, queued=True),
        {"kind": Kind.TRAIN, "depth": 3, "repeats": 0}),
    "the rest runs elsewhere: a queued trial gives way and goes back": (
        snap((3,), trials=3), asked(5, (3,), ahead=running(7, 8), queued=True),
        {"kind": Kind.GIVE_WAY, "requeue": True, "then_wait": False, "nudge": None}),
    "the rest runs elsewhere: a sampled trial gives way": (
        snap((3,), trials=3, repeats=1), asked(5, (3,), ahead=running(7, 8)),
        {"kind": Kind.GIVE_WAY, "requeue": False, "repeats": 1}),
    "rival in flight, queued: back to the queue and wait": (
        snap((3,), trials=9, chooses_depths=True), asked(4, (3,), ahead=running(4), queued=True),
        {"kind": Kind.GIVE_WAY, "requeue": True, "then_wait": True, "nudge": None}),
    "rival in flight, sampled: nudge to the nearest free depth": (
        snap((3,), trials=9), asked(4, (3,), ahead=running(4)),
        {"kind": Kind.GIVE_WAY, "requeue": False, "then_wait": False, "nudge": 5}),
    "rival in flight on an equivalent depth": (
        snap((), trials=9), asked(1, ahead=running(0)),
        {"kind": Kind.GIVE_WAY, "nudge": 2}),
    "a repeat trains beside its rival": (
        snap((4,), trials=9), asked(4, (4,), ahead=running(4), again=True),
        {"kind": Kind.TRAIN}),
}


@pytest.mark.parametrize("case", list(AFTER))
def test_after_asking(case):
    s, a, want = AFTER[case]
    d = after_asking(s, a)
    assert {k: getattr(d, k) for k in want} == want
    assert d.reason


def test_rival_reason_names_the_trial():
    d = after_asking(snap((3,), trials=9), asked(4, (3,), ahead=running(4, first=17)))
    assert d.reason == "the same weights are being trained in trial #17"


def test_two_workers_asking_at_once_only_the_later_gives_way():
    """Each sees the trials asked before its own: the earlier trains, the later gives way."""
    s = snap((3,), (), trials=9)
    earlier = after_asking(s, Asked(20, 6, measured=measured(3)))
    later = after_asking(s, Asked(21, 6, ahead=(Seen(20, 6, SIG[6]),), measured=measured(3)))
    assert earlier.kind is Kind.TRAIN and later.kind is Kind.GIVE_WAY


def test_a_run_of_answers_nudges_every_max_repeats():
    """The counter the shell carries from round to round: nudge, reset, count again."""
    s = snap((3,), trials=9)
    nudges = []
    for _ in range(2 * MAX_REPEATS):
        d = after_asking(s, asked(3, (3,)))
        nudges.append(d.nudge)
        s = replace(s, repeats=d.repeats)
    assert nudges == [None] * (MAX_REPEATS - 1) + [2] + [None] * (MAX_REPEATS - 1) + [2]


@pytest.mark.parametrize("near, taken, want", [
    (0, set(), 0), (5, {5}, 4), (5, {4, 5}, 6), (0, {0, 2}, 3), (9, set(ALL_WEIGHTS), None),
])
def test_nearest_free(near, taken, want):
    assert nearest_free(DEPTHS, SIG, near, taken) == want


def test_the_rules_import_neither_optuna_nor_tensorflow():
    code = ("import sys, tuner.strategies.decision; "
            "print(sorted(m for m in ('optuna', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
