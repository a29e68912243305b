"""One definition of best: show, report, compare and live-compare name the same depth.

Studies are written directly through Optuna with the user attributes a search
stores (no training), one per objective.
"""

from __future__ import annotations

import argparse
import io
import json

import optuna
import pytest

from objectives import get_objective
from tuner.analysis.landscape import from_records, load_landscape
from tuner.analysis.worlds import judged_values, regret, true_best
from tuner.cli import compare as compare_cli
from tuner.cli import report as report_cli
from tuner.cli.live_compare import live_table
from tuner.cli.main import main
from tuner.cli.show import print_study
from tuner.errors import UsageError
from tuner.model.space import DepthSpace

# depth -> readings (val_accuracy, protocol_seconds, steady_seconds).
# By efficiency depth 5 is best, by accuracy depth 60, by steady efficiency
# depth 0, cheapest within 0.02 of the best accuracy: depth 20.
MEASURED = {
    0: [(0.70, 100.0, 20.0)],
    5: [(0.90, 110.0, 90.0), (0.92, 130.0, 100.0)],
    20: [(0.93, 160.0, 150.0)],
    60: [(0.95, 260.0, 250.0)],
}
EXPECTED = {"efficiency": 5, "accuracy": 60, "steady-efficiency": 0, "cheapest-within:0.02": 20,
            "pareto": 5}  # pareto: the most efficient depth of the front


def _attrs(depth: int, acc: float, sec: float, steady: float) -> dict:
    return {
        "depth": depth, "val_accuracy": acc, "val_loss": 0.3, "fit_seconds": sec + 5.0,
        "protocol_seconds": sec, "phase_seconds": [sec / 2, sec / 2],
        "epoch_seconds": [sec / 2, sec / 2], "first_epoch_seconds": sec / 2,
        "steady_seconds": steady, "trainable_params": 1000 + depth,
        "trained_layers_with_weights": depth // 3, "host": "test", "trial_mode": "cached",
    }


def _study(tmp_path, objective: str, name: str = "s") -> str:
    storage = f"sqlite:///{tmp_path / (name + '.db')}"
    obj = get_objective(objective)
    study = optuna.create_study(study_name=name, storage=storage,
                                directions=list(obj.study_directions))
    study.set_user_attr("config", {"space": {"low": 0, "high": 154, "scale": "log"},
                                   "objective": objective, "sampler": "tpe"})
    dists = DepthSpace(0, 154, "log").distributions()
    for depth, runs in MEASURED.items():
        for acc, sec, steady in runs:
            attrs = _attrs(depth, acc, sec, steady)
            study.add_trial(optuna.trial.create_trial(
                params={"depth_plus_one": depth + 1}, distributions=dists,
                values=obj.told(attrs["val_accuracy"], obj.seconds(attrs)), user_attrs=attrs))
    return storage


def _answer_line(text: str) -> str:
    """show's (last) answer line (the choices among the depths within noise may follow it)."""
    lines = [line for line in text.splitlines() if line.startswith("best depth: ")]
    assert lines, text
    return lines[-1]


def _show(storage: str, fmt: str, name: str = "s") -> str:
    out = io.StringIO()
    print_study(study=name, storage=storage, fmt=fmt, out=out)
    return out.getvalue()


@pytest.mark.parametrize("objective, best", EXPECTED.items())
def test_every_command_names_the_same_best_depth(tmp_path, capsys, objective, best):
    storage = _study(tmp_path, objective)
    text = _show(storage, "table")
    shown = get_objective(objective).shown_as
    assert f"best depth: {best}, {shown} " in text
    data = json.loads(_show(storage, "json"))
    assert data["best_depth"] == best and data["best"]["depth"] == best

    p = argparse.ArgumentParser()
    report_cli.add_arguments(p)
    assert report_cli.run(p.parse_args(["--study", "s", "--storage", storage,
                                        "--output", str(tmp_path / "report")])) == 0
    assert f"Best depth {best} ({shown} " in capsys.readouterr().out
    assert f"| **{best}** |" in (tmp_path / "report" / "table.md").read_text()

    table = live_table({"tpe": "s"}, storage_for=lambda name: storage)
    assert table.loc[0, "best_depth"] == best
    assert load_landscape("study:s", storage=storage).best_depth == best


def test_accuracy_study_show_and_report_agree_on_the_issue_example(tmp_path, capsys):
    """The bug: show said 60 (best accuracy), report said 5 (best efficiency)."""
    storage = _study(tmp_path, "accuracy")
    assert "best depth: 60" in _show(storage, "table")
    p = argparse.ArgumentParser()
    report_cli.add_arguments(p)
    report_cli.run(p.parse_args(["--study", "s", "--storage", storage,
                                 "--output", str(tmp_path / "r")]))
    out = capsys.readouterr().out
    assert "Best depth 60" in out and "Best depth 5" not in out


