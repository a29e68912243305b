"""Do a plain model's training steps run faster right after a pause than back to back?

The probe that prices a cached trial times steps right after it traced
them (seconds of one busy core); a plain phase's steps run back to back for
a minute. On the plain model at ``--depth`` (phase 2, an image folder at
``--image-size``), ``--rounds`` rounds of three conditions, their order
swapped every round: ``--steps`` steps after ``--pause`` seconds of sleep,
after as long a single-threaded spin (a trace's one busy core), and back
to back after as many steps (a plain phase's steady state). Prints the mean
step per round and, per condition, the median over rounds of each step
index (does a rested start decay within the burst?).

    python benchmarks/rested_steps.py --dataset /tmp/digits96 --weights /tmp/mnv2_imagenet.weights.h5 \\
        --depth 30 --rounds 6 --pause 5 --steps 40
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tuner.data.batches import dataset_arrays, image_transform, training_batches  # noqa: E402
from tuner.data.sources import load_datasets, resolve_data_spec  # noqa: E402
from tuner.model.backbones import get_backbone_spec, set_depth  # noqa: E402
from tuner.model.hypermodel import DepthHyperModel, backbone_of, compile_for  # noqa: E402
from tuner.model.protocol import TrainingProtocol  # noqa: E402
from tuner.model.space import DepthSpace  # noqa: E402


class Ends(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.t: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.t.append(time.perf_counter())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--depth", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--pause", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    p = TrainingProtocol(weights=args.weights, image_size=args.image_size, head_lr=1e-3, finetune_lr=1e-4)
    spec = resolve_data_spec(dataset=args.dataset)
    data = load_datasets(spec, image_size=p.image_size, seed=p.seed)
    train = dataset_arrays(data.train_images)
    hm = DepthHyperModel(protocol=p, num_classes=spec.num_classes, space=DepthSpace(0, 154))
    model = hm.build(hm.hyperparameters(args.depth))
    set_depth(backbone_of(model), args.depth)
    compile_for(model, spec.num_classes, p.finetune_lr)
    batches = training_batches(train, seed=p.seed, first_epoch=p.head_epochs, epochs=p.finetune_epochs,
                               batch_size=p.batch_size, transform=image_transform(get_backbone_spec(p.backbone).preprocess))

    def run(n):  # the step seconds of n steps (the first: from the previous batch's end of this call)
        ends = Ends()
        model.fit(batches, epochs=1, steps_per_epoch=n + 1, verbose=0, callbacks=[ends])
        return np.diff(ends.t)

    run(5)  # traced
    series = {"sleep": [], "spin": [], "back to back": []}
    for r in range(args.rounds):
        for cond in (list(series) if r % 2 == 0 else list(series)[::-1]):
            if cond == "sleep":
                time.sleep(args.pause)
            elif cond == "spin":
                t = time.perf_counter()
                while time.perf_counter() - t < args.pause:
                    pass
            else:
                run(args.steps)
            series[cond].append(run(args.steps))
        print(f"round {r}: " + ", ".join(f"{k} {np.mean(v[-1]):.4f}" for k, v in series.items()), flush=True)
    for k, v in series.items():
        a = np.array(v)
        print(f"{k}: first 4 steps median {np.median(a[:, :4]):.4f} s, steps 20+ mean {a[:, 20:].mean():.4f} s; "
              f"per step index: {' '.join(f'{x:.3f}' for x in np.median(a, axis=0))}")


if __name__ == "__main__":
    main()
