"""One strategy interface, one registry: live runs and replays share every strategy.

No training: the live search's oracle is driven directly and each trial is
finished with the landscape's metrics, as test_confirm does.
"""

from __future__ import annotations

import argparse

import optuna
import pytest

from tuner.analysis.comparison import compare
from tuner.analysis.landscape import from_thesis
from tuner.analysis.replay import replay
from tuner.cli import compare as compare_cli
from tuner.cli import live_compare as live_cli
from tuner.cli import search as search_cli
from tuner.errors import UsageError
from tuner.model.signatures import n_layers
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.search.oracle import OptunaOracle
from tuner.strategies.confirm import confirmation_seed
from tuner.strategies.registry import (
    STRATEGIES,
    Setup,
    Strategy,
    completed_values,
    make_strategy,
    parse_strategy,
)
from tuner.strategies.rounds import Search

H = n_layers("MobileNetV2")
BUDGET = 13


@pytest.fixture(scope="module")
def land52():
    return from_thesis("5.2").interpolated(low=0, high=H)


def _finish(oracle, tid: str, land, depth: int) -> None:
    """What a trained trial leaves on the study: the landscape's metrics and its value."""
    acc = float(land.table.loc[depth, "val_accuracy"])
    sec = float(land.table.loc[depth, "seconds"])
    ot = oracle.optuna_trials.pop(tid)
    oracle._heartbeats.pop(tid).stop()
    for key, value in {"val_accuracy": acc, "fit_seconds": sec, "protocol_seconds": sec}.items():
        ot.set_user_attr(key, value)
    oracle.study.tell(ot, float(land.objective_spec.values(acc, sec)))


def live_run(name: str, land, *, trials: int = BUDGET, seed: int = 0, **options) -> tuple[list[int], optuna.Study]:
    """The live search's oracle on ``land`` (every depth its own weights): depths in training order."""
    spec = parse_strategy(name, scale="log")
    space = DepthSpace(0, H, spec.scale or "linear")
    setup = Setup(space=space, seed=seed, trials=trials, objective=land.objective_spec,
                  dataset=land.thesis.dataset if land.thesis else None, **options)
    strategy = make_strategy(spec, setup)
    study = optuna.create_study(direction="maximize", sampler=strategy.sampler())
    oracle = OptunaOracle(Search(study=study, space=space, strategy=strategy, signatures=tuple(range(H + 1)),
                                 trials=trials, objective=land.objective_spec, base_seed=seed),
                          reporter=Reporter(quiet=True))
    depths = []
    for i in range(5 * trials):
        r = oracle.populate_space(f"t{i}")
        if r["status"] != "RUNNING":
            break
        depths.append(r["values"]["depth"])
        _finish(oracle, f"t{i}", land, depths[-1])
    return depths, study


@pytest.mark.parametrize("name", ["narrowing", "thesis-grids", "sweep", "tpe", "random", "grid",
                                  "tpe+confirm2", "narrowing+confirm2"])
def test_a_replay_and_a_live_run_pick_the_same_depths_in_the_same_order(land52, name):
    live, _ = live_run(name, land52)
    run = replay(landscape=land52, strategy=parse_strategy(name, scale="log"), seed=0,
                 trials=BUDGET, noise_scale=0)
    assert run["depth"].tolist() == live
    assert len(live) == BUDGET


def test_confirmations_live_and_replayed_are_the_same_trials(land52):
    _, study = live_run("tpe+confirm2", land52)
    run = replay(landscape=land52, strategy="tpe+confirm2", seed=0, noise_scale=0)
    confirmed = [t.user_attrs["depth"] for t in study.trials if t.user_attrs.get("confirm")]
    assert confirmed == run.loc[run["confirmation"], "depth"].tolist()
    assert confirmed  # the default noise leaves close rivals on Table 5.2: one repeat at least


def test_sweep_repeats_train_with_a_new_seed_each(land52):
    _, study = live_run("sweep", land52, trials=6, seed=7, depths=(0, 5, 10), repeats=2)
    readings = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.user_attrs["depth"] for t in readings] == [0, 5, 10, 0, 5, 10]
    first, again = readings[:3], readings[3:]
    assert all("seed" not in t.user_attrs for t in first)  # the study's seed
    assert [t.user_attrs["seed"] for t in again] == [confirmation_seed(7, t.number) for t in again]
    assert len({t.user_attrs["seed"] for t in again}) == 3 and all(t.user_attrs["measure_again"] for t in again)


def test_narrowing_reads_only_the_study(land52):
    """Stopped after any trial, a new strategy object on the same study goes on identically."""
    full, study = live_run("narrowing", land52)
    strategy = make_strategy("narrowing", Setup(space=DepthSpace(0, H, "linear")))
    values = completed_values(study, DepthSpace(0, H, "linear"))
    assert set(values) == set(full) and strategy.queue(study) == []  # the plan is done


