"""Seconds per trial for chosen depths and image sizes, measured side by side.

Runs the real hypermodel and two-phase protocol (3 + 3 epochs by default) on
generated images, so it works offline; random weights train at the same
speed as ImageNet weights. Prints a Markdown table for benchmarks/RESULTS.md.

    python benchmarks/trial_seconds.py --sizes 224,32 --depths 0,30,154 --examples 320,80
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from tuner.data.batches import dataset_arrays
from tuner.data.sources import load_datasets, resolve_data_spec
from tuner.model.backbones import get_backbone_spec
from tuner.model.hypermodel import DepthHyperModel
from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="MobileNetV2")
    p.add_argument("--sizes", default="224,32")
    p.add_argument("--depths", default="0,30,154")
    p.add_argument("--examples", default="320,80", help="TRAIN,VAL generated images")
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--epochs", default="3,3", help="HEAD,FINETUNE")
    args = p.parse_args()
    spec = get_backbone_spec(args.backbone)
    n_train, n_val = (int(x) for x in args.examples.split(","))
    head, fine = (int(x) for x in args.epochs.split(","))
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print(f"{spec.name}, fake data {n_train} train / {n_val} val images, {args.classes} classes, "
          f"{head}+{fine} epochs, batch 32\n")
    print("| size px | depth | fit s | first epoch s | steady s | s per 1000 train images per epoch | val acc |")
    print("|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        data = resolve_data_spec(dataset="tf_flowers", fake=True, fake_examples=(n_train, n_val))
        data = dataclasses.replace(data, num_classes=args.classes)
        ds = load_datasets(data, image_size=size, seed=0)
        train, val = dataset_arrays(ds.train_images), dataset_arrays(ds.val_images)
        protocol = TrainingProtocol(backbone=spec.name, weights=None, image_size=size,
                            head_epochs=head, finetune_epochs=fine)
        hm = DepthHyperModel(protocol=protocol, num_classes=args.classes, space=DepthSpace(0, 154))
        for depth in (int(d) for d in args.depths.split(",")):
            hp = hm.hyperparameters(depth)
            keras.backend.clear_session()
            model = hm.build(hp)
            m = hm.fit(hp, model, train=train, validation=val)
            per_k = 1000 * m.steady_seconds / (head + fine) / n_train
            print(f"| {size} | {depth} | {m.fit_seconds:.1f} | {m.first_epoch_seconds:.1f} | "
                  f"{m.steady_seconds:.1f} | {per_k:.1f} | {m.val_accuracy:.3f} |", flush=True)


if __name__ == "__main__":
    main()
