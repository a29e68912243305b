"""Pretrained backbones by name, and the one rule for freezing them.

Depth k means: the top k layers of ``backbone.layers`` are trainable in
phase 2, every Keras layer counted (Input, ReLU, Add and ZeroPadding too),
as the thesis counted them. Layers without weights make neighbouring depths
train exactly the same weights; ``weight_signature`` names that class.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from tuner.errors import UsageError, one_line


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    constructor: Callable[..., keras.Model]
    preprocess: Callable
    min_size: int


def _apps():
    a = keras.applications
    return {
        "MobileNetV2": BackboneSpec(
            "MobileNetV2", a.MobileNetV2, a.mobilenet_v2.preprocess_input, 32,
        ),
        "EfficientNetB0": BackboneSpec(
            "EfficientNetB0", a.EfficientNetB0, a.efficientnet.preprocess_input, 32
        ),
        "ResNet50": BackboneSpec("ResNet50", a.ResNet50, a.resnet50.preprocess_input, 32),
        "MobileNetV3Small": BackboneSpec(
            "MobileNetV3Small", a.MobileNetV3Small, a.mobilenet_v3.preprocess_input, 32
        ),
    }


BACKBONES: dict[str, BackboneSpec] = _apps()


def get_backbone_spec(name: str) -> BackboneSpec:
    for key, spec in BACKBONES.items():
        if key.lower() == name.lower():
            return spec
    raise UsageError(
        f"unknown backbone {name!r}: use one of {', '.join(BACKBONES)}"
    )


def weights_source(weights: str) -> str | None:
    """Normalise ``--weights``: 'imagenet', None (random) or an existing path."""
    if weights.lower() == "imagenet":
        return "imagenet"
    if weights.lower() == "none":
        return None
    if not os.path.isfile(weights):
        raise UsageError(
            f"--weights {weights!r} is neither 'imagenet', 'none' nor an existing "
            ".weights.h5/.h5 file: pass one of those"
        )
    if not weights.endswith(".h5"):
        raise UsageError(
            f"--weights {weights!r}: Keras loads backbone weights from a "
            ".weights.h5 or .h5 file; pass such a file"
        )
    return os.path.abspath(weights)


def check_image_size(spec: BackboneSpec, image_size: int) -> None:
    if image_size < spec.min_size:
        raise UsageError(
            f"--image-size {image_size} is too small for {spec.name}: "
            f"use {spec.min_size} or more"
        )


def build_backbone(
    spec: BackboneSpec, *, image_size: int, weights: str | None
) -> keras.Model:
    """Make the backbone; a local weights file must fit it exactly."""
    check_image_size(spec, image_size)
    shape = (image_size, image_size, 3)
    if weights is None or weights == "imagenet":
        try:
            return spec.constructor(include_top=False, weights=weights, input_shape=shape)
        except Exception as exc:  # Keras' download raises plain Exceptions
            if weights == "imagenet":
                raise UsageError(
                    f"could not get ImageNet weights for {spec.name} ({one_line(exc)}): "
                    "connect to the internet once (Keras caches them in "
                    f"{os.path.join(os.environ.get('KERAS_HOME', '~/.keras'), 'models')}), "
                    "or pass --weights PATH to a local file, or --weights none"
                ) from None
            raise
    model = spec.constructor(include_top=False, weights=None, input_shape=shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns per layer before it raises
            model.load_weights(weights)
    except Exception as exc:
        raise UsageError(
            f"weights file {weights} does not fit {spec.name} with include_top=False "
            f"({one_line(exc)}): pass a file saved from "
            f"keras.applications.{spec.name}(include_top=False)"
        ) from None
    return model


def set_depth(backbone: keras.Model, depth: int) -> None:
    """Make exactly the top ``depth`` layers trainable, the rest frozen."""
    n = len(backbone.layers)
    if not 0 <= depth <= n:
        raise UsageError(f"depth {depth} is outside 0..{n} for {backbone.name}")
    backbone.trainable = True
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= n - depth


def split_at_depth(backbone: keras.Model, depth: int) -> tuple[list, list]:
    """(frozen layers, trainable layers) of ``backbone`` at ``depth``.

    Kept separate so that later work can cache the frozen part's output.
    """
    n = len(backbone.layers)
    return list(backbone.layers[: n - depth]), list(backbone.layers[n - depth :])


def layers_with_weights(layers) -> int:
    return sum(1 for layer in layers if layer.weights)


def count_signatures(name: str) -> tuple[int, ...]:
    """``signatures.depth_signatures`` from a backbone built with random weights at the
    smallest size: the layer list depends on neither. Use that function: it keeps them."""
    spec = get_backbone_spec(name)
    model = spec.constructor(
        include_top=False, weights=None, input_shape=(spec.min_size * 2,) * 2 + (3,)
    )
    has = [bool(layer.weights) for layer in reversed(model.layers)]
    sigs, count = [0], 0
    for h in has:
        count += h
        sigs.append(count)
    del model
    keras.backend.clear_session()
    return tuple(sigs)


def calibrate_batchnorm(backbone: keras.Model, images, *, batch_size: int | None = None) -> None:
    """Give random weights BatchNormalization statistics that fit real activations.

    With ``weights=None`` every BatchNormalization layer normalises with mean
    0 and variance 1, so a frozen backbone in inference mode outputs nearly
    the same features for every image and no depth learns anything. Training-
    mode passes over ``images`` (already preprocessed) set each layer's
    statistics to the average of the batches' statistics (one batch, the
    default: exactly those of ``images``): features a head can learn from,
    without a download. ``batch_size`` bounds memory at large image sizes.

    The passes run as one traced graph, which frees each activation once used:
    eagerly, Keras holds a whole pass's activations, and ResNet50 at 224 px in
    batches of 64 kept the worker at 10.7 GiB for the rest of its search
    (2.3 GiB traced; benchmarks/RESULTS.md, "Memory at 224 px"). A training-mode
    pass normalises with its batch's own statistics, so one pass per batch with
    momentum 0 reads that batch's statistics, and their mean is the average.
    """
    import tensorflow as tf

    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    step = len(images) if batch_size is None else batch_size
    forward = tf.function(lambda x: backbone(x, training=True),
                          input_signature=[tf.TensorSpec([None, *images.shape[1:]], tf.float32)])
    means = [np.zeros(layer.moving_mean.shape) for layer in norms]
    variances = [np.zeros(layer.moving_variance.shape) for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0  # a pass leaves exactly its batch's statistics
        starts = range(0, len(images), step)
        for start in starts:
            forward(tf.constant(images[start:start + step], tf.float32))
            for mean, variance, layer in zip(means, variances, norms):
                mean += layer.moving_mean.numpy()
                variance += layer.moving_variance.numpy()
        for mean, variance, layer in zip(means, variances, norms):
            layer.moving_mean.assign(mean / len(starts))
            layer.moving_variance.assign(variance / len(starts))
    finally:
        for layer, m in zip(norms, momenta):
            layer.momentum = m
