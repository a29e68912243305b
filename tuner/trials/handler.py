"""What a trial process does with one request: the shared head phase, a plain or a cached
trial, a depth's probe, or where it trains.

Runs inside the long-lived trial process (``tuner.trials.process``); the
images and the built backbone are kept there for the next request
(``tuner.trials.kept``). Requests are ``TrialRequest``s (``tuner.trials.request``).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from tuner.errors import OutOfMemory
from tuner.stored_keys import CHECKPOINT_ERROR, DEVICE, PLAIN_BECAUSE, SOFTWARE, STOPPED_AFTER
from tuner.trials import kept
from tuner.trials.activations import CacheKeys
from tuner.trials.prefix_cache import PrefixCache
from tuner.trials.released import graphs_released
from tuner.trials.request import TrialContext, TrialRequest


def _cache(context: TrialContext) -> tuple[PrefixCache, CacheKeys]:
    return (PrefixCache(context.cache_dir, context.cache_size_bytes),
            CacheKeys(context.images_sha256, context.protocol))


def handle(request: TrialRequest, emit) -> dict[str, Any]:
    """Serve one request; the result is JSON-ready. What its fits traced is released after."""
    if request.kind == "device":
        return {"device": _device()}
    try:
        with graphs_released():
            return _serve(request, emit)
    except Exception as exc:
        if not _out_of_memory(exc):
            raise
        p = request.context.protocol
        raise OutOfMemory(f"out of memory on {_device()['device']} at {p.image_size} px, batch size "
                          f"{p.batch_size}: pass a smaller --batch-size or --image-size") from None


@functools.cache
def _device() -> dict[str, Any]:
    from tuner.devices import describe_training_device

    return describe_training_device()


def _out_of_memory(exc: BaseException) -> bool:
    """TensorFlow's out-of-memory error (XLA's and the allocator's), however Keras wrapped it."""
    import tensorflow as tf

    while exc is not None:
        if isinstance(exc, tf.errors.ResourceExhaustedError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _serve(request: TrialRequest, emit) -> dict[str, Any]:
    t0 = time.perf_counter()
    c = request.context
    train, val = kept.images(c.images_dir)
    if request.kind == "head":
        from tuner.trials.head_phase import run_head_phase

        cache, keys = _cache(c)
        head = run_head_phase(protocol=c.protocol, num_classes=c.num_classes, space=c.space,
                              train=train, val=val, cache=cache, keys=keys)
        np.savez(request.head_out, **head.state)
        return {"head": head.metrics}

    if request.kind == "probe":
        from tuner.trials.probing import probe_seconds

        probed = probe_seconds(protocol=c.protocol, num_classes=c.num_classes, depth=request.depth,
                               train=train, val=val, phase1=c.phase1)
        return {"probe": {**probed, DEVICE: _device()["device"]}}

    def progress(phase, epoch, epochs, seconds, val_accuracy):
        ask = bool(request.stop_early) and phase == 2 and epoch < epochs
        reply = emit(event="epoch", phase=phase, epoch=epoch, epochs=epochs, seconds=seconds,
                     val_accuracy=val_accuracy, ask=ask)
        return ask and bool((reply or {}).get("stop"))

    metrics, note = None, None
    if c.mode == "cached":
        from tuner.trials.cached import CacheTooSmall, run_cached_trial

        cache, keys = _cache(c)
        state = dict(np.load(c.head_path))
        try:
            metrics = run_cached_trial(
                protocol=c.protocol, num_classes=c.num_classes, depth=request.depth,
                train=train, val=val, head_state=state, phase1=c.phase1, cache=cache,
                keys=keys, progress=progress, checkpoint=request.checkpoint,
                phase2_seed=request.trial_seed, priced_between=request.priced_between)
        except CacheTooSmall as exc:
            note = f"{exc}: this trial runs plain"
            emit(event="note", message=note)
    if metrics is None:
        metrics = _plain(request, train, val, progress)
        if note:
            metrics.extra[PLAIN_BECAUSE] = note
    metrics.search_seconds = time.perf_counter() - t0
    metrics.extra.update({DEVICE: _device()["device"], SOFTWARE: _device()["software"]})
    return {"metrics": metrics.as_attrs(), "extra": metrics.extra}


def _plain(request: TrialRequest, train, val, progress):
    from tuner.model.hypermodel import DepthHyperModel

    c = request.context
    hm = DepthHyperModel(protocol=c.protocol, num_classes=c.num_classes, space=c.space)
    hp = hm.hyperparameters(request.depth)
    model = hm.build(hp)
    metrics = hm.run_protocol(hp, model, train=train, validation=val, progress=progress,
                              phase2_seed=request.trial_seed)
    if request.checkpoint and STOPPED_AFTER not in metrics.extra:  # a stopped trial is never exported
        try:
            model.save_weights(request.checkpoint)
        except OSError as exc:
            metrics.extra[CHECKPOINT_ERROR] = str(exc)
    return metrics
