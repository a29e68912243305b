"""Backbone + new head, trained by the thesis' two-phase protocol and timed.

Phase 1 trains the head with the backbone frozen; phase 2 makes the top k
backbone layers trainable (``backbones.set_depth``), recompiles with a lower
learning rate and trains on. The backbone always runs in inference mode, so
BatchNormalization statistics stay those of the pretrained weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import keras_tuner as kt

from tuner.backbones import (
    build_backbone,
    get_backbone_spec,
    layers_with_weights,
    set_depth,
    split_at_depth,
)
from tuner.errors import TrialError
from tuner.metrics import TrialMetrics, steady_seconds
from tuner.protocol import Protocol, host_name
from tuner.space import DepthSpace
from tuner.timing import EpochClock, Stopwatch

# Called as progress(phase, epoch_in_phase, epochs_in_phase, seconds_so_far).
Progress = Callable[[int, int, int, float], None]


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


class DepthHyperModel(kt.HyperModel):
    """Keras Tuner hypermodel whose only hyperparameter is the unfreeze depth."""

    def __init__(self, *, protocol: Protocol, num_classes: int, space: DepthSpace):
        super().__init__(name="depth")
        self.protocol = protocol
        self.num_classes = num_classes
        self.space = space
        self.spec = get_backbone_spec(protocol.backbone)

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        hp.Int("depth", self.space.low, self.space.high)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        p = self.protocol
        keras.utils.set_random_seed(p.seed)  # same head start for every depth
        backbone = build_backbone(self.spec, image_size=p.image_size, weights=p.weights)
        backbone.trainable = False
        inputs = keras.Input(shape=(p.image_size, p.image_size, 3))
        x = InferenceMode(backbone)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(p.dropout)(x)
        if self.num_classes == 2:
            outputs = keras.layers.Dense(1, activation="sigmoid")(x)
        else:
            outputs = keras.layers.Dense(self.num_classes, activation="softmax")(x)
        model = keras.Model(inputs, outputs, name=f"{self.spec.name}_depth_tuner")
        self._compile(model, p.head_lr)
        return model

    def _compile(self, model: keras.Model, lr: float) -> None:
        if self.num_classes == 2:
            loss, acc = "binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")
        else:
            loss = "sparse_categorical_crossentropy"
            acc = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=[acc])

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        *args,
        train=None,
        validation=None,
        progress: Progress | None = None,
        **kwargs,
    ) -> TrialMetrics:
        p = self.protocol
        depth = int(hp.get("depth"))
        backbone = backbone_of(model)
        phases = [(1, p.head_epochs, None), (2, p.finetune_epochs, depth)]
        phase_epochs, phase_seconds, history = [], [], None
        elapsed = 0.0
        for phase, epochs, phase_depth in phases:
            if epochs == 0:
                continue
            if phase_depth is not None:
                set_depth(backbone, phase_depth)
                self._compile(model, p.finetune_lr)  # trainable changed: recompile
            clock = EpochClock(
                on_epoch=(lambda e, s, ph=phase, n=epochs, t0=elapsed: progress(ph, e, n, t0 + s))
                if progress else None
            )
            with Stopwatch() as watch:
                history = model.fit(
                    train, validation_data=validation, epochs=epochs, verbose=0,
                    callbacks=[clock, keras.callbacks.TerminateOnNaN()],
                )
            losses = history.history.get("loss", [])
            if len(clock.seconds) < epochs or any(not math.isfinite(v) for v in losses):
                raise TrialError(
                    f"loss became NaN in phase {phase} at depth {depth}: lower "
                    f"--{'head' if phase == 1 else 'finetune'}-lr"
                )
            phase_epochs.append(list(clock.seconds))
            phase_seconds.append(watch.seconds)
            elapsed += watch.seconds
        _, trained = split_at_depth(backbone, depth)
        epoch_seconds = [s for phase in phase_epochs for s in phase]
        return TrialMetrics(
            depth=depth,
            val_accuracy=float(history.history["val_accuracy"][-1]),
            val_loss=float(history.history["val_loss"][-1]),
            fit_seconds=float(sum(phase_seconds)),
            phase_seconds=phase_seconds,
            epoch_seconds=epoch_seconds,
            first_epoch_seconds=epoch_seconds[0],
            steady_seconds=steady_seconds(phase_epochs),
            trainable_params=trainable_count(model),
            trained_layers_with_weights=layers_with_weights(trained),
            host=host_name(),
        )
