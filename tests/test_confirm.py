"""Confirmation repeats (``--confirm N``): the rule, the oracle that queues them, the replay.

No training here except one tiny real search at the end: the oracle is
driven directly, and each "trial" is finished with made-up metrics.
"""

from __future__ import annotations

import os
import subprocess

import optuna
import pandas as pd
import pytest
from conftest import FAST, run_cli
from optuna.trial import TrialState

from objectives import get_objective
from tuner.analysis.comparison import compare
from tuner.analysis.landscape import from_thesis
from tuner.analysis.replay import parse_strategies, replay
from tuner.errors import UsageError
from tuner.model.signatures import depth_signatures
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.search.oracle import OptunaOracle
from tuner.store.trials import recover_stale_trials
from tuner.stored_keys import CONFIRM as CONFIRM_ATTR
from tuner.strategies.confirm import in_confirm_phase, next_confirmation
from tuner.strategies.registry import Setup, StrategySpec, make_strategy
from tuner.strategies.rounds import Search

SIG = depth_signatures("MobileNetV2")
EFF = get_objective("efficiency")
SPACE = DepthSpace(0, 154, "log")


def _reading(depth, acc, sec, seed=None):
    r = {"depth": depth, "val_accuracy": acc, "seconds": sec}
    return r if seed is None else {**r, "seed": seed}


# -- the rule -------------------------------------------------------------------

def test_budget_accounting_confirmations_come_last():
    assert not in_confirm_phase(trials=13, trained=10, confirm=2, confirmed=0)
    assert in_confirm_phase(trials=13, trained=11, confirm=2, confirmed=0)
    assert in_confirm_phase(trials=13, trained=12, confirm=2, confirmed=1)
    assert not in_confirm_phase(trials=13, trained=12, confirm=2, confirmed=2)  # spent
    assert not in_confirm_phase(trials=13, trained=11, confirm=0, confirmed=0)


def test_leader_then_runner_up_are_measured_again_until_separated():
    close = [_reading(5, 0.90, 100.0), _reading(20, 0.90, 104.0), _reading(60, 0.90, 300.0)]
    assert next_confirmation(close, EFF) == 5  # same seeds: the leader first
    again = close + [_reading(5, 0.88, 110.0, seed=7)]  # depth 5 fell behind 20, still close
    assert next_confirmation(again, EFF) == 20  # the new leader has fewer seeds
    assert next_confirmation(close + [_reading(5, 0.92, 102.0, seed=7)], EFF) == 20  # the runner-up
    far = [_reading(5, 0.90, 100.0), _reading(60, 0.50, 300.0)]
    assert next_confirmation(far, EFF) is None  # separated: nothing to confirm
    assert next_confirmation([_reading(5, 0.9, 100.0)], EFF) is None
    assert next_confirmation([], EFF) is None


# -- the oracle (no training) -----------------------------------------------------

def _study():
    # Seeded: the oracle asks the study's own sampler, and an unseeded one may suggest a
    # measured depth again now and then (a second, free answer).
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))


def _measure(study, depth, acc, sec, **attrs):
    study.add_trial(optuna.trial.create_trial(
        params=SPACE.params_for(depth), distributions=SPACE.distributions(), value=acc / sec,
        user_attrs={"depth": depth, "val_accuracy": acc, "fit_seconds": sec,
                    "protocol_seconds": sec, **attrs}))


def _oracle(study, total, confirm):
    strategy = make_strategy(StrategySpec("tpe", confirm=confirm),
                             Setup(space=SPACE, trials=total, objective=EFF))
    return OptunaOracle(Search(study=study, space=SPACE, strategy=strategy, signatures=SIG, trials=total,
                               objective=EFF, base_seed=0), reporter=Reporter(quiet=True))


def _finish(oracle, tid, acc, sec):
    """What a trained trial leaves: its metrics on the trial, its value told."""
    ot = oracle.optuna_trials.pop(tid)
    oracle._heartbeats.pop(tid).stop()
    for k, v in {"val_accuracy": acc, "fit_seconds": sec, "protocol_seconds": sec}.items():
        ot.set_user_attr(k, v)
    oracle.study.tell(ot, acc / sec)
    return ot.number