def test_show_json_gives_the_answer_on_a_study_with_repeats(tmp_path):
    storage = _study(tmp_path, "efficiency")
    data = json.loads(_show(storage, "json"))
    low, high = data["best_interval"]
    assert low < data["best_value"] < high
    assert data["best_value"] == pytest.approx(0.91 / 120.0)  # depth 5 pooled: mean acc / mean s
    assert isinstance(data["within_noise"], list) and 5 not in data["within_noise"]
    noise = data["noise"]
    # depth 5's two readings share the study's seed: seconds from them, accuracy the default
    assert noise["default"] is False and noise["seconds_df"] == 1 and noise["accuracy_df"] == 0
    by_depth = {d["depth"]: d for d in data["depths"]}
    assert by_depth[5]["repeats"] == 2 and by_depth[0]["repeats"] == 1
    for d in data["within_noise"]:
        assert by_depth[d]["within_noise"] is True
    # csv stays one row per trial
    lines = _show(storage, "csv").strip().splitlines()
    assert len(lines) == 1 + 5 and lines[0].startswith("number,depth,state")


def test_show_line_under_the_table(tmp_path):
    storage = _study(tmp_path, "efficiency")
    last = _answer_line(_show(storage, "table"))
    assert last.startswith("best depth: 5, efficiency ")
    assert "± " in last and "(95 %; 2 readings" in last and "within noise of it:" in last
    assert "seconds 14 % (from repeats, 1 df, with the default as 4)" in last


def test_pareto_study_lists_its_front(tmp_path):
    storage = _study(tmp_path, "pareto")
    # cheapest first; depth 5's pooled (0.91, 120 s) is beaten by none
    line = _answer_line(_show(storage, "table"))
    assert "Pareto front: 0 (0.7000, 100.0 s), 5 (0.9100, 120.0 s), 20 (0.9300, 160.0 s), " \
           "60 (0.9500, 260.0 s)" in line
    data = json.loads(_show(storage, "json"))
    assert data["pareto_front"] == [0, 5, 20, 60] and data["best_depth"] == 5
    assert all(t["value"] is not None for t in data["trials"])  # efficiency, for the table


def test_compare_ranks_a_study_landscape_by_its_objective(tmp_path, capsys):
    storage = _study(tmp_path, "accuracy")
    p = argparse.ArgumentParser()
    compare_cli.add_arguments(p)
    args = p.parse_args(["--landscape", "study:s", "--storage", storage, "--strategies", "random",
                         "--seeds", "2", "--trials", "3", "--workers", "1"])
    assert compare_cli.run(args) == 0
    assert "best depth 60 (accuracy " in capsys.readouterr().out


def _compare(argv: list[str]):
    p = argparse.ArgumentParser()
    compare_cli.add_arguments(p)
    return compare_cli.run(p.parse_args([*argv, "--workers", "1"]))


def test_compare_replays_a_cheapest_within_study_by_its_rule(tmp_path, capsys):
    # The study's own objective; depths 0..60 only, so a sweep of every fifth depth reads all four
    # measured ones (and interpolated ones between them), noise-free.
    storage = _study(tmp_path, "cheapest-within:0.03")
    assert _compare(["--landscape", "study:s", "--storage", storage, "--strategies", "grid",
                     "--seeds", "2", "--trials", "61", "--max-depth", "60", "--noise-scale", "0"]) == 0
    out = capsys.readouterr().out
    # Between 5 (pooled 0.91 at 120 s) and 20 (0.93 at 160 s), depth 13 (0.9207 at 141.3 s) is
    # the cheapest at >= 0.95 - 0.03: an interpolated depth, which the grid trains too.
    assert "best depth 13 (cheapest-within:0.03 141.333)" in out
    row = out.strip().splitlines()[-1].split()
    assert row[0].startswith("grid") and row[-1] == "1.00"  # P(meets bar)
    assert "P(meets bar)" in out and "regret med" in out


def test_an_answer_below_the_bar_has_infinite_regret():
    land = from_records([{"depth": d, "val_accuracy": a, "seconds": s}
                         for d, a, s in ((0, 0.70, 100.0), (10, 0.90, 120.0), (20, 0.95, 200.0))],
                        name="bar", objective="cheapest-within:0.01").interpolated(low=0, high=30)
    # Depths 21-30 are extrapolated (accuracy above 0.95): they neither raise the bar nor clear it.
    best, value = true_best(land)
    assert best == 18 and value == pytest.approx(184.0)  # 0.94 at 184 s: just clears 0.95 - 0.01
    values = judged_values(land)
    assert values.loc[20] == pytest.approx(200.0) and values.loc[25] == float("inf")
    assert values.loc[10] == float("inf")  # 0.90: more than 0.01 under the best accuracy
    assert regret(values.loc[10], value, "minimize") == float("inf")
    assert regret(values.loc[best], value, "minimize") == 0.0


