"""The API names the answer ``show`` names: pooled per depth with its noise, not the top trial."""

from __future__ import annotations

import json

import optuna
import pytest
from conftest import run_cli

import tuner
from tuner import stored_keys as keys
from tuner.model.space import DepthSpace


def _metrics(depth: int, acc: float, sec: float) -> dict:
    return {"depth": depth, "val_accuracy": acc, "val_loss": 0.3, "fit_seconds": sec, "protocol_seconds": sec,
            "phase_seconds": [sec / 2, sec / 2], "epoch_seconds": [sec / 2, sec / 2],
            "first_epoch_seconds": sec / 2, "steady_seconds": sec, "trainable_params": 1000 + depth,
            "trained_layers_with_weights": depth // 3, "host": "test"}


def _store(tmp_path, objective: str, readings, value) -> str:
    """A study as ``search`` stores it, without training: (depth, accuracy, seconds) per trial."""
    storage = f"sqlite:///{tmp_path / 'answer.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.set_user_attr(keys.CONFIG, json.dumps({"space": {"low": 0, "high": 154, "scale": "log"},
                                                 "objective": objective, keys.CONFIG_STRATEGY: "tpe"}))
    dists = DepthSpace(0, 154, "log").distributions()
    for depth, acc, sec in readings:
        study.add_trial(optuna.trial.create_trial(
            params={"depth_plus_one": depth + 1}, distributions=dists, value=value(acc, sec),
            user_attrs=_metrics(depth, acc, sec)))
    return storage


@pytest.mark.parametrize("objective, readings, value, answer, top_trial", [
    # Depth 10's best reading is the top trial, but its two readings pool to 0.07 < depth 20's 0.075.
    ("efficiency", [(10, 0.80, 10.0), (10, 0.60, 10.0), (20, 0.75, 10.0)], lambda a, s: a / s, 20, 10),
    # The stored value is the accuracy: the top trial is the most accurate, the answer the cheapest
    # depth within 0.05 of it.
    ("cheapest-within:0.05", [(5, 0.78, 5.0), (50, 0.80, 50.0)], lambda a, s: a, 5, 50),
], ids=["repeats", "cheapest-within"])
def test_the_api_names_shows_answer_not_the_top_trial(tmp_path, objective, readings, value, answer, top_trial):
    storage = _store(tmp_path, objective, readings, value)
    search = tuner.DepthSearch(dataset="tf_flowers", study="s", storage=storage)
    shown = run_cli(["show", "--study", "s", "--storage", storage, "--format", "json"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    shown = json.loads(shown.stdout)
    assert search.best_depth == shown["best_depth"] == answer
    assert search.best_value == pytest.approx(shown["best_value"])
    assert list(search.interval) == pytest.approx(shown["best_interval"])
    assert search.within_noise == shown["within_noise"]
    assert int(search.best_trial()["depth"]) == top_trial  # the raw maximum, under its own name


def test_show_prints_the_accuracy_sd_it_uses_on_a_small_validation_set(tmp_path):
    import math

    storage = _store(tmp_path, "efficiency", [(0, 0.6, 10.0), (20, 0.75, 10.0)], lambda a, s: a / s)
    study = optuna.load_study(study_name="s", storage=storage)
    study.set_user_attr(keys.EXAMPLES, {"train": 60, "validation": 15})
    p = (0.75 * 15 + 0.5) / 16  # the binomial floor at the best depth's accuracy, as noise.py counts it
    floor = math.sqrt(p * (1 - p) / 15)
    table = run_cli(["show", "--study", "s", "--storage", storage], cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert f"accuracy sd {floor:.3f} (the binomial sd of 15 validation images at 0.750" in table.stdout
    noise = json.loads(run_cli(["show", "--study", "s", "--storage", storage, "--format", "json"],
                               cwd=tmp_path).stdout)["noise"]
    assert noise["accuracy_sd"] == pytest.approx(floor) and noise["accuracy_sd"] > 0.1
    assert "binomial" in noise["accuracy_sd_source"] and noise["study_accuracy_sd"] == 0.015


def test_before_any_study_nothing_is_best(tmp_path):
    search = tuner.DepthSearch(dataset="tf_flowers", storage=f"sqlite:///{tmp_path / 'none.db'}")
    assert (search.answer, search.best_depth, search.best_value, search.interval, search.within_noise,
            search.best_trial()) == (None, None, None, None, [], None)


@pytest.mark.parametrize("objective, names", [
    ("efficiency", ["efficiency"]), ("cheapest-within:0.01", ["val_accuracy"]),
    ("pareto", ["val_accuracy", "protocol_seconds"]),
])
def test_a_study_names_its_metrics_for_optunas_tools(tmp_path, objective, names):
    from tuner.store.study import create_or_load_study

    storage = f"sqlite:///{tmp_path / 'names.db'}"
    config = {"objective": objective, "trial_mode": "cached", "stop_early": True}
    for _ in range(2):  # created, then resumed
        study, _ = create_or_load_study(name="n", storage=storage, config=config,
                                        sampler=optuna.samplers.RandomSampler())
        assert optuna.load_study(study_name="n", storage=storage).metric_names == names