def test_oracle_confirms_with_a_new_seed_per_trial_and_counts_the_budget():
    study = _study()
    _measure(study, 5, 0.90, 100.0)
    _measure(study, 20, 0.90, 104.0)
    oracle = _oracle(study, total=4, confirm=2)
    r = oracle.populate_space("t0")
    assert r["status"] == "RUNNING" and r["values"]["depth"] == 5  # the leader, again
    first = _finish(oracle, "t0", 0.88, 110.0)
    r = oracle.populate_space("t1")
    assert r["status"] == "RUNNING" and r["values"]["depth"] == 20  # now read under fewer seeds
    second = _finish(oracle, "t1", 0.91, 104.0)
    assert oracle.populate_space("t2")["status"] == "STOPPED"  # 4 trials: the total
    trials = study.trials
    confirms = [t for t in trials if t.user_attrs.get(CONFIRM_ATTR)]
    assert [t.number for t in confirms] == [first, second]
    assert [t.user_attrs["seed"] for t in confirms] == [first, second]  # base seed 0 + number
    assert all(t.state == TrialState.COMPLETE for t in trials)  # every reading stays stored
    assert [t.value for t in confirms] == [0.88 / 110.0, 0.91 / 104.0]  # each its own reading


def test_no_confirmation_when_the_leader_is_separated():
    study = _study()
    _measure(study, 5, 0.90, 100.0)
    _measure(study, 60, 0.50, 300.0)
    oracle = _oracle(study, total=4, confirm=2)
    r = oracle.populate_space("t0")
    try:
        assert r["status"] == "RUNNING"
        ot = oracle.optuna_trials["t0"]
        assert CONFIRM_ATTR not in ot.user_attrs and "seed" not in ot.user_attrs  # the sampler's
    finally:
        oracle.abandon_running("test over")


def test_a_resumed_oracle_counts_confirmations_from_the_study():
    study = _study()
    _measure(study, 5, 0.90, 100.0)
    _measure(study, 20, 0.90, 104.0)
    _measure(study, 5, 0.90, 101.0, confirm=True, seed=2, measure_again=True)
    oracle = _oracle(study, total=5, confirm=1)  # a new run of the same study: the one is spent
    assert oracle.populate_space("t0")["status"] == "RUNNING"
    try:
        assert CONFIRM_ATTR not in oracle.optuna_trials["t0"].user_attrs
    finally:
        oracle.abandon_running("test over")


def test_a_depth_suggested_again_is_told_its_pooled_value():
    study = _study()
    _measure(study, 5, 0.90, 100.0)
    _measure(study, 5, 0.80, 100.0, confirm=True, seed=1, measure_again=True)
    _measure(study, 60, 0.50, 300.0)
    study.enqueue_trial(SPACE.params_for(5))  # as if the sampler suggested depth 5 again
    oracle = _oracle(study, total=4, confirm=0)
    oracle.populate_space("t0")
    try:
        reused = [t for t in study.trials if "reused_from" in t.user_attrs]
        assert len(reused) == 1 and reused[0].value == pytest.approx(0.85 / 100.0)
    finally:
        oracle.abandon_running("test over")


@pytest.mark.parametrize("name", ["pareto", "cheapest-within:0.01", "accuracy"])
def test_confirmations_for_every_objective(name):
    objective = get_objective(name)
    study = optuna.create_study(directions=list(objective.study_directions))
    for depth, acc, sec in [(5, 0.90, 100.0), (20, 0.905, 104.0), (5, 0.89, 115.0)]:
        attrs = {"val_accuracy": acc, "fit_seconds": sec, "protocol_seconds": sec, "depth": depth}
        study.add_trial(optuna.trial.create_trial(
            params=SPACE.params_for(depth), distributions=SPACE.distributions(),
            values=objective.told(attrs["val_accuracy"], objective.seconds(attrs)) if objective.is_multi else [objective(attrs)],
            user_attrs=attrs))
    strategy = make_strategy(StrategySpec("tpe", confirm=1),
                             Setup(space=SPACE, trials=4, objective=objective))
    oracle = OptunaOracle(Search(study=study, space=SPACE, strategy=strategy, signatures=SIG, trials=4,
                                 objective=objective), reporter=Reporter(quiet=True))
    r = oracle.populate_space("t0")
    try:
        assert r["status"] == "RUNNING" and r["values"]["depth"] in (5, 20)
        assert oracle.optuna_trials["t0"].user_attrs[CONFIRM_ATTR]
    finally:
        oracle.abandon_running("test over")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_confirmation_is_queued_again_and_gets_a_new_seed():
    study = _study()
    _measure(study, 5, 0.90, 100.0)
    _measure(study, 20, 0.90, 104.0)
    oracle = _oracle(study, total=3, confirm=1)
    oracle.populate_space("t0")
    killed = oracle.optuna_trials.pop("t0")
    oracle._heartbeats.pop("t0").stop()
    killed.set_user_attr("worker_pid", _dead_pid())  # as if its worker was SIGKILLed
    assert recover_stale_trials(study, SPACE) == [killed.number]
    resumed = _oracle(study, total=3, confirm=1)
    r = resumed.populate_space("t0")
    assert r["status"] == "RUNNING" and r["values"]["depth"] == 5
    ot = resumed.optuna_trials["t0"]
    assert ot.user_attrs[CONFIRM_ATTR] and ot.user_attrs["retry_of"] == killed.number
    assert ot.user_attrs["seed"] == ot.number != killed.user_attrs.get("seed", killed.number)
    _finish(resumed, "t0", 0.9, 100.0)
    assert resumed.populate_space("t1")["status"] == "STOPPED"  # 3 measured: done
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 3


