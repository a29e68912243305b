"""``export``: train the chosen depth once more by the study's own protocol, in plain mode, and save it.

A cached trial never holds the whole model (its phase 2 trains on stored
activations), and a search keeps no weights unless asked, so the model is
trained again: one plain training at the study's protocol, data, backbone
and weights (their file checked against the hash the study recorded). The
same seed gives the same weights as the search's own trial of that depth,
so ``--depth K`` at the search's epochs reproduces its val_accuracy. A kept
checkpoint (``search --keep-checkpoints``) of that very trial is reused
instead, once it has shown the trial's val_accuracy again.

Nothing here writes to the study.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import optuna
from optuna.trial import TrialState

from objectives.best import CHOICES
from tuner import stored_keys as keys
from tuner.data.batches import Arrays, dataset_arrays
from tuner.data.sources import DataSpec, class_names, load_datasets
from tuner.errors import UsageError
from tuner.export.card import check_output, reclaim_partials, write_model
from tuner.export.serving import serving_model
from tuner.model.backbones import get_backbone_spec, weights_source
from tuner.model.calibration import calibrated_weights, needs_calibration, trial_protocol
from tuner.model.protocol import RANDOM_WEIGHTS, TrainingProtocol, file_sha256
from tuner.model.signatures import n_layers
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.store.provenance import provenance_note
from tuner.store.storage import default_storage, load_stored_study, storage_file
from tuner.store.study import recorded_config, recorded_space
from tuner.store.trials import trial_depth


@dataclass(frozen=True)
class ExportOptions:
    """How to train the handed-over model; None keeps the study's own setting."""

    depth: int | None = None
    choose: str = "best"
    head_epochs: int | None = None
    finetune_epochs: int | None = None
    include_validation: bool = False
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if self.choose not in CHOICES:
            raise UsageError(f"--choose {self.choose!r}: use one of {', '.join(CHOICES)}")
        if self.depth is not None and self.choose != "best":
            raise UsageError("--depth and --choose both pick the depth: give one")


@dataclass
class Exported:
    model: keras.Model
    card: dict[str, Any]
    path: str


def recorded_protocol(config: dict[str, Any], options: ExportOptions) -> TrainingProtocol:
    """The study's protocol, its weights as the search built them, epochs as asked."""
    fields = {f.name: config["protocol"][f.name] for f in dataclasses.fields(TrainingProtocol)
              if f.name in config["protocol"]}
    weights = fields.get("weights")
    if weights in (RANDOM_WEIGHTS, "none"):
        fields["weights"] = None
    elif weights != "imagenet":
        if not os.path.isfile(weights):
            raise UsageError(f"the study's weights file {weights} is gone: restore it to export")
        fields["weights"] = weights_source(weights)
        want = config["protocol"].get("weights_sha256")
        if want and file_sha256(fields["weights"]) != want:
            raise UsageError(f"the weights file {weights} changed since the search (its sha256 differs): "
                             "restore the file the study was searched with")
    for name in ("head_epochs", "finetune_epochs"):
        if getattr(options, name) is not None:
            fields[name] = getattr(options, name)
    return TrainingProtocol(**fields)


def recorded_data(config: dict[str, Any]) -> DataSpec:
    d = dict(config["data"])
    if d.get("fake_examples") is not None:
        d["fake_examples"] = tuple(d["fake_examples"])
    spec = DataSpec(**d)
    if spec.source == "folder" and not os.path.isdir(spec.name):
        raise UsageError(f"the study's data folder {spec.name} is gone: restore it to export")
    return spec


def choose_depth(study: optuna.Study, options: ExportOptions) -> tuple[int, Any]:
    """The depth to train and the study's answer (its evidence)."""
    from tuner.analysis.summary import study_answer

    answer = study_answer(study)
    if answer is None:
        raise UsageError(f"study {study.study_name!r} has no measured trial: run depth-tuner search first")
    if options.depth is None:
        return answer.chosen(options.choose), answer
    config = recorded_config(study)
    n = n_layers(config["protocol"]["backbone"])
    if not 0 <= options.depth <= n:
        raise UsageError(f"--depth {options.depth} is outside 0..{n}, the layers of "
                         f"{config['protocol']['backbone']}")
    return options.depth, answer


