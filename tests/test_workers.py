"""Several workers on one study: journal file on one machine, PostgreSQL across machines.

The PostgreSQL tests need a server: ``.ci/run`` starts one on loopback and sets
DEPTH_TUNER_TEST_POSTGRES. Elsewhere they are skipped with that reason; in CI
(CI=true) a missing server fails them instead of passing silently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from conftest import FAST
from optuna.trial import TrialState

from tuner.model.metrics import METRIC_FIELDS
from tuner.model.signatures import depth_signatures

SIG = depth_signatures("MobileNetV2")


def _postgres_url() -> str:
    url = os.environ.get("DEPTH_TUNER_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL (DEPTH_TUNER_TEST_POSTGRES from .ci/postgres.sh)")
        pytest.skip("no PostgreSQL server: set DEPTH_TUNER_TEST_POSTGRES=postgresql://... (.ci/run does)")
    return url


@pytest.fixture(params=["journal", "postgresql"])
def storage(request, tmp_path):
    if request.param == "journal":
        return str(tmp_path / "study.log")
    return _postgres_url()


def _args(storage, study, trials):
    # From depth 10 on: a sampler trains the range's shallowest depth first, and a cached
    # depth 0 ends before a kill a second in could land.
    return ["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16", *FAST,
            "--min-depth", "10", "--study", study, "--storage", storage, "--trials", str(trials)]


def _start(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "tuner.cli.main", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _load(storage, study):
    from tuner.store.storage import open_storage

    return optuna.load_study(study_name=study, storage=open_storage(storage))


def _check_finished(storage, study, total):
    trials = _load(storage, study).trials
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    measured = [t for t in trials if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs]
    assert len(measured) == total, [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in trials]
    for t in measured:
        assert set(METRIC_FIELDS) <= set(t.user_attrs)
        assert t.value == pytest.approx(t.user_attrs["val_accuracy"] / t.user_attrs["protocol_seconds"])
    # confirmation repeats (--confirm, on by default) train a measured depth again, each with its own seed
    sigs = [SIG[t.user_attrs["depth"]] for t in measured if not t.user_attrs.get("confirm")]
    assert len(set(sigs)) == len(sigs), "the same weights were trained twice"
    seeds = [t.user_attrs["seed"] for t in measured if t.user_attrs.get("confirm")]
    assert len(set(seeds)) == len(seeds)
    return trials, measured


def test_workers_share_one_study(storage, tmp_path):
    study = f"workers-{uuid.uuid4().hex[:8]}"
    n_workers = 3 if storage.startswith("postgresql") else 2
    procs = [_start(_args(storage, study, 4), tmp_path) for _ in range(n_workers)]
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    _, measured = _check_finished(storage, study, 4)
    hosts_pids = {(t.user_attrs["worker_host"], t.user_attrs["worker_pid"]) for t in measured}
    assert len(hosts_pids) >= 2, "only one worker trained"


def test_killed_worker_is_replaced_by_the_other(storage, tmp_path):
    study = f"killed-{uuid.uuid4().hex[:8]}"
    victim_proc = _start(_args(storage, study, 3), tmp_path)
    deadline, victim = time.time() + 240, None
    while victim is None and time.time() < deadline:
        assert victim_proc.poll() is None
        try:
            running = [t for t in _load(storage, study).get_trials(states=(TrialState.RUNNING,))
                       if t.user_attrs.get("worker_pid") == victim_proc.pid]
            victim = running[0] if running else None
        except KeyError:
            pass
        time.sleep(0.3)
    assert victim is not None
    survivor = _start(_args(storage, study, 3), tmp_path)
    time.sleep(1.0)
    victim_proc.send_signal(signal.SIGKILL)
    victim_proc.wait()
    out, err = survivor.communicate(timeout=900)
    assert survivor.returncode == 0, err[-3000:]
    trials, measured = _check_finished(storage, study, 3)
    assert trials[victim.number].state == TrialState.FAIL
    assert any(t.user_attrs.get("retry_of") == victim.number for t in measured)
