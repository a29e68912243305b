"""Generated images a random backbone can learn from: the offline demo's data.

Each class has its own colour and the direction of a brightness ramp
across the image; every image jitters both a little and adds faint pixel
noise. The class signal is deliberately low-frequency: a backbone with
random weights (``--weights none``, BatchNormalization calibrated) passes
smooth structure up to its top layers but scrambles per-pixel noise within
a few blocks, so images that differ only by noise (colour plus strong
noise, the earlier generator) stay at chance whatever the depth. Everything
is drawn from the seed: the same arguments give the same images.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Recorded in the study's configuration (data.fake_images): a study made
# with other generated images is not resumed with these.
GENERATOR = "colour-and-ramp-direction-v1"

RAMP_AMPLITUDE = 110.0  # grey levels from the ramp's centre to its ends
ANGLE_JITTER = 0.15  # radians
COLOUR_JITTER = 8.0  # grey levels, per channel and image
PIXEL_NOISE = 2.0  # grey levels, per pixel


def fake_arrays(n: int, *, num_classes: int, image_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (n, size, size, 3) and int64 labels, classes balanced and shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    colours = rng.uniform(60, 195, size=(num_classes, 3))
    angles = 2 * np.pi * np.arange(num_classes) / num_classes + rng.uniform(0, 2 * np.pi)
    grid = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size - 0.5
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    for i, c in enumerate(labels):
        angle = angles[c] + rng.normal(0, ANGLE_JITTER)
        ramp = RAMP_AMPLITUDE * (xx * np.cos(angle) + yy * np.sin(angle))
        colour = colours[c] + rng.normal(0, COLOUR_JITTER, size=3)
        noise = rng.normal(0, PIXEL_NOISE, size=(image_size, image_size, 3))
        images[i] = np.clip(np.rint(colour + ramp[..., None] + noise), 0, 255)
    return images, labels.astype(np.int64)


def fake_images(n: int, *, num_classes: int, image_size: int, seed: int) -> tf.data.Dataset:
    """The same images as ``fake_arrays``, as a dataset of (image, label) pairs."""
    images, labels = fake_arrays(n, num_classes=num_classes, image_size=image_size, seed=seed)
    return tf.data.Dataset.from_tensor_slices((images, labels))