def kept_checkpoint(study: optuna.Study, depth: int) -> tuple[optuna.trial.FrozenTrial, str] | None:
    """A measured trial of ``depth`` under the study's base seed whose weights were kept."""
    space = recorded_space(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        path = a.get(keys.CHECKPOINT)
        if (path and keys.SEED not in a and keys.REUSED_FROM not in a and os.path.isfile(path)
                and trial_depth(t, space) == depth):
            return t, path
    return None


def accuracy(model: keras.Model, data: Arrays, batch_size: int) -> float:
    """Top-1 accuracy of a serving model (probabilities per class) on uint8 images."""
    probs = model.predict(data.x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probs, axis=1) == data.y.astype(int)))


def export_study(study_name: str, *, storage: str | None, output: str,
                 options: ExportOptions = ExportOptions(),
                 reporter: Reporter | None = None) -> Exported:
    """Train the chosen depth of a stored study and write it, with its card, to ``output``."""
    t0 = time.perf_counter()
    reporter = reporter or Reporter()
    output = check_output(output)
    storage = storage or default_storage(study_name)
    study = load_stored_study(study_name, storage=storage)
    config = recorded_config(study)
    depth, answer = choose_depth(study, options)
    protocol = recorded_protocol(config, options)
    data = recorded_data(config)
    spec = get_backbone_spec(protocol.backbone)
    for path in reclaim_partials(output):
        reporter.say(f"removed {path}, left by an export that was stopped")
    same_epochs = (protocol.head_epochs, protocol.finetune_epochs) == (
        config["protocol"]["head_epochs"], config["protocol"]["finetune_epochs"])
    kept = kept_checkpoint(study, depth) if same_epochs and not options.include_validation else None

    datasets = load_datasets(data, image_size=protocol.image_size, seed=protocol.seed,
                             data_dir=options.data_dir)
    names = class_names(data, datasets.num_classes, data_dir=options.data_dir)
    train, val = dataset_arrays(datasets.train_images), dataset_arrays(datasets.val_images)
    reporter.say(f"data {data.name}: {len(train)} training, {len(val)} validation images, "
                 f"{datasets.num_classes} classes")
    with tempfile.TemporaryDirectory(prefix="depth-tuner-export-") as workdir:
        built = protocol
        if needs_calibration(protocol):  # the very file the search's trials built from
            built = trial_protocol(protocol, calibrated_weights(protocol, train.x, workdir))
        model, how = _trained(built, depth, datasets.num_classes, train, val, kept, options, reporter)
        serving = serving_model(model, spec, image_size=protocol.image_size)
        val_accuracy = accuracy(serving, val, protocol.batch_size)
    card = model_card(study, storage, config, answer, depth=depth, protocol=protocol, options=options,
                      class_names=names, val_accuracy=val_accuracy, how=how,
                      examples=(len(train), len(val)), seconds=time.perf_counter() - t0)
    path = write_model(serving, card, output)
    reporter.say(f"wrote {path}: depth {depth}, val_accuracy {val_accuracy:.4f}"
                 + (" (validation images were trained on: not held out)" if options.include_validation else ""))
    return Exported(serving, card, path)


