"""Plain against cached trials, side by side on the same data, in one long-lived trial process.

Real images that ship offline: scikit-learn's 8x8 digits (1,797 images, 10
classes), upscaled to the benchmarked sizes. MobileNetV2 with random
weights whose BatchNormalization statistics are calibrated on the training
images (ImageNet weights cannot be downloaded here; the step costs are the
same). Per image size: the shared head phase once, then ``--repeats``
rounds over the depths, plain and cached interleaved (their order swapped
every round), so both modes see the same machine (``--head-per-round``: a
new head phase every round, which prices phase 1 near the round's plain
runs; otherwise it is priced once, before the first round). Prints per depth the
plain ``fit_seconds`` and the cached ``protocol_seconds`` (medians and
ranges), what each trial really cost (``search_seconds``) and their ratio,
and the val_accuracy of both; writes every measurement to a CSV.

    pip install scikit-learn
    python benchmarks/cached_trials.py --sizes 96,160 --depths 0,5,12,30,100,154 --repeats 3

Or on an image folder (the CLI's split) with a weights file, e.g. real
ImageNet weights (``benchmarks/imagenet_weights.py``), one size:

    python benchmarks/cached_trials.py --dataset /tmp/digits96 --weights /tmp/mnv2_imagenet.weights.h5 \
        --sizes 96 --head-lr 1e-3 --finetune-lr 1e-4 --depths 0,5,12,30,100 --repeats 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

# One-pixel shifts of the 8x8 digit (zero fill) for ``copies`` > 1: the same
# real digits, as many more images as a larger data set (tf_flowers: 3,670).
SHIFTS = ((0, 1), (1, 0), (0, -1), (-1, 0))


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def digits(image_size: int, seed: int = 0, copies: int = 1, classes: int = 10):
    """(train, val) uint8 RGB arrays of scikit-learn's digits, upscaled; 80 / 20.

    ``copies`` > 1 adds shifted copies of each split's own digits (a digit
    and its copies stay on one side of the split); ``classes`` < 10 keeps
    only the digits 0 .. classes - 1 (in the same shuffled order)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this benchmark uses scikit-learn's digits: pip install scikit-learn")
    import tensorflow as tf

    from tuner.data.batches import Arrays

    if not 1 <= copies <= 1 + len(SHIFTS):
        raise ValueError(f"copies must be 1..{1 + len(SHIFTS)}, not {copies}")
    if not 2 <= classes <= 10:
        raise ValueError(f"classes must be 2..10, not {classes}")
    d = load_digits()
    order = np.random.default_rng(seed).permutation(len(d.images))
    small, labels = d.images[order], d.target[order].astype(np.int64)
    small, labels = small[labels < classes], labels[labels < classes]
    cut = int(0.8 * len(small))

    def upscaled(images, y):
        images = np.concatenate([images, *(_shifted(images, *s) for s in SHIFTS[:copies - 1])])
        x = (images / 16.0 * 255.0).astype(np.float32)[..., None]
        x = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(x)), (image_size, image_size)).numpy()
        return Arrays(np.clip(np.round(x), 0, 255).astype(np.uint8), np.tile(y, copies))

    return upscaled(small[:cut], labels[:cut]), upscaled(small[cut:], labels[cut:])


def folder(path: str, image_size: int):
    """(train, val) uint8 arrays of an image folder, split and resized as ``depth-tuner`` does."""
    from tuner.data.batches import dataset_arrays
    from tuner.data.sources import load_datasets, resolve_data_spec

    data = load_datasets(resolve_data_spec(dataset=path), image_size=image_size, seed=0)
    return dataset_arrays(data.train_images), dataset_arrays(data.val_images)


def calibrated_weights(path: str, image_size: int, images: np.ndarray) -> str:
    """MobileNetV2's seed-1 random weights, BatchNormalization calibrated on ``images`` in one pass."""
    from tuner.model.calibration import write_calibrated_weights
    from tuner.model.protocol import TrainingProtocol

    protocol = TrainingProtocol(backbone="MobileNetV2", weights=None, image_size=image_size, seed=1)
    return write_calibrated_weights(protocol, images, path, batch_size=None)


# Where a cached trial's own seconds go, and what its probe measured (absent from plain rows).
PARTS = ("build_seconds", "cache_seconds", "probe_seconds", "train_seconds")
PROBED = ("phase2_train_step", "phase2_train_trace")
COSTS = ("train_step", "train_trace", "val_step", "val_trace", "samples")


