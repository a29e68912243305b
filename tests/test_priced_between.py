"""A cached trial between two read depths that price it closely is given their interpolated step
costs and skips its own probe; its seconds are then the model's, never a reading of it.

No training: the live oracle is driven directly on a study whose measured trials carry what
cached trials store (their probed phase-2 step costs), as tests/test_ruled_out.py does.
"""

from __future__ import annotations

import optuna
import pytest

from objectives import get_objective
from tuner import stored_keys as keys
from tuner.model.signatures import n_layers
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.search.oracle import OptunaOracle
from tuner.strategies.registry import Setup, make_strategy
from tuner.strategies.rounds import Search, _readings

H = n_layers("MobileNetV2")
SPACE = DepthSpace(0, H)
SIG = tuple(range(H + 1))
EFF = get_objective("efficiency")


def _measure(study, depth, seconds, step, trace=1.0, **attrs):
    """A measured cached trial: its price and the probed step costs it came from."""
    study.add_trial(optuna.trial.create_trial(
        params=SPACE.params_for(depth), distributions=SPACE.distributions(), value=0.9 / seconds,
        user_attrs={"depth": depth, "val_accuracy": 0.9, "fit_seconds": 5.0, "protocol_seconds": seconds,
                    "trial_mode": "cached", keys.PHASE2_TRAIN_STEP: step, keys.PHASE2_TRAIN_TRACE: trace,
                    **attrs}))


def _ask(study, depth, *, cached=True, **attrs):
    """The trial the oracle asks for a queued ``depth``, as a cached (or plain) search would."""
    strategy = make_strategy("tpe", Setup(space=SPACE, trials=20, objective=EFF))
    oracle = OptunaOracle(Search(study=study, space=SPACE, strategy=strategy, signatures=SIG, trials=20,
                                 objective=EFF), reporter=Reporter(quiet=True))
    if cached:
        oracle.probe_with(lambda d: None)
    study.enqueue_trial(SPACE.params_for(depth), user_attrs=attrs)
    r = oracle.populate_space("t")
    assert r["status"] == "RUNNING" and r["values"]["depth"] == depth
    oracle._heartbeats.pop("t").stop()
    return oracle.optuna_trials.pop("t")


@pytest.fixture
def study():
    s = optuna.create_study(direction="maximize")
    _measure(s, 0, 50.0, step=0.10)
    _measure(s, 20, 54.0, step=0.14, trace=3.0)  # 8 % dearer: brackets depths 1-19 closely
    _measure(s, 40, 62.0, step=0.30)  # 15 % dearer: 21-39 are not
    return s


def test_a_closely_bracketed_depth_gets_its_neighbours_costs_interpolated(study):
    t = _ask(study, 5)
    between = t.user_attrs[keys.PRICED_BETWEEN]
    assert between["depths"] == [0, 20]
    assert between["train_step"] == pytest.approx(0.75 * 0.10 + 0.25 * 0.14)
    assert between["train_trace"] == pytest.approx(0.75 * 1.0 + 0.25 * 3.0)
    assert t.user_attrs[keys.PRICE_LOW] == 50.0 and t.user_attrs[keys.PRICE_HIGH] == 54.0


@pytest.mark.parametrize("case", ["a wide bracket", "beyond every reading", "a repeat", "a plain search",
                                  "a neighbour without probed costs"])
def test_where_a_probe_still_tells_something_the_trial_probes(study, case):
    if case == "a neighbour without probed costs":  # as a deep trial on the images stores none
        study = optuna.create_study(direction="maximize")
        _measure(study, 0, 50.0, step=0.10)
        study.add_trial(optuna.trial.create_trial(
            params=SPACE.params_for(20), distributions=SPACE.distributions(), value=0.9 / 54.0,
            user_attrs={"depth": 20, "val_accuracy": 0.9, "fit_seconds": 54.0, "protocol_seconds": 54.0}))
    depth, attrs, cached = {"a wide bracket": (30, {}, True), "beyond every reading": (45, {}, True),
                            "a repeat": (20, {keys.MEASURE_AGAIN: True}, True),
                            "a plain search": (5, {}, False),
                            "a neighbour without probed costs": (5, {}, True)}[case]
    t = _ask(study, depth, cached=cached, **attrs)
    assert keys.PRICED_BETWEEN not in t.user_attrs


def test_an_interpolated_price_is_no_reading_of_the_cost_model(study):
    t = _ask(study, 5)
    t.set_user_attr("val_accuracy", 0.9)
    t.set_user_attr("fit_seconds", 5.0)
    t.set_user_attr("protocol_seconds", 70.0)  # whatever it says, it is the model's own number
    study.tell(t, 0.9 / 70.0)
    strategy = make_strategy("tpe", Setup(space=SPACE, trials=20, objective=EFF))
    readings = _readings(Search(study=study, space=SPACE, strategy=strategy, signatures=SIG, trials=20,
                                objective=EFF))
    assert 5 in readings.depth_of  # the answer ranks it
    assert 5 not in readings.model.depth_of  # the cost model does not read it
    assert (readings.price(10).low, readings.price(10).high) == (50.0, 54.0)


@pytest.mark.parametrize("used", [True, False])
def test_an_offer_the_trial_did_not_use_is_withdrawn(study, tmp_path, used):
    """A trial that trained on the images or ran plain measured its seconds: the offer is set to
    None after it, so its seconds count as a reading; a used one stays."""
    from tuner.model.hypermodel import DepthHyperModel
    from tuner.model.metrics import TrialMetrics
    from tuner.model.protocol import TrainingProtocol
    from tuner.search.depth_tuner import DepthTuner
    from tuner.trials.request import TrialContext

    protocol = TrainingProtocol(weights=None, image_size=32)
    requests = []

    def serve(request, progress=None):
        requests.append(request)
        m = TrialMetrics(depth=request.depth, val_accuracy=0.9, val_loss=0.3, fit_seconds=5.0,
                         phase_seconds=[1.0, 4.0], epoch_seconds=[1.0], first_epoch_seconds=1.0,
                         steady_seconds=50.0, trainable_params=10, trained_layers_with_weights=1, host="h",
                         protocol_seconds=52.0, search_seconds=5.0, trial_mode="cached")
        extra = {keys.PRICED_BETWEEN: request.priced_between} if used else {}
        return {"metrics": m.as_attrs(), "extra": extra}

    strategy = make_strategy("tpe", Setup(space=SPACE, trials=20, objective=EFF))
    oracle = OptunaOracle(Search(study=study, space=SPACE, strategy=strategy, signatures=SIG, trials=20,
                                 objective=EFF), reporter=Reporter(quiet=True))
    oracle.probe_with(lambda d: None)
    context = TrialContext(protocol=protocol, num_classes=2, space=SPACE, images_dir=str(tmp_path))
    tuner = DepthTuner(oracle=oracle, hypermodel=DepthHyperModel(protocol=protocol, num_classes=2, space=SPACE),
                       objective=EFF, reporter=Reporter(quiet=True), directory=str(tmp_path),
                       project_name="p", context=context, serve=serve)
    study.enqueue_trial(SPACE.params_for(5))
    trial = oracle.create_trial("t")
    tuner.run_trial(trial)
    oracle._heartbeats.pop(trial.trial_id).stop()
    offered = requests[0].priced_between
    assert offered["depths"] == [0, 20]
    attrs = oracle.optuna_trials[trial.trial_id].user_attrs
    assert attrs[keys.PRICED_BETWEEN] == (offered if used else None)
