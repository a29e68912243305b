"""The noise model and the answer it gives: pooling, the default before repeats, within noise.

Pure pandas/numpy: no TensorFlow, no stored study.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from objectives import OBJECTIVES, get_objective
from objectives.best import answer, best_depth
from objectives.noise import (
    DEFAULT_ACCURACY_SD,
    DEFAULT_NOISE,
    DEFAULT_SECONDS_CV,
    PRIOR_DF,
    Z95,
    NoiseModel,
    estimate_noise,
    pool,
    standard_errors,
)
from tuner.errors import UsageError


def _records(rows):
    return [{"depth": d, "val_accuracy": a, "seconds": s} for d, a, s in rows]


def test_pool_averages_each_depth_and_keeps_its_spread():
    t = pool(_records([(5, 0.90, 100.0), (5, 0.92, 120.0), (0, 0.70, 80.0)]))
    assert t.index.tolist() == [0, 5]
    assert t.loc[5, "val_accuracy"] == pytest.approx(0.91)
    assert t.loc[5, "seconds"] == pytest.approx(110.0)
    assert t.loc[5, "val_accuracy_std"] == pytest.approx(math.sqrt(2) * 0.01)
    assert t.loc[5, "repeats"] == 2 and t.loc[0, "repeats"] == 1
    assert math.isnan(t.loc[0, "seconds_std"])


def test_default_noise_before_any_repeat():
    t = pool(_records([(0, 0.7, 100.0), (5, 0.9, 110.0)]))
    noise = estimate_noise(t)
    assert noise is DEFAULT_NOISE and noise.is_default
    assert (noise.accuracy_sd, noise.seconds_cv) == (DEFAULT_ACCURACY_SD, DEFAULT_SECONDS_CV)
    assert "default" in noise.describe()


def test_noise_is_pooled_over_repeated_depths_weighted_by_degrees_of_freedom():
    # depth 0: two readings; depth 5: three readings; depth 9: one (no spread, ignored)
    rows = [(0, 0.70, 100.0), (0, 0.72, 110.0),
            (5, 0.90, 200.0), (5, 0.93, 180.0), (5, 0.87, 220.0),
            (9, 0.95, 300.0)]
    t = pool(_records(rows))
    noise = estimate_noise(t)
    acc_var = (1 * np.var([0.70, 0.72], ddof=1) + 2 * np.var([0.90, 0.93, 0.87], ddof=1)) / 3
    cv0 = np.std([100.0, 110.0], ddof=1) / 105.0
    cv5 = np.std([200.0, 180.0, 220.0], ddof=1) / 200.0
    k = PRIOR_DF  # the default counts as k degrees of freedom of readings
    assert noise.accuracy_sd == pytest.approx(math.sqrt((3 * acc_var + k * DEFAULT_ACCURACY_SD**2) / (3 + k)))
    sec_var = (cv0**2 + 2 * cv5**2) / 3
    assert noise.seconds_cv == pytest.approx(math.sqrt((3 * sec_var + k * DEFAULT_SECONDS_CV**2) / (3 + k)))
    assert noise.accuracy_df == 3 and noise.seconds_df == 3 and not noise.is_default
    assert f"(from repeats, 3 df, with the default as {k})" in noise.describe()


def test_a_few_repeats_that_agree_do_not_make_noise_vanish():
    """Two readings that happen to agree must not call every gap significant."""
    rows = [{**r, "seed": i} for i, r in enumerate(_records([(0, 0.70, 100.0), (0, 0.70, 100.0)]))]
    noise = estimate_noise(pool(rows))
    assert noise.accuracy_df == 1 and noise.seconds_df == 1
    assert noise.accuracy_sd == pytest.approx(DEFAULT_ACCURACY_SD * math.sqrt(PRIOR_DF / (1 + PRIOR_DF)))
    assert noise.seconds_cv > 0.8 * DEFAULT_SECONDS_CV
    # many repeats: the study's own figure wins
    many = [{"depth": d, "val_accuracy": 0.7 + 0.001 * (i % 2), "seconds": 100.0, "seed": i}
            for d in range(20) for i in range(3)]
    assert estimate_noise(pool(many)).accuracy_sd < 0.4 * DEFAULT_ACCURACY_SD


def test_repeats_under_one_seed_estimate_seconds_only():
    """Same seed, same training: such repeats say nothing about accuracy noise."""
    rows = [(0, 0.70, 100.0), (0, 0.70, 120.0), (5, 0.90, 200.0), (5, 0.90, 180.0)]
    same = pool([{**r, "seed": 0} for r in _records(rows)])
    assert same["seeds"].tolist() == [1, 1] and same["repeats"].tolist() == [2, 2]
    noise = estimate_noise(same)
    assert noise.accuracy_sd == DEFAULT_ACCURACY_SD and noise.accuracy_df == 0
    assert noise.seconds_df == 2 and noise.seconds_cv > 0
    assert "default, no depth read under two seeds yet" in noise.describe()
    # a depth mean over one seed keeps the full accuracy sd, however many readings
    se_acc, _ = standard_errors(same, noise)
    np.testing.assert_allclose(se_acc, [DEFAULT_ACCURACY_SD] * 2)
    # new seeds: accuracy noise from the study itself
    rows2 = [{**r, "seed": i % 2} for i, r in enumerate(_records(
        [(0, 0.70, 100.0), (0, 0.72, 120.0)]))]
    noise2 = estimate_noise(pool(rows2))
    sd = np.std([0.7, 0.72], ddof=1)
    assert noise2.accuracy_df == 1
    assert noise2.accuracy_sd == pytest.approx(math.sqrt((sd**2 + PRIOR_DF * DEFAULT_ACCURACY_SD**2) / (1 + PRIOR_DF)))


def test_standard_errors_shrink_with_repeats():
    t = pool(_records([(0, 0.7, 100.0), (5, 0.9, 200.0), (5, 0.9, 200.0), (5, 0.9, 200.0),
                       (5, 0.9, 200.0)]))
    noise = NoiseModel(accuracy_sd=0.02, seconds_cv=0.1, accuracy_df=3, seconds_df=3)
    se_acc, se_sec = standard_errors(t, noise)
    np.testing.assert_allclose(se_acc, [0.02, 0.01])
    np.testing.assert_allclose(se_sec, [10.0, 10.0])  # 0.1 * 200 / sqrt(4)


def test_efficiency_interval_is_the_delta_method():
    t = pool(_records([(0, 0.8, 100.0), (5, 0.9, 100.0), (5, 0.9, 100.0)]))
    noise = NoiseModel(accuracy_sd=0.02, seconds_cv=0.1, accuracy_df=5, seconds_df=5)
    ans = answer(t, OBJECTIVES["efficiency"], noise)
    assert ans.best_depth == 5
    v = 0.9 / 100.0
    sd = v * math.sqrt((0.02 / 0.9) ** 2 + 0.1**2) / math.sqrt(2)
    assert ans.best_value == pytest.approx(v)
    assert ans.best_sd == pytest.approx(sd, rel=1e-5)
    assert ans.best_interval == pytest.approx((v - Z95 * sd, v + Z95 * sd), rel=1e-5)
    acc = answer(t, OBJECTIVES["accuracy"], noise)
    assert acc.best_sd == pytest.approx(0.02 / math.sqrt(2), rel=1e-5)


def test_within_noise_is_a_z_test_of_the_difference():
    # accuracy objective, sd 0.01 per reading, one reading each: combined sd 0.01414,
    # threshold 1.96 * 0.01414 = 0.0277
    t = pool(_records([(0, 0.90, 100.0), (3, 0.88, 100.0), (10, 0.86, 100.0),
                       (20, 0.80, 100.0)]))
    noise = NoiseModel(accuracy_sd=0.01, seconds_cv=0.1, accuracy_df=4, seconds_df=4)
    ans = answer(t, OBJECTIVES["accuracy"], noise)
    assert ans.best_depth == 0
    assert ans.within_noise == [3]  # 0.02 apart: within; 0.04 and 0.10: not
    assert ans.depths.loc[3, "within_noise"] and not ans.depths.loc[10, "within_noise"]
    line = ans.line()
    assert line.startswith("best depth: 0, accuracy 0.9 ± 0.02 (95 %")
    assert "within noise of it: 3 [" in line


def test_answer_estimates_noise_from_the_table_itself():
    t = pool(_records([(0, 0.70, 100.0), (0, 0.72, 120.0), (5, 0.90, 100.0)]))
    ans = answer(t, OBJECTIVES["efficiency"])
    assert not ans.noise.is_default and ans.noise.accuracy_df == 1 and ans.noise.seconds_df == 1
    fields = ans.as_dict()
    assert fields["best_depth"] == 5 and fields["within_noise"] == ans.within_noise
    assert fields["best_interval"][0] < fields["best_value"] < fields["best_interval"][1]
    assert [d["depth"] for d in fields["depths"]] == [0, 5]


def test_ties_go_to_the_shallower_depth_and_unmeasured_depths_are_not_answers():
    t = pool(_records([(10, 0.9, 100.0), (4, 0.9, 100.0)]))
    assert best_depth(t, OBJECTIVES["efficiency"]) == 4
    t.loc[2] = [0.99, 50.0, np.nan, np.nan, 0, 0]  # interpolated: no reading
    assert answer(t, OBJECTIVES["efficiency"]).best_depth == 4


def test_cheapest_within_eps_of_the_best_accuracy():
    t = pool(_records([(0, 0.70, 100.0), (5, 0.91, 120.0), (20, 0.93, 160.0), (60, 0.915, 260.0)]))
    assert best_depth(t, get_objective("cheapest-within:0.02")) == 5
    assert best_depth(t, get_objective("cheapest-within:0.01")) == 20
    assert best_depth(t, get_objective("cheapest-within:0.5")) == 0
    ans = answer(t, get_objective("cheapest-within:0.02"))
    assert ans.best_value == pytest.approx(120.0)  # seconds, minimised
    assert 0 not in ans.within_noise  # not eligible: too inaccurate, however cheap
    assert "best accuracy 0.9300 at depth 20" in ans.line()


def test_cheapest_within_tells_the_study_its_accuracy():
    obj = get_objective("cheapest-within:0.010")
    assert obj.name == "cheapest-within:0.01"
    assert obj({"val_accuracy": 0.8, "fit_seconds": 50.0}) == pytest.approx(0.8)
    assert OBJECTIVES["efficiency"]({"val_accuracy": 0.8, "fit_seconds": 50.0,
                                     "protocol_seconds": 40.0}) == pytest.approx(0.02)


@pytest.mark.parametrize("bad", ["cheapest-within:abc", "cheapest-within", "cheapest-within:",
                                 "cheapest-within:1.5", "cheapest-within:-0.1",
                                 "cheapest-within:nan", "fastest"])
def test_bad_objective_names_are_usage_errors(bad):
    with pytest.raises(UsageError, match="objective"):
        get_objective(bad)


def test_a_small_validation_set_widens_the_interval_to_its_binomial_sd():
    # 50 validation images at 0.7: binomial sd sqrt(.7 * .3 / 50) = 0.065, over four times the default.
    t = pool(_records([(0, 0.68, 100.0), (5, 0.74, 100.0), (20, 0.60, 100.0)]))
    big = answer(t, OBJECTIVES["accuracy"])
    small = answer(t, OBJECTIVES["accuracy"], val_examples=50)
    assert big.best_depth == small.best_depth == 5
    assert big.within_noise == [] and small.within_noise == [0, 20]
    p = (0.74 * 50 + 0.5) / 51
    assert small.best_sd == pytest.approx(np.sqrt(p * (1 - p) / 50))
    assert small.best_sd > 4 * big.best_sd
    assert "accuracy sd 0.062 (the binomial sd of 50 validation images at 0.740" in small.line()
    # a large validation set leaves the measured noise in charge
    assert answer(t, OBJECTIVES["accuracy"], val_examples=100_000).best_sd == pytest.approx(big.best_sd)
