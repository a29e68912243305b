"""What a trial process does with one request: the shared head phase, a plain or a cached
trial, or a depth's price.

Runs inside the long-lived trial process (``tuner.trials.process``); the
images and the built backbone are kept there for the next request
(``tuner.trials.kept``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tuner.model.protocol import Protocol
from tuner.model.space import DepthSpace
from tuner.trials import kept
from tuner.trials.activations import CacheKeys
from tuner.trials.prefix_cache import PrefixCache

def _cache(request: dict[str, Any]) -> tuple[PrefixCache, CacheKeys]:
    return (PrefixCache(request["cache_dir"], request["cache_bytes"]),
            CacheKeys(request["images_sha256"], Protocol(**request["protocol"])))


def handle(request: dict[str, Any], emit) -> dict[str, Any]:
    """Serve one request; the result is JSON-ready."""
    t0 = time.perf_counter()
    protocol = Protocol(**request["protocol"])
    train, val = kept.images(request["images_dir"])
    if request["kind"] == "head":
        from tuner.trials.head_phase import run_head_phase

        cache, keys = _cache(request)
        head = run_head_phase(protocol=protocol, num_classes=request["num_classes"],
                              space=DepthSpace(**request["space"]), train=train, val=val,
                              cache=cache, keys=keys)
        np.savez(request["head_out"], **head.state)
        return {"head": head.metrics}

    if request["kind"] == "price":
        from tuner.trials.pricing import probe_price

        return {"price": probe_price(protocol=protocol, num_classes=request["num_classes"],
                                     depth=request["depth"], train=train, val=val,
                                     phase1=request["phase1"])}

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
    from tuner.model.hypermodel import DepthHyperModel

    hm = DepthHyperModel(protocol=protocol, num_classes=request["num_classes"],
                         space=DepthSpace(**request["space"]))
    hp = hm.hyperparameters(request["depth"])
    model = hm.build(hp)
    metrics = hm.run_protocol(hp, model, train=train, validation=val, progress=progress,
                     phase2_seed=request.get("trial_seed"))
    if request.get("checkpoint"):
        try:
            model.save_weights(request["checkpoint"])
        except OSError as exc:
            metrics.extra["checkpoint_error"] = str(exc)
    return metrics
