"""The batches every trial trains on, in an order fixed by the seed and the epoch.

The order of epoch e is a permutation drawn from ``(seed, e)`` alone, never
from a shuffle buffer's hidden state, so a plain trial (images through the
whole backbone) and a cached trial (activations at a cut) see the same
examples in the same batches, whatever was iterated before: phase 2 of a
cached trial starts at epoch ``head_epochs`` exactly as the plain run does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass
class Arrays:
    """Inputs (images or cached activations) and labels of one split, in memory."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def epoch_order(n: int, *, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def _gathered(indices: tf.data.Dataset, data: Arrays, transform: Callable | None) -> tf.data.Dataset:
    # The whole array stays in host memory, where tf.data gathers each batch; only batches go to
    # a GPU (a constant made eagerly would live on the default device, the GPU where there is one).
    with tf.device("/CPU:0"):
        x, y = tf.constant(data.x), tf.constant(data.y)

    def take(idx):
        xs = tf.gather(x, idx)
        return (transform(xs) if transform else xs), tf.gather(y, idx)

    # One batch ahead is enough on a CPU whose cores train the model. With
    # nothing left to tune, tf.data's autotuning only cost time: its thread's
    # shutdown held up the end of validation passes and fit's return, at random
    # (benchmarks/pipeline_pauses.py).
    options = tf.data.Options()
    options.autotune.enabled = False
    return indices.map(take).prefetch(2).with_options(options)


def training_batches(data: Arrays, *, seed: int, first_epoch: int, epochs: int, batch_size: int,
                     transform: Callable | None = None) -> tf.data.Dataset:
    """``epochs`` epochs of batches, one after the other (then again): fit it with ``steps_per_epoch``.

    Each epoch is batched on its own, so its last batch may be short, as in
    a plain ``shuffle().batch()`` pipeline.
    """
    n = len(data)
    ds = None
    for e in range(first_epoch, first_epoch + epochs):
        one = tf.data.Dataset.from_tensor_slices(epoch_order(n, seed=seed, epoch=e)).batch(batch_size)
        ds = one if ds is None else ds.concatenate(one)
    # Endless: with a finite dataset, Keras starts a new iterator after the
    # last epoch (its input pipeline and prefetch included) and then throws
    # it away, which cost seconds per fit, outside every epoch.
    return _gathered(ds.repeat(), data, transform)


def validation_batches(data: Arrays, *, batch_size: int, transform: Callable | None = None) -> tf.data.Dataset:
    return _gathered(tf.data.Dataset.range(len(data)).batch(batch_size), data, transform)


def image_transform(preprocess: Callable) -> Callable:
    """uint8 images -> the backbone's input, inside the input pipeline."""
    return lambda x: preprocess(tf.cast(x, tf.float32))


def dataset_arrays(ds: tf.data.Dataset) -> Arrays:
    """Materialise (image, label) pairs; the cached images fit in memory by design."""
    xs, ys = [], []
    for x, y in ds.batch(512):
        xs.append(x.numpy())
        ys.append(y.numpy())
    return Arrays(np.concatenate(xs), np.concatenate(ys))
