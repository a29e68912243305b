"""The shared head phase: phase 1 trained once per study, on cached pooled features.

Phase 1 trains only the head with the whole backbone frozen, so it is the
same for every depth. It is computed once: one forward pass of the images
gives the pooled features (and fills the cache points, shallow first, in the
same pass), the head trains on those features with the plain run's batches,
seeds and dropout masks, and a short probe of the real plain phase-1 model
times what the plain protocol pays for this phase.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from tuner.data.batches import (
    Arrays,
    image_transform,
    training_batches,
    validation_batches,
)
from tuner.model.backbones import get_backbone_spec
from tuner.model.hypermodel import (
    Head,
    build_optimizer,
    compile_for,
    plain_model,
    run_phase,
)
from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace
from tuner.trials import activations, kept
from tuner.trials.accounting import PROBE_STEPS, StepProbe
from tuner.trials.prefix_cache import PrefixCache

HEAD_PROBE_STEPS = 8 * PROBE_STEPS  # in two bursts


@dataclass
class HeadPhase:
    state: dict[str, np.ndarray]  # head weights and dropout state after phase 1
    metrics: dict  # stored on the study (user attribute "head_phase")


def run_head_phase(*, protocol: TrainingProtocol, num_classes: int, space: DepthSpace, train: Arrays,
                   val: Arrays, cache: PrefixCache, keys: activations.CacheKeys) -> HeadPhase:
    t0 = time.perf_counter()
    p = protocol
    spec = get_backbone_spec(p.backbone)
    backbone, cuts = kept.backbone(p)
    backbone.trainable = False
    transform = image_transform(spec.preprocess)
    head = Head.for_protocol(p, num_classes)  # before the probe's head: the plain run's initial weights
    # Time the plain phase 1 on a throw-away head: same graph, same step cost.
    # Every trial's protocol seconds include this phase (twice at depth 0):
    # a longer probe than a trial's, paid once per study, in two bursts on
    # either side of this phase's own work, half a minute apart at 160 px.
    probe_model = plain_model(backbone, Head.for_protocol(p, num_classes), p.image_size, "probe")
    compile_for(probe_model, num_classes, p.head_lr, jit_compile=p.jit_compile)
    probe = StepProbe(probe_model,
                      training_batches(train, seed=p.seed, first_epoch=0, epochs=1,
                                       batch_size=p.batch_size, transform=transform),
                      validation_batches(val, batch_size=p.batch_size, transform=transform).repeat())
    probe.run(HEAD_PROBE_STEPS // 2)

    examples = len(train) + len(val)
    points = activations.head_phase_points(cuts, low=space.low, high=space.high,
                                           examples=examples, cache_size_bytes=cache.cache_size_bytes)
    t_pass = time.perf_counter()
    filled = activations.compute(cuts, [None, *points], train, val, cache=cache, keys=keys,
                                 transform=transform, batch_size=p.batch_size)
    pass_seconds = time.perf_counter() - t_pass
    pooled = filled[None]

    features = keras.Input(shape=pooled.train.shape[1:])
    head_model = keras.Model(features, head(features))
    compile_for(head_model, num_classes, p.head_lr, jit_compile=p.jit_compile)
    build_optimizer(head_model)
    run = run_phase(head_model, Arrays(np.asarray(pooled.train), train.y),
                    Arrays(np.asarray(pooled.val), val.y), protocol=p, phase=1, depth=0)
    state = head.get_state()

    costs = probe.run(HEAD_PROBE_STEPS // 2).costs()
    seconds = costs.phase_seconds(epochs=p.head_epochs, train_examples=len(train),
                                  val_examples=len(val), batch_size=p.batch_size, jit_compile=p.jit_compile)
    metrics = {
        "val_accuracy": float(run.history["val_accuracy"][-1]),
        "val_loss": float(run.history["val_loss"][-1]),
        "losses": [float(v) for v in run.history["loss"]],
        "protocol_seconds": seconds,
        "steady_seconds": costs.phase_seconds(epochs=p.head_epochs, train_examples=len(train),
                                              val_examples=len(val), batch_size=p.batch_size,
                                              traced=False),
        "fit_seconds": run.seconds,
        "features_pass_seconds": pass_seconds,
        "cached_points": [pt.depth for pt in points],
        "cached_bytes": sum(activations.point_bytes(pt, examples) for pt in points),
        "search_seconds": time.perf_counter() - t0,
        **costs.as_attrs("phase1"),
    }
    return HeadPhase(state, metrics)
