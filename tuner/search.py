"""One pass of a depth search: check everything, open the study, run the trials.

Every check that can fail on user input runs before the study is created or
touched, so bad input never damages a stored study.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

import keras
import optuna
from keras_tuner.src import config as kt_config

from objectives import get_objective
from tuner.backbones import build_backbone, check_image_size, depth_signatures, get_backbone_spec
from tuner.config import QUEUED_STRATEGIES, SearchConfig
from tuner.data import load_datasets, save_images
from tuner.errors import UsageError
from tuner.hypermodel import DepthHyperModel
from tuner.oracle import OptunaOracle
from tuner.progress import Reporter
from tuner.queued import Refill
from tuner.runner import DepthTuner
from tuner.samplers import make_sampler
from tuner.study import check_resumable, measured_trials, open_storage, open_study


@dataclass
class SearchOutcome:
    study_name: str
    measured: int
    requested: int
    interrupted: bool = False
    stop_reason: str = ""


def run_search(
    *,
    config: SearchConfig,
    study_name: str,
    storage: str,
    trials: int | None,
    reporter: Reporter | None = None,
    data_dir: str | None = None,
    max_consecutive_failures: int = 3,
    checkpoint_dir: str | None = None,
    isolate: bool = True,
    refill: Refill | None = None,
    seconds_budget: float | None = None,
) -> SearchOutcome:
    """Run (or resume) the study until it has ``trials`` measured trials.

    With ``refill`` (tuner.queued) the depths come from that strategy instead
    of the sampler, and ``trials=None`` runs until it has nothing to add.
    """
    reporter = reporter or Reporter()
    if trials is None and refill is None and seconds_budget is None:
        raise UsageError("--trials is needed: how many measured trials the study should have")
    if seconds_budget is not None and seconds_budget <= 0:
        raise UsageError(f"--budget-seconds {seconds_budget:g}: give a positive number of seconds")
    if trials is not None and trials < 1:
        raise UsageError(f"--trials {trials}: ask for at least 1 trial")
    if max_consecutive_failures < 0:
        raise UsageError("--max-consecutive-failures must be 0 (never stop) or more")
    objective = get_objective(config.objective)
    spec = get_backbone_spec(config.protocol.backbone)
    signatures = depth_signatures(spec.name)
    n = len(signatures) - 1
    if config.space.high > n:
        raise UsageError(f"--max-depth {config.space.high} exceeds the {n} layers of {spec.name}: use at most {n}")
    check_image_size(spec, config.protocol.image_size)  # before any storage is opened
    # Queued strategies never consult the sampler; Optuna still needs one.
    sampler = make_sampler("random" if config.sampler in QUEUED_STRATEGIES else config.sampler,
                           space=config.space, seed=config.protocol.seed)

    store = open_storage(storage)
    wanted = config.as_config()
    stored = check_resumable(store, study_name, wanted)
    if stored is not None and trials is not None:
        done = len(measured_trials(optuna.load_study(study_name=study_name, storage=store)))
        if trials < done:
            raise UsageError(
                f"study {study_name!r} already has {done} measured trials: pass --trials {done} or more"
            )
        if trials == done:
            reporter.say(f"study {study_name!r} already has {done} measured trials; nothing to do")
            return SearchOutcome(study_name, done, trials, stop_reason="already complete")

    build_backbone(spec, image_size=config.protocol.image_size, weights=config.protocol.weights)
    keras.backend.clear_session()  # that was only a check that the weights fit
    label = " (FAKE generated images)" if config.data.source == "fake" else ""
    reporter.say(f"loading data {config.data.name}{label}")
    datasets = load_datasets(
        config.data, preprocess=spec.preprocess, image_size=config.protocol.image_size,
        batch_size=config.protocol.batch_size, seed=config.protocol.seed, data_dir=data_dir,
    )
    reporter.say(f"data: {datasets.train_examples} training, {datasets.val_examples} validation images, "
                 f"{datasets.num_classes} classes")

    study = open_study(name=study_name, storage=store, config=wanted, sampler=sampler)
    if stored is None:
        reporter.say(f"new study {study_name!r} in {storage}")
    oracle = OptunaOracle(
        study=study, space=config.space, signatures=signatures, total_trials=trials,
        max_consecutive_failures=max_consecutive_failures, reporter=reporter, refill=refill,
        seconds_budget=seconds_budget,
    )
    hypermodel = DepthHyperModel(protocol=config.protocol, num_classes=datasets.num_classes,
                                 space=config.space)
    # A failed trial's traceback is stored on it; Keras Tuner need not print it.
    kt_config.DEBUG = bool(os.environ.get("DEPTH_TUNER_DEBUG"))
    workdir = tempfile.mkdtemp(prefix="depth-tuner-")
    try:
        images_dir = None
        if isolate:
            images_dir = os.path.join(workdir, "images")  # beside, not inside, Keras Tuner's folder
            save_images(datasets, images_dir)
        tuner = DepthTuner(
            oracle=oracle, hypermodel=hypermodel, objective=objective, reporter=reporter,
            directory=os.path.join(workdir, "keras-tuner"), project_name=study_name,
            checkpoint_dir=checkpoint_dir,
            images_dir=images_dir,
        )
        try:
            tuner.search(datasets=datasets, verbose=0)
        except KeyboardInterrupt:
            oracle.abandon_running("interrupted (Ctrl-C / SIGTERM); its depth is queued again")
            done = len(measured_trials(study))
            reporter.say(f"stopped: {done} of {trials or '?'} trials measured; run the same command to continue")
            return SearchOutcome(study_name, done, trials, interrupted=True)
        except RuntimeError as exc:
            if "consecutive failures" not in str(exc):
                raise
            done = len(measured_trials(study))
            raise SearchStopped(
                f"stopped after {max_consecutive_failures} failed trials in a row "
                f"({done} of {trials} measured; reasons: depth-tuner show --study {study_name} --all); "
                "fix the cause, or pass --max-consecutive-failures 0 to keep going"
            ) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    done = len(measured_trials(study))
    reporter.say(f"done: {done} trials measured ({oracle.stop_reason})")
    return SearchOutcome(study_name, done, trials, stop_reason=oracle.stop_reason)


class SearchStopped(Exception):
    """The failure policy ended the search; the study is intact and resumable."""
