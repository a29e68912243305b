"""Backbone + new head, trained by the thesis' two-phase protocol and timed.

Phase 1 trains the head with the backbone frozen; phase 2 makes the top k
backbone layers trainable (``backbones.set_depth``), recompiles with a lower
learning rate and trains on. The backbone always runs in inference mode, so
BatchNormalization statistics stay those of the pretrained weights.

This module runs the protocol as written (``--trial-mode plain``); the
pieces it shares with the cached trial (head, compile, a timed phase) live
here too, so both modes train the same layers with the same seeds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import keras_tuner as kt
import numpy as np

from tuner.data.batches import (
    Arrays,
    image_transform,
    steps_per_epoch,
    training_batches,
    validation_batches,
)
from tuner.errors import TrialError
from tuner.stored_keys import STOPPED_AFTER
from tuner.model.backbones import (
    build_backbone,
    get_backbone_spec,
    layers_with_weights,
    set_depth,
    split_at_depth,
)
from tuner.model.metrics import TrialMetrics, steady_seconds
from tuner.model.protocol import TrainingProtocol, host_name
from tuner.model.space import DepthSpace
from tuner.model.timing import EpochClock

# Called as progress(phase, epoch_in_phase, epochs_in_phase, seconds_so_far, val_accuracy) after
# every epoch; True stops the phase there (a trial stopped early, tuner.strategies.early_stop).
Progress = Callable[[int, int, int, float, float], bool | None]


class InferenceMode(keras.layers.Layer):
    """Runs the backbone with ``training=False`` whatever the caller says.

    Keras 3 overrides the ``training=False`` recorded in a functional node
    with the outer model's ``training=True`` (``functional.operation_fn``),
    so ``backbone(inputs, training=False)`` alone lets BatchNormalization
    statistics drift once the top layers are trainable. A wrapper whose
    ``call`` passes ``training=False`` explicitly is not overridden.
    """

    def __init__(self, backbone: keras.Model, **kwargs):
        super().__init__(name=f"{backbone.name}_inference", **kwargs)
        self.backbone = backbone

    def call(self, inputs, training=None):
        return self.backbone(inputs, training=False)


def backbone_of(model: keras.Model) -> keras.Model:
    return next(layer.backbone for layer in model.layers if isinstance(layer, InferenceMode))


def trainable_count(model: keras.Model) -> int:
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


class Head:
    """Dropout + dense, seeded: plain and cached trials start from the same head.

    The dropout masks come from a seed generator whose state counts the
    training steps taken, so phase 2 of a cached trial continues the mask
    sequence where the shared phase 1 left it, as the plain run does.
    """

    def __init__(self, *, num_classes: int, dropout: float, seed: int):
        units, act = (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")
        self.dropout = keras.layers.Dropout(dropout, seed=seed)
        self.dense = keras.layers.Dense(
            units, activation=act, kernel_initializer=keras.initializers.GlorotUniform(seed=seed))

    @classmethod
    def for_protocol(cls, protocol: TrainingProtocol, num_classes: int) -> Head:
        return cls(num_classes=num_classes, dropout=protocol.dropout, seed=protocol.seed)

    def __call__(self, features):
        return self.dense(self.dropout(features))

    def get_state(self) -> dict[str, np.ndarray]:
        kernel, bias = self.dense.get_weights()
        return {"kernel": kernel, "bias": bias,
                "dropout_state": np.asarray(self.dropout.seed_generator.state.numpy())}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.dense.set_weights([state["kernel"], state["bias"]])
        self.dropout.seed_generator.state.assign(state["dropout_state"])


def plain_model(backbone: keras.Model, head: Head, image_size: int, name: str) -> keras.Model:
    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = keras.layers.GlobalAveragePooling2D()(InferenceMode(backbone)(inputs))
    return keras.Model(inputs, head(x), name=name)


def compile_for(model: keras.Model, num_classes: int, lr: float, *, jit_compile: bool = False) -> None:
    """Every model of a trial compiles here, so plain, cached, probes and export share one protocol
    (``jit_compile`` is ``TrainingProtocol.jit_compile``, never Keras' device-dependent "auto")."""
    if num_classes == 2:
        loss, acc = "binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss = "sparse_categorical_crossentropy"
        acc = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=[acc], jit_compile=jit_compile)


