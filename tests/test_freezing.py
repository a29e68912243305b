"""Depth k trains exactly the top k backbone layers, every Keras layer counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import keras_tuner as kt
import pytest

from tuner.errors import UsageError
from tuner.model import signatures
from tuner.model.backbones import (
    BACKBONES,
    count_signatures,
    get_backbone_spec,
    set_depth,
    split_at_depth,
)
from tuner.model.hypermodel import DepthHyperModel, backbone_of
from tuner.model.protocol import TrainingProtocol
from tuner.model.signatures import depth_signatures
from tuner.model.space import DepthSpace


@pytest.fixture(scope="module")
def mobilenet():
    return keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))


def _ids(weights):
    return {id(w) for w in weights}


def test_mobilenet_v2_has_154_layers(mobilenet):
    assert len(mobilenet.layers) == 154
    assert len(depth_signatures("MobileNetV2")) == 155


@pytest.mark.parametrize("depth", [0, 1, 3, 15, 30, 100, 154])
def test_top_k_layers_and_nothing_else_train(mobilenet, depth):
    set_depth(mobilenet, depth)
    frozen, trainable = split_at_depth(mobilenet, depth)
    assert len(trainable) == depth and len(frozen) == 154 - depth
    assert all(layer.trainable for layer in trainable)
    assert not any(layer.trainable for layer in frozen)
    expected = _ids(w for layer in trainable for w in layer.trainable_weights)
    assert _ids(mobilenet.trainable_weights) == expected


def test_depth_cutting_a_residual_block(mobilenet):
    # Depth 15 ends inside block_15 (its boundary as a depth is 20): the Add
    # of block_15 trains, the expand conv of block_15 stays frozen.
    set_depth(mobilenet, 15)
    names = [layer.name for layer in mobilenet.layers]
    top = names[-15:]
    assert "block_15_add" in top and "block_15_expand" not in top
    assert mobilenet.get_layer("block_15_project").trainable
    assert not mobilenet.get_layer("block_15_expand").trainable
    assert not mobilenet.get_layer("block_15_depthwise").trainable


def test_layers_without_weights_make_depths_equivalent():
    sig = depth_signatures("MobileNetV2")
    assert sig[0] == sig[1] == 0  # the top layer is a ReLU
    assert sig[154] == sig[153]  # the bottom layer is the Input
    assert len(set(sig)) < len(sig) - 40  # ~50 layers hold no weights


def test_depth_outside_the_backbone_is_refused(mobilenet):
    with pytest.raises(UsageError, match="outside 0..154"):
        set_depth(mobilenet, 155)


@pytest.mark.parametrize("name", sorted(set(BACKBONES) - {"MobileNetV2"}))
def test_other_backbones_have_their_own_depth_range(name):
    n = len(depth_signatures(name)) - 1
    spec = get_backbone_spec(name)
    assert n != 154 and n > 50
    assert spec.name == name


def test_hypermodel_head_trains_in_phase_1_and_depth_counts_in_phase_2():
    hm = DepthHyperModel(protocol=TrainingProtocol(weights=None, image_size=32), num_classes=5,
                         space=DepthSpace(0, 154))
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    model = hm.build(hp)
    backbone = backbone_of(model)
    head_weights = _ids(model.trainable_weights) - _ids(backbone.weights)
    assert head_weights
    assert _ids(model.trainable_weights) == head_weights  # phase 1: backbone frozen
    assert model.layers[-1].units == 5 and model.layers[-1].activation.__name__ == "softmax"
    set_depth(backbone, 20)
    _, top = split_at_depth(backbone, 20)
    assert _ids(model.trainable_weights) == head_weights | _ids(
        w for layer in top for w in layer.trainable_weights)


def test_two_classes_get_one_sigmoid_unit():
    hm = DepthHyperModel(protocol=TrainingProtocol(weights=None, image_size=32), num_classes=2,
                         space=DepthSpace(0, 154))
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    out = hm.build(hp).layers[-1]
    assert out.units == 1 and out.activation.__name__ == "sigmoid"


def _count_in_fresh_process(cache_home) -> tuple[int, bool]:
    code = ("import sys; from tuner.model.signatures import n_layers; "
            "print(n_layers('MobileNetV2'), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, XDG_CACHE_HOME=str(cache_home)),
                         capture_output=True, text=True, check=True, timeout=300).stdout.split()
    return int(out[0]), out[1] == "True"


def test_layer_counts_are_kept_so_table_replays_need_no_tensorflow(tmp_path):
    n = len(count_signatures("MobileNetV2")) - 1
    assert _count_in_fresh_process(tmp_path) == (n, True)  # built once, TensorFlow imported
    assert _count_in_fresh_process(tmp_path) == (n, False)  # then read from the user's cache


@pytest.mark.parametrize("kept", ["{not json", '{"keras": "0.0.1", "backbones": {"mobilenetv2": [0, 1]}}',
                                  '{"keras": "KERAS", "backbones": {"mobilenetv2": "oops"}}'])
def test_unreadable_or_stale_layer_counts_are_rebuilt(tmp_path, monkeypatch, kept):
    from importlib.metadata import version

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = tmp_path / "depth-tuner" / "signatures.json"
    path.parent.mkdir()
    path.write_text(kept.replace("KERAS", version("keras")))
    signatures.depth_signatures.cache_clear()
    try:
        assert signatures.depth_signatures("mobilenetv2") == count_signatures("MobileNetV2")
    finally:
        signatures.depth_signatures.cache_clear()
    assert json.loads(path.read_text())["backbones"]["mobilenetv2"] == list(count_signatures("MobileNetV2"))


def test_an_unwritable_cache_folder_costs_only_the_rebuild(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))  # depth-tuner/ cannot be made there
    signatures.depth_signatures.cache_clear()
    try:
        assert signatures.n_layers("MobileNetV2") == len(count_signatures("MobileNetV2")) - 1
    finally:
        signatures.depth_signatures.cache_clear()


@pytest.mark.parametrize("name", ["MobileNetV3Small", "MobileNetV2"])
def test_every_cache_point_reproduces_the_backbone(name):
    """A cached trial runs the backbone above a cache point on the activations below it. MobileNetV3's
    operations that are not layers (``x + 3``, ``x * y``) once hid every cache point but the images
    and left the full backbone's depth without one (its cached search stopped at once)."""
    import numpy as np

    from tuner.model.backbones import build_backbone, get_backbone_spec
    from tuner.model.cut import IMAGES, BackboneCuts

    backbone = build_backbone(get_backbone_spec(name), image_size=32, weights=None)
    cuts = BackboneCuts(backbone)
    assert cuts.cache_point_for(cuts.n).layer == IMAGES
    inner = [p for p in cuts.cache_points.values() if p.layer != IMAGES]
    assert len(inner) >= 10
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32") * 255
    full = backbone(x, training=False).numpy()
    for point in inner:
        below = cuts.prefix([point])(x, training=False)
        np.testing.assert_allclose(cuts.suffix(point)(below, training=False).numpy(), full, atol=1e-4)
