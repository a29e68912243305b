"""The price of a depth before it trains, and the rule that rules depths out
(tuner.strategies.bound), case by case on plain readings: no study, no TensorFlow.

Depths 0..9, each its own weights except depth 1 (the weights of depth 0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from objectives import get_objective
from tuner.strategies.bound import Readings, has_bound
from tuner.strategies.cost import monotone_fit

SIG = (0, 0, 2, 3, 4, 5, 6, 7, 8, 9)
DEPTHS = range(10)


def price(depth, records, signatures, probes=(), *, val_examples=None):
    """``depth``'s price before it trains, from these readings alone."""
    return Readings(records, signatures, probes, val_examples=val_examples).price(depth)


def closed(records, *, depths, signatures, objective, probes=(), val_examples=None):
    """The untrained signatures of ``depths`` these readings rule out."""
    return Readings(records, signatures, probes, objective=objective, val_examples=val_examples).closed(depths)


def readings(*rows):
    """(depth, accuracy, seconds[, seed]) -> records as tuner.store.records gives them."""
    return [{"depth": d, "val_accuracy": a, "seconds": s, "seed": rest[0] if rest else 0}
            for d, a, s, *rest in rows]


def test_the_monotone_fit_averages_readings_that_contradict_the_order():
    fit, rests_on = monotone_fit(np.array([10.0, 30.0, 20.0, 40.0]), np.ones(4))
    assert fit.tolist() == [10.0, 25.0, 25.0, 40.0]
    assert rests_on.tolist() == [1.0, 2.0, 2.0, 1.0]
    fit, _ = monotone_fit(np.array([30.0, 10.0]), np.array([1.0, 3.0]))  # weighted by readings
    assert fit.tolist() == [15.0, 15.0]


PRICES = {
    "a measured depth costs its reading": (3, [(3, .9, 50.0)], (50.0, 50.0)),
    "between two measured depths": (5, [(3, .9, 50.0), (7, .9, 70.0)], (50.0, 70.0)),
    "beyond the deepest: no upper end": (9, [(3, .9, 50.0)], (50.0, math.inf)),
    "below the shallowest: no lower end": (2, [(3, .9, 50.0)], (0.0, 50.0)),
    "an equivalent depth shares its twin's price": (1, [(0, .9, 40.0)], (40.0, 40.0)),
    "a dear shallow reading contradicted by a cheaper deeper one is averaged": (
        5, [(3, .9, 90.0), (7, .9, 50.0)], (70.0, 70.0)),
}


@pytest.mark.parametrize("case", list(PRICES))
def test_price(case):
    depth, rows, (low, high) = PRICES[case]
    p = price(depth, readings(*rows), SIG)
    assert (p.low, p.high) == pytest.approx((low, high))


# (depth, readings, estimate, its sd is finite)
ESTIMATES = {
    "a read depth: its fit": (3, [(3, .9, 50.0), (7, .9, 70.0)], 50.0, True),
    "between reads: linear in the weights' signature": (5, [(3, .9, 50.0), (7, .9, 70.0)], 60.0, True),
    "beyond the deepest: along the slope": (9, [(3, .9, 50.0), (7, .9, 70.0)], 80.0, True),
    "below the shallowest: along the slope": (2, [(3, .9, 50.0), (7, .9, 70.0)], 45.0, True),
    "one signature read: no slope, no upper end": (9, [(3, .9, 50.0)], 50.0, False),
    "a falling pair is fitted flat, never extrapolated down": (9, [(3, .9, 60.0), (7, .9, 40.0)], 50.0, True),
}


@pytest.mark.parametrize("case", list(ESTIMATES))
def test_estimate(case):
    depth, rows, seconds, finite = ESTIMATES[case]
    p = price(depth, readings(*rows), SIG)
    assert p.seconds == pytest.approx(seconds)
    assert math.isfinite(p.sd) is finite
    assert p.least(1.96) <= p.seconds <= p.most(1.96)
    assert p.low <= p.least(1.96) and p.most(1.96) <= p.high


def test_an_estimate_is_less_sure_the_further_it_reaches():
    rows = readings((3, .9, 50.0), (4, .9, 55.0))
    near, far = price(5, rows, SIG), price(9, rows, SIG)
    assert near.sd / near.seconds < far.sd / far.seconds


