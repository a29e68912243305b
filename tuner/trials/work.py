"""What a trial process does with one request: the shared head phase, a plain or a cached trial.

Runs inside the long-lived trial process (``tuner.trials.process``); the
images and the built backbone are kept there for the next request.
"""

from __future__ import annotations

import os
import time
from typing import Any

import keras
import numpy as np

from tuner.data.batches import Arrays, dataset_arrays
from tuner.model.backbones import build_backbone, get_backbone_spec, set_depth
from tuner.model.cut import BackboneCuts
from tuner.model.protocol import Protocol
from tuner.model.space import DepthSpace
from tuner.trials.activations import CacheKeys
from tuner.trials.prefix_cache import PrefixCache

_images: dict[str, tuple[Arrays, Arrays]] = {}
_backbones: dict[tuple, tuple[keras.Model, BackboneCuts, list[np.ndarray]]] = {}


def images(directory: str) -> tuple[Arrays, Arrays]:
    if directory not in _images:
        from tuner.data.sources import load_saved_images

        _images.clear()
        train, val = load_saved_images(directory)
        _images[directory] = (dataset_arrays(train), dataset_arrays(val))
    return _images[directory]


def backbone(protocol: Protocol) -> tuple[keras.Model, BackboneCuts]:
    """The protocol's backbone as built, every layer trainable, kept for the process's next request.

    Building MobileNetV2 and loading its weights costs ~0.8 s, a tenth of a
    shallow cached trial at 160 px; the head phase and the cached trials of
    one process build it once and get the built weights back (0.03 s), as
    a trial trains some of them. Their models are new every time and share
    its layers. Plain trials build their own: they pay what a user pays.
    """
    p = protocol
    stamp = None
    if p.weights not in (None, "imagenet") and os.path.exists(p.weights):
        st = os.stat(p.weights)
        stamp = (st.st_mtime_ns, st.st_size)
    key = (p.backbone, p.image_size, p.weights, stamp, p.seed)
    if key not in _backbones:
        _backbones.clear()
        keras.utils.set_random_seed(p.seed)  # random weights (--weights none) as every plain trial draws them
        built = build_backbone(get_backbone_spec(p.backbone), image_size=p.image_size, weights=p.weights)
        _backbones[key] = (built, BackboneCuts(built), built.get_weights())
    model, cuts, weights = _backbones[key]
    model.set_weights(weights)
    set_depth(model, len(model.layers))
    return model, cuts


def _cache(request: dict[str, Any]) -> tuple[PrefixCache, CacheKeys]:
    return (PrefixCache(request["cache_dir"], request["cache_bytes"]),
            CacheKeys(request["images_sha256"], Protocol(**request["protocol"])))


def handle(request: dict[str, Any], emit) -> dict[str, Any]:
    """Serve one request; the result is JSON-ready."""
    t0 = time.perf_counter()
    protocol = Protocol(**request["protocol"])
    train, val = images(request["images_dir"])
    if request["kind"] == "head":
        from tuner.trials.head_phase import run_head_phase

        cache, keys = _cache(request)
        head = run_head_phase(protocol=protocol, num_classes=request["num_classes"],
                              space=DepthSpace(**request["space"]), train=train, val=val,
                              cache=cache, keys=keys)
        np.savez(request["head_out"], **head.state)
        return {"head": head.metrics}

    def progress(phase, epoch, epochs, seconds):
        emit(event="epoch", phase=phase, epoch=epoch, epochs=epochs, seconds=seconds)

    metrics, note = None, None
    if request["mode"] == "cached":
        from tuner.trials.cached import CacheTooSmall, run_cached_trial

        cache, keys = _cache(request)
        state = dict(np.load(request["head_path"]))
        try:
            metrics = run_cached_trial(
                protocol=protocol, num_classes=request["num_classes"], depth=request["depth"],
                train=train, val=val, head_state=state, phase1=request["phase1"], cache=cache,
                keys=keys, progress=progress, checkpoint=request.get("checkpoint"),
                phase2_seed=request.get("trial_seed"))
        except CacheTooSmall as exc:
            note = f"{exc}: this trial runs plain"
            emit(event="note", message=note)
    if metrics is None:
        metrics = _plain(request, protocol, train, val, progress)
        if note:
            metrics.extra["plain_because"] = note
    metrics.search_seconds = time.perf_counter() - t0
    return {"metrics": metrics.as_attrs(), "extra": metrics.extra}


def _plain(request, protocol, train, val, progress):
    import keras_tuner as kt

    from tuner.model.hypermodel import DepthHyperModel

    hm = DepthHyperModel(protocol=protocol, num_classes=request["num_classes"],
                         space=DepthSpace(**request["space"]))
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values["depth"] = request["depth"]
    model = hm.build(hp)
    metrics = hm.fit(hp, model, train=train, validation=val, progress=progress,
                     phase2_seed=request.get("trial_seed"))
    if request.get("checkpoint"):
        try:
            model.save_weights(request["checkpoint"])
        except OSError as exc:
            metrics.extra["checkpoint_error"] = str(exc)
    return metrics
