"""A folder of real images, offline: scikit-learn's digits as PNG class folders, plus weights.

Writes ``OUT/0 .. OUT/9`` (1,797 images, upscaled to ``--size``; times
``--copies`` with one-pixel-shifted copies; ``--classes 5``: only ``OUT/0 ..
OUT/4``, 901 images, and ``--copies 4`` makes them 3,604) and
``OUT.weights.h5``: MobileNetV2 with random weights whose BatchNormalization
statistics are calibrated on those images (features that learn, with no
download). Needs scikit-learn (``pip install scikit-learn``). For benchmarks that go through the CLI:

    python benchmarks/digits_folder.py --out /tmp/digits --size 96
    depth-tuner sweep --dataset /tmp/digits --weights /tmp/digits.weights.h5 --image-size 96 --depths 0,5,30
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cached_trials import calibrated_weights, digits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--copies", type=int, default=1, choices=range(1, 6),
                   help="add one-pixel-shifted copies of every digit: 2 gives 3,594 images, "
                        "about tf_flowers' 3,670")
    p.add_argument("--classes", type=int, default=10, choices=range(2, 11),
                   help="only the digits 0 .. N-1: 5 with --copies 4 gives 3,604 images in 5 classes, "
                        "tf_flowers' 3,670 in 5")
    args = p.parse_args()
    import numpy as np
    import tensorflow as tf

    train, val = digits(args.size, copies=args.copies, classes=args.classes)
    x, y = np.concatenate([train.x, val.x]), np.concatenate([train.y, val.y])
    for i, (image, label) in enumerate(zip(x, y)):
        folder = os.path.join(args.out, str(label))
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{i:04d}.png"), tf.io.encode_png(image))
    out = calibrated_weights(args.out.rstrip("/") + ".weights.h5", args.size, train.x[:256])
    print(f"{len(x)} images in {args.out}, weights {out}")


if __name__ == "__main__":
    main()
