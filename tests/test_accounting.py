"""Accounting: the step costs a probe's bursts give, and the phase they price."""

import pytest

from tuner.trials.accounting import StepCosts, _costs


def stamps(start, steps):
    out = [start]
    for s in steps:
        out.append(out[-1] + s)
    return out


def test_bursts_pool_their_steps_and_only_the_first_pays_the_trace():
    first = stamps(0.0, [3.0, 0.20, 0.22])  # traced step, then two timed ones
    second = stamps(50.0, [0.5, 0.30, 0.28])  # its first step (a new iterator) is not timed
    step, trace = _costs([first, second])
    assert step == pytest.approx((0.22 + 0.28) / 2)  # median of 0.20, 0.22, 0.28, 0.30
    assert trace == pytest.approx(3.0 - step)


def test_one_burst_as_before():
    assert _costs([stamps(0.0, [2.0, 0.1, 0.3, 0.2])]) == pytest.approx((0.2, 1.8))


def test_phase_seconds_count_every_batch_and_the_trace_once():
    costs = StepCosts(train_step=0.1, train_trace=2.0, val_step=0.05, val_trace=1.0)
    shape = dict(epochs=3, train_examples=64, val_examples=32, batch_size=32)
    assert costs.phase_seconds(**shape) == pytest.approx(3 * (2 * 0.1 + 0.05) + 3.0)
    assert costs.phase_seconds(traced=False, **shape) == pytest.approx(3 * (2 * 0.1 + 0.05))
