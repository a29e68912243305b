"""Protocol seconds of a cached trial, accounted from timed steps of the real plain model.

A cached trial never runs the plain protocol, yet its objective must mean
"what the plain protocol costs for this depth on this machine". Summing the
parts (the frozen part's forward, the cached suffix's step) misses the plain
step by tens of percent, so the plain training and validation steps are
timed directly: a short probe of the real plain model at the
trial's depth, a few batches after the one that traces it, in bursts some
seconds apart. A phase then costs ``epochs x (train batches x train step +
val batches x val step)`` plus the tracing its first epoch pays.

Which steps, and which statistic (measured: benchmarks/RESULTS.md, "An honest
price"): a plain phase's seconds are the *sum* of its steps, so a step costs
the *mean* of the timed ones, not their median (the steps are right-skewed:
what a busy machine takes from some of them is paid by the sum). And a
plain phase's steps run back to back, while the first burst's steps come
right after the trace and run faster than sustained ones. The step is
therefore accounted from the *last* burst, the one that follows the caller's
own work (the cached trial's training, the head phase's pass over the
images); the first burst gives the trace.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

import keras
import tensorflow as tf

PROBE_STEPS = 4  # timed batches after the traced one, for training and for validation
# Under XLA, what compiling a short last batch's shape costs, as a share of the first step's
# trace (tracing and compiling the full shape): measured in the head phase's own probe, where a
# burst crossed an epoch's end (benchmarks/RESULTS.md, "XLA as a protocol choice").
SHORT_SHAPE_COMPILE = 0.65
COST_FIELDS = ("train_step", "train_trace", "val_step", "val_trace")  # what accounted seconds are made of


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
    # The timed seconds they come from (``StepProbe.samples``), kept with them for the record.
    samples: dict | None = field(default=None, compare=False)

    def phase_seconds(self, *, epochs: int, train_examples: int, val_examples: int,
                      batch_size: int, traced: bool = True, jit_compile: bool = False) -> float:
        """A plain phase's seconds. A short last batch costs about its share of a full one; under
        XLA (``jit_compile``) a plain fit compiles its new shape once per phase, which costs
        ``SHORT_SHAPE_COMPILE`` of the first step's trace."""
        per_epoch = (train_examples / batch_size * self.train_step
                     + val_examples / batch_size * self.val_step)
        if not traced:
            return epochs * per_epoch
        traces = self.train_trace + self.val_trace
        if jit_compile:
            traces += SHORT_SHAPE_COMPILE * ((self.train_trace if train_examples % batch_size else 0.0)
                                             + (self.val_trace if val_examples % batch_size else 0.0))
        return epochs * per_epoch + traces

    def as_attrs(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_{k}": v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_attrs(cls, attrs, prefix: str) -> StepCosts:
        return cls(**{k: float(attrs[f"{prefix}_{k}"]) for k in COST_FIELDS})


def steps_of(bursts: list[list[float]]) -> list[list[float]]:
    """Each burst's step seconds, from its time stamps (its first: the fit call to the first batch's end)."""
    return [[b - a for a, b in zip(stamps, stamps[1:])] for stamps in bursts]


def _costs(bursts: list[list[float]]) -> tuple[float, float]:
    """Step: the mean of the last burst's steps but its first (a phase is their sum; the last
    burst follows sustained work, as a plain phase's steps do); trace: what the very first
    step adds. A last burst without timed steps falls back to the earlier bursts'."""
    steps = steps_of(bursts)
    timed = next((burst[1:] for burst in reversed(steps) if burst[1:]), [])
    step = statistics.fmean(timed) if timed else steps[0][0]
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

    def samples(self) -> dict[str, list[list[float]]]:
        """The timed seconds the costs come from, per burst (each burst's first: its fit call to
        its first batch's end, the trace in the first), for the record."""
        out = {"train": steps_of(self._train)}
        if self.validation is None:
            out["val"] = steps_of(self._test)
        return {k: [[round(s, 5) for s in burst] for burst in v] for k, v in out.items()}

    def costs(self) -> StepCosts:
        train_step, train_trace = _costs(self._train)
        if self.validation is not None:
            return StepCosts(train_step, train_trace, self.validation.val_step, self.validation.val_trace,
                             samples=self.samples())
        return StepCosts(train_step, train_trace, *_costs(self._test), samples=self.samples())
