"""Figures and the report command on a small stored study."""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.text import Text

from tuner.analysis import figures
from tuner.analysis.figures import anytime_figure, landscape_figures, pareto_front
from tuner.analysis.landscape import from_csv, from_thesis
from tuner.cli import report as report_cli
from tuner.errors import UsageError
from tuner.model.protocol import RANDOM_WEIGHTS
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


CONFIG = {"space": {"low": 0, "high": 154, "scale": "log"}, "objective": "efficiency",
          "sampler": "tpe"}
FAKE_CONFIG = {**CONFIG, "data": {"source": "fake", "name": "tf_flowers"},
               "protocol": {"weights": RANDOM_WEIGHTS}}


def _store_study(tmp_path, config: dict) -> str:
    """The small study as ``search`` would have stored it, without training; its storage URL."""
    storage = f"sqlite:///{tmp_path / 'small.db'}"
    study = optuna.create_study(study_name="small", storage=storage, direction="maximize")
    study.set_user_attr("config", config)
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


@pytest.fixture
def stored_study(tmp_path):
    return _store_study(tmp_path, CONFIG)


@pytest.fixture
def fake_study(tmp_path):
    return _store_study(tmp_path, FAKE_CONFIG)


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
        assert ax.get_xlabel() and ax.get_ylabel() and (ax.get_legend() or fig.legends)
    assert "(s" in figs["accuracy_time_pareto"].axes[0].get_xlabel()
    assert "/ s" in figs["efficiency_vs_depth"].axes[0].get_ylabel()
    texts = [t.get_text() for t in figs["efficiency_vs_depth"].axes[0].texts]
    assert any("depth 22" in t for t in texts)
    for fig in figs.values():
        plt.close(fig)


