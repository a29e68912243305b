"""Which measure of a depth's work makes the plain protocol's seconds linear, and how far a line reaches.

The cost model (``tuner.strategies.cost``) prices a depth by a line in the
number of weight-holding layers that train. This checks that choice on
plain readings: per depth of MobileNetV2, five measures of the trainable
part (its FLOPs, activation size, parameters, weight-holding layers,
layers), each fitted by a line to the readings (rms misfit), then fitted to
the shallow readings only (depth <= ``--shallow``) and extrapolated to the
deep ones, and interpolated between the shallow ones and the deepest.

    python benchmarks/whole_search.py ... --csv benchmarks/out/whole_search.csv
    python benchmarks/cost_shape.py --csv benchmarks/out/whole_search.csv --image-size 96
    python benchmarks/cost_shape.py --image-size 96   # the session-24 readings below
"""

from __future__ import annotations

import argparse
import csv
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

# Plain protocol_seconds of the session-24 whole search (benchmarks/RESULTS.md: digits at
# 96 px, real ImageNet MobileNetV2 weights, 3 + 3 epochs, nothing else running).
SESSION_24 = [(11, 46.6), (29, 50.9), (29, 52.4), (15, 50.4), (10, 48.7), (0, 44.9), (136, 82.4),
              (103, 66.1), (103, 66.3), (3, 46.4), (46, 62.2), (2, 50.2), (141, 86.9)]


def measures(image_size: int) -> dict[str, np.ndarray]:
    """Per depth 0..n, each measure of the top ``depth`` layers (cumulative from the top)."""
    import keras

    model = keras.applications.MobileNetV2(include_top=False, weights=None,
                                           input_shape=(image_size, image_size, 3))
    rows = []
    for layer in model.layers:
        out = layer.output.shape
        elements = int(np.prod(out[1:]))
        flops = 0
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            flops = elements * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            flops = elements * int(np.prod(layer.kernel_size)) * int(layer.input.shape[-1])
        params = sum(int(np.prod(w.shape)) for w in layer.weights)
        rows.append((flops, elements, params, int(bool(layer.weights)), 1))
    top_down = np.cumsum(np.array(rows[::-1], dtype=float), axis=0)
    table = np.vstack([np.zeros(5), top_down])
    names = ("flops", "activations", "parameters", "weight layers", "layers")
    return {name: table[:, i] / table[-1, i] for i, name in enumerate(names)}


def readings(path: str | None) -> list[tuple[int, float]]:
    if path is None:
        return SESSION_24
    with open(path) as f:
        return [(int(r["depth"]), float(r["protocol_seconds"])) for r in csv.DictReader(f)
                if r.get("mode", "plain") == "plain" and r.get("protocol_seconds")
                and r.get("ruled_out", "False") != "True"]


def line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", help="whole_search.py's CSV (its plain rows); default: session 24's readings")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--shallow", type=int, default=30, help="the deepest depth of the 'shallow' readings")
    args = p.parse_args()
    data = readings(args.csv)
    d = np.array([a for a, _ in data])
    s = np.array([b for _, b in data])
    shallow, deep = d <= args.shallow, d > args.shallow
    anchor = shallow | (d == d.max())
    print(f"{len(d)} plain readings at depths {sorted(set(d.tolist()))}\n")
    print(f"| measure | rms misfit of one line | deep, line through depths <= {args.shallow} "
          f"| between those and depth {d.max()} |")
    print("|---|---|---|---|")
    for name, m in measures(args.image_size).items():
        x = m[d]
        a, b = line(x, s)
        rms = float(np.sqrt(np.mean((a + b * x - s) ** 2)))
        a1, b1 = line(x[shallow], s[shallow])
        a2, b2 = line(x[anchor], s[anchor])
        far = ", ".join(f"{dd}: {(a1 + b1 * xx) / ss - 1:+.0%}" for dd, xx, ss in zip(d[deep], x[deep], s[deep]))
        mid = ", ".join(f"{dd}: {(a2 + b2 * xx) / ss - 1:+.0%}" for dd, xx, ss
                        in zip(d[~anchor], x[~anchor], s[~anchor]))
        print(f"| {name} | {rms:.1f} s | {far} | {mid} |")


if __name__ == "__main__":
    main()
