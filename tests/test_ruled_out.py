"""Depths that cannot win are ruled out unseen, live and in the replay alike, and stay so.

No training: the live search's oracle is driven directly on a stored study
and each trial is finished with a landscape's metrics (as test_strategies).
The landscape: accuracy 0.9 at every depth, 10 s up to depth 10, then 4 s
dearer per depth, so from about depth 20 on even accuracy 1 is worth less
than the shallow depths' 0.09 per second.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from tuner.analysis.landscape import from_records
from tuner.analysis.replay import replay
from tuner.analysis.summary import ruled_out_line, trials_frame
from tuner.model.protocol import cached_on_images
from tuner.model.signatures import n_layers
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.search.oracle import OptunaOracle
from tuner.store.trials import measured_trials, trial_depth
from tuner.strategies.registry import Setup, make_strategy, parse_strategy
from tuner.strategies.rounds import Search

H = n_layers("MobileNetV2")


def seconds(depth: int, knee: int = 10) -> float:
    return 10.0 + max(0, depth - knee) * 4.0


CLIFF = 103  # flat up to here, where a cached search starts to probe (cached_on_images)


@pytest.fixture(scope="module")
def steep():
    return from_records([{"depth": d, "val_accuracy": 0.9, "seconds": seconds(d)}
                         for d in range(H + 1)], name="steep")


@pytest.fixture(scope="module")
def cliff():
    return from_records([{"depth": d, "val_accuracy": 0.9, "seconds": seconds(d, CLIFF)}
                         for d in range(H + 1)], name="cliff")


def probe(depth: int) -> dict | None:
    """A cached search's probe on the cliff (its seconds), where it probes."""
    if not cached_on_images(depth, H):
        return None
    return {"protocol_seconds": seconds(depth, CLIFF), "steady_seconds": seconds(depth, CLIFF)}


def run_live(study, land, *, trials: int, name: str = "tpe", prober=None, knee: int = 10) -> list[int]:
    """Depths trained, in order, by the live oracle on ``study`` until ``trials`` are measured."""
    spec = parse_strategy(name, scale="log")
    space = DepthSpace(0, H, spec.scale or "linear")
    strategy = make_strategy(spec, Setup(space=space, seed=0, trials=trials, objective=land.objective_spec))
    oracle = OptunaOracle(Search(study=study, space=space, strategy=strategy, signatures=tuple(range(H + 1)),
                                 trials=trials, objective=land.objective_spec, base_seed=0),
                          reporter=Reporter(quiet=True))
    if prober is not None:
        oracle.probe_with(prober)
    depths = []
    for i in range(10 * trials):
        r = oracle.populate_space(f"t{i}")
        if r["status"] != "RUNNING":
            break
        depth = r["values"]["depth"]
        depths.append(depth)
        ot = oracle.optuna_trials.pop(f"t{i}")
        oracle._heartbeats.pop(f"t{i}").stop()
        acc, sec = 0.9, seconds(depth, knee)
        for key, value in {"val_accuracy": acc, "fit_seconds": sec, "protocol_seconds": sec}.items():
            ot.set_user_attr(key, value)
        study.tell(ot, float(land.objective_spec.values(acc, sec)))
    return depths


def pruned(study) -> list:
    return study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))


def test_the_live_search_rules_out_what_the_replay_rules_out(steep, tmp_path):
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db", direction="maximize",
                                sampler=make_strategy("tpe", Setup(space=DepthSpace(0, H), seed=0)).sampler())
    live = run_live(study, steep, trials=13)
    run = replay(landscape=steep, strategy=parse_strategy("tpe", scale="log"), seed=0, trials=13,
                 noise_scale=0)
    assert run["depth"].tolist() == live and len(live) == 13
    ruled = pruned(study)
    assert ruled and len(ruled) == int(run["ruled_out"].iloc[-1])
    space = DepthSpace(0, H)
    for t in ruled:  # every sampler reads a pruned trial's parameters: it learns from them
        assert space.param_name in t.params and "ruled_out" in t.user_attrs
        by = t.user_attrs["ruled_out_by"]
        assert trial_depth(t, space) >= by and 1 / seconds(by) < 0.09
    # nothing trained where a ruling had closed the range before it
    for t in measured_trials(study):
        earlier = [p for p in ruled if p.number < t.number]
        assert all(trial_depth(t, space) < p.user_attrs["ruled_out_by"] for p in earlier)
    # every trained trial carries the price it was given before it trained
    trained = measured_trials(study)
    assert all("price_low" in t.user_attrs for t in trained + ruled)
    between = [t for t in trained if "price_high" in t.user_attrs]  # priced from both sides
    assert between and all(t.user_attrs["price_low"] <= seconds(trial_depth(t, space))
                           <= t.user_attrs["price_high"] for t in between)


