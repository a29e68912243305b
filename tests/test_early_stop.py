"""Stopping a trial after an epoch (tuner.strategies.early_stop): the target and the forecast as
pure rules, the pruner on a shared study, and a live search whose trials miss their target
(killed with SIGKILL after a stop, and resumed)."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from objectives import get_objective
from objectives.best import answer
from objectives.noise import pool
from tests.conftest import run_cli
from tuner.model.space import DepthSpace
from tuner import stored_keys as keys
from tuner.strategies.early_stop import MIN_CURVES, PRIOR_GAIN, TargetPruner, accuracy_target, forecast

# Two readings: depth 0 at 0.80 in 40 s (efficiency 0.02, the best), depth 10 at 0.85 in 50 s.
READINGS = [{"depth": 0, "val_accuracy": 0.80, "seconds": 40.0}, {"depth": 10, "val_accuracy": 0.85, "seconds": 50.0}]


def _ranked(objective: str, val_examples: int = 200):
    return answer(pool(READINGS), get_objective(objective), val_examples=val_examples)


@pytest.mark.parametrize("objective, price, low, high", [
    # efficiency: best 0.02/s; at 45 s a depth needs about 0.02 x 45 = 0.9, less the noise margin
    ("efficiency", 45.0, 0.50, 0.65),
    ("efficiency", 30.0, 0.30, 0.45),  # cheaper than the best: less accuracy does (0.6 less the margin)
    ("efficiency", 120.0, 1.0, 1.0),  # out of reach even at accuracy 1
    ("steady-efficiency", 45.0, 0.50, 0.65),
    ("accuracy", 500.0, 0.76, 0.80),  # 0.85 less its noise, whatever the price
    ("cheapest-within:0.02", 30.0, 0.74, 0.80),  # cheaper than the answer: be eligible (0.85 - 0.02)
    ("cheapest-within:0.02", 90.0, 0.78, 0.84),  # dearer: raise the bar past the answer (0.80 + 0.02)
])
def test_the_target_a_depth_must_reach_at_its_price(objective, price, low, high):
    target = accuracy_target(get_objective(objective), _ranked(objective), price)
    assert low <= target <= high


def test_no_target_without_readings_a_price_or_one_value():
    eff = get_objective("efficiency")
    assert accuracy_target(eff, None, 40.0) is None
    assert accuracy_target(eff, _ranked("efficiency"), math.nan) is None
    assert accuracy_target(get_objective("pareto"), _ranked("pareto"), 40.0) is None


def test_a_dearer_price_or_a_less_certain_one_moves_the_target_as_it_should():
    eff, ranked = get_objective("efficiency"), _ranked("efficiency")
    assert accuracy_target(eff, ranked, 42.0) < accuracy_target(eff, ranked, 48.0)
    assert accuracy_target(eff, ranked, 45.0, price_sd=8.0) < accuracy_target(eff, ranked, 45.0)


# Three completed curves at depths 10-30; largest gains 0.15 from epoch 1, 0.05 from epoch 2.
CURVES = [(10, [0.50, 0.60, 0.65]), (20, [0.70, 0.72, 0.71]), (30, [0.40, 0.50, 0.55])]
P1, P2 = PRIOR_GAIN, PRIOR_GAIN / 2  # the prior from epoch 1 and from epoch 2 of 3


@pytest.mark.parametrize("accuracy, epoch, target, curves, depth, stop, possible", [
    (0.60, 1, 0.81, CURVES, 10, True, 0.75),
    (0.70, 1, 0.81, CURVES, 10, False, 0.85),
    (0.60, 2, 0.70, CURVES, 0, True, 0.65),  # from epoch 2 the largest gain is 0.05
    (0.60, 3, 0.99, CURVES, 10, False, 0.60),  # after the last epoch there is nothing to stop
    # a deeper trial: the shallower curves do not bound its gain, the prior does
    (0.20, 1, 0.21 + P1, CURVES, 25, True, 0.20 + P1),
    (0.20, 1, 0.19 + P1, CURVES, 25, False, 0.20 + P1),
    (0.20, 1, 0.19 + P1, [], 0, False, 0.20 + P1),
    (0.20, 2, 0.21 + P2, [], 0, True, 0.20 + P2),  # less of the prior from a later epoch
    (0.90, 1, 1.00, [(5, [0.9, 0.85, 0.8])] * MIN_CURVES, 0, True, 0.90),  # falling curves: never below now
])
def test_the_stop_decision(accuracy, epoch, target, curves, depth, stop, possible):
    f = forecast(accuracy, epoch=epoch, epochs=3, target=target, curves=curves, depth=depth)
    assert f.stop is stop
    assert f.possible == pytest.approx(possible)
    assert f"epoch {epoch}: {accuracy:.4f}, needed {target:.4f}" in f.reason()


def _curve_trial(depth: int, curve: list[float]):
    return create_trial(params={"depth": depth}, distributions={"depth": IntDistribution(0, 154)},
                        value=curve[-1] / 40.0, user_attrs={keys.VAL_ACCURACIES: curve, keys.DEPTH: depth})


def test_two_workers_on_one_study_share_the_forecast(tmp_path):
    storage = f"sqlite:///{tmp_path}/shared.db"
    a = optuna.create_study(study_name="s", storage=storage, direction="maximize", pruner=TargetPruner(3))
    b = optuna.load_study(study_name="s", storage=storage, pruner=TargetPruner(3))
    running = b.ask()
    running.set_user_attr(keys.TARGET, 0.78)
    running.report(0.60, 1)
    assert not running.should_prune()  # no curves yet: the prior's 0.2 reaches 0.80
    for depth in (1, 2, 3):  # worker a's trials end with small gains after epoch 1
        a.add_trial(_curve_trial(depth, [0.60, 0.63, 0.65]))
    assert running.should_prune()  # worker b's pruner reads them: 0.60 + 0.05 < 0.78
    assert b.pruner.last.from_curves == 3 and b.pruner.last.possible == pytest.approx(0.65)


def test_a_trial_without_a_target_is_never_stopped(tmp_path):
    study = optuna.create_study(direction="maximize", pruner=TargetPruner(3))
    for depth in (1, 2, 3):
        study.add_trial(_curve_trial(depth, [0.60, 0.61, 0.62]))
    trial = study.ask()  # a repeat, a listed depth, or --stop-early off: no target
    trial.report(0.10, 1)
    assert not trial.should_prune()


# A live search whose later depths cannot reach their target: the study also holds a reading of
# 0.999 (added below), so under `accuracy` every new depth needs about 0.95 on 96 validation images.
LIVE = ["--dataset", "tf_flowers", "--fake-data", "--fake-examples", "64,96", "--weights", "none",
        "--image-size", "32", "--head-epochs", "1", "--finetune-epochs", "3", "--batch-size", "16",
        "--head-lr", "1e-5", "--finetune-lr", "1e-6", "--objective", "accuracy", "--study", "stops"]


def _add_a_reading_no_depth_can_match(storage: str) -> None:
    from tuner.store.study import recorded_space

    study = optuna.load_study(study_name="stops", storage=storage)
    space = recorded_space(study)
    attrs = {keys.DEPTH: 2, keys.VAL_ACCURACY: 0.999, keys.FIT_SECONDS: 9.0, keys.PROTOCOL_SECONDS: 9.0,
             keys.STEADY_SECONDS: 8.0, keys.TRIAL_MODE: "cached", keys.VAL_ACCURACIES: [0.98, 0.99, 0.999]}
    study.add_trial(create_trial(params=space.params_for(2), distributions=space.distributions(),
                                 value=0.999, user_attrs=attrs))


@dataclass
class _Killed:
    number: int
    """The trial running when the search was killed."""
    first_stop: FrozenTrial
    """The stopped trial before it, as stored at the kill."""


def _killed_after_a_stop(args: list[str], storage: str, cwd, timeout: float = 300) -> _Killed:
    """Run a search and SIGKILL it as soon as a trial was stopped early and the next one started."""
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli.main", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            assert proc.poll() is None, "the search ended before a trial after a stop: " + proc.stderr.read()[-2000:]
            trials = optuna.load_study(study_name="stops", storage=storage).get_trials()
            stops = [t for t in trials if keys.STOPPED in t.user_attrs]
            after = [t for t in trials if stops and t.number > stops[0].number and t.state == TrialState.RUNNING
                     and keys.WORKER_PID in t.user_attrs]
            if after:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return _Killed(after[0].number, stops[0])
            time.sleep(0.2)
        raise AssertionError("no trial was stopped in time")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_trial_that_cannot_reach_its_target_is_stopped_kept_and_counted(tmp_path):
    storage = f"sqlite:///{tmp_path}/stops.db"
    first = run_cli(["search", *LIVE, "--trials", "1", "--storage", storage, "--in-process"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    _add_a_reading_no_depth_can_match(storage)
    # In the trial process (the default): each fine-tune epoch but the last asks the worker.
    # SIGKILL once a trial has been stopped and the next one runs; the rerun keeps the stop.
    killed = _killed_after_a_stop(["search", *LIVE, "--trials", "4", "--storage", storage], storage, tmp_path)
    second = run_cli(["search", *LIVE, "--trials", "4", "--storage", storage], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "needs val_accuracy >= 0.9" in second.stderr and "stopped early, epoch " in second.stderr

    study = optuna.load_study(study_name="stops", storage=storage)
    assert study.trials[killed.number].state == TrialState.FAIL  # the kill's victim, trained again
    stopped = [t for t in study.trials if keys.STOPPED in t.user_attrs]
    assert len(stopped) == 2 and all(t.state == TrialState.PRUNED for t in stopped)
    first_stop = stopped[0]
    assert first_stop.number < killed.number and first_stop.user_attrs == killed.first_stop.user_attrs
    assert first_stop.intermediate_values == killed.first_stop.intermediate_values
    for t in stopped:
        # near chance after the first epochs (tiny learning rates): stopped after epoch 1 or 2 of 3
        ran = t.user_attrs[keys.STOPPED_AFTER]
        assert ran in (1, 2) and list(t.intermediate_values) == list(range(1, ran + 1))  # what the sampler sees
        assert t.user_attrs[keys.TARGET] > 0.9 and "needed" in t.user_attrs[keys.STOPPED]
        assert len(t.user_attrs[keys.VAL_ACCURACIES]) == ran
        assert keys.CHECKPOINT not in t.user_attrs
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2 and all(t.intermediate_values for t in complete if t.number != 1)

    # The answer reads complete trials only; show says what stopped, and --all why.
    shown = run_cli(["show", "--study", "stops", "--storage", storage, "--format", "json"], cwd=tmp_path)
    out = json.loads(shown.stdout)
    assert out["best_depth"] == 2
    depths = {d["depth"] for d in out["depths"]}
    assert depths == {t.user_attrs[keys.DEPTH] for t in complete}
    assert out["stopped_note"].startswith("2 trials stopped early")
    table = run_cli(["show", "--study", "stops", "--storage", storage, "--all"], cwd=tmp_path).stdout
    assert table.count("stopped early: epoch ") == 2

    # A new run counts the stopped trials toward --trials: nothing left to do, nothing trained.
    again = run_cli(["search", *LIVE, "--trials", "4", "--storage", storage], cwd=tmp_path)
    assert again.returncode == 0 and "already has 4 trials (2 measured, 2 stopped early)" in again.stderr, again.stderr
    assert [t.user_attrs for t in optuna.load_study(study_name="stops", storage=storage).trials
            if t.number in {s.number for s in stopped}] == [t.user_attrs for t in stopped]
    refused = run_cli(["search", *LIVE, "--trials", "5", "--storage", storage, "--stop-early", "off"],
                      cwd=tmp_path)
    assert refused.returncode == 2 and "stop_early: True -> False" in refused.stderr



# A landscape with phase-2 curves on which stops happen: 0.9 at every depth, 10 s up to depth 10
# and 1.5 s dearer per depth after, each curve 0.55 -> 0.8 -> 0.9; deep depths need more than
# 0.8 + the gains seen so far.
def _curved():
    from tuner.analysis.landscape import from_records
    from tuner.model.signatures import n_layers

    rows = [{"depth": d, "val_accuracy": 0.9, "seconds": 10.0 + max(0, d - 10) * 1.5,
             keys.VAL_ACCURACIES: [0.55, 0.8, 0.9], "phase2_share": 0.5} for d in range(n_layers("MobileNetV2") + 1)]
    return from_records(rows, name="curved")


def _live(land, tmp_path, *, trials: int, stop_early: bool) -> optuna.Study:
    """The live worker (DepthTuner on the oracle, Keras Tuner's loop) with a trial process that
    answers from ``land``: each fine-tune epoch reported as a real one is, stopped when told."""
    from tuner.analysis.curves import phase2_share, stopped_seconds
    from tuner.model.hypermodel import DepthHyperModel
    from tuner.model.metrics import TrialMetrics
    from tuner.model.protocol import TrainingProtocol
    from tuner.progress import Reporter
    from tuner.search.depth_tuner import DepthTuner
    from tuner.search.oracle import OptunaOracle
    from tuner.strategies.registry import Setup, make_strategy, parse_strategy
    from tuner.strategies.rounds import Search
    from tuner.trials.request import TrialContext

    spec = parse_strategy("tpe", scale="log")
    low, high = land.depth_range()
    strategy = make_strategy(spec, Setup(space=DepthSpace(low, high, "log"), seed=3, trials=trials,
                                         objective=land.objective_spec))
    space = strategy.setup.space
    study = optuna.create_study(sampler=strategy.sampler(), direction="maximize",
                                pruner=TargetPruner(land.epochs) if stop_early else optuna.pruners.NopPruner())
    oracle = OptunaOracle(Search(study=study, space=space, strategy=strategy, signatures=range(high + 1),
                                 trials=trials, objective=land.objective_spec, base_seed=3, stop_early=stop_early),
                          reporter=Reporter(quiet=True))
    table = land.table

    def serve(request, progress=None):
        d, epochs = request.depth, land.epochs
        acc, sec = float(table.loc[d, "val_accuracy"]), float(table.loc[d, "seconds"])
        curve = [float(table.loc[d, f"val_accuracy_e{e}"]) for e in range(1, epochs + 1)]
        ran = epochs
        for e, a in enumerate(curve, start=1):
            if progress(2, e, epochs, float(e), a) and request.stop_early:
                ran = e
                break
        extra = {}
        if ran < epochs:
            acc, sec = curve[ran - 1], stopped_seconds(sec, share=phase2_share(table, d), epoch=ran, epochs=epochs)
            extra[keys.STOPPED_AFTER] = ran
        m = TrialMetrics(depth=d, val_accuracy=acc, val_loss=0.3, fit_seconds=sec, phase_seconds=[sec / 2, sec / 2],
                         epoch_seconds=[1.0], first_epoch_seconds=1.0, steady_seconds=sec, trainable_params=10,
                         trained_layers_with_weights=1, host="h", protocol_seconds=sec, search_seconds=sec,
                         trial_mode="cached", val_accuracies=curve[:ran])
        return {"metrics": m.as_attrs(), "extra": extra}

    protocol = TrainingProtocol(weights=None, image_size=32, finetune_epochs=land.epochs)
    context = TrialContext(protocol=protocol, num_classes=2, space=space, images_dir=str(tmp_path))
    tuner = DepthTuner(oracle=oracle, hypermodel=DepthHyperModel(protocol=protocol, num_classes=2, space=space),
                       objective=land.objective_spec, reporter=Reporter(quiet=True), directory=str(tmp_path),
                       project_name="p", context=context, serve=serve)
    tuner.search(verbose=0)
    return study


def _measured():
    """A real-weight landscape with phase-2 curves (benchmarks/RESULTS.md, "Stopping after an epoch"),
    every depth of its range interpolated."""
    from pathlib import Path

    from tuner.analysis.landscape import from_csv

    land = from_csv(Path(__file__).parents[1] / "benchmarks" / "landscapes" / "digits96_h1e-2_curves.csv")
    low, high = land.depth_range()
    return land.interpolated(low=low, high=high)


def test_a_replay_stops_the_trials_the_live_search_stops(tmp_path):
    from tuner.analysis.replay import replay

    land = _measured()
    live = _live(land, tmp_path, trials=13, stop_early=True)
    trained = [t for t in live.trials if keys.VAL_ACCURACY in t.user_attrs]
    live_depths = [t.user_attrs[keys.DEPTH] for t in trained]
    live_stops = [t.user_attrs.get(keys.STOPPED_AFTER, 0) for t in trained]
    assert any(live_stops), "the landscape should make the live search stop something"
    run = replay(landscape=land, strategy="tpe", seed=3, trials=13, noise_scale=0, stop_early=True)
    assert list(run["depth"]) == live_depths
    assert list(run["stopped"]) == live_stops
    stopped = [t for t in live.trials if keys.STOPPED in t.user_attrs]
    assert all(t.state == TrialState.PRUNED for t in stopped)


def test_stop_early_off_is_the_search_as_before(tmp_path):
    """Off: no target, no stop, the pruner never asked: the depths a search without stops trains."""
    from tuner.analysis.replay import replay

    land = _curved()
    low, high = land.depth_range()
    live = _live(land, tmp_path, trials=13, stop_early=False)
    assert all(keys.TARGET not in t.user_attrs and t.state != TrialState.PRUNED or keys.RULED_OUT in t.user_attrs
               for t in live.trials)
    flat = land.interpolated(low=low, high=high)
    off = replay(landscape=flat, strategy="tpe", seed=3, trials=13, noise_scale=0, stop_early=False)
    no_curves = replay(landscape=_without_curves(flat), strategy="tpe", seed=3, trials=13, noise_scale=0,
                       stop_early=True)
    live_depths = [t.user_attrs[keys.DEPTH] for t in live.trials if keys.VAL_ACCURACY in t.user_attrs]
    assert list(off["depth"]) == live_depths == list(no_curves["depth"])
    assert not off["stopped"].any()


def _without_curves(land):
    from dataclasses import replace

    return replace(land, table=land.table[["val_accuracy", "seconds", "val_accuracy_std", "seconds_std",
                                           "repeats", "seeds"]])


def test_a_landscapes_curves_survive_its_csv_and_interpolation(tmp_path):
    from tuner.analysis.landscape import from_csv

    land = _curved()
    assert land.epochs == 3
    path = tmp_path / "curved.csv"
    land.frame().to_csv(path, index=False)  # as report's table.csv
    again = from_csv(path)
    assert again.epochs == 3 and again.table.loc[40, "val_accuracy_e1"] == pytest.approx(0.55)
    assert again.table.loc[40, "phase2_share"] == pytest.approx(0.5)
    rows = tmp_path / "rows.csv"  # one row per reading, as a user writes one
    rows.write_text("depth,val_accuracy,time_s,val_accuracy_e1,val_accuracy_e2\n0,0.8,10,0.6,0.8\n"
                    "0,0.9,12,0.7,0.9\n20,0.85,30,0.5,0.85\n")
    pooled = from_csv(rows)
    assert pooled.epochs == 2 and pooled.table.loc[0, "val_accuracy_e1"] == pytest.approx(0.65)
    assert pooled.interpolated(low=0, high=20).table.loc[10, "val_accuracy_e1"] == pytest.approx(0.575)
    flat = from_csv(_write(tmp_path / "flat.csv", "depth,val_accuracy,time_s\n0,0.8,10\n5,0.9,12\n"))
    assert flat.epochs == 0


def _write(path, text):
    path.write_text(text)
    return path


def test_stopped_trials_count_as_trainings_and_leave_the_confirmations_their_place():
    """A stop is one of the --trials, and the last two of them are still tpe+confirm2's repeats
    (measured: before, each stop pushed a confirmation past the end). On a real-weight landscape."""
    from tuner.analysis.replay import replay
    from tuner.strategies.registry import parse_strategy

    flat = _measured()
    runs = [replay(landscape=flat, strategy=parse_strategy("tpe+confirm2", scale="log"), seed=s, trials=13,
                   stop_early=True) for s in range(2)]
    assert all((r["stopped"] > 0).any() for r in runs)
    for r in runs:
        assert len(r) == 13 and list(r["confirmation"].iloc[-2:]) == [True, True]
        assert int(r["confirmation"].sum()) == 2
        assert int(r["ruled_out"].iloc[-1]) <= 1  # a stopped trial trained: it is no ruled-out one


def test_the_bounds_on_what_stops_could_save_are_ordered_and_the_floor_is_the_formula():
    """benchmarks/stop_bounds.py, whose figures RESULTS.md quotes against the issue's 60 %."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "stop_bounds.py"
    spec = importlib.util.spec_from_file_location("stop_bounds", path)
    bounds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bounds)

    runs = bounds.bounds(_measured(), seeds=2, trials=13, strategy="tpe+confirm2")
    for seed in range(2):
        off, rule, oracle, every = (runs[k][seed] for k in ("off", "rule", "oracle", "every trial after epoch 1"))
        assert every < oracle < off and rule <= off
    # _curved: every depth 0.9, 10 s up to depth 10, phase 2 half of it: the best (depth 0) three
    # times, ten trials at 10 s less two thirds of its 5 s of phase 2
    assert bounds.any_strategy_floor(_curved(), trials=13) == pytest.approx(3 * 10 + 10 * (10 - 5 * 2 / 3))
    assert bounds.any_strategy_floor(_curved(), trials=13, confirmations=0) == pytest.approx(10 + 12 * (10 - 5 * 2 / 3))
