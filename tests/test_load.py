"""How busy other work kept the machine during a trial: measured, stored, and said by show."""

from __future__ import annotations

import io

import optuna
import pytest

from tuner import load
from tuner.cli.show import print_study
from tuner.model.space import DepthSpace


def test_the_meter_counts_other_work_and_not_the_trials_own(monkeypatch):
    clock = {"t": 100.0, "busy": 1_000, "own": {1: 50, 2: 10}}
    monkeypatch.setattr(load.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(load, "_machine_busy_ticks", lambda: clock["busy"])
    monkeypatch.setattr(load, "_own_tree", lambda: sorted(clock["own"]))
    monkeypatch.setattr(load, "_process_ticks", lambda pid: clock["own"].get(pid, 0))
    monkeypatch.setattr(load.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(load.os, "cpu_count", lambda: 2)
    meter = load.LoadMeter().start()
    # 10 s: the machine was busy for 1,700 ticks (17 core-seconds); the trial (pid 2) used 1,500 ticks,
    # the worker (pid 1) 50: 150 ticks of other work, 0.15 cores on average.
    clock.update(t=110.0, busy=2_700, own={1: 100, 2: 1_510})
    assert meter.read() == {"other_load": pytest.approx(0.15), "cores": 2}


@pytest.mark.parametrize("attrs, busy", [
    ({"other_load": 0.9, "cores": 2}, True),
    ({"other_load": 0.4, "cores": 2}, False),
    ({"other_load": 1.5, "cores": 8}, False),
    ({}, False),  # studies from before the meter
])
def test_a_reading_is_busy_past_a_quarter_of_the_cores(attrs, busy):
    assert load.is_busy(attrs) == busy


def test_show_says_which_readings_trained_on_a_busy_machine(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.set_user_attr("config", {"space": {"low": 0, "high": 154, "scale": "log"},
                                   "objective": "efficiency", "sampler": "tpe"})
    dists = DepthSpace(0, 154, "log").distributions()
    for depth, other in ((5, 0.1), (11, 1.2), (29, 0.0)):
        attrs = {"depth": depth, "val_accuracy": 0.9, "fit_seconds": 50.0, "protocol_seconds": 50.0,
                 "other_load": other, "cores": 2}
        study.add_trial(optuna.trial.create_trial(params={"depth_plus_one": depth + 1}, distributions=dists,
                                                  values=[0.9 / 50], user_attrs=attrs))
    out = io.StringIO()
    print_study(study="s", storage=storage, out=out)
    lines = [line for line in out.getvalue().splitlines() if "other work" in line]
    assert lines == ["note: 1 of 3 readings trained while other work kept 1.2-1.2 of 2 cores busy "
                     "(depth 11): their seconds run high; measure them again on a quiet machine "
                     "(search --confirm repeats)"]