def _trained(protocol: TrainingProtocol, depth: int, num_classes: int, train: Arrays, val: Arrays,
             kept, options: ExportOptions, reporter: Reporter) -> tuple[keras.Model, dict[str, Any]]:
    """The training-time model at ``depth``: from the kept checkpoint if it checks out, else trained."""
    from tuner.model.hypermodel import DepthHyperModel

    hm = DepthHyperModel(protocol=protocol, num_classes=num_classes,
                         space=DepthSpace(0, n_layers(protocol.backbone)))
    hp = hm.hyperparameters(depth)
    model = hm.build(hp)
    if kept is not None:
        trial, path = kept
        from tuner.model.backbones import set_depth
        from tuner.model.hypermodel import backbone_of, compile_for

        model.load_weights(path)
        set_depth(backbone_of(model), depth)
        compile_for(model, num_classes, protocol.finetune_lr, jit_compile=protocol.jit_compile)
        got = float(model.evaluate(_val_batches(val, protocol), verbose=0, return_dict=True)["accuracy"])
        if abs(got - trial.user_attrs[keys.VAL_ACCURACY]) < 1e-6:
            reporter.say(f"reused the kept checkpoint of trial #{trial.number} ({path}): "
                         f"its val_accuracy {got:.4f} reproduced, nothing trained")
            return model, {"trained": False, "checkpoint": path, "from_trial": trial.number}
        reporter.say(f"the kept checkpoint {path} gives val_accuracy {got:.4f}, not trial "
                     f"#{trial.number}'s {trial.user_attrs[keys.VAL_ACCURACY]:.4f}: training instead")
        model = hm.build(hp)
    fit_train = train
    if options.include_validation:
        fit_train = Arrays(np.concatenate([train.x, val.x]), np.concatenate([train.y, val.y]))
    total = protocol.head_epochs + protocol.finetune_epochs

    def progress(phase, epoch, epochs, seconds, val_accuracy):
        done = epoch + (protocol.head_epochs if phase == 2 else 0)
        reporter.say(f"export depth {depth}: phase {phase}/2 epoch {epoch}/{epochs} "
                     f"({done}/{total}), {seconds:.1f} s in training, val_accuracy {val_accuracy:.4f}")

    reporter.say(f"training depth {depth} in the plain protocol ({protocol.head_epochs}+"
                 f"{protocol.finetune_epochs} epochs on {len(fit_train)} images)")
    metrics = hm.run_protocol(hp, model, train=fit_train, validation=val, progress=progress)
    return model, {"trained": True, "on": "training and validation images" if options.include_validation
                   else "training images", "protocol_seconds": metrics.protocol_seconds,
                   "fit_val_accuracy": metrics.val_accuracy}


def _val_batches(val: Arrays, protocol: TrainingProtocol):
    from tuner.data.batches import image_transform, validation_batches

    return validation_batches(val, batch_size=protocol.batch_size,
                              transform=image_transform(get_backbone_spec(protocol.backbone).preprocess))


def model_card(study: optuna.Study, storage: str, config: dict[str, Any], answer, *, depth: int,
               protocol: TrainingProtocol,
               options: ExportOptions, class_names: list[str], val_accuracy: float,
               how: dict[str, Any], examples: tuple[int, int], seconds: float) -> dict[str, Any]:
    """The evidence for the handed-over model, JSON-ready (README: "The model card")."""
    import tuner

    rows = answer.depths
    row = rows.loc[depth] if depth in rows.index else None
    file = storage_file(storage)
    return {
        "tool": f"depth-tuner {tuner.__version__}",
        "study": study.study_name,
        "storage": os.path.abspath(file) if file else storage.split("@")[-1],  # no password on the card
        "objective": answer.objective.name,
        "depth": depth,
        "chosen_by": "--depth" if options.depth is not None else options.choose,
        "best_depth": answer.best_depth,
        "best_value": answer.best_value,
        "best_interval": [float(v) for v in answer.best_interval],
        "within_noise": list(answer.within_noise),
        "depth_in_study": None if row is None else {
            "value": float(row["value"]), "sd": float(row["sd"]), "readings": int(row["repeats"]),
            "mean_val_accuracy": float(row["val_accuracy"]), "mean_seconds": float(row["seconds"])},
        "val_accuracy": None if options.include_validation else val_accuracy,
        "val_accuracy_note": ("the validation images were trained on (--include-validation): no held-out "
                              f"accuracy exists; {val_accuracy:.4f} on them" if options.include_validation
                              else "measured at export by this file's model on the study's validation images"),
        "class_names": class_names,
        "image_size": protocol.image_size,
        "input": "uint8 RGB images of any size (batch, height, width, 3); resized inside",
        "output": "one probability per class, in the order of class_names",
        "backbone": protocol.backbone,
        "weights": config["protocol"].get("weights"),
        "protocol": {k: v for k, v in protocol.as_config().items() if k != "weights"},
        "include_validation": options.include_validation,
        "data": config["data"],
        "examples": {"train": examples[0], "validation": examples[1]},
        "training": how,
        "export_seconds": round(seconds, 1),
        "provenance": provenance_note(config),
    }

