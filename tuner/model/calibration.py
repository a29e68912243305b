"""Random backbone weights with BatchNormalization calibrated on the training images.

``--weights none`` means "no pretrained knowledge", not "degenerate
features": with untrained statistics (mean 0, variance 1) the frozen
backbone's output is almost the same for every image and every depth ends
at chance. Before the first trial the search draws the random weights from
the seed, calibrates their statistics on the study's training images
(``backbones.calibrate_batchnorm``) and writes them to one file; the shared
head phase, cached trials and plain trials all build their backbone from
that file, so both trial modes train the very same backbone, and the
activation cache is keyed on the file's content.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np

from tuner.model.backbones import build_backbone, calibrate_batchnorm, get_backbone_spec
from tuner.model.protocol import TrainingProtocol

# At most this many training images (the first ones, in their stored order)
# set the statistics, in batches of CALIBRATION_BATCH: bounded time and memory
# at any image size, and the same images in every run.
CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 64


def needs_calibration(protocol: TrainingProtocol) -> bool:
    return protocol.weights is None


def calibrated_weights(protocol: TrainingProtocol, train_images: np.ndarray, directory: str) -> str:
    """Write the seed's random weights, calibrated on ``train_images`` (uint8), to a file; its path."""
    spec = get_backbone_spec(protocol.backbone)
    path = os.path.join(directory, f"{spec.name}-{protocol.image_size}-seed{protocol.seed}"
                                   "-calibrated.weights.h5")
    return write_calibrated_weights(protocol, train_images, path)


def write_calibrated_weights(protocol: TrainingProtocol, images: np.ndarray, path: str, *,
                             batch_size: int | None = CALIBRATION_BATCH) -> str:
    """``calibrated_weights`` to a file of the caller's choosing (tests and benchmarks).

    ``batch_size=None`` calibrates on all images in one pass (exact statistics
    of those images; memory grows with their number)."""
    spec = get_backbone_spec(protocol.backbone)
    # A fresh session: the file's bytes (layer names included), not only its
    # values, are the same in every run, so the activation cache keyed on them is reused.
    keras.backend.clear_session()
    keras.utils.set_random_seed(protocol.seed)  # the weights every trial drew before
    backbone = build_backbone(spec, image_size=protocol.image_size, weights=None)
    sample = spec.preprocess(np.asarray(images[:CALIBRATION_IMAGES], dtype=np.float32))
    calibrate_batchnorm(backbone, sample, batch_size=batch_size)
    backbone.save_weights(path)
    keras.backend.clear_session()
    return path


def trial_protocol(protocol: TrainingProtocol, weights_file: str | None) -> TrainingProtocol:
    """The protocol trials build from: the calibrated file in place of random weights."""
    return protocol if weights_file is None else dataclasses.replace(protocol, weights=weights_file)