def test_ruled_out_depths_stay_ruled_out_across_a_resume_and_show_says_so(steep, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    sampler = make_strategy("tpe", Setup(space=DepthSpace(0, H), seed=0)).sampler()
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize", sampler=sampler)
    run_live(study, steep, trials=8)
    before = {t.number for t in pruned(study)}
    assert before
    again = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
    run_live(again, steep, trials=13)
    assert before <= {t.number for t in pruned(again)}
    assert len(measured_trials(again)) == 13  # ruled-out suggestions do not count as trials
    space = DepthSpace(0, H)
    frame = trials_frame(again, include_all=True)
    rows = frame[frame["state"] == "PRUNED"]
    assert len(rows) == len(pruned(again)) and rows["note"].str.startswith("ruled out unseen").all()
    line = ruled_out_line(again)
    assert f"{len(rows)} suggestion" in line and "could not beat depth" in line
    assert trials_frame(again)["state"].eq("COMPLETE").all()  # not shown without --all
    assert all(trial_depth(t, space) >= 0 for t in pruned(again))


def test_an_objective_without_a_ceiling_rules_nothing_out(steep, tmp_path):
    land = steep.judged_by("accuracy")
    run = replay(landscape=land, strategy=parse_strategy("tpe", scale="log"), seed=0, trials=13,
                 noise_scale=0)
    assert int(run["ruled_out"].iloc[-1]) == 0


def test_a_probe_rules_out_a_deep_depth_before_it_trains_live_and_replayed(cliff):
    sampler = make_strategy("tpe", Setup(space=DepthSpace(0, H), seed=0)).sampler()
    study = optuna.create_study(direction="maximize", sampler=sampler)
    asked = []
    live = run_live(study, cliff, trials=13, prober=lambda d: asked.append(d) or probe(d), knee=CLIFF)
    run = replay(landscape=cliff, strategy=parse_strategy("tpe", scale="log"), seed=0, trials=13,
                 noise_scale=0, probe=True)
    assert run["depth"].tolist() == live
    space = DepthSpace(0, H)
    probed = [t for t in study.get_trials(deepcopy=False) if "probed" in t.user_attrs]
    assert int(run["probes"].iloc[-1]) == len(probed) > 0
    by_probe = [t for t in pruned(study) if "probed" in t.user_attrs]
    assert by_probe and all(t.user_attrs["ruled_out"].startswith("probed: ") for t in by_probe)
    for t in by_probe:  # ruled out on its own price, which was beyond every depth read before
        assert t.user_attrs["ruled_out_by"] == trial_depth(t, space)
        assert t.user_attrs["price_low"] == pytest.approx(seconds(trial_depth(t, space), CLIFF))
    # probed only where a cached search probes, and only once per depth: a read price decides
    probed_depths = [trial_depth(t, space) for t in probed]
    assert all(cached_on_images(d, H) for d in probed_depths)
    assert len(set(probed_depths)) == len(probed_depths)
    assert max(live) < min(trial_depth(t, space) for t in by_probe)
    # every trained trial carries the price it was given: a bracket, and an estimate once one exists
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs]
    assert all("price_low" in t.user_attrs for t in done)
    assert sum("price" in t.user_attrs for t in done) >= len(done) - 1


def test_a_probe_that_fails_leaves_the_depth_to_train(steep):
    from tuner.errors import TrialError

    def broken(depth):
        raise TrialError("the trial process died")

    sampler = make_strategy("tpe", Setup(space=DepthSpace(0, H), seed=0)).sampler()
    study = optuna.create_study(direction="maximize", sampler=sampler)
    live = run_live(study, steep, trials=6, prober=broken)
    assert len(live) == 6
    errors = [t for t in study.get_trials(deepcopy=False) if "probe_error" in t.user_attrs]
    assert errors and all(t.state == TrialState.COMPLETE for t in errors)


def test_two_workers_on_one_stored_study_share_one_bound(steep, tmp_path):
    """Worker B rules out a deep depth on worker A's readings alone: the bound lives in the study."""
    from tuner.store.trials import enqueue

    storage = f"sqlite:///{tmp_path}/shared.db"
    space = DepthSpace(0, H)

    def worker():
        sampler = make_strategy("tpe", Setup(space=space, seed=0)).sampler()
        return optuna.create_study(study_name="shared", storage=storage, direction="maximize",
                                   sampler=sampler, load_if_exists=True)

    a_trained = run_live(worker(), steep, trials=6)
    study_b = worker()
    enqueue(study_b, space, 150, {"chosen_by": "test"})
    b_trained = run_live(study_b, steep, trials=7)  # one more training; 150 is asked first
    deep = [t for t in pruned(study_b) if trial_depth(t, space) == 150]
    assert deep and 150 not in b_trained, "B trained a depth A's readings had priced out"
    assert deep[0].user_attrs["best_depth"] in a_trained
    assert "price" in deep[0].user_attrs and deep[0].user_attrs["price_low"] > 0
