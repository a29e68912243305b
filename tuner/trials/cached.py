"""Phase 2 of one depth on cached activations, from the shared head, its seconds accounted as plain.

The trial starts from the head the shared phase 1 left (weights and dropout
state), trains the top k layers (plus the few frozen layers between the
cache point and the cut, run live) on the activations at the cache point,
with the plain run's phase-2 batches, and then probes the real plain model
at this depth for the step costs that make ``protocol_seconds``, unless the
search already knows them closely enough to interpolate (``priced_between``,
``tuner.strategies.rounds``).

Caching is valid because the protocol feeds every epoch the same inputs (no
augmentation) and the backbone runs in inference mode; a protocol that
randomises inputs per epoch must run plain.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from tuner.data.batches import Arrays, image_transform
from tuner.model.backbones import (
    get_backbone_spec,
    layers_with_weights,
    set_depth,
    split_at_depth,
)
from tuner.model.cut import IMAGES
from tuner.model.hypermodel import (
    Head,
    InferenceMode,
    Progress,
    build_optimizer,
    compile_for,
    plain_model,
    run_phase,
    trainable_count,
)
from tuner.model.metrics import TrialMetrics, steady_seconds
from tuner.model.protocol import TrainingProtocol, cached_on_images, host_name
from tuner.stored_keys import (
    CACHE_POINT,
    CACHE_WRITTEN_BYTES,
    CHECKPOINT_ERROR,
    PRICED_BETWEEN,
    STOPPED_AFTER,
)
from tuner.trials import activations, kept
from tuner.trials.accounting import PROBE_STEPS, StepCosts
from tuner.trials.prefix_cache import PrefixCache
from tuner.trials.probing import phase2_seconds, plain_probe


class CacheTooSmall(Exception):
    """The cut's activations do not fit the cache's cap: the trial must run plain."""


def run_cached_trial(*, protocol: TrainingProtocol, num_classes: int, depth: int, train: Arrays, val: Arrays,
                     head_state: dict[str, np.ndarray], phase1: dict, cache: PrefixCache,
                     keys: activations.CacheKeys, progress: Progress | None = None,
                     checkpoint: str | None = None, phase2_seed: int | None = None,
                     priced_between: dict | None = None) -> TrialMetrics:
    t0 = time.perf_counter()
    p = protocol
    spec = get_backbone_spec(p.backbone)
    backbone, cuts = kept.backbone(p)
    transform = image_transform(spec.preprocess)
    t_cache = time.perf_counter()
    point, x_train, x_val, filled = _inputs(cuts, depth, train, val, cache=cache, keys=keys, protocol=p,
                                            transform=transform)
    images_cut = point is not None and point.layer == IMAGES

    set_depth(backbone, depth)
    head = Head.for_protocol(p, num_classes)
    # The plain model at this depth, sharing every layer with the trial's model.
    plain = plain_model(backbone, head, p.image_size, f"{spec.name}_depth_tuner")
    trainable = trainable_count(plain)
    extra: dict = {}
    t_probe = time.perf_counter()
    probe, costs = _first_burst(plain, depth=depth, images_cut=images_cut, protocol=p,
                                num_classes=num_classes, train=train, phase1=phase1, transform=transform,
                                priced_between=priced_between)
    if costs is not None:
        extra.update(costs.as_attrs("phase2"))
    if costs is not None and priced_between is not None and depth != 0:
        extra[PRICED_BETWEEN] = priced_between

    model = _suffix_model(cuts, point, head, head_state, x_train.x.shape[1:], protocol=p,
                          num_classes=num_classes, optimizer_built=not images_cut)
    t_train = time.perf_counter()
    run = run_phase(model, x_train, x_val, protocol=p, phase=2, depth=depth,
                    transform=transform if images_cut else None, progress=progress,
                    seconds_before=float(phase1["fit_seconds"]), seed=phase2_seed)
    extra.update(build_seconds=t_cache - t0, cache_seconds=t_probe - t_cache,
                 probe_seconds=t_train - t_probe, train_seconds=time.perf_counter() - t_train)
    if checkpoint and not run.stopped:  # a trial stopped early is never exported
        try:
            plain.save_weights(checkpoint)
        except OSError as exc:
            extra[CHECKPOINT_ERROR] = str(exc)
    if probe is not None:  # the trial's weights are saved: the second burst may move them
        t_second = time.perf_counter()
        costs = (probe if run.stopped else probe.run(PROBE_STEPS)).costs()  # stopped: its first burst
        extra["probe_seconds"] += time.perf_counter() - t_second
        extra.update(costs.as_attrs("phase2"))
    if images_cut:  # nothing was cached: this phase 2 *is* the plain one, measured
        phase2 = (run.seconds, steady_seconds([run.epoch_seconds]))
    else:
        phase2 = phase2_seconds(costs, protocol=p, train=train, val=val)
        if run.stopped:  # the protocol seconds it used: its share of phase 2
            share = len(run.epoch_seconds) / p.finetune_epochs
            phase2 = (phase2[0] * share, phase2[1] * share)
    extra.update({CACHE_POINT: -1 if point is None else point.depth, "cache_filled": filled})
    if filled:  # said by the worker: the cache on disk grew by this much
        extra[CACHE_WRITTEN_BYTES] = activations.point_bytes(point, len(train) + len(val))
    _, trained = split_at_depth(backbone, depth)
    return _metrics(depth, run, phase1, phase2, trainable=trainable, trained=trained, extra=extra)


def _metrics(depth: int, run, phase1: dict, phase2: tuple[float, float], *, trainable: int,
             trained: list, extra: dict) -> TrialMetrics:
    """The trial's record: phase 2 as trained, its seconds as accounted (``phase2``: with tracing,
    steady), phase 1's from the head phase."""
    return TrialMetrics(
        depth=depth,
        val_accuracy=float(run.history["val_accuracy"][-1]),
        val_loss=float(run.history["val_loss"][-1]),
        fit_seconds=run.seconds,
        phase_seconds=[float(phase1["fit_seconds"]), run.seconds],
        epoch_seconds=run.epoch_seconds,
        first_epoch_seconds=run.epoch_seconds[0],
        steady_seconds=float(phase1["steady_seconds"]) + phase2[1],
        trainable_params=trainable,
        trained_layers_with_weights=layers_with_weights(trained),
        host=host_name(),
        protocol_seconds=float(phase1["protocol_seconds"]) + phase2[0],
        trial_mode="cached",
        losses=[*phase1["losses"], *run.history["loss"]],
        val_accuracies=[float(v) for v in run.history["val_accuracy"]],
        extra={**extra, **({STOPPED_AFTER: len(run.epoch_seconds)} if run.stopped else {})},
    )


