"""narrow and sweep: depths chosen by the strategy, trained by the same search, resumable."""

from __future__ import annotations

from collections import Counter

import optuna
import pytest
from conftest import FAST
from optuna.trial import TrialState

from tuner.cli.main import main
from tuner.errors import UsageError
from tuner.model.space import DepthSpace
from tuner.strategies.narrowing import next_stage
from tuner.strategies.registry import completed_values, parse_depths

# --fake-data: default study names are tf_flowers-fake-STRATEGY, never the real job's.
COMMON = ["--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16", *FAST,
          "--in-process", "--quiet"]


def _study(storage, name):
    return optuna.load_study(study_name=name, storage=storage)


def test_sweep_trains_each_depth_repeats_times_and_skips_equivalents(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/sweep.db"
    args = ["sweep", *COMMON, "--depths", "0-2", "--repeats", "2", "--storage", storage]
    assert main(args) == 0
    trials = _study(storage, "tf_flowers-fake-sweep").trials
    trained = Counter(t.user_attrs["depth"] for t in trials
                      if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs)
    assert trained == {0: 2, 2: 2}  # depth 1 (a ReLU) trains the same weights as depth 0
    again = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("measure_again")]
    assert [t.user_attrs["seed"] for t in again] == [t.number for t in again]  # seed 0 + trial number
    from tuner.store.records import study_records

    seeds = Counter((r["depth"], r["seed"]) for r in study_records(_study(storage, "tf_flowers-fake-sweep")))
    assert len(seeds) == 4  # every reading under a seed of its own: seed noise is measured too
    [twin] = [t for t in trials if t.user_attrs["depth"] == 1]
    assert twin.state == TrialState.COMPLETE and trials[twin.user_attrs["reused_from"]].user_attrs["depth"] == 0
    before = len(trials)
    assert main(args) == 0  # the same command again: nothing left to train
    assert len(_study(storage, "tf_flowers-fake-sweep").trials) == before


def test_narrow_follows_the_rule_on_what_it_measured(tmp_path):
    storage = f"sqlite:///{tmp_path}/narrow.db"
    args = ["narrow", *COMMON, "--max-depth", "6", "--storage", storage]
    assert main(args) == 0
    study = _study(storage, "tf_flowers-fake-narrowing")
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL))
    values = completed_values(study, DepthSpace(0, 6))
    assert {0, 6} <= set(values)  # stage 1, clipped to the range
    assert next_stage(values, low=0, high=6) == []  # every stage the rule asks for is measured
    before = len(study.trials)
    assert main(args) == 0
    assert len(_study(storage, "tf_flowers-fake-narrowing").trials) == before


def test_thesis_grids_only_for_the_thesis_datasets(tmp_path, capsys):
    args = ["narrow", "--dataset", "mnist", "--fake-data", *FAST, "--thesis-grids",
            "--storage", f"sqlite:///{tmp_path}/x.db"]
    assert main(args) == 2
    assert "--thesis-grids knows the thesis' depths for" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [
    ("0-3", [0, 1, 2, 3]), ("0,5,10", [0, 5, 10]), ("0-20:10", [0, 10, 20]), ("7", [7]),
])
def test_depth_lists(text, expected):
    assert parse_depths(text, low=0, high=154) == expected


@pytest.mark.parametrize("text", ["", "a-b", "0-200", "5-"])
def test_bad_depth_lists(text):
    with pytest.raises(UsageError):
        parse_depths(text, low=0, high=154)


def test_live_compare_takes_any_strategy_of_the_table_but_one_line_for_bad_names(tmp_path, capsys):
    args = ["live-compare", *COMMON, "--strategies", "narrowing,hyperband", "--budget-seconds", "10"]
    assert main(args) == 2
    assert "unknown strategy 'hyperband'" in capsys.readouterr().err
    args = ["live-compare", *COMMON, "--strategies", "tpe+confirm2", "--budget-seconds", "10"]
    assert main(args) == 2
    assert "without confirmations" in capsys.readouterr().err
    for strategies, needle in (("tpe,tpe", "names a strategy twice"), (",", "is empty")):
        assert main(["live-compare", *COMMON, "--strategies", strategies, "--budget-seconds", "10"]) == 2
        assert needle in capsys.readouterr().err  # compare's messages, from the one parser


def test_live_compare_gives_each_strategy_the_same_seconds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["live-compare", *COMMON, "--strategies", "narrowing,random", "--budget-seconds", "10",
            "--output", str(tmp_path / "out")]
    assert main(args) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert list(table["strategy"]) == ["narrowing", "random"]
    for row in table.itertuples():
        study = _study(f"sqlite:///studies/{row.study}.db", row.study)
        seconds = [t.user_attrs["protocol_seconds"] for t in study.trials
                   if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs]
        assert sum(seconds) == pytest.approx(row.seconds)
        assert sum(seconds[:-1]) < 10 <= sum(seconds)  # stopped by the budget, not before
    assert table["gap_to_best_found"].min() == 0
    narrowing = _study("sqlite:///studies/tf_flowers-fake-live-narrowing.db", "tf_flowers-fake-live-narrowing")
    trained = {t.user_attrs["depth"] for t in narrowing.trials if t.state == TrialState.COMPLETE}
    assert trained <= {0, 10, 30, 60, 100}  # stage 1 first