def test_compare_replays_pareto_with_a_multi_objective_study(tmp_path, capsys):
    storage = _study(tmp_path, "pareto")
    assert _compare(["--landscape", "study:s", "--storage", storage, "--strategies", "tpe,random",
                     "--seeds", "2", "--trials", "5"]) == 0
    out = capsys.readouterr().out
    assert "best depth 5 (pareto " in out and "tpe:log" in out and "P(meets bar)" not in out
    with pytest.raises(UsageError, match="one value per depth"):
        _compare(["--landscape", "study:s", "--storage", storage, "--strategies", "narrowing",
                  "--seeds", "1", "--trials", "2"])


def test_compare_objective_flag_replaces_the_landscapes(capsys):
    assert _compare(["--landscape", "thesis:5.1", "--objective", "accuracy", "--strategies", "random",
                     "--seeds", "1", "--trials", "3"]) == 0
    assert "(accuracy " in capsys.readouterr().out
    with pytest.raises(UsageError, match="unknown objective 'nope'"):
        _compare(["--landscape", "thesis:5.1", "--objective", "nope"])


@pytest.mark.parametrize("value", ["cheapest-within:abc", "cheapest-within:2", "bogus"])
def test_bad_objective_flag_is_one_line_and_exit_2(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--dataset", "tf_flowers", "--objective", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--objective" in err and "objective" in err


def test_search_with_cheapest_within_runs_resumes_and_shows(tmp_path, capsys, monkeypatch):
    """A real (tiny) search records the objective, resumes with it and answers by its rule."""
    from conftest import FAST

    monkeypatch.chdir(tmp_path)
    base = ["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16",
            "--study", "cw", "--storage", f"sqlite:///{tmp_path / 'cw.db'}", "--in-process",
            "--quiet", "--min-depth", "0", "--max-depth", "10", *FAST]
    assert main([*base, "--objective", "cheapest-within:0.010", "--trials", "1"]) == 0
    assert main([*base, "--objective", "cheapest-within:0.01", "--trials", "2"]) == 0  # resumes
    out = capsys.readouterr().out
    assert "objective cheapest-within:0.01" in out
    assert _answer_line(out)
    assert "best accuracy" in out
    data = json.loads(_show(f"sqlite:///{tmp_path / 'cw.db'}", "json", name="cw"))
    assert data["objective"] == "cheapest-within:0.01" and len(data["trials"]) == 2
    assert data["best_depth"] in {t["depth"] for t in data["trials"]}
    assert main([*base, "--objective", "accuracy", "--trials", "3"]) == 2  # another objective


def test_search_with_pareto_runs_resumes_and_shows_its_front(tmp_path, capsys, monkeypatch):
    """A two-objective Optuna study: each trial told (val_accuracy, protocol_seconds)."""
    from conftest import FAST

    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    base = ["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16",
            "--study", "p", "--storage", storage, "--in-process", "--quiet",
            "--max-depth", "10", "--objective", "pareto", *FAST]
    assert main([*base, "--trials", "1"]) == 0
    assert main([*base, "--trials", "2"]) == 0  # resumes
    assert "Pareto front: " in capsys.readouterr().out
    study = optuna.load_study(study_name="p", storage=storage)
    assert len(study.directions) == 2
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and "reused_from" not in t.user_attrs]
    assert len(done) == 2
    for t in done:
        assert t.values == [t.user_attrs["val_accuracy"], t.user_attrs["protocol_seconds"]]
    data = json.loads(_show(storage, "json", name="p"))
    assert data["pareto_front"] and set(data["pareto_front"]) <= {t["depth"] for t in data["trials"]}


@pytest.mark.parametrize("readings, within, cheapest, most_accurate", [
    # depth -> (val_accuracy, seconds); ties go to the more accurate / the cheaper, then the shallower
    ({3: (0.90, 50.0), 8: (0.905, 52.0), 40: (0.99, 90.0)}, [8], 3, 8),
    ({3: (0.90, 50.0), 4: (0.92, 50.0), 8: (0.92, 49.0)}, [3, 4], 8, 8),
    ({3: (0.90, 50.0), 60: (0.30, 400.0)}, [], 3, 3),
])
def test_export_choices_come_from_the_best_and_the_depths_within_noise(readings, within, cheapest,
                                                                       most_accurate):
    land = from_records([{"depth": d, "val_accuracy": a, "seconds": s} for d, (a, s) in readings.items()],
                        name="choices", objective="efficiency")
    answer = land.answer()
    assert answer.within_noise == within
    assert answer.chosen("cheapest") == cheapest and answer.chosen("most-accurate") == most_accurate
    assert answer.chosen("best") == answer.best_depth
    moved = (cheapest, most_accurate) != (answer.best_depth, answer.best_depth)
    assert ("among them" in answer.choices_line()) == (bool(within) and moved)
    assert answer.as_dict()["choices"] == {"best": answer.best_depth, "cheapest": cheapest,
                                           "most-accurate": most_accurate}