def _inputs(cuts, depth: int, train: Arrays, val: Arrays, *, cache: PrefixCache,
            keys: activations.CacheKeys, protocol: TrainingProtocol, transform):
    """Where the trial's model starts (the cache point; None: the pooled features) and what it
    trains on: the cut's activations from the cache (filled now if missing), or the images."""
    point = cuts.cache_point_for(depth)
    if cached_on_images(depth, cuts.n):  # measured on the images, as at the input cut
        point = cuts.cache_points[cuts.n]
    if point is not None and point.layer == IMAGES:
        return point, train, val, False  # nothing frozen below the cut
    if point is not None and not activations.fits(point, len(train) + len(val), cache):
        raise CacheTooSmall(
            f"the activations at depth {depth}'s cut ({point.layer}, "
            f"{activations.point_bytes(point, len(train) + len(val)) / 2**30:.2f} GiB) "
            f"exceed --cache-size {cache.cache_size_bytes / 2**30:.2f} GiB")
    entry, filled = activations.get_or_compute(cuts, point, train, val, cache=cache, keys=keys,
                                               transform=transform, batch_size=protocol.batch_size)
    return point, Arrays(np.asarray(entry.train), train.y), Arrays(np.asarray(entry.val), val.y), filled


def _first_burst(plain: keras.Model, *, depth: int, images_cut: bool, protocol: TrainingProtocol,
                 num_classes: int, train: Arrays, phase1: dict, transform, priced_between: dict | None):
    """The probe of the plain model's phase-2 steps, its first burst run (None on the images:
    that phase 2 is the plain one); at depth 0 the costs phase 1 already timed, and where the
    search interpolated them (``priced_between``) those, unprobed."""
    validation = StepCosts.from_attrs(phase1, "phase1")
    if depth == 0:
        # Nothing of the backbone trains: the plain phase 2 runs phase 1's
        # graph again (only the learning rate differs), already timed.
        return None, validation
    if images_cut:
        return None, None
    if priced_between is not None:  # validation is phase 1's forward pass at every depth
        return None, StepCosts(float(priced_between["train_step"]), float(priced_between["train_trace"]),
                               validation.val_step, validation.val_trace)
    # Traced before training, as a plain phase 2 would meet this process:
    # kernels for these layers' gradients not yet run. A few steps now
    # (kept for the record), the accounted ones after training: steps right
    # after a trace ran ~20 % faster than a plain phase's back-to-back
    # steps; after the training they follow the trial's own work
    # (accounting). The probe's steps move the weights: they are put
    # back before the trial trains.
    saved = [w.numpy() for w in plain.trainable_weights]
    compile_for(plain, num_classes, protocol.finetune_lr, jit_compile=protocol.jit_compile)
    probe = plain_probe(plain, protocol=protocol, train=train, phase1=phase1, transform=transform)
    probe.run(PROBE_STEPS // 2)
    for w, value in zip(plain.trainable_weights, saved):
        w.assign(value)
    return probe, None


def _suffix_model(cuts, point, head: Head, head_state: dict, input_shape, *, protocol: TrainingProtocol,
                  num_classes: int, optimizer_built: bool) -> keras.Model:
    """The trial's model: the backbone above the cache point (in inference mode, as the plain
    model runs it) and the head from the head phase, compiled as phase 2 compiles it."""
    inputs = keras.Input(shape=input_shape)
    if point is None:  # depth 0: the head alone, on the pooled features
        x = inputs
    else:
        x = InferenceMode(cuts.suffix(point))(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, head(x))
    head.set_state(head_state)
    compile_for(model, num_classes, protocol.finetune_lr, jit_compile=protocol.jit_compile)
    if optimizer_built:  # on the images this phase 2 is the plain one: it pays what plain pays
        build_optimizer(model)
    return model
