"""The oracle's decisions, without training: Optuna's study is driven directly."""

from __future__ import annotations

import importlib.util
import os
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from tuner.model.signatures import depth_signatures
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.search.oracle import Heartbeat, OptunaOracle
from tuner.store.trials import enqueue, recover_stale_trials, was_queued
from tuner.stored_keys import QUEUED as QUEUED_ATTR
from tuner.strategies.decision import MAX_REPEATS
from tuner.strategies.registry import STRATEGIES, Setup, Strategy, make_strategy
from tuner.strategies.rounds import Search, give_way

SIG = depth_signatures("MobileNetV2")


def _oracle(study, space, total):
    search = Search(study=study, space=space, strategy=Strategy(Setup(space=space)), signatures=SIG,
                    trials=total)
    return OptunaOracle(search, reporter=Reporter(quiet=True))


SAMPLERS = [name for name, cls in STRATEGIES.items() if not cls.chooses_depths]


def make_sampler(name, *, space, seed):
    return make_strategy(name, Setup(space=space, seed=seed)).sampler()


def _measure(study, space, depth, value, **attrs):
    study.add_trial(optuna.trial.create_trial(
        params=space.params_for(depth), distributions=space.distributions(), value=value,
        user_attrs={"depth": depth, **attrs}))


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("scale", ["linear", "log"])
def test_every_sampler_stays_in_range_and_repeats_with_a_seed(name, scale):
    if name == "gp" and importlib.util.find_spec("torch") is None:
        pytest.skip("the gp sampler needs torch (pip install 'depth-tuner[gp]')")
    space = DepthSpace(0, 154, scale)

    def run():
        study = optuna.create_study(direction="maximize", sampler=make_sampler(name, space=space, seed=3))
        depths = []
        for _ in range(7):
            t = study.ask(space.distributions())
            d = space.depth_of(t.params)
            depths.append(d)
            study.tell(t, 1.0 / (1 + abs(d - 12)))
        return depths

    first = run()
    assert all(0 <= d <= 154 for d in first)
    assert first == run()


def test_log_scale_reaches_both_ends():
    space = DepthSpace(0, 154, "log")
    assert space.depth_of(space.params_for(0)) == 0
    assert space.depth_of(space.params_for(154)) == 154
    d = space.distributions()["depth_plus_one"]
    assert (d.low, d.high, d.log) == (1, 155, True)


def test_equivalent_depth_is_answered_from_the_study_not_trained():
    space = DepthSpace(0, 154, "linear")
    study = optuna.create_study(direction="maximize")
    _measure(study, space, 0, 0.5)
    study.enqueue_trial({"depth": 1})  # depth 1 (a ReLU) trains the same weights as 0
    oracle = _oracle(study, space, total=2)
    response = oracle.populate_space("t0")
    try:
        reused = study.trials[1]
        assert reused.state == TrialState.COMPLETE and reused.user_attrs["reused_from"] == 0
        assert reused.value == 0.5
        assert response["status"] == "RUNNING" and SIG[response["values"]["depth"]] != SIG[0]
    finally:
        oracle.abandon_running("test over")


def test_repeated_suggestions_queue_the_nearest_unmeasured_depth():
    space = DepthSpace(0, 154, "linear")
    study = optuna.create_study(direction="maximize")
    _measure(study, space, 10, 0.9)
    for _ in range(MAX_REPEATS):
        study.enqueue_trial({"depth": 10})
    oracle = _oracle(study, space, total=2)
    response = oracle.populate_space("t0")
    try:
        assert response["status"] == "RUNNING"
        chosen = response["values"]["depth"]
        assert abs(chosen - 10) <= 2 and SIG[chosen] != SIG[10]
        assert study.trials[-1].user_attrs.get("chosen_by") == "nearest-unmeasured"
    finally:
        oracle.abandon_running("test over")


def test_stops_at_the_requested_total():
    space = DepthSpace(0, 154)
    study = optuna.create_study(direction="maximize")
    for d, v in [(3, 0.1), (20, 0.2)]:
        _measure(study, space, d, v)
    assert _oracle(study, space, total=2).populate_space("t0")["status"] == "STOPPED"


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_dead_workers_trial_is_failed_and_its_depth_queued_once():
    space = DepthSpace(0, 154)
    study = optuna.create_study(direction="maximize")
    t = study.ask(space.distributions())
    for k, v in {"depth": 42, "worker_host": os.uname().nodename, "worker_pid": _dead_pid()}.items():
        t.set_user_attr(k, v)
    assert recover_stale_trials(study, space) == [t.number]
    assert recover_stale_trials(study, space) == []  # nothing left to recover
    dead = study.trials[t.number]
    assert dead.state == TrialState.FAIL and "stopped mid-trial" in dead.user_attrs["fail_reason"]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and space.depth_of(waiting[0].system_attrs["fixed_params"]) == 42
    assert waiting[0].user_attrs["retry_of"] == t.number


