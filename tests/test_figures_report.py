"""Figures and the report command on a small stored study."""

from __future__ import annotations

import argparse

import optuna
import pandas as pd
import pytest

from tuner.analysis.figures import landscape_figures, pareto_front
from tuner.analysis.landscape import from_csv, from_thesis
from tuner.cli import report as report_cli
from tuner.errors import UsageError
from tuner.model.space import DepthSpace

# depth -> list of (val_accuracy, fit_seconds); depth 5 is repeated.
MEASURED = {
    0: [(0.70, 100.0)],
    5: [(0.90, 110.0), (0.92, 130.0)],
    20: [(0.93, 160.0)],
    60: [(0.91, 260.0)],
}


def _metrics(depth: int, acc: float, sec: float) -> dict:
    return {
        "depth": depth, "val_accuracy": acc, "val_loss": 0.3, "fit_seconds": sec,
        "phase_seconds": [sec / 2, sec / 2], "epoch_seconds": [sec / 2, sec / 2],
        "first_epoch_seconds": sec / 2, "steady_seconds": sec, "trainable_params": 1000 + depth,
        "trained_layers_with_weights": depth // 3, "host": "test",
    }


@pytest.fixture
def stored_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'small.db'}"
    study = optuna.create_study(study_name="small", storage=storage, direction="maximize")
    study.set_user_attr("config", {"space": {"low": 0, "high": 154, "scale": "log"},
                                   "objective": "efficiency", "sampler": "tpe"})
    dists = DepthSpace(0, 154, "log").distributions()
    for depth, runs in MEASURED.items():
        for acc, sec in runs:
            study.add_trial(optuna.trial.create_trial(
                params={"depth_plus_one": depth + 1}, distributions=dists, value=acc / sec,
                user_attrs=_metrics(depth, acc, sec),
            ))
    # A reused suggestion: no training, must not count as a repeat.
    study.add_trial(optuna.trial.create_trial(
        params={"depth_plus_one": 1}, distributions=dists, value=0.7 / 100,
        user_attrs={**_metrics(0, 0.70, 100.0), "reused_from": 0},
    ))
    return storage


def _parser():
    p = argparse.ArgumentParser()
    report_cli.add_arguments(p)
    return p


def test_report_writes_table_and_figures(stored_study, tmp_path, capsys):
    out = tmp_path / "report"
    args = _parser().parse_args(["--study", "small", "--storage", stored_study,
                                 "--output", str(out)])
    assert report_cli.run(args) == 0
    text = capsys.readouterr().out
    assert "Best depth 5" in text and "| depth |" in text
    md = (out / "table.md").read_text()
    assert "**5**" in md and "0.910 ± 0.014" in md  # the repeated depth: mean ± sd
    table = pd.read_csv(out / "table.csv")
    assert table["depth"].tolist() == [0, 5, 20, 60]
    assert table.set_index("depth").loc[0, "repeats"] == 1  # the reused trial is not a repeat
    # The CSV the report writes is a landscape again, spread included.
    again = from_csv(out / "table.csv")
    assert again.best_depth == 5 and again.table.loc[5, "repeats"] == 2
    assert again.table.loc[5, "val_accuracy_std"] == pytest.approx(0.01414, rel=1e-3)
    for stem in ("accuracy_vs_depth", "efficiency_vs_depth", "accuracy_time_pareto", "anytime"):
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000


def test_report_bad_study_is_a_usage_error(stored_study, tmp_path):
    with pytest.raises(UsageError, match="no study 'nope'"):
        report_cli.run(_parser().parse_args(["--study", "nope", "--storage", stored_study]))
    with pytest.raises(UsageError, match="no study storage"):
        report_cli.run(_parser().parse_args(
            ["--study", "small", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]))


def test_pareto_front():
    frame = pd.DataFrame({
        "depth": [0, 5, 10, 20, 30],
        "time_s": [100, 120, 110, 200, 150],
        "val_accuracy": [0.80, 0.95, 0.90, 0.97, 0.94],
    })
    assert pareto_front(frame)["depth"].tolist() == [0, 10, 5, 20]


def test_landscape_figures_are_labelled():
    figs = landscape_figures(from_thesis("5.2"))
    for fig in figs.values():
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    assert "(s" in figs["accuracy_time_pareto"].axes[0].get_xlabel()
    assert "/ s" in figs["efficiency_vs_depth"].axes[0].get_ylabel()
    texts = [t.get_text() for t in figs["efficiency_vs_depth"].axes[0].texts]
    assert any("depth 22" in t for t in texts)
