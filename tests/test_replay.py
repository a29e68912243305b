"""Replaying strategies on landscapes: rules, determinism, the compare command."""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np
import pandas as pd
import pytest

from objectives.noise import DEFAULT_SECONDS_CV
from tuner.analysis.comparison import compare
from tuner.analysis.landscape import from_records, from_thesis
from tuner.analysis.replay import parse_strategies, replay
from tuner.analysis.worlds import make_world
from tuner.cli import compare as compare_cli
from tuner.errors import UsageError
from tuner.strategies.registry import StrategySpec

HAVE_GP = all(importlib.util.find_spec(m) for m in ("torch", "scipy"))


@pytest.fixture(scope="module")
def land51():
    return from_thesis("5.1").interpolated(low=0, high=154)


def test_parse_strategies():
    specs = parse_strategies("narrowing, tpe, random:linear", scale="log")
    assert [s.label for s in specs] == ["narrowing", "tpe:log", "random:linear"]
    assert parse_strategies("narrowing", thesis_grids=True)[0].label == "thesis-grids"
    assert parse_strategies("narrowing:thesis")[0].label == "thesis-grids"  # the older name
    for bad, msg in [
        ("narrowing,bogus", "unknown strategy 'bogus'"),
        ("tpe:cubic", "unknown scale"),
        ("narrowing:log", "narrowing:thesis"),
        ("tpe,tpe:log", "twice"),
        (" , ", "empty"),
    ]:
        with pytest.raises(UsageError, match=msg):
            parse_strategies(bad)


def test_world_is_reproducible_and_mean_preserving(land51):
    a = make_world(land51, seed=3)
    pd.testing.assert_frame_equal(a, make_world(land51, seed=3))
    assert not a.equals(make_world(land51, seed=4))
    calm = make_world(land51, seed=3, noise_scale=0)
    np.testing.assert_allclose(calm["seconds"], land51.table["seconds"])
    # Relative spread of seconds over many worlds is the documented default.
    ratios = np.concatenate(
        [make_world(land51, seed=s)["seconds"] / land51.table["seconds"] for s in range(40)]
    )
    assert ratios.std() == pytest.approx(DEFAULT_SECONDS_CV, rel=0.15)
    assert ratios.mean() == pytest.approx(1.0, abs=0.01)


def test_spread_of_a_repeated_landscape_is_used_and_pooled():
    recs = [{"depth": 0, "val_accuracy": a, "seconds": 100.0} for a in (0.5, 0.7)]
    recs.append({"depth": 10, "val_accuracy": 0.9, "seconds": 100.0})
    land = from_records(recs, name="x").interpolated(low=0, high=10)
    sds = [make_world(land, seed=s)["val_accuracy"] for s in range(200)]
    # sd 0.141 measured at depth 0, pooled to depth 10 (no spread of seconds: stays exact)
    assert np.std([w.loc[10] for w in sds]) == pytest.approx(0.1414, rel=0.2)
    assert all((make_world(land, seed=s)["seconds"] == 100.0).all() for s in range(3))


@pytest.mark.parametrize("name", ["narrowing", "tpe", "random"])
def test_replay_is_deterministic_per_seed(land51, name):
    spec = parse_strategies(name)[0]
    a = replay(landscape=land51, strategy=spec, seed=7, trials=13)
    b = replay(landscape=land51, strategy=spec, seed=7, trials=13)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 13
    assert a["depth"].is_unique  # a repeated suggestion is not trained (nor paid) twice
    np.testing.assert_allclose(a["cum_seconds"], a["seconds"].cumsum())
    assert a["asks"].max() <= 5 * 13


def test_noise_free_narrowing_on_table_5_1(land51):
    run = replay(landscape=land51, strategy=StrategySpec("narrowing"), seed=0, noise_scale=0)
    assert run["depth"].tolist() == [0, 10, 30, 60, 100, 5, 15, 20, 25, 4, 6, 3, 7]
    assert run["choice"].iloc[-1] == 5
    table_seconds = from_thesis("5.1").table["seconds"].sum()  # the 13 depths of the table
    assert run["cum_seconds"].iloc[-1] == pytest.approx(table_seconds)
    result = compare(
        landscape=from_thesis("5.1"), strategies=[StrategySpec("narrowing")], seeds=3,
        noise_scale=0,
    )
    row = result.table.iloc[0]
    assert row["trials_to_best"] == 6 and row["p_found"] == 1 and row["p_final_best"] == 1
    assert row["regret_median"] == 0


def test_thesis_grids_need_a_thesis_landscape():
    land = from_records([{"depth": d, "val_accuracy": 0.9, "seconds": 100.0 + d}
                         for d in (0, 50, 154)], name="csv")
    with pytest.raises(UsageError, match="thesis landscape"):
        compare(landscape=land, strategies=[StrategySpec("thesis-grids")], seeds=1)


def test_budget_and_workers_do_not_change_results(land51):
    specs = parse_strategies("narrowing,random")
    one = compare(landscape=from_thesis("5.1"), strategies=specs, seeds=4, trials=6)
    two = compare(landscape=from_thesis("5.1"), strategies=specs, seeds=4, trials=6, workers=2)
    pd.testing.assert_frame_equal(one.runs, two.runs)
    assert one.runs.groupby(["strategy", "seed"]).size().max() == 6
    assert set(one.curves["strategy"]) == {"narrowing", "random:log"}


@pytest.mark.skipif(
    not HAVE_GP, reason="GP sampler needs torch and scipy (pip install 'depth-tuner[gp]')"
)
def test_gp_replays(land51):
    run = replay(landscape=land51, strategy=parse_strategies("gp")[0], seed=1, trials=6)
    assert len(run) == 6


def _parser():
    p = argparse.ArgumentParser()
    compare_cli.add_arguments(p)
    return p


def test_compare_cli_writes_table_and_figures(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = _parser().parse_args([
        "--landscape", "thesis:5.2", "--strategies", "narrowing,tpe,random:linear",
        "--seeds", "4", "--budget", "13", "--workers", "1", "--thesis-grids",  # --budget: --trials' old name
        "--output", str(out),
    ])
    assert compare_cli.run(args) == 0
    text = capsys.readouterr().out
    assert "best depth 22" in text and "thesis-grids" in text and "tpe:log" in text
    table = pd.read_csv(out / "comparison.csv")
    assert table["strategy"].tolist() == ["thesis-grids", "tpe:log", "random:linear"]
    for col in ("trials_to_best", "seconds_to_best", "regret_median", "regret_p05",
                "regret_p95", "p_final_best"):
        assert col in table.columns
    # The thesis' grids contain its best depth 22: found at the 13th training.
    assert table.loc[0, "trials_to_best"] == 13 and table.loc[0, "p_found"] == 1
    for stem in ("anytime", "efficiency_vs_depth"):
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000


@pytest.mark.parametrize("argv, msg", [
    (["--landscape", "thesis:9.9"], "unknown thesis table"),
    (["--landscape", "thesis:5.1", "--strategies", "narrowing,sgd"], "unknown strategy"),
    (["--landscape", "thesis:5.1", "--seeds", "0"], "--seeds"),
    (["--landscape", "thesis:5.1", "--min-depth", "9", "--max-depth", "3"], "depth range"),
])
def test_compare_cli_bad_input(argv, msg):
    with pytest.raises(UsageError, match=msg):
        compare_cli.run(_parser().parse_args(argv + ["--workers", "1"]))