def _texts(fig) -> list[str]:
    """Every text drawn on a figure, subfigures included."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _report_figures(storage: str, tmp_path, monkeypatch) -> dict:
    """Run ``report`` and keep its figures (drawn, as saved) instead of only writing them."""
    kept = {}
    real_save = figures.save

    def keep(fig, *, out_dir, stem, formats=("png", "svg")):
        fig.canvas.draw()
        kept[stem] = fig
        return real_save(fig, out_dir=out_dir, stem=stem, formats=("png",))

    monkeypatch.setattr(figures, "save", keep)
    args = _parser().parse_args(["--study", "small", "--storage", storage,
                                 "--output", str(tmp_path / "report")])
    assert report_cli.run(args) == 0
    return kept


def test_fake_study_figures_carry_the_caveat(fake_study, tmp_path, monkeypatch, capsys):
    kept = _report_figures(fake_study, tmp_path, monkeypatch)
    assert set(kept) == {"accuracy_vs_depth", "efficiency_vs_depth", "accuracy_time_pareto",
                         "anytime"}
    for stem, fig in kept.items():
        text = " ".join(" ".join(_texts(fig)).split())  # the footnote is wrapped
        assert "FAKE generated images standing in for tf_flowers" in text, stem
        assert "a demo, not a measurement" in text, stem
    assert "FAKE generated images" in (tmp_path / "report" / "table.md").read_text()


def test_real_study_figures_have_no_caveat(stored_study, tmp_path, monkeypatch, capsys):
    kept = _report_figures(stored_study, tmp_path, monkeypatch)
    for stem, fig in kept.items():
        text = " ".join(_texts(fig))
        assert "FAKE" not in text and "a demo" not in text and "note:" not in text, stem


def test_report_anytime_title_is_not_doubled(stored_study, tmp_path, monkeypatch, capsys):
    fig = _report_figures(stored_study, tmp_path, monkeypatch)["anytime"]
    assert fig.axes[0].get_title() == ""  # the one panel: the figure's title names it
    assert sum("small" in t for t in _texts(fig)) == 1


def _ticks_shown(axis) -> np.ndarray:
    low, high = sorted(axis.get_view_interval())
    ticks = np.asarray(axis.get_ticklocs())
    return ticks[(ticks >= low) & (ticks <= high)]


def test_depth_axes_have_integer_ticks(tmp_path):
    # Four neighbouring depths: matplotlib's default locator would tick 0.5, 1.5, ...
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"depth": [0, 1, 2, 3], "val_accuracy": [0.80, 0.85, 0.86, 0.84],
                  "time_s": [100, 110, 120, 140]}).to_csv(path, index=False)
    for land in (from_csv(path), from_thesis("5.1")):
        figs = landscape_figures(land)
        for stem in ("accuracy_vs_depth", "efficiency_vs_depth"):
            fig = figs[stem]
            fig.canvas.draw()
            ticks = _ticks_shown(fig.axes[0].xaxis)
            assert len(ticks) >= 2 and np.allclose(ticks, np.round(ticks)), (land.name, stem, ticks)
        for fig in figs.values():
            plt.close(fig)


def test_anytime_span_is_not_a_cliff():
    # The best-so-far moves by 1e-5, far inside its 95 % interval (±5e-4).
    curve = pd.DataFrame({"seconds": [100.0, 200.0, 300.0], "median": [0.00700, 0.00701, 0.00701]})
    curve = curve.assign(p05=curve["median"], p95=curve["median"], strategy="best depth so far")
    fig = anytime_figure(curve, best_value=None, title="study:x", noise=5e-4)
    fig.canvas.draw()
    low, high = fig.axes[0].get_ylim()
    assert high - low >= (2 * 5e-4 + 1e-5) * 0.999
    assert low <= 0.00700 - 5e-4 and high >= 0.00701 + 5e-4
    plt.close(fig)
    # Without a noise estimate: still at least MIN_RELATIVE_SPAN of the value.
    fig = anytime_figure(curve, best_value=None, title="study:x")
    fig.canvas.draw()
    low, high = fig.axes[0].get_ylim()
    assert high - low >= figures.MIN_RELATIVE_SPAN * 0.00701 * 0.999
    plt.close(fig)


def test_anytime_span_keeps_a_wide_autoscale():
    curve = pd.DataFrame({"seconds": [100.0, 200.0], "median": [0.002, 0.008]})
    curve = curve.assign(p05=curve["median"], p95=curve["median"], strategy="s")
    fig = anytime_figure(curve, best_value=0.008, title="t", noise=1e-5)
    fig.canvas.draw()
    low, high = fig.axes[0].get_ylim()
    assert low < 0.002 and high > 0.008 and high - low < 0.01  # widened only where needed
    plt.close(fig)


@pytest.mark.parametrize("table", ["5.1", "5.2", "5.3", "5.4"])
def test_pareto_legend_does_not_cover_the_plot(table):
    for note in (None, "note: FAKE generated images standing in for x: a demo"):
        figs = landscape_figures(from_thesis(table), note=note)
        fig = figs["accuracy_time_pareto"]
        fig.canvas.draw()
        ax = fig.axes[0]
        legends = [*fig.legends, *(f for sub in fig.subfigs for f in sub.legends)]
        assert len(legends) == 1
        box = legends[0].get_window_extent()
        assert not box.overlaps(ax.get_window_extent())  # outside the axes: covers no point
        assert not box.overlaps(ax.xaxis.label.get_window_extent())
        for t in fig.findobj(Text):
            if t.get_text().startswith("note:"):
                assert not box.overlaps(t.get_window_extent())
        for f in figs.values():
            plt.close(f)


def test_compare_figures_of_a_fake_study_carry_the_caveat(fake_study, tmp_path, monkeypatch,
                                                          capsys):
    from tuner.cli.main import main

    kept = {}

    def keep(fig, *, out_dir, stem):
        kept[stem] = fig
        return []

    monkeypatch.setattr(figures, "save", keep)
    assert main(["compare", "--landscape", "study:small", "--storage", fake_study, "--seeds", "2",
                 "--workers", "1", "--strategies", "narrowing",
                 "--output", str(tmp_path / "cmp")]) == 0
    assert set(kept) == {"anytime", "efficiency_vs_depth"}
    for stem, fig in kept.items():
        assert "FAKE generated images" in " ".join(" ".join(_texts(fig)).split()), stem
        plt.close(fig)
