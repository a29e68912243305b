"""A model that takes raw images and gives class probabilities, built from Keras' own layers.

Training feeds the backbone preprocessed, resized images through a wrapper
that forces inference mode (``hypermodel.InferenceMode``). The handed-over
model must load with ``keras.saving.load_model`` in a process that has never
imported this tool, so it holds none of that: resizing, the backbone's
preprocessing (as the affine map it is, per channel), the trained backbone
and head, and for two classes a second output column, all stock layers.
"""

from __future__ import annotations

import keras
import numpy as np

from tuner.errors import UsageError
from tuner.model.backbones import BackboneSpec
from tuner.model.hypermodel import backbone_of

PIXEL_PROBE_SEED = 0


def affine_preprocessing(spec: BackboneSpec) -> tuple[np.ndarray, np.ndarray]:
    """``spec.preprocess`` as ``x @ matrix.T + offset`` per pixel (channel order may change).

    Every backbone Keras ships preprocesses pixel by pixel with a scale, a
    mean, or a channel swap; checked on random pixels, so a preprocessing that
    is not affine is refused rather than exported wrongly."""
    base = np.asarray(spec.preprocess(np.zeros((1, 1, 1, 3), np.float32)), np.float64).reshape(3)
    unit = np.eye(3, dtype=np.float32).reshape(3, 1, 1, 3) * 100.0
    columns = np.asarray(spec.preprocess(unit.copy()), np.float64).reshape(3, 3) - base
    matrix = columns.T / 100.0
    pixels = np.random.default_rng(PIXEL_PROBE_SEED).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    want = np.asarray(spec.preprocess(pixels.copy()), np.float64)
    got = pixels.astype(np.float64) @ matrix.T + base
    if not np.allclose(got, want, atol=1e-3):
        raise UsageError(f"{spec.name}'s preprocessing is not a per-pixel affine map: "
                         "it cannot be exported into a self-contained model")
    return matrix, base


def preprocessing_layer(spec: BackboneSpec) -> keras.layers.Layer | None:
    """The stock layer doing ``spec.preprocess``: Rescaling, a fixed 1x1 convolution, or none."""
    matrix, offset = affine_preprocessing(spec)
    if np.allclose(matrix, np.eye(3)) and np.allclose(offset, 0):
        return None  # the backbone preprocesses inside (EfficientNet, MobileNetV3)
    scale = matrix[0, 0]
    if np.allclose(matrix, np.eye(3) * scale) and np.allclose(offset, offset[0]):
        return keras.layers.Rescaling(float(scale), offset=float(offset[0]), name="preprocess")
    conv = keras.layers.Conv2D(3, 1, name="preprocess", trainable=False)
    conv.build((None, None, None, 3))
    conv.set_weights([matrix.T.reshape(1, 1, 3, 3).astype(np.float32), offset.astype(np.float32)])
    return conv


def serving_model(trained: keras.Model, spec: BackboneSpec, *, image_size: int,
                  name: str = "depth_tuner_export") -> keras.Model:
    """Raw uint8 RGB images of any size in, one probability per class out.

    Reuses the trained backbone and head layers of ``trained`` (a
    ``hypermodel.plain_model``); the head's dropout is left out, as in any
    prediction. Resizing is bilinear, as the search's data loaders resize.
    """
    backbone = backbone_of(trained)
    dense = trained.layers[-1]
    # float32, not uint8: Keras' Resizing keeps an integer input's dtype and
    # truncates (0.5 grey levels low on average); uint8 arrays are cast on the way in.
    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
    x = keras.layers.Resizing(image_size, image_size, interpolation="bilinear", name="resize")(inputs)
    pre = preprocessing_layer(spec)
    if pre is not None:
        x = pre(x)
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    p = dense(x)
    if dense.units == 1:  # a sigmoid: P(class 1); class 0 gets 1 - p
        p = keras.layers.Concatenate(name="probabilities")(
            [keras.layers.Rescaling(-1.0, offset=1.0, name="complement")(p), p])
    return keras.Model(inputs, p, name=name)
