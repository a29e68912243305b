"""DepthHyperModel works under Keras Tuner's own tuners, with no depth-tuner machinery around it.

Why: the tool's promise is that Keras Tuner builds and times the models, so
a Keras Tuner user must be able to hand ``DepthHyperModel`` to
``kt.RandomSearch`` with ``objective=kt.Objective("efficiency", "max")``
and read the depth and its efficiency from Keras Tuner's results; and the
tool's own tuner reads the same metrics ``fit`` returns.
"""

from __future__ import annotations

import math

import keras_tuner as kt
import numpy as np
import pytest

from tuner.data.fake import fake_arrays
from tuner.model.hypermodel import DepthHyperModel
from tuner.model.metrics import TrialMetrics
from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace


# get_best_models rebuilds the model as build() makes it, for the head phase: Keras warns that the
# saved fine-tuning optimizer's state is not loaded; the weights are (checked below).
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer:UserWarning")
def test_random_search_finds_the_most_efficient_depth(tmp_path, calibrated_weights):
    protocol = TrainingProtocol(weights=calibrated_weights, image_size=32, head_epochs=1, finetune_epochs=1,
                        batch_size=16)
    hypermodel = DepthHyperModel(protocol=protocol, num_classes=5, space=DepthSpace(0, 12))
    tuner = kt.RandomSearch(hypermodel, objective=kt.Objective("efficiency", "max"), max_trials=2,
                            seed=3, directory=str(tmp_path), project_name="depth")
    train = fake_arrays(48, num_classes=5, image_size=32, seed=1)
    val = fake_arrays(32, num_classes=5, image_size=32, seed=2)
    tuner.search(train=train, validation=val, verbose=0)

    trials = tuner.oracle.get_best_trials(num_trials=2)
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    for trial in trials:
        m = {name: trial.metrics.get_last_value(name)
             for name in ("efficiency", "val_accuracy", "protocol_seconds")}
        assert m["protocol_seconds"] > 0 and 0 <= m["val_accuracy"] <= 1
        assert m["efficiency"] == pytest.approx(m["val_accuracy"] / m["protocol_seconds"])
        assert trial.metrics.get_last_value("depth") == trial.hyperparameters.get("depth")
    best = trials[0]
    assert 0 <= best.hyperparameters.get("depth") <= 12
    assert best.score == max(t.score for t in trials)
    assert tuner.get_best_hyperparameters()[0].get("depth") == best.hyperparameters.get("depth")
    # Keras Tuner's checkpoint holds the trained model: it reproduces the trial's accuracy.
    model = tuner.get_best_models()[0]
    from tuner.data.batches import Arrays, image_transform, validation_batches
    from tuner.model.backbones import get_backbone_spec

    batches = validation_batches(Arrays(*val), batch_size=16,
                                 transform=image_transform(get_backbone_spec(protocol.backbone).preprocess))
    got = model.evaluate(batches, verbose=0, return_dict=True)["accuracy"]
    assert got == pytest.approx(best.metrics.get_last_value("val_accuracy"), abs=1e-6)


def test_fit_returns_plain_floats_that_the_tools_objective_reads():
    """What fit returns (and the tool's tuner reads): every stored number, efficiency added."""
    from objectives import OBJECTIVES

    m = TrialMetrics(depth=4, val_accuracy=0.8, val_loss=0.5, fit_seconds=20.0, phase_seconds=[8.0, 12.0],
                     epoch_seconds=[8.0, 12.0], first_epoch_seconds=8.0, steady_seconds=18.0,
                     trainable_params=1000, trained_layers_with_weights=3, host="h",
                     protocol_seconds=20.0, extra={"teardown_seconds": 0.1, "note": "text"})
    report = m.keras_metrics()
    assert all(type(v) is float and math.isfinite(v) for v in report.values())
    assert report["efficiency"] == pytest.approx(0.04) and report["depth"] == 4.0
    assert "search_seconds" not in report  # NaN: not measured here
    assert {"host", "note", "losses", "phase_seconds"}.isdisjoint(report)
    assert report["teardown_seconds"] == 0.1
    for name, objective in OBJECTIVES.items():
        assert objective(report) == objective(m.as_attrs()), name
    assert report["efficiency"] == OBJECTIVES["efficiency"](m.as_attrs())


def test_fit_refuses_arguments_the_protocol_sets():
    hypermodel = DepthHyperModel(protocol=TrainingProtocol(weights=None, image_size=32), num_classes=5,
                                 space=DepthSpace(0, 12))
    hp = hypermodel.hyperparameters(3)
    with pytest.raises(kt.errors.FatalTypeError, match="epochs"):
        hypermodel.fit(hp, None, train=None, validation=None, epochs=5)
    with pytest.raises(kt.errors.FatalTypeError, match="positional"):
        hypermodel.fit(hp, None, np.zeros(3))
