"""Fill the prefix cache: one forward pass of the images computes several cache points.

The head phase's pass computes the pooled features it trains on and, in
the same pass, the activations at every cache point that fits the cache's
cap, so later trials find them ready instead of repeating that pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tuner.data.batches import Arrays
from tuner.model.cut import IMAGES, BackboneCuts, CachePoint
from tuner.model.protocol import RANDOM_WEIGHTS, TrainingProtocol
from tuner.trials.prefix_cache import Entry, PrefixCache, cache_key

POOLED_NAME = "pooled"


@dataclass(frozen=True)
class CacheKeys:
    """Everything besides the cache point that decides an activation."""

    images_sha256: str
    protocol: TrainingProtocol

    def key(self, point: CachePoint | None) -> str:
        p = self.protocol.as_config()
        from_file = "weights_sha256" in p  # a file is its content, wherever it lies
        fields = {"images": self.images_sha256, "image_size": p["image_size"],
                  "backbone": p["backbone"], "weights": "file" if from_file else p["weights"],
                  "weights_sha256": p.get("weights_sha256"),
                  # random weights are drawn from the seed (searches pass calibrated
                  # random weights as a file: tuner.model.calibration)
                  "seed": p["seed"] if p["weights"] == RANDOM_WEIGHTS else None,
                  "point": POOLED_NAME if point is None else [point.depth, point.layer]}
        return cache_key(fields)

    def meta(self, point: CachePoint | None, *, train_images: int, val_images: int) -> dict:
        """What ``depth-tuner cache`` shows of an entry: the key is a hash, so it cannot say."""
        p = self.protocol
        weights = "none" if p.weights is None else p.weights
        return {"point": POOLED_NAME if point is None else point.layer,
                "depth": None if point is None else point.depth,
                "backbone": p.backbone, "image_size": p.image_size,
                "weights": os.path.basename(weights),
                "train_images": train_images, "val_images": val_images}


def point_bytes(point: CachePoint, examples: int) -> int:
    return 4 * point.elements * examples


def compute(cuts: BackboneCuts, points: list[CachePoint | None], train: Arrays, val: Arrays, *,
            cache: PrefixCache, keys: CacheKeys, transform, batch_size: int) -> dict:
    """Compute ``points`` (None: the pooled features) in one pass and commit them to ``cache``.

    Returns the computed entries, also those the cache's cap evicted at once.
    """
    backbone = cuts.backbone
    outputs = []
    for p in points:
        if p is None:
            outputs.append(keras.layers.GlobalAveragePooling2D()(backbone.output))
        elif p.layer == IMAGES:
            raise ValueError("the images themselves are never cached")
        else:
            outputs.append(cuts.crossing(p.depth)[0])
    model = keras.Model(backbone.input, outputs)
    forward = tf.function(lambda x: model(x, training=False))
    shapes = [tuple(o.shape[1:]) for o in outputs]
    pending = [cache.pending(keys.key(p), {"train": (len(train), *s), "val": (len(val), *s)},
                             {**keys.meta(p, train_images=len(train), val_images=len(val)),
                              "shape": list(s)})
               for p, s in zip(points, shapes)]
    try:
        for split, data in (("train", train), ("val", val)):
            for start in range(0, len(data), batch_size):
                x = transform(tf.constant(data.x[start:start + batch_size]))
                outs = forward(x)
                outs = outs if isinstance(outs, (list, tuple)) else [outs]
                for pe, out in zip(pending, outs):
                    pe.arrays[split][start:start + batch_size] = out.numpy()
        for pe in pending:
            pe.commit()
    except BaseException:
        for pe in pending:
            pe.discard()
        raise
    return {p: Entry(pe.arrays["train"], pe.arrays["val"], pe.meta) for p, pe in zip(points, pending)}


def get_or_compute(cuts: BackboneCuts, point: CachePoint | None, train: Arrays, val: Arrays, *,
                   cache: PrefixCache, keys: CacheKeys, transform, batch_size: int):
    """The cached activations at ``point``, computing them once if no worker has yet."""
    key = keys.key(point)
    entry = cache.get(key)
    if entry is not None:
        return entry, False
    with cache.filling(key):
        entry = cache.get(key)  # filled by another worker while we waited
        if entry is not None:
            return entry, False
        entries = compute(cuts, [point], train, val, cache=cache, keys=keys, transform=transform,
                          batch_size=batch_size)
        return entries[point], True


def head_phase_points(cuts: BackboneCuts, *, low: int, high: int, examples: int,
                      cache_size_bytes: float) -> list[CachePoint]:
    """Cache points to fill in the head phase's pass: shallow first, within the cap."""
    chosen, used = [], 0
    wanted = {cuts.cache_point_for(d) for d in range(max(low, 1), high + 1)}
    for p in sorted((p for p in wanted if p is not None and p.layer != IMAGES), key=lambda p: p.depth):
        size = point_bytes(p, examples)
        if used + size > cache_size_bytes:
            break
        chosen.append(p)
        used += size
    return chosen


def fits(point: CachePoint, examples: int, cache: PrefixCache) -> bool:
    return cache.fits(point_bytes(point, examples))


def sha256_of(*arrays: np.ndarray) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()
