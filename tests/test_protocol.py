"""The two-phase protocol changes exactly the weights it should, and is timed."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from objectives import OBJECTIVES
from tuner.data.batches import dataset_arrays
from tuner.data.sources import load_images, resolve_data_spec
from tuner.model.backbones import split_at_depth
from tuner.model.hypermodel import DepthHyperModel, backbone_of
from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace


@pytest.fixture(scope="module")
def data():
    spec = resolve_data_spec(dataset="tf_flowers", fake=True, fake_examples=(32, 16))
    train, val = load_images(spec, image_size=32, seed=0)
    return SimpleNamespace(train=dataset_arrays(train), val=dataset_arrays(val))


def _train(data, depth, weights):
    # A high learning rate so that every trainable weight visibly moves;
    # calibrated weights, so that the frozen part's features are not degenerate.
    protocol = TrainingProtocol(weights=weights, image_size=32, head_epochs=1, finetune_epochs=1,
                        head_lr=1e-2, finetune_lr=1e-2)
    hm = DepthHyperModel(protocol=protocol, num_classes=5, space=DepthSpace(0, 154))
    hp = hm.hyperparameters(depth)
    model = hm.build(hp)
    backbone = backbone_of(model)
    before = {id(w): keras.ops.convert_to_numpy(w) for w in model.weights}
    metrics = hm.run_protocol(hp, model, train=data.train, validation=data.val)
    changed = {id(w) for w in model.weights if not np.array_equal(before[id(w)], keras.ops.convert_to_numpy(w))}
    return model, backbone, changed, metrics


@pytest.mark.parametrize("depth", [0, 12])
def test_only_head_and_top_k_layers_change(data, depth, calibrated_weights):
    model, backbone, changed, _ = _train(data, depth, calibrated_weights)
    frozen, top = split_at_depth(backbone, depth)
    frozen_ids = {id(w) for layer in frozen for w in layer.weights}
    assert not changed & frozen_ids, "a frozen backbone layer changed"
    # Inference mode: BatchNormalization statistics never move, even when trainable.
    stats = {id(w) for layer in top for w in layer.non_trainable_weights}
    assert not changed & stats, "BatchNormalization statistics moved"
    top_trainable = {id(w) for layer in top for w in layer.trainable_weights}
    # A weight whose gradient happens to be exactly zero may stay put; the
    # bulk of the top layers must train.
    assert len(top_trainable & changed) >= 0.8 * len(top_trainable), "the top layers did not train"
    head = {id(w) for w in model.trainable_weights} - {id(w) for w in backbone.weights}
    assert head and head <= changed, "the head did not train"


def test_metrics_are_timed_and_consistent(data):
    _, _, _, m = _train(data, 5, None)
    assert m.depth == 5
    assert len(m.epoch_seconds) == 2 and len(m.phase_seconds) == 2
    assert m.first_epoch_seconds == m.epoch_seconds[0]
    assert 0 < sum(m.epoch_seconds) <= m.fit_seconds
    assert m.fit_seconds == pytest.approx(sum(m.phase_seconds))
    assert 0 < m.steady_seconds <= m.fit_seconds + 1e-9
    assert 0 <= m.val_accuracy <= 1
    assert m.trainable_params > 0 and m.host
    attrs = m.as_attrs()
    assert OBJECTIVES["efficiency"](attrs) == pytest.approx(m.val_accuracy / m.fit_seconds)


def test_phase_seconds_end_with_training_not_with_the_pipeline_teardown(monkeypatch):
    """fit can return long after its last epoch (tf.data teardown, 0-37 s here): not training."""
    import time

    from tuner.data.batches import Arrays
    from tuner.model.hypermodel import compile_for, run_phase

    rng = np.random.default_rng(0)
    train = Arrays(rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64))
    val = Arrays(rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 3, 16))
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    compile_for(model, 3, 1e-2)
    fit = keras.Model.fit

    def slow_teardown(self, *args, **kwargs):
        history = fit(self, *args, **kwargs)
        time.sleep(1.0)  # after on_train_end, before fit returns
        return history

    monkeypatch.setattr(keras.Model, "fit", slow_teardown)
    t0 = time.perf_counter()
    run = run_phase(model, train, val, protocol=TrainingProtocol(head_epochs=2), phase=1, depth=0)
    wall = time.perf_counter() - t0
    assert run.teardown_seconds >= 1.0
    assert run.seconds < wall - 1.0
    assert run.seconds >= sum(run.epoch_seconds)
