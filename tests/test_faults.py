"""Faults inside a search: a failed trial is recorded and the search goes on."""

from __future__ import annotations

import os

import keras
import optuna
import pytest
from optuna.trial import TrialState

from tuner import SearchStopped
from tuner.data.sources import resolve_data_spec
from tuner.model.hypermodel import DepthHyperModel
from tuner.model.protocol import TrainingProtocol
from tuner.progress import Reporter
from tuner.search.config import SearchConfig
from tuner.search.one_pass import run_search


def _search(tmp_path, trials, in_process=True, trial_mode="plain", **kwargs):
    """In this process and plain by default, so that the tests can inject faults into ``fit``."""
    config = SearchConfig(
        data=resolve_data_spec(dataset="tf_flowers", fake=True, fake_examples=(32, 16)),
        protocol=TrainingProtocol(weights=None, image_size=32, head_epochs=1, finetune_epochs=1,
                                  batch_size=16),
        trial_mode=trial_mode,
    )
    storage = f"sqlite:///{tmp_path}/faults.db"
    outcome = run_search(config=config, study_name="faults", storage=storage, trials=trials,
                         reporter=Reporter(quiet=True), in_process=in_process, **kwargs)
    return outcome, optuna.load_study(study_name="faults", storage=storage)


def _states(study):
    return [t.state for t in study.trials if "reused_from" not in t.user_attrs]


def _fail_first_fits(monkeypatch, n, exc=RuntimeError("simulated crash in the trial")):
    original = DepthHyperModel.run_protocol
    calls = {"n": 0}

    def run_protocol(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= n:
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DepthHyperModel, "run_protocol", run_protocol)


def test_exception_in_a_trial_is_recorded_and_the_search_goes_on(tmp_path, monkeypatch):
    _fail_first_fits(monkeypatch, 1)
    outcome, study = _search(tmp_path, 2)
    assert outcome.measured == 2
    assert _states(study) == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    failed = study.trials[0]
    assert failed.user_attrs["fail_reason"] == "RuntimeError: simulated crash in the trial"
    assert "Traceback" in failed.user_attrs["fail_traceback"]


def test_nan_loss_fails_the_trial_with_its_reason(tmp_path, monkeypatch):
    from tuner.model import hypermodel

    original = hypermodel.compile_for
    calls = {"n": 0}

    def compile_(model, num_classes, lr, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # phase 2 of the first trial: a loss that is NaN
            base = keras.losses.SparseCategoricalCrossentropy()
            model.compile(optimizer=keras.optimizers.Adam(lr),
                          loss=lambda y, p: base(y, p) * float("nan"), metrics=["accuracy"])
            return
        original(model, num_classes, lr, **kwargs)

    monkeypatch.setattr(hypermodel, "compile_for", compile_)
    outcome, study = _search(tmp_path, 1)
    assert outcome.measured == 1
    failed = study.trials[0]
    assert failed.state == TrialState.FAIL
    assert "loss became NaN in phase 2" in failed.user_attrs["fail_reason"]


def test_consecutive_failures_stop_the_search_cleanly(tmp_path, monkeypatch):
    _fail_first_fits(monkeypatch, 100)
    with pytest.raises(SearchStopped, match="after 2 failed trials in a row"):
        _search(tmp_path, 3, max_consecutive_failures=2)
    study = optuna.load_study(study_name="faults", storage=f"sqlite:///{tmp_path}/faults.db")
    assert _states(study) == [TrialState.FAIL, TrialState.FAIL]


def test_zero_means_never_stop_on_failures(tmp_path, monkeypatch):
    _fail_first_fits(monkeypatch, 3)
    outcome, study = _search(tmp_path, 1, max_consecutive_failures=0)
    assert outcome.measured == 1 and _states(study)[-1] == TrialState.COMPLETE
    assert _states(study).count(TrialState.FAIL) == 3


def test_full_disk_for_keras_tuner_files_does_not_lose_results(tmp_path, monkeypatch):
    from keras_tuner.src import utils as kt_utils

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kt_utils, "save_json", no_space)
    outcome, study = _search(tmp_path, 1)
    assert outcome.measured == 1 and _states(study) == [TrialState.COMPLETE]


def test_checkpoints_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _search(tmp_path, 1)
    assert sorted(os.listdir(tmp_path)) == ["faults.db"]
    keep = tmp_path / "ckpt"
    _, study = _search(tmp_path, 2, checkpoint_dir=str(keep))
    new = [t.number for t in study.trials
           if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs][1]
    assert os.listdir(keep) == [f"trial_{new}.weights.h5"]


def test_a_trial_process_that_dies_is_recorded(tmp_path, monkeypatch):
    import sys

    from tuner.trials import process as trial_process

    # It says where it trains (the search's first request), then dies on the trial.
    device = {"device": "CPU: test", "gpus": 0, "line": "training on the CPU", "software": "-"}
    crash = ("import json, os, signal, sys; sys.stdin.readline(); "
             f"print(json.dumps({{'event': 'result', 'device': {device!r}}}), flush=True); "
             "sys.stdin.readline(); os.kill(os.getpid(), signal.SIGKILL)")
    monkeypatch.setattr(trial_process, "CHILD_COMMAND", [sys.executable, "-c", crash])
    with pytest.raises(SearchStopped):
        _search(tmp_path, 1, in_process=False, max_consecutive_failures=1)
    study = optuna.load_study(study_name="faults", storage=f"sqlite:///{tmp_path}/faults.db")
    [failed] = study.trials
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith("the trial process died (signal SIGKILL)")


def test_a_trial_process_that_cannot_start_stops_the_search_and_leaves_no_study(tmp_path, monkeypatch):
    import sys

    from tuner.trials import process as trial_process

    monkeypatch.setattr(trial_process, "CHILD_COMMAND", [sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(SearchStopped, match="the trial process could not start .*exit code 3"):
        _search(tmp_path, 1, in_process=False)
    with pytest.raises(KeyError):  # nothing was measured: the new study is taken back
        optuna.load_study(study_name="faults", storage=f"sqlite:///{tmp_path}/faults.db")


def test_checkpoints_from_trial_processes(tmp_path):
    keep = tmp_path / "ckpt"
    _, study = _search(tmp_path, 1, in_process=False, checkpoint_dir=str(keep), trial_mode="cached")
    [done] = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert os.listdir(keep) == [f"trial_{done.number}.weights.h5"]
    assert done.user_attrs["process_peak_rss_mib"] > 0