def test_queued_trials_are_marked_and_old_ones_still_go_back_to_the_queue():
    """Queued trials carry our own mark (not Optuna's internal system attribute);
    those queued by older versions (no mark) are still recognised."""
    space = DepthSpace(0, 154)
    study = optuna.create_study(direction="maximize")
    oracle = _oracle(study, space, total=10)
    enqueue(study, space, 30, {"chosen_by": "sweep"})
    study.enqueue_trial(space.params_for(40), user_attrs={"chosen_by": "narrowing"})  # as before the mark
    new, old, sampled = (study.ask(space.distributions()) for _ in range(3))
    assert new.user_attrs[QUEUED_ATTR] is True and QUEUED_ATTR not in old.user_attrs
    assert was_queued(new) and was_queued(old) and not was_queued(sampled)
    for ot in (new, old, sampled):
        give_way(oracle.search, ot, "test", again_later=True)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(space.depth_of(study.ask(space.distributions()).params) for _ in waiting) == [30, 40]
    assert all(t.user_attrs[QUEUED_ATTR] for t in waiting)


def test_heartbeat_writes_through_the_trial_and_ends_with_it():
    import time

    study = optuna.create_study(direction="maximize")
    ot = study.ask()
    beat = Heartbeat(ot, every=0.02)
    deadline = time.time() + 5
    while "heartbeat" not in study.trials[ot.number].user_attrs and time.time() < deadline:
        time.sleep(0.02)
    assert "heartbeat" in study.trials[ot.number].user_attrs
    study.tell(ot, 1.0)
    beat._thread.join(timeout=5)  # a finished trial refuses the write: the thread ends by itself
    assert not beat._thread.is_alive()
    beat.stop()


def test_a_live_workers_trial_is_left_alone_and_counted_in_flight():
    space = DepthSpace(0, 154)
    study = optuna.create_study(direction="maximize")
    _measure(study, space, 5, 0.3)
    t = study.ask(space.distributions())
    for k, v in {"depth": 60, "worker_host": os.uname().nodename, "worker_pid": os.getppid()}.items():
        t.set_user_attr(k, v)
    assert recover_stale_trials(study, space) == []
    oracle = _oracle(study, space, total=2)
    import tuner.search.oracle as oracle_module

    oracle_module.IDLE_POLL_SECONDS, saved = 0.0, oracle_module.IDLE_POLL_SECONDS
    try:
        assert oracle.populate_space("t0")["status"] == "IDLE"  # the last trial runs elsewhere
    finally:
        oracle_module.IDLE_POLL_SECONDS = saved


def test_dashboard_shows_the_plain_depth_and_old_studies_resume():
    # A log-scale study as older versions stored it: only depth_plus_one.
    space = DepthSpace(0, 154, "log")
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", space=space, seed=0))
    for depth in (0, 11, 29, 60):
        _measure(study, space, depth, 1.0 / (1 + abs(depth - 11)))
    assert "depth" not in study.trials[0].params
    oracle = _oracle(study, space, total=5)
    response = oracle.populate_space("t0")
    try:
        new = study.trials[-1]
        depth = response["values"]["depth"]
        # What optuna-dashboard plots (parameters) and lists (user attributes) is the depth itself.
        assert new.params["depth"] == new.user_attrs["depth"] == depth
        assert new.params["depth_plus_one"] == depth + 1  # what the sampler sees, as before
        assert study.trials_dataframe()["params_depth"].iloc[-1] == depth
    finally:
        oracle.abandon_running("test over")


def test_a_trial_asked_an_instant_earlier_elsewhere_is_waited_for_not_missed():
    """Optuna stores an asked trial as RUNNING before its sampler sets the depth: the later
    asker must see that trial's depth (and give way to it), not train the same weights."""
    import threading

    space = DepthSpace(0, 154)
    study = optuna.create_study(direction="maximize")
    other = study.ask()  # another worker's trial, its depth not sampled yet
    later = study.ask(space.distributions())
    oracle = _oracle(study, space, total=4)
    assert other.number not in [t.number for t in oracle.running()]  # no depth: not seen in flight

    timer = threading.Timer(0.3, lambda: other.suggest_int("depth", space.low, space.high))
    timer.start()
    ahead = oracle.ahead_of(later.number)
    timer.join()
    assert [t.number for t in ahead] == [other.number] and "depth" in ahead[0].params