class EveryFifth(Strategy):
    """A strategy added the README's way: a class ..."""

    name = "every-fifth"
    chooses_depths = True

    def queue(self, study):
        done = completed_values(study, self.setup.space)
        todo = [d for d in range(self.setup.space.low, self.setup.space.high + 1, 5) if d not in done]
        return [(d, {"chosen_by": self.name}) for d in todo[:1]]


def test_a_new_strategy_is_one_class_and_one_line(monkeypatch, land52):
    monkeypatch.setitem(STRATEGIES, "every-fifth", EveryFifth)  # ... and one registry line
    run = replay(landscape=land52, strategy="every-fifth", seed=0, trials=4)
    assert run["depth"].tolist() == [0, 5, 10, 15]
    assert live_run("every-fifth", land52, trials=4)[0] == [0, 5, 10, 15]
    table = compare(landscape=from_thesis("5.1"), strategies=[parse_strategy("every-fifth+confirm1")],
                    seeds=2, trials=5).table
    assert table["strategy"].tolist() == ["every-fifth+confirm1"]
    for command in (search_cli.add_arguments, live_cli.add_arguments):
        p = argparse.ArgumentParser()
        command(p)
        assert "every-fifth" in p.format_help()
    p = argparse.ArgumentParser()
    search_cli.add_arguments(p)
    assert p.parse_args(["--dataset", "x", "--strategy", "every-fifth"]).strategy == "every-fifth"
    assert p.parse_args(["--dataset", "x", "--sampler", "every-fifth"]).strategy == "every-fifth"  # its older name
    assert "--strategy NAME, --sampler NAME" in p.format_help()
    p = argparse.ArgumentParser()
    compare_cli.add_arguments(p)
    assert "every-fifth" in p.format_help()


def test_old_names_still_load():
    from studies.presets import DEFAULT_FAKE_EXAMPLES  # noqa: F401  (the presets import cheaply)
    from tuner.data.sources import resolve_data_spec
    from tuner.search.config import SearchConfig

    data = resolve_data_spec(dataset="tf_flowers", fake=True, fake_examples=(8, 8))
    for recorded in ("tpe", "gp", "random", "grid", "narrowing", "thesis-grids", "sweep"):
        assert SearchConfig(data=data, strategy=recorded).as_config()["sampler"] == recorded  # the stored key
    assert SearchConfig(data=data, strategy="thesis").strategy == "thesis-grids"  # compare's name
    assert parse_strategy("narrowing:thesis").name == "thesis-grids"


@pytest.mark.parametrize("text, needle", [
    ("hyperband", "unknown strategy 'hyperband'"),
    ("narrowing:log", "chooses its depths itself"),
    ("tpe:cubic", "unknown scale"),
    ("tpe+confirmx", "whole number"),
])
def test_bad_strategy_names_are_one_line(text, needle):
    with pytest.raises(UsageError, match=needle) as info:
        parse_strategy(text)
    assert "\n" not in str(info.value)


def test_confirmations_need_a_budget_of_trials():
    with pytest.raises(UsageError, match="budget of trials"):
        make_strategy("narrowing+confirm2", Setup(space=DepthSpace(0, 10)))


def test_the_depth_range_comes_from_the_landscape():
    land = from_thesis("5.1")
    assert land.depth_range() == (0, H)
    assert compare(landscape=land, strategies=[parse_strategy("narrowing")], seeds=1,
                   noise_scale=0).landscape.depths[-1] == H


def test_grid_on_a_range_smaller_than_the_budget_ends_without_an_error():
    """Optuna's GridSampler stops the study after its last point, which raises outside optimize."""
    land = from_thesis("5.1").interpolated(low=0, high=10)
    run = replay(landscape=land, strategy=parse_strategy("grid"), seed=0, trials=13, low=0, high=10,
                 noise_scale=0)
    assert sorted(run["depth"]) == list(range(11))


@pytest.mark.parametrize("name", ["tpe", "random", "tpe+confirm2"])
def test_a_sampler_trains_the_cheapest_depth_first_and_only_in_a_new_study(land52, name):
    """Before any reading nothing can be ruled out: the shallowest depth (the cheapest) comes
    first, so the bound has a best to rule dear suggestions out by; a resumed study samples."""
    run = replay(landscape=land52.interpolated(low=2, high=H), strategy=name, seed=3, trials=4,
                 low=2, high=H, noise_scale=0)
    assert run["depth"].iloc[0] == 2
    study = optuna.create_study(direction="maximize")
    strategy = make_strategy(parse_strategy(name, scale="log"),
                             Setup(space=DepthSpace(0, H), seed=0, trials=13))
    assert strategy.queue(study) == [(0, {"chosen_by": "cheapest-first"})]
    study.add_trial(optuna.trial.create_trial(params={"depth": 40},
                                              distributions={"depth": optuna.distributions.IntDistribution(0, H)},
                                              value=0.01))
    assert strategy.queue(study) == []
