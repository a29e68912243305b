"""Accounting: the step costs a probe's bursts give, and the phase they price."""

import pytest

from tuner.trials.accounting import StepCosts, _costs


def stamps(start, steps):
    out = [start]
    for s in steps:
        out.append(out[-1] + s)
    return out


def test_the_last_burst_prices_the_step_by_its_mean_and_the_first_pays_the_trace():
    first = stamps(0.0, [3.0, 0.20, 0.22])  # traced step, then two timed ones, right after the trace
    second = stamps(50.0, [0.5, 0.30, 0.28, 0.26, 0.40])  # after sustained work; its first step not timed
    step, trace = _costs([first, second])
    assert step == pytest.approx((0.30 + 0.28 + 0.26 + 0.40) / 4)  # a mean: a phase is the sum of its steps
    assert trace == pytest.approx(3.0 - step)


def test_one_burst_is_its_own_last():
    assert _costs([stamps(0.0, [2.0, 0.1, 0.3, 0.2])]) == pytest.approx((0.2, 1.8))
    assert _costs([stamps(0.0, [2.0, 0.1, 0.1, 0.4])]) == pytest.approx((0.2, 1.8))  # mean, not median


def test_a_last_burst_without_timed_steps_falls_back_to_the_earlier_ones():
    assert _costs([stamps(0.0, [2.0, 0.1, 0.3]), stamps(9.0, [0.5])]) == pytest.approx((0.2, 1.8))


def test_costs_keep_their_samples_for_the_record_and_read_back_without_them():
    samples = {"train": [[3.0, 0.2], [0.5, 0.3]]}
    costs = StepCosts(train_step=0.3, train_trace=2.7, val_step=0.05, val_trace=1.0, samples=samples)
    attrs = costs.as_attrs("phase2")
    assert attrs["phase2_samples"] == samples and attrs["phase2_train_step"] == 0.3
    assert StepCosts.from_attrs(attrs, "phase2") == costs  # samples are not part of the price
    assert "phase1_samples" not in StepCosts(0.1, 1.0, 0.1, 1.0).as_attrs("phase1")  # studies as before
    old_study = {"phase1_train_step": 0.1, "phase1_train_trace": 1.0, "phase1_val_step": 0.1, "phase1_val_trace": 1.0}
    assert StepCosts.from_attrs(old_study, "phase1").train_step == 0.1


def test_phase_seconds_count_every_batch_and_the_trace_once():
    costs = StepCosts(train_step=0.1, train_trace=2.0, val_step=0.05, val_trace=1.0)
    shape = dict(epochs=3, train_examples=64, val_examples=32, batch_size=32)
    assert costs.phase_seconds(**shape) == pytest.approx(3 * (2 * 0.1 + 0.05) + 3.0)
    assert costs.phase_seconds(traced=False, **shape) == pytest.approx(3 * (2 * 0.1 + 0.05))
