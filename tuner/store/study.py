"""A stored study's recorded configuration: written when it is created, compared when it is
resumed (another configuration is refused), and read back as today's values; the Optuna storage
is the only record of a search (storages: ``tuner.store.storage``; trials: ``tuner.store.trials``)."""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna

from tuner import __version__
from tuner import stored_keys as keys
from tuner.errors import UsageError
from tuner.model.space import DepthSpace

def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    a, b = flatten(stored), flatten(wanted)
    return [
        f"{k}: {a.get(k, '-')} -> {b.get(k, '-')}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def existing_config(storage: optuna.storages.BaseStorage, name: str) -> dict | None:
    """The configuration a stored study was created with, or None if there is no such study."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    return recorded_config(study)


def recorded_config(study: optuna.Study) -> dict[str, Any]:
    return keys.stored_config(study.user_attrs.get(keys.CONFIG))


def record_examples(study: optuna.Study, *, train: int, validation: int) -> None:
    """How many images the study's trials read: the accuracy noise's binomial floor needs it.

    Kept apart from the configuration, which a resume compares: studies from
    before it was recorded resume as they are and simply have no floor."""
    if study.user_attrs.get(keys.EXAMPLES) != {"train": train, "validation": validation}:
        study.set_user_attr(keys.EXAMPLES, {"train": train, "validation": validation})


def study_val_examples(study: optuna.Study) -> int | None:
    """The study's validation images, if it recorded them (``record_examples``)."""
    n = (study.user_attrs.get(keys.EXAMPLES) or {}).get("validation")
    return int(n) if n else None


def recorded_space(study: optuna.Study) -> DepthSpace:
    """The depth space a study was created with (its backbone's layers, linear, if it has none)."""
    config = recorded_config(study)
    s = config.get("space")
    if s is None:  # a study from before the range was recorded: every layer of its backbone
        from tuner.model.protocol import DEFAULT_BACKBONE
        from tuner.model.signatures import n_layers

        s = {"low": 0, "high": n_layers(config.get("protocol", {}).get("backbone", DEFAULT_BACKBONE))}
    return DepthSpace(int(s["low"]), int(s["high"]), s.get("scale", "linear"))


def check_resumable(
    storage: optuna.storages.BaseStorage, name: str, config: dict[str, Any]
) -> dict | None:
    """The stored configuration (None for a new study); refuses one that differs."""
    stored = existing_config(storage, name)
    if stored:
        diffs = config_differences(stored, config)
        if diffs:
            raise UsageError(
                f"study {name!r} was created with another configuration "
                f"({'; '.join(diffs)}): rerun with its options or pick another --study"
            )
    return stored


def create_or_load_study(
    *,
    name: str,
    storage: optuna.storages.BaseStorage,
    config: dict[str, Any],
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner | None = None,
) -> tuple[optuna.Study, bool]:
    """Create the study, or load it if its recorded configuration matches; and whether this call
    created it. ``pruner`` None: none (``NopPruner``), not Optuna's default median pruner.

    Of several workers starting together exactly one creates it (Optuna
    refuses a duplicate name), so only that one may take it back.
    """
    from objectives import get_objective

    stored = check_resumable(storage, name, config)
    objective = get_objective(config.get("objective") or "efficiency")
    pruner = pruner or optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                    directions=list(objective.study_directions))
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        created = False
    if study.metric_names != objective.metric_names:  # new studies, and those from before names
        with warnings.catch_warnings():  # experimental since Optuna 3.2, unchanged through 4.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(objective.metric_names)
    if not stored:
        study.set_user_attr(keys.CONFIG, json.dumps(config, sort_keys=True))
        study.set_user_attr(keys.TOOL_VERSION, __version__)
    return study, created
