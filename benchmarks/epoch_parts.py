"""Where a plain phase's seconds go: every batch and validation stamped, against the probe.

Phase 1 at depth 0 (the frozen backbone and the head), the digits at
``--size`` px with their calibrated weights, ``--repeats`` times: per epoch
the training batches (first, median), the validation pass and what follows
its last batch until the epoch ends; then the accounting's probe of the same
model (``tuner.trials.accounting.StepProbe``: one burst of 16 steps, half
the head phase's) and its phase estimate against the measured phase.

    python benchmarks/digits_folder.py --out /tmp/digits160 --size 160
    python benchmarks/epoch_parts.py --weights /tmp/digits160.weights.h5 --size 160 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
from cached_trials import digits  # noqa: E402

from tuner.data.batches import (  # noqa: E402
    image_transform,
    steps_per_epoch,
    training_batches,
    validation_batches,
)
from tuner.model.backbones import get_backbone_spec  # noqa: E402
from tuner.model.hypermodel import DepthHyperModel  # noqa: E402
from tuner.model.protocol import TrainingProtocol  # noqa: E402
from tuner.model.space import DepthSpace  # noqa: E402
from tuner.trials.accounting import StepProbe  # noqa: E402


class Stamps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, float]] = []

    def _at(self, kind):
        self.events.append((kind, time.perf_counter()))

    def on_epoch_begin(self, epoch, logs=None):
        self._at("epoch")

    def on_train_batch_end(self, batch, logs=None):
        self._at("batch")

    def on_test_begin(self, logs=None):
        self._at("val")

    def on_test_batch_end(self, batch, logs=None):
        self._at("val_batch")

    def on_test_end(self, logs=None):
        self._at("val_end")

    def on_epoch_end(self, epoch, logs=None):
        self._at("epoch_end")

    def on_train_end(self, logs=None):
        self._at("train_end")


def epochs_of(events):
    """Per epoch: its events from epoch begin to epoch end."""
    out, current = [], None
    for kind, t in events:
        if kind == "epoch":
            current = [(kind, t)]
        elif current is not None:
            current.append((kind, t))
            if kind == "epoch_end":
                out.append(current)
                current = None
    return out


def digits_phase1(weights: str, size: int):
    """The digits at ``size`` px, the plain hypermodel on ``weights`` (phase 1 is its build), the input transform."""
    train, val = digits(size)
    protocol = TrainingProtocol(backbone="MobileNetV2", weights=weights, image_size=size, seed=0)
    hypermodel = DepthHyperModel(protocol=protocol, num_classes=10, space=DepthSpace(0, 154))
    return train, val, hypermodel, image_transform(get_backbone_spec("MobileNetV2").preprocess)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="calibrated weights (benchmarks/digits_folder.py)")
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    train, val, hypermodel, transform = digits_phase1(args.weights, args.size)
    val_ds = validation_batches(val, batch_size=32, transform=transform)
    for rep in range(args.repeats):
        model = hypermodel.build(kt.HyperParameters())
        stamps = Stamps()
        start = time.perf_counter()
        model.fit(training_batches(train, seed=0, first_epoch=0, epochs=3, batch_size=32, transform=transform),
                  validation_data=val_ds, epochs=3, steps_per_epoch=steps_per_epoch(len(train), 32),
                  verbose=0, shuffle=False, callbacks=[stamps])
        phase = [t for k, t in stamps.events if k == "train_end"][0] - start
        print(f"repeat {rep}: phase {phase:.2f} s")
        for e, seg in enumerate(epochs_of(stamps.events)):
            t0 = seg[0][1]
            batches = np.diff([t0] + [t for k, t in seg if k == "batch"])
            val_start = next(t for k, t in seg if k == "val")
            val_end = next(t for k, t in seg if k == "val_end")
            print(f"  epoch {e}: {seg[-1][1] - t0:.2f} s; {len(batches)} batches (first {batches[0]:.3f}, "
                  f"median {np.median(batches[1:]):.3f}); validation {val_end - val_start:.2f} s; "
                  f"after its last batch {seg[-1][1] - val_end:.3f} s")
        probe = hypermodel.build(kt.HyperParameters())
        costs = StepProbe(probe, training_batches(train, seed=0, first_epoch=0, epochs=1, batch_size=32,
                                                  transform=transform), val_ds).run(16).costs()
        estimate = costs.phase_seconds(epochs=3, train_examples=len(train), val_examples=len(val), batch_size=32)
        print(f"  probe: train step {costs.train_step:.3f} s, val step {costs.val_step:.3f} s -> "
              f"phase {estimate:.2f} s ({100 * (estimate / phase - 1):+.1f} % against the measured phase)")


if __name__ == "__main__":
    main()
