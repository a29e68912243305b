"""Landscapes from the thesis tables, CSV files and stored studies."""

from __future__ import annotations

import dataclasses
import importlib.resources
import math

import optuna
import pandas as pd
import pytest

from tuner.analysis.landscape import (
    THESIS_TABLES,
    from_csv,
    from_study,
    from_thesis,
    load_landscape,
)
from tuner.errors import UsageError
from tuner.model.space import DepthSpace


@pytest.mark.parametrize("name, best", [("5.1", 5), ("5.2", 22), ("5.3", 3), ("5.4", 21)])
def test_thesis_tables_ship_as_package_data_and_best_is_computed(name, best):
    land = from_thesis(f"thesis:{name}")
    assert land.name == f"thesis:{name}"
    assert land.thesis is THESIS_TABLES[name]
    # The 13 depths of the hand search: 0,10,30,60,100 / 5..25 / the third stage.
    assert land.depths == sorted({0, 10, 30, 60, 100, 5, 15, 20, 25, *land.thesis.stage3})
    assert (land.table["repeats"] == 1).all()
    assert land.best_depth == best  # 5.3: depth 3, not the 10 of the thesis' Table 5.5
    frame = land.frame()
    assert list(frame.columns[:4]) == ["depth", "val_accuracy", "time_s", "efficiency"]


def test_thesis_efficiency_matches_the_printed_column():
    land = from_thesis("5.3")
    printed = pd.read_csv(
        importlib.resources.files("studies") / "thesis" / THESIS_TABLES["5.3"].file
    )
    assert (land.frame()["efficiency"].round(6) - printed["efficiency"]).abs().max() < 2e-6


def test_unknown_thesis_table_is_a_usage_error():
    with pytest.raises(UsageError, match="thesis:5.1"):
        from_thesis("thesis:9.9")
    with pytest.raises(UsageError, match="unknown landscape"):
        load_landscape("nonsense")


def test_csv_with_repeats_is_averaged_with_spread(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text(
        "depth,val_accuracy,time_s,efficiency\n"
        "0,0.80,100,0\n0,0.90,300,0\n10,0.95,200,0\n"
    )
    land = load_landscape(str(path))
    row = land.table.loc[0]
    assert row["val_accuracy"] == pytest.approx(0.85)
    assert row["seconds"] == pytest.approx(200)
    assert row["seconds_std"] == pytest.approx(math.sqrt(2) * 100)
    assert row["repeats"] == 2
    assert math.isnan(land.table.loc[10, "val_accuracy_std"])
    assert land.best_depth == 10


def test_csv_seconds_column_by_any_of_its_names(tmp_path):
    """The readings call it ``seconds``; CSVs written for earlier releases say ``fit_seconds``,
    the thesis ``time_s``: all three load alike."""
    tables = []
    for column in ("time_s", "fit_seconds", "seconds"):
        path = tmp_path / f"{column}.csv"
        path.write_text(f"depth,val_accuracy,{column}\n0,0.8,100\n3,0.9,120\n3,0.92,140\n")
        tables.append(from_csv(path).table)
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
    assert tables[0].loc[3, "seconds"] == pytest.approx(130)


def test_csv_errors_are_one_line_usage_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("depth,accuracy\n0,0.9\n")
    with pytest.raises(UsageError, match="lacks the column"):
        from_csv(bad)
    with pytest.raises(UsageError, match="does not exist"):
        load_landscape(str(tmp_path / "missing.csv"))
    neg = tmp_path / "neg.csv"
    neg.write_text("depth,val_accuracy,time_s\n0,0.9,0\n")
    with pytest.raises(UsageError, match="non-positive"):
        from_csv(neg)


def test_interpolation_keeps_measured_values_and_the_best_depth():
    for name in THESIS_TABLES:
        land = from_thesis(name)
        full = land.interpolated(low=0, high=154)
        assert full.depths == list(range(155))
        measured = full.table.loc[land.depths]
        pd.testing.assert_series_equal(measured["val_accuracy"], land.table["val_accuracy"])
        assert full.best_depth == land.best_depth
        assert full.measured_depths == land.depths
        assert full.table.loc[154, "seconds"] > full.table.loc[100, "seconds"]
        assert 0 <= full.table["val_accuracy"].min() <= full.table["val_accuracy"].max() <= 1
    # what the answer's noise floor reads (a study's validation size) survives interpolation
    counted = dataclasses.replace(land, val_examples=734).interpolated(low=0, high=154)
    assert counted.val_examples == 734 and counted.objective == land.objective


def _study(tmp_path, rows, *, name="s"):
    space = DepthSpace(0, 154, "log")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr("config", {"space": {"low": 0, "high": 154, "scale": "log"}})
    for depth, acc, sec, extra in rows:
        attrs = {"depth": depth, "val_accuracy": acc, "fit_seconds": sec, **extra}
        if extra.get("no_depth_attr"):
            del attrs["depth"], attrs["no_depth_attr"]
        study.add_trial(
            optuna.trial.create_trial(
                params={"depth_plus_one": depth + 1},
                distributions=space.distributions(),
                value=acc / sec,
                user_attrs=attrs,
            )
        )
    return study, storage


def test_from_study_averages_repeats_skips_reused_and_failed(tmp_path):
    study, storage = _study(
        tmp_path,
        [
            (3, 0.90, 100.0, {}),
            (3, 0.92, 120.0, {}),
            (3, 0.10, 999.0, {"reused_from": 0}),
            (20, 0.95, 200.0, {"no_depth_attr": True}),  # depth from the parameter
        ],
    )
    study.add_trial(
        optuna.trial.create_trial(
            params={"depth_plus_one": 8},
            distributions=DepthSpace(0, 154, "log").distributions(),
            state=optuna.trial.TrialState.FAIL,
        )
    )
    land = from_study(optuna.load_study(study_name="s", storage=storage))
    assert land.depths == [3, 20]
    assert land.table.loc[3, "val_accuracy"] == pytest.approx(0.91)
    assert land.table.loc[3, "repeats"] == 2
    assert land.table.loc[3, "seconds_std"] == pytest.approx(math.sqrt(200))
    assert load_landscape("study:s", storage=storage).depths == [3, 20]


def test_missing_study_or_storage_is_a_usage_error(tmp_path):
    _, storage = _study(tmp_path, [(3, 0.9, 100.0, {})])
    with pytest.raises(UsageError, match="no study 'other'"):
        load_landscape("study:other", storage=storage)
    with pytest.raises(UsageError, match="no study storage"):
        load_landscape("study:s", storage=f"sqlite:///{tmp_path / 'nothing.db'}")
    empty = optuna.create_study(study_name="empty", storage=storage)
    with pytest.raises(UsageError, match="no COMPLETE trial"):
        from_study(empty)
