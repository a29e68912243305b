"""The gain-per-second strategy: expected improvement per second of price, with cost-cooling."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.analysis.landscape import from_records
from tuner.analysis.replay import replay
from tuner.strategies.gain_per_second import choose_depth, expected_improvement, posterior
from tuner.strategies.registry import STRATEGIES, parse_strategy


def test_expected_improvement_is_the_normal_formula():
    assert expected_improvement(np.array([1.0]), np.array([1e-9]), 0.5)[0] == pytest.approx(0.5)
    assert expected_improvement(np.array([0.0]), np.array([1e-9]), 0.5)[0] == pytest.approx(0.0)
    # at the best with sd 1: sd * phi(0)
    assert expected_improvement(np.array([0.5]), np.array([1.0]), 0.5)[0] == pytest.approx(0.3989, abs=1e-4)


def test_the_posterior_passes_through_precise_readings_and_widens_away_from_them():
    x, y = np.log1p([0.0, 10.0, 100.0]), np.array([0.2, 0.5, 0.3])
    mean, sd = posterior(x, y, np.full(3, 1e-4), np.log1p([10.0, 40.0]), length=1.0)
    assert mean[0] == pytest.approx(0.5, abs=1e-3) and sd[0] < 1e-2 < sd[1]


READ = {0: (0.020, 0.001), 10: (0.024, 0.001), 100: (0.010, 0.001)}  # value peaks near depth 10


@pytest.mark.parametrize("prices, share_left, expected", [
    # one price for all: the most expected gain (depth 5, farthest in log depth from what was read
    # near the peak) decides
    ({5: 20.0, 15: 20.0, 60: 20.0}, 1.0, 5),
    # depth 5 at ten times the price of 15, whose expected gain is a third of it: 15, per second
    ({5: 200.0, 15: 20.0, 60: 20.0}, 1.0, 15),
    # the last trial (nothing left to cool): the price no longer counts, the gain does
    ({5: 200.0, 15: 20.0, 60: 20.0}, 0.0, 5),
])
def test_choose_depth_weighs_the_gain_by_the_price_as_the_trials_run_out(prices, share_left, expected):
    got = choose_depth(list(prices), list(prices.values()), READ, best=0.024, share_left=share_left,
                       low=0, high=154)
    assert got == expected


def test_it_is_a_registered_sampler_that_replays_and_is_refused_for_pareto():
    assert STRATEGIES["gain-per-second"].name == "gain-per-second"
    rows = [{"depth": d, "val_accuracy": 0.6 + 0.3 * (1 - np.exp(-d / 20)), "seconds": 10.0 + d}
            for d in range(0, 155, 10)]
    land = from_records(rows, name="rising").interpolated(low=0, high=154)
    run = replay(landscape=land, strategy=parse_strategy("gain-per-second", scale="log"), seed=0, trials=6,
                 noise_scale=0)
    assert len(run) == 6 and run["depth"].iloc[0] == 0  # the cheapest first, as tpe
    assert run["depth"].nunique() == 6  # each suggestion new weights
    from tuner.errors import UsageError
    from tuner.strategies.registry import check_objective
    from objectives import get_objective

    with pytest.raises(UsageError, match="gain-per-second ranks one value"):
        check_objective("gain-per-second", get_objective("pareto"))