# -- the replay -------------------------------------------------------------------

@pytest.fixture(scope="module")
def land52():
    return from_thesis("5.2").interpolated(low=0, high=154)


def test_replay_with_confirmations_is_deterministic_and_keeps_the_budget(land52):
    spec = parse_strategies("tpe+confirm3")[0]
    assert spec.label == "tpe:log+confirm3" and spec.confirm == 3
    runs = [replay(landscape=land52, strategy=spec, seed=s, trials=13) for s in range(6)]
    again = replay(landscape=land52, strategy=spec, seed=4, trials=13)
    pd.testing.assert_frame_equal(runs[4], again)
    for run in runs:
        assert len(run) == 13 and run["confirmation"].sum() <= 3
        assert not run["confirmation"].iloc[:10].any()  # confirmations only in the last 3
    confirmed = [r for run in runs for _, r in run[run["confirmation"]].iterrows()]
    assert confirmed, "some seed should have confirmed its leader"
    for r in confirmed:  # a repeat draws new noise: not the first reading again
        run = runs[int(r["seed"])]
        first = run[(run["depth"] == r["depth"]) & ~run["confirmation"]].iloc[0]
        assert r["seconds"] != first["seconds"]


def test_repeats_that_agree_do_not_prove_the_noise_away(land52):
    spec = parse_strategies("tpe+confirm3")[0]
    run = replay(landscape=land52, strategy=spec, seed=1, trials=13, noise_scale=0)
    # without noise every repeat agrees exactly; the default noise still weighs as
    # PRIOR_DF degrees of freedom, so the close rivals stay unseparated and all
    # three confirmations re-measure depths already measured
    assert len(run) == 13 and run["confirmation"].tolist() == [False] * 10 + [True] * 3
    assert run["depth"].iloc[10:].isin(run["depth"].iloc[:10]).all()


def test_compare_reports_within_noise_and_confirmations():
    specs = parse_strategies("tpe,tpe+confirm2")
    table = compare(landscape=from_thesis("5.1"), strategies=specs, seeds=3, trials=13).table
    assert table["strategy"].tolist() == ["tpe:log", "tpe:log+confirm2"]
    assert table["confirmations"].tolist()[0] == 0
    assert table["p_within_noise"].between(0, 1).all()


def test_bad_confirm_in_a_strategy_name():
    with pytest.raises(UsageError, match="whole number"):
        parse_strategies("tpe+confirmx")


# -- the command line ---------------------------------------------------------------

COMMON = ["--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16", *FAST,
          "--in-process", "--quiet"]


@pytest.mark.parametrize("value, message", [
    ("-1", "must not be negative"), ("two", "not a whole number"),
    ("13", "--confirm 13 leaves no trial to explore of --trials 13"),
])
def test_bad_confirm_is_one_line_and_exit_2(tmp_path, capsys, value, message):
    from tuner.cli.main import main

    args = ["search", *COMMON, "--storage", f"sqlite:///{tmp_path}/x.db", "--trials", "13",
            "--confirm", value]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own check of the value
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and message in errors[0], err
    assert "--confirm" in errors[0] and "Traceback" not in err
    assert not os.path.exists(tmp_path / "x.db")  # nothing touched


def test_tiny_search_confirms_with_its_own_seed_and_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path}/c.db"
    args = ["search", *COMMON, "--max-depth", "8", "--study", "c", "--storage", storage,
            "--confirm", "1"]
    done = run_cli([*args, "--trials", "3"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_cli([*args, "--trials", "4"], cwd=tmp_path)  # resumed and extended
    assert done.returncode == 0, done.stderr[-3000:]
    trials = optuna.load_study(study_name="c", storage=storage).trials
    measured = [t for t in trials if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs]
    assert len(measured) == 4
    for t in measured:
        if t.user_attrs.get(CONFIRM_ATTR):
            assert t.user_attrs["seed"] == t.number  # study seed 0 + the trial's number
            twin = [u for u in measured if u.user_attrs["depth"] == t.user_attrs["depth"]
                    and not u.user_attrs.get(CONFIRM_ATTR)]
            assert twin and twin[0].user_attrs["losses"] != t.user_attrs["losses"]  # trained with it
    # two depths of a tiny model read once are within the default noise: the third trial
    # confirms one; the resumed run has no confirmation left (one in all)
    assert sum(bool(t.user_attrs.get(CONFIRM_ATTR)) for t in measured) == 1
