"""The one place where training time is measured.

``fit_seconds`` is the wall clock of both ``fit`` calls until their
training ended (Keras' ``on_train_end``), validation included, as the
thesis measured it; per-epoch seconds come from the same clock so that
tracing overhead can be separated afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import keras


class EpochClock(keras.callbacks.Callback):
    """Seconds of every epoch (validation included). The hook gets (epoch, seconds so far,
    the epoch's logs); when it returns True, training stops after this epoch (``stopped``)."""

    def __init__(self, on_epoch: Callable[[int, float, dict], bool | None] | None = None):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0
        self._on_epoch = on_epoch
        self.train_end: float | None = None  # perf_counter() when training ended
        self.stopped = False

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        if self._on_epoch and self._on_epoch(len(self.seconds), sum(self.seconds), dict(logs or {})):
            self.stopped = self.model.stop_training = True

    def on_train_end(self, logs=None):
        # When training ended: what ``fit`` does after that (tearing down its
        # input pipeline) is not training (benchmarks/RESULTS.md).
        self.train_end = time.perf_counter()

