"""The pauses tf.data's autotuning adds at the end of a validation pass and of ``fit``, on and off.

The tool's input pipeline (``tuner.data.batches``) runs with autotuning off;
this turns it back on for the comparison. Per round, interleaved: a full
validation pass (``evaluate``) with autotuning on and off, the seconds
between its last batch and its return; then a two-epoch ``fit`` of the plain
phase-1 model with each, the seconds between Keras' ``on_train_end`` and the
call's return, and its two epochs. The digits at ``--size`` px with their
calibrated weights (``benchmarks/digits_folder.py``).

    python benchmarks/pipeline_pauses.py --weights /tmp/digits160.weights.h5 --size 160 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import tensorflow as tf  # noqa: E402
from epoch_parts import digits_phase1  # noqa: E402

from tuner.data.batches import steps_per_epoch, training_batches, validation_batches  # noqa: E402
from tuner.model.timing import EpochClock  # noqa: E402


class LastBatch(keras.callbacks.Callback):
    def on_test_batch_end(self, batch, logs=None):
        self.at = time.perf_counter()


def autotuned(ds: tf.data.Dataset, on: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.autotune.enabled = on
    return ds.with_options(options)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="calibrated weights (benchmarks/digits_folder.py)")
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    train, val, hypermodel, transform = digits_phase1(args.weights, args.size)
    model = hypermodel.build(kt.HyperParameters())
    model.evaluate(validation_batches(val, batch_size=32, transform=transform), verbose=0)  # traced
    tails = {True: [], False: []}
    teardowns = {True: [], False: []}
    for r in range(args.rounds):
        for on in (True, False) if r % 2 == 0 else (False, True):
            last = LastBatch()
            model.evaluate(autotuned(validation_batches(val, batch_size=32, transform=transform), on),
                           verbose=0, callbacks=[last])
            tails[on].append(time.perf_counter() - last.at)
        for on in (True, False) if r % 2 == 0 else (False, True):
            clock = EpochClock()
            model.fit(autotuned(training_batches(train, seed=r, first_epoch=0, epochs=2, batch_size=32,
                                                 transform=transform), on),
                      validation_data=autotuned(validation_batches(val, batch_size=32, transform=transform), on),
                      epochs=2, steps_per_epoch=steps_per_epoch(len(train), 32), verbose=0, callbacks=[clock])
            teardowns[on].append(time.perf_counter() - clock.train_end)
            print(f"round {r} autotune {'on ' if on else 'off'}: validation tail {tails[on][-1]:.2f} s; "
                  f"fit: epochs {', '.join(f'{s:.2f}' for s in clock.seconds)} s, "
                  f"then {teardowns[on][-1]:.2f} s to return", flush=True)
    for on in (True, False):
        print(f"autotune {'on ' if on else 'off'}: validation tail median {statistics.median(tails[on]):.2f} s "
              f"[{min(tails[on]):.2f}-{max(tails[on]):.2f}], fit's return median "
              f"{statistics.median(teardowns[on]):.2f} s [{min(teardowns[on]):.2f}-{max(teardowns[on]):.2f}]")


if __name__ == "__main__":
    main()
