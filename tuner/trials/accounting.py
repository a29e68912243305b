"""Protocol seconds of a cached trial, accounted from timed steps of the real plain model.

A cached trial never runs the plain protocol, yet its objective must mean
"what the plain protocol costs for this depth on this machine". Summing the
parts (the frozen part's forward, the cached suffix's step) misses the plain
step by -16 % to +25 % (issue 7), so the plain training and validation
steps are timed directly: a short probe of the real plain model at the
trial's depth, a few batches after the one that traces it, in bursts some
seconds apart. A phase then costs ``epochs x (train batches x train step +
val batches x val step)`` plus the tracing its first epoch pays. Validated
against interleaved plain runs in benchmarks/RESULTS.md: within 1 % of a
plain phase timed next to it, once tf.data's autotuning was off.
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


def _costs(bursts: list[list[float]]) -> tuple[float, float]:
    """Step: the median over every burst's steps but its first; trace: what the very first step adds."""
    steps = [[b - a for a, b in zip(stamps, stamps[1:])] for stamps in bursts]
    timed = [s for burst in steps for s in burst[1:]]
    step = statistics.median(timed) if timed else steps[0][0]
    return step, max(steps[0][0] - step, 0.0)


class StepProbe:
    """Times the compiled plain ``model``'s training and validation steps, in one or more bursts.

    The machine's speed drifts by ~10 % from one ten-second window to the
    next here, and one burst sees one window: bursts spread over a longer
    stretch (the head phase probes before and after its own work) average
    that out. Validation is the plain model's forward pass, the same at
    every depth: once timed (in the head phase), pass those costs as
    ``validation``. The probe's training steps change the model's trainable
    weights: run it after the trial's results are taken (or on a copy).
    """

    def __init__(self, model: keras.Model, train: tf.data.Dataset, val: tf.data.Dataset | None = None, *,
                 validation: StepCosts | None = None):
        self.model, self.train, self.val, self.validation = model, train, val, validation
        self._train: list[list[float]] = []
        self._test: list[list[float]] = []

    def run(self, steps: int = PROBE_STEPS) -> StepProbe:
        clock = _BatchClock()
        # From the fit call on: what fit does before its first step (building the
        # new optimizer, the symbolic pass) is part of what a plain phase pays.
        clock.train.append(time.perf_counter())
        self.model.fit(self.train.take(steps + 1), epochs=1, verbose=0, shuffle=False, callbacks=[clock])
        self._train.append(clock.train)
        if self.validation is None:
            self.model.evaluate(self.val.take(steps + 1), verbose=0, callbacks=[clock])
            self._test.append(clock.test)
        return self

    def costs(self) -> StepCosts:
        train_step, train_trace = _costs(self._train)
        if self.validation is not None:
            return StepCosts(train_step, train_trace, self.validation.val_step, self.validation.val_trace)
        return StepCosts(train_step, train_trace, *_costs(self._test))
