"""Protocol seconds of a cached trial, accounted from timed steps of the real plain model.

A cached trial never runs the plain protocol, yet its objective must mean
"what the plain protocol costs for this depth on this machine". Summing the
parts (the frozen part's forward, the cached suffix's step) misses the plain
step by -16 % to +25 % (issue 7), so the plain training and validation
steps are timed directly: a short probe of the real plain model at the
trial's depth, a few batches after the one that traces it. A phase then
costs ``epochs x (train batches x train step + val batches x val step)``
plus the tracing its first epoch pays. Medians of several per-step timings
move far less than one wall-clock reading of a whole run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import keras
import tensorflow as tf

PROBE_STEPS = 4  # timed batches after the traced one, for training and for validation


class _BatchClock(keras.callbacks.Callback):
    """Time stamps: the ``fit`` call and each batch's end (training); each test batch."""

    def __init__(self):
        super().__init__()
        self.train: list[float] = []
        self.test: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.train.append(time.perf_counter())

    def on_test_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.test.append(time.perf_counter())

    def on_test_batch_end(self, batch, logs=None):
        self.test.append(time.perf_counter())


@dataclass(frozen=True)
class StepCosts:
    """Seconds of one plain training / validation batch, and what tracing adds once."""

    train_step: float
    train_trace: float
    val_step: float
    val_trace: float

    def phase_seconds(self, *, epochs: int, train_examples: int, val_examples: int,
                      batch_size: int, traced: bool = True) -> float:
        # A short last batch costs about its share of a full one.
        per_epoch = (train_examples / batch_size * self.train_step
                     + val_examples / batch_size * self.val_step)
        return epochs * per_epoch + (self.train_trace + self.val_trace if traced else 0.0)

    def as_attrs(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_attrs(cls, attrs, prefix: str) -> StepCosts:
        return cls(**{k: float(attrs[f"{prefix}_{k}"]) for k in cls.__dataclass_fields__})


def _costs(stamps: list[float]) -> tuple[float, float]:
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    step = statistics.median(steps[1:]) if len(steps) > 1 else steps[0]
    return step, max(steps[0] - step, 0.0)


def probe_steps(model: keras.Model, train: tf.data.Dataset, val: tf.data.Dataset | None = None,
                steps: int = PROBE_STEPS, *, validation: StepCosts | None = None) -> StepCosts:
    """Time the compiled plain ``model``'s training and validation steps.

    Validation is the plain model's forward pass, the same at every depth:
    once timed (in the head phase), pass those costs as ``validation``.
    The probe's training steps change the model's trainable weights: call it
    after the trial's results are taken (or on a throw-away copy).
    """
    clock = _BatchClock()
    # From the fit call on: what fit does before its first step (building the
    # new optimizer, the symbolic pass) is part of what a plain phase pays.
    clock.train.append(time.perf_counter())
    model.fit(train.take(steps + 1), epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    train_step, train_trace = _costs(clock.train)
    if validation is not None:
        return StepCosts(train_step, train_trace, validation.val_step, validation.val_trace)
    model.evaluate(val.take(steps + 1), verbose=0, callbacks=[clock])
    val_step, val_trace = _costs(clock.test)
    return StepCosts(train_step, train_trace, val_step, val_trace)