def summary(xs):
    return statistics.median(xs), min(xs), max(xs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="96,160")
    p.add_argument("--depths", default="0,5,12,30,100,154")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--csv", default="benchmarks/out/cached_trials.csv")
    p.add_argument("--dataset", help="an image folder (one sub-folder per class), split as the CLI "
                   "splits it, instead of scikit-learn's digits")
    p.add_argument("--weights", help="a weights file for the backbone (default: random weights "
                   "calibrated on the training images)")
    p.add_argument("--head-lr", type=float, default=None)
    p.add_argument("--finetune-lr", type=float, default=None)
    p.add_argument("--head-per-round", action="store_true",
                   help="a new head phase (a new study) every round, so that phase 1 is priced in the "
                        "same stretch of time as the round's plain runs")
    args = p.parse_args()

    import tensorflow as tf

    from tuner.model.protocol import TrainingProtocol
    from tuner.model.space import DepthSpace
    from tuner.trials.activations import sha256_of
    from tuner.trials.prefix_cache import PrefixCache
    from tuner.trials.process import TrialProcess, make_request

    depths = [int(d) for d in args.depths.split(",")]
    rows = []
    os.makedirs(os.path.dirname(args.csv) or ".", exist_ok=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            train, val = folder(args.dataset, size) if args.dataset else digits(size)
            for name, a in (("train", train), ("val", val)):
                tf.data.Dataset.from_tensor_slices((a.x, a.y)).save(os.path.join(tmp, "images", name))
            weights = args.weights or calibrated_weights(os.path.join(tmp, "w.weights.h5"), size, train.x[:256])
            lrs = {k: v for k, v in (("head_lr", args.head_lr), ("finetune_lr", args.finetune_lr)) if v}
            protocol = TrainingProtocol(weights=weights, image_size=size, **lrs)
            cache = PrefixCache(os.path.join(tmp, "cache"), 8 * 2**30)
            base = make_request(protocol=protocol, num_classes=int(train.y.max()) + 1, space=DepthSpace(0, 154),
                                images_dir=os.path.join(tmp, "images"), cache_dir=cache.root,
                                cache_size_bytes=cache.cache_size_bytes,
                                images_sha256=sha256_of(train.x, val.x), kind="trial")
            tp = TrialProcess()
            print(f"\n{size} px: {len(train)} training / {len(val)} validation images", flush=True)
            for rep in range(args.repeats):
                if rep == 0 or args.head_per_round:
                    t0 = time.perf_counter()
                    head = tp.request({**base, "kind": "head", "head_out": os.path.join(tmp, "head.npz")})["head"]
                    print(f"  head phase {time.perf_counter() - t0:.1f} s (its own pass "
                          f"{head['features_pass_seconds']:.1f} s), plain phase 1 priced at "
                          f"{head['protocol_seconds']:.1f} s; cache {cache.size_bytes() / 2**20:.0f} MiB", flush=True)
                    cached_base = {**base, "mode": "cached", "head_path": os.path.join(tmp, "head.npz"),
                                   "phase1": head}
                for depth in depths:
                    modes = ["plain", "cached"] if (rep + depth) % 2 == 0 else ["cached", "plain"]
                    for mode in modes:
                        req = {**(cached_base if mode == "cached" else {**base, "mode": "plain"}),
                               "depth": depth}
                        started = time.time()
                        result = tp.request(req)
                        m = result["metrics"]
                        row = {"size": size, "depth": depth, "repeat": rep, "mode": mode,
                               "val_accuracy": m["val_accuracy"], "fit_seconds": m["fit_seconds"],
                               "protocol_seconds": m["protocol_seconds"],
                               "search_seconds": m["search_seconds"],
                               "peak_rss_mib": result.get("peak_rss_mib"),
                               "cache_mib": cache.size_bytes() / 2**20,
                               "head_search_seconds": head["search_seconds"],
                               "phase1_priced": head["protocol_seconds"],
                               "phase_seconds": json.dumps(m["phase_seconds"]),
                               "started": started,
                               # the probes' timed steps, to price them again by another estimator
                               "phase1_costs": json.dumps({k: head.get(f"phase1_{k}") for k in COSTS}),
                               "phase2_costs": json.dumps({k: result["extra"].get(f"phase2_{k}")
                                                           for k in COSTS}),
                               **{k: result["extra"].get(k) for k in PARTS},
                               **{k: result["extra"].get(k) for k in PROBED}}
                        rows.append(row)
                        print(f"  rep {rep} depth {depth:3d} {mode:6s}: acc {m['val_accuracy']:.4f} "
                              f"protocol {m['protocol_seconds']:6.1f} s, took {m['search_seconds']:6.1f} s",
                              flush=True)
            tp.close()
        report(rows, size, depths)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def report(rows, size, depths) -> None:
    print("\n| px | depth | plain fit_seconds median [range] | cached protocol_seconds median [range] "
          "| protocol error vs plain median | plain took | cached took | ratio | val acc plain / cached "
          "| spread plain / cached | paired error per round |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for depth in depths:
        sel = lambda mode, key: [r[key] for r in rows
                                 if r["size"] == size and r["depth"] == depth and r["mode"] == mode]
        pf, cp = summary(sel("plain", "fit_seconds")), summary(sel("cached", "protocol_seconds"))
        pt, ct = statistics.median(sel("plain", "search_seconds")), statistics.median(sel("cached", "search_seconds"))
        pa, ca = statistics.mean(sel("plain", "val_accuracy")), statistics.mean(sel("cached", "val_accuracy"))
        spread = lambda s: (s[2] - s[1]) / s[0]
        # Each cached reading against the plain one next to it (same depth and round).
        reading = {(r["repeat"], r["mode"]): r for r in rows if r["size"] == size and r["depth"] == depth}
        paired = ", ".join(f"{reading[rep, 'cached']['protocol_seconds'] / reading[rep, 'plain']['fit_seconds'] - 1:+.1%}"
                           for rep in sorted({rep for rep, _ in reading}))
        print(f"| {size} | {depth} | {pf[0]:.1f} [{pf[1]:.1f}–{pf[2]:.1f}] | {cp[0]:.1f} [{cp[1]:.1f}–{cp[2]:.1f}] "
              f"| {cp[0] / pf[0] - 1:+.1%} | {pt:.1f} s | {ct:.1f} s | {pt / ct:.1f}x | {pa:.4f} / {ca:.4f} "
              f"| {spread(pf):.0%} / {spread(cp):.0%} | {paired} |", flush=True)


if __name__ == "__main__":
    main()
