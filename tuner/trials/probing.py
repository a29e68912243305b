"""A depth's protocol seconds from a short probe of its plain model, without training it.

Why: a cached search rules out depths whose price makes even accuracy 1
lose (``tuner.strategies.bound``); beyond the deepest depth measured the
readings give no upper end, and a deep cached trial (on the images) costs as
much as a plain one. The probe is the cached trial's own pricing (the same
``StepProbe`` of the plain model at this depth, phase 1 and validation from
the shared head phase) run before any training: a few seconds of tracing
and steps, where the trial would cost a minute.
"""

from __future__ import annotations

import keras

from tuner.data.batches import Arrays, image_transform, training_batches
from tuner.model.backbones import get_backbone_spec, set_depth
from tuner.model.hypermodel import Head, compile_for, plain_model
from tuner.model.protocol import TrainingProtocol
from tuner.trials import kept
from tuner.trials.accounting import PROBE_STEPS, StepCosts, StepProbe


def plain_probe(plain: keras.Model, *, protocol: TrainingProtocol, train: Arrays, phase1: dict,
                transform) -> StepProbe:
    """The probe of a compiled plain model's phase-2 steps; validation is phase 1's, the same
    forward pass at every depth."""
    p = protocol
    batches = training_batches(train, seed=p.seed, first_epoch=p.head_epochs, epochs=1,
                               batch_size=p.batch_size, transform=transform)
    return StepProbe(plain, batches, validation=StepCosts.from_attrs(phase1, "phase1"))


def phase2_seconds(costs: StepCosts, *, protocol: TrainingProtocol, train: Arrays,
                   val: Arrays) -> tuple[float, float]:
    """What phase 2 costs at these step costs: with its tracing, and steady."""
    shape = dict(train_examples=len(train), val_examples=len(val), batch_size=protocol.batch_size,
                 jit_compile=protocol.jit_compile)
    return (costs.phase_seconds(epochs=protocol.finetune_epochs, **shape),
            costs.phase_seconds(epochs=protocol.finetune_epochs, traced=False, **shape))


def probe_seconds(*, protocol: TrainingProtocol, num_classes: int, depth: int, train: Arrays, val: Arrays,
                phase1: dict) -> dict[str, float]:
    """``protocol_seconds`` and ``steady_seconds`` the plain protocol would cost at ``depth``,
    with the phase-2 step costs they come from (``phase2_train_step``, ...)."""
    p = protocol
    if depth == 0:  # nothing of the backbone trains: phase 2 runs phase 1's graph again
        costs = StepCosts.from_attrs(phase1, "phase1")
    else:
        spec = get_backbone_spec(p.backbone)
        backbone, _ = kept.backbone(p)  # its weights are put back by the next request
        set_depth(backbone, depth)
        plain = plain_model(backbone, Head.for_protocol(p, num_classes), p.image_size,
                            f"{spec.name}_depth_tuner")
        compile_for(plain, num_classes, p.finetune_lr, jit_compile=p.jit_compile)
        probe = plain_probe(plain, protocol=p, train=train, phase1=phase1,
                            transform=image_transform(spec.preprocess))
        costs = probe.run(PROBE_STEPS).costs()
    phase2, steady = phase2_seconds(costs, protocol=p, train=train, val=val)
    return {"protocol_seconds": float(phase1["protocol_seconds"]) + phase2,
            "steady_seconds": float(phase1["steady_seconds"]) + steady,
            **costs.as_attrs("phase2")}