def build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's slots before ``fit`` traces the training step.

    Without a distribution strategy Keras creates them inside the first
    trace, and tf.function then traces the whole step again: at 160 px,
    depth 12, the first ``fit`` step takes 1.9 s instead of 3.3 s. For the
    tool's own training on cached inputs only: the plain protocol, and the
    probe that prices it, pay what a user's ``fit`` pays.
    """
    model.optimizer.build(model.trainable_variables)


@dataclass
class PhaseRun:
    epoch_seconds: list[float]
    seconds: float  # wall clock of the fit call until training ended (Keras' on_train_end)
    history: dict[str, list[float]]
    teardown_seconds: float = 0.0  # from then until ``fit`` returned: not training
    stopped: bool = False  # ``progress`` stopped it before its last epoch


def run_phase(model: keras.Model, train: Arrays, val: Arrays, *, protocol: TrainingProtocol, phase: int,
              depth: int, transform=None, progress: Progress | None = None,
              seconds_before: float = 0.0, seed: int | None = None) -> PhaseRun:
    """One timed phase of the protocol on ``train`` (images or activations).

    ``seed`` (default the protocol's) orders the batches: a confirmation
    repeat passes its own for phase 2."""
    p = protocol
    epochs, first = (p.head_epochs, 0) if phase == 1 else (p.finetune_epochs, p.head_epochs)
    ds = training_batches(train, seed=p.seed if seed is None else seed, first_epoch=first, epochs=epochs,
                          batch_size=p.batch_size, transform=transform)
    val_ds = validation_batches(val, batch_size=p.batch_size, transform=transform)
    clock = EpochClock(on_epoch=(lambda e, s, logs: progress(
        phase, e, epochs, seconds_before + s, float(logs.get("val_accuracy", "nan")))) if progress else None)
    start = time.perf_counter()
    history = model.fit(ds, validation_data=val_ds, epochs=epochs,
                        steps_per_epoch=steps_per_epoch(len(train), p.batch_size), verbose=0, shuffle=False,
                        callbacks=[clock, keras.callbacks.TerminateOnNaN()])
    returned = time.perf_counter()
    losses = history.history.get("loss", [])
    if (len(clock.seconds) < epochs and not clock.stopped) or any(not math.isfinite(v) for v in losses):
        raise TrialError(f"loss became NaN in phase {phase} at depth {depth}: lower "
                         f"--{'head' if phase == 1 else 'finetune'}-lr")
    # The protocol's seconds end with its training: fit returned up to 37 s
    # after its last epoch at 160 px (tf.data's autotuning thread shutting
    # down, off since in data.batches), at random; no training step pays it.
    trained = clock.train_end or returned
    return PhaseRun(list(clock.seconds), trained - start, dict(history.history), returned - trained,
                    stopped=clock.stopped)


def as_arrays(data) -> Arrays:
    """``Arrays`` as given, or from an (images, labels) pair."""
    if data is None or isinstance(data, Arrays):
        return data
    images, labels = data
    return Arrays(np.asarray(images), np.asarray(labels))


def after_training(callbacks: list, model: keras.Model, logs: dict[str, float]) -> None:
    """Hand ``callbacks`` the trained model as one untimed epoch whose logs are ``logs``."""
    if not callbacks:
        return
    hooks = keras.callbacks.CallbackList(list(callbacks), model=model)
    hooks.on_train_begin()
    hooks.on_epoch_begin(0)
    hooks.on_epoch_end(0, logs=dict(logs))
    hooks.on_train_end(logs=dict(logs))


class DepthHyperModel(kt.HyperModel):
    """Keras Tuner hypermodel whose only hyperparameter is the unfreeze depth."""

    def __init__(self, *, protocol: TrainingProtocol, num_classes: int, space: DepthSpace):
        super().__init__(name="depth")
        self.protocol = protocol
        self.num_classes = num_classes
        self.space = space
        self.spec = get_backbone_spec(protocol.backbone)

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        hp.Int("depth", self.space.low, self.space.high)

    def hyperparameters(self, depth: int) -> kt.HyperParameters:
        """The space with ``depth`` chosen, as Keras Tuner hands it to a trial (the trial
        process and ``export`` train one depth outside the tuner's loop)."""
        hp = kt.HyperParameters()
        self.declare_hyperparameters(hp)
        hp.values["depth"] = depth
        return hp

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        p = self.protocol
        keras.utils.set_random_seed(p.seed)  # random weights (--weights none) alike in every trial
        backbone = build_backbone(self.spec, image_size=p.image_size, weights=p.weights)
        backbone.trainable = False
        model = plain_model(backbone, Head.for_protocol(p, self.num_classes), p.image_size, f"{self.spec.name}_depth_tuner")
        compile_for(model, self.num_classes, p.head_lr, jit_compile=p.jit_compile)
        return model

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, train=None, validation=None,
            callbacks=None, verbose=None, **kwargs) -> dict[str, float]:
        """What Keras Tuner calls: the plain protocol (``run_protocol``), returned as the
        trial's metrics, plain floats (``TrialMetrics.keras_metrics``).

        Among them ``efficiency`` = ``val_accuracy / protocol_seconds`` (the
        default objective's formula on this one trial), ``val_accuracy``,
        ``protocol_seconds``, ``steady_seconds``: any of them can be a Keras
        Tuner objective, e.g. ``kt.RandomSearch(hypermodel,
        objective=kt.Objective("efficiency", "max"), ...)`` and
        ``tuner.search(train=(images, labels), validation=(images, labels))``
        with uint8 images (``Arrays`` or pairs). The protocol fixes epochs,
        batches and learning rates, so no other ``fit`` arguments are taken
        (``verbose`` is, and ignored). Keras Tuner's ``callbacks`` (its
        best-epoch checkpoint, a user's) run after the clock stopped: they
        see the trial as one epoch whose logs are these metrics, so the
        checkpoint holds the trained model (``get_best_models``).
        """
        given = sorted(set(kwargs) - {"progress", "phase2_seed"}) + (["positional data"] if args else [])
        if given:  # a mistake in every trial alike: Keras Tuner stops at once
            raise kt.errors.FatalTypeError(
                f"DepthHyperModel.fit does not take {', '.join(given)}: pass the data as train= and "
                "validation= (uint8 images, labels); the protocol sets epochs, batches and learning rates")
        metrics = self.run_protocol(hp, model, train=as_arrays(train), validation=as_arrays(validation),
                                    **kwargs)
        report = metrics.keras_metrics()
        after_training(callbacks or [], model, report)
        return report

    def run_protocol(self, hp: kt.HyperParameters, model: keras.Model, *, train: Arrays,
                     validation: Arrays, progress: Progress | None = None,
                     phase2_seed: int | None = None) -> TrialMetrics:
        """The plain protocol on uint8 images: both phases through the whole backbone; the
        whole record, as stored on the trial (the trial process and ``export`` call it).

        ``phase2_seed``: a confirmation repeat's own seed for phase 2's batch
        order (as in a cached trial, whose phase 1 is the study's)."""
        p = self.protocol
        depth = int(hp.get("depth"))
        backbone = backbone_of(model)
        transform = image_transform(self.spec.preprocess)
        runs = []
        for phase in (1, 2):
            if phase == 2:
                set_depth(backbone, depth)
                compile_for(model, self.num_classes, p.finetune_lr, jit_compile=p.jit_compile)  # trainable changed: recompile
            runs.append(run_phase(model, train, validation, protocol=p, phase=phase, depth=depth,
                                  transform=transform, progress=progress,
                                  seconds_before=sum(r.seconds for r in runs),
                                  seed=phase2_seed if phase == 2 else None))
        _, trained = split_at_depth(backbone, depth)
        epoch_seconds = [s for r in runs for s in r.epoch_seconds]
        fit_seconds = float(sum(r.seconds for r in runs))
        return TrialMetrics(
            depth=depth,
            val_accuracy=float(runs[-1].history["val_accuracy"][-1]),
            val_loss=float(runs[-1].history["val_loss"][-1]),
            fit_seconds=fit_seconds,
            phase_seconds=[r.seconds for r in runs],
            epoch_seconds=epoch_seconds,
            first_epoch_seconds=epoch_seconds[0],
            steady_seconds=steady_seconds([r.epoch_seconds for r in runs]),
            trainable_params=trainable_count(model),
            trained_layers_with_weights=layers_with_weights(trained),
            host=host_name(),
            protocol_seconds=fit_seconds,
            trial_mode="plain",
            losses=[v for r in runs for v in r.history["loss"]],
            val_accuracies=[float(v) for v in runs[-1].history["val_accuracy"]],
            extra={"teardown_seconds": sum(r.teardown_seconds for r in runs),
                   **({STOPPED_AFTER: len(runs[-1].epoch_seconds)} if runs[-1].stopped else {})},
        )
