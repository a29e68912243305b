"""A search killed at any moment (SIGKILL included) completes when rerun."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
from conftest import FAST, run_cli
from optuna.trial import TrialState


def _study(storage):
    return optuna.load_study(study_name="killed", storage=storage)


def _wait_for_running_trial(storage, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        try:
            running = [t for t in _study(storage).get_trials(states=(TrialState.RUNNING,))
                       if "worker_pid" in t.user_attrs]
        except KeyError:  # study not created yet
            running = []
        if running:
            return running[0]
        time.sleep(0.3)
    raise AssertionError("the search never started a trial")


def _search_args(storage, trials):
    # From depth 10 on: a sampler trains the range's shallowest depth first, and a cached
    # depth 0 (the head phase again) ends before a kill a second or two in could land.
    return ["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16",
            *FAST, "--min-depth", "10", "--study", "killed", "--storage", storage,
            "--trials", str(trials), "--quiet"]


def _start(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "tuner.cli.main", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_trial_then_rerun_completes(tmp_path):
    storage = f"sqlite:///{tmp_path}/killed.db"
    proc = _start(_search_args(storage, 2), tmp_path)
    victim = _wait_for_running_trial(storage, proc)
    time.sleep(2.0)  # inside the build / first epoch of the trial
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    study = _study(storage)
    assert study.trials[victim.number].state == TrialState.RUNNING  # what SIGKILL leaves
    killed_depth = victim.user_attrs["depth"]

    done = run_cli(_search_args(storage, 2), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = _study(storage).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = trials[victim.number]
    assert dead.state == TrialState.FAIL and "stopped mid-trial" in dead.user_attrs["fail_reason"]
    measured = [t for t in trials if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs]
    assert len(measured) == 2
    retrained = [t for t in measured if t.user_attrs.get("retry_of") == victim.number]
    assert len(retrained) == 1 and retrained[0].user_attrs["depth"] == killed_depth


def test_ctrl_c_marks_the_trial_and_the_rerun_finishes(tmp_path):
    storage = f"sqlite:///{tmp_path}/killed.db"
    proc = _start(_search_args(storage, 1), tmp_path)
    victim = _wait_for_running_trial(storage, proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    dead = _study(storage).trials[victim.number]
    assert dead.state == TrialState.FAIL and "interrupted" in dead.user_attrs["fail_reason"]

    done = run_cli(_search_args(storage, 1), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    measured = [t for t in _study(storage).trials if t.state == TrialState.COMPLETE]
    assert [t.user_attrs["retry_of"] for t in measured] == [victim.number]