def test_a_price_is_stored_without_infinities():
    attrs = price(9, readings((3, .9, 50.0)), SIG).as_attrs()
    assert set(attrs) == {"price_low", "price"} and attrs["price"] == pytest.approx(50.0)
    attrs = price(5, readings((3, .9, 50.0), (7, .9, 70.0)), SIG).as_attrs()
    assert set(attrs) == {"price_low", "price_high", "price", "price_sd"}


EFF = get_objective("efficiency")

# (readings, objective, the depths ruled out, the depth that rules them)
RULINGS = {
    "a depth that is dear beyond noise closes itself and everything deeper": (
        [(4, .9, 10.0), (5, .9, 40.0)], EFF, [6, 7, 8, 9], 5),
    "between reads only the bracket rules (a line there could price a winner out)": (
        [(2, .9, 10.0), (5, .9, 40.0)], EFF, [6, 7, 8, 9], 5),
    "the cost model extrapolates the growth beyond the deepest read": (
        [(2, .9, 10.0), (5, .9, 16.0)], EFF, [6, 7, 8, 9], 6),
    "within noise of the best: nothing is ruled out": (
        [(2, .9, 10.0), (5, .9, 11.0)], EFF, [], None),
    "a ceiling below the best but inside the noise: nothing": (
        [(2, .9, 10.0), (5, .9, 13.0)], EFF, [], None),
    "shallower free depths stay open": (
        [(5, .9, 10.0), (6, .9, 40.0)], EFF, [7, 8, 9], 6),
    "a dear reading contradicted by a cheaper deeper depth rules nothing": (
        [(2, .9, 40.0), (3, .9, 10.0), (5, .9, 10.0)], EFF, [], None),
    "one reading each: a ceiling this near is inside the default noise": (
        [(2, .9, 10.0), (5, .9, 12.0)], EFF, [], None),
    "the study's repeats narrow the noise, so the same ceiling rules": (
        [(2, .9, 10.0, 0), (2, .9, 10.1, 1), (5, .9, 16.0, 0), (5, .9, 16.1, 1)], EFF,
        [6, 7, 8, 9], 5),
    "steady-efficiency rules by the seconds it counts": (
        [(4, .9, 10.0), (5, .9, 40.0)], get_objective("steady-efficiency"), [6, 7, 8, 9], 5),
    "accuracy has no ceiling": ([(2, .9, 10.0), (5, .9, 40.0)], get_objective("accuracy"), [], None),
    "pareto has no ceiling": ([(2, .9, 10.0), (5, .9, 40.0)], get_objective("pareto"), [], None),
    "cheapest-within: a bar a perfect depth could raise rules nothing": (
        [(2, .9, 10.0), (5, .9, 40.0)], get_objective("cheapest-within:0.01"), [], None),
    "cheapest-within: a depth that clears the bar for sure rules out the dearer ones": (
        [(2, .999, 10.0), (5, .999, 40.0)], get_objective("cheapest-within:0.05"), [6, 7, 8, 9], 5),
}


@pytest.mark.parametrize("case", list(RULINGS))
def test_closed(case):
    rows, objective, out, by = RULINGS[case]
    ruled = closed(readings(*rows), depths=DEPTHS, signatures=SIG, objective=objective)
    assert sorted(ruled) == out
    assert {r.by_depth for r in ruled.values()} == ({by} if by is not None else set())
    assert has_bound(objective) or not ruled


def test_a_ruling_says_why_with_its_numbers():
    ruled = closed(readings((4, .9, 10.0), (5, .9, 40.0)), depths=DEPTHS, signatures=SIG, objective=EFF)
    r = ruled[9]
    assert (r.by_depth, r.best_depth) == (5, 4)
    assert r.price == pytest.approx(40.0) and r.ceiling == pytest.approx(1 / 40)
    assert r.best_value == pytest.approx(0.09)
    assert "depth 5 costs 40.0 s (monotone fit)" in r.reason and "depth 4" in r.reason
    by_model = closed(readings((2, .9, 10.0), (5, .9, 16.0)), depths=DEPTHS, signatures=SIG, objective=EFF)[9]
    assert by_model.by_depth == 6 and by_model.price == pytest.approx(18.0)
    assert "depth 6 is priced at 18.0 ±" in by_model.reason and "(cost model)" in by_model.reason
    attrs = r.as_attrs()
    assert attrs["ruled_out_by"] == 5 and attrs["value_ceiling"] == pytest.approx(0.025)


def test_nothing_measured_rules_nothing():
    assert closed([], depths=DEPTHS, signatures=SIG, objective=EFF) == {}
