"""One pass of a depth search: check everything, open the study, run the trials.

Every check that can fail on user input (flags, an existing study's
configuration, the weights, the data) runs before a new storage file or
study is created, so bad input never damages a stored study nor leaves an
empty one behind; what still fails before the first trial (the shared head
phase, Ctrl-C) is taken back (``tuner.store.fresh``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

import keras
import optuna
from keras_tuner.src import config as kt_config  # no public switch (below)

from objectives import get_objective
from tuner.data.batches import dataset_arrays
from tuner.data.sources import load_datasets, save_images, scan_image_folder
from tuner.errors import ConsecutiveFailures, SearchStopped, TrialError, UsageError
from tuner.model.backbones import build_backbone, get_backbone_spec
from tuner.model.calibration import (
    CALIBRATION_IMAGES,
    calibrated_weights,
    needs_calibration,
    trial_protocol,
)
from tuner.model.hypermodel import DepthHyperModel
from tuner.model.protocol import cached_on_images
from tuner.model.signatures import depth_signatures
from tuner.paths import check_folder
from tuner.processes import left_by_dead
from tuner.progress import Reporter
from tuner.search.config import SearchConfig
from tuner.search.oracle import OptunaOracle
from tuner.search.runner import DepthTuner
from tuner.store.fresh import FreshStudy
from tuner.store.head_result import default_artifacts_dir, ensure_head_phase
from tuner.store.study import (
    check_resumable,
    check_storage_location,
    check_study_name,
    create_or_load_study,
    measured_trials,
    open_storage,
    record_examples,
    storage_file,
    workers_here,
)
from tuner.strategies.confirm import DEFAULT_CONFIRM
from tuner.strategies.registry import (
    STRATEGIES,
    Setup,
    Strategy,
    StrategySpec,
    make_strategy,
)
from tuner.trials.activations import sha256_of
from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB, PrefixCache, default_cache_dir
from tuner.trials.process import TrialProcess, make_request

WORKDIR_PREFIX = "depth-tuner-"


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
    depths: tuple[int, ...] | None = None,
    repeats: int = 1,
    seconds_budget: float | None = None,
    cache_dir: str | None = None,
    cache_gib: float = DEFAULT_CACHE_GIB,
    artifacts_dir: str | None = None,
    confirm: int | None = 0,
) -> SearchOutcome:
    """Run (or resume) the study until it has ``trials`` measured trials.

    The strategy is ``config.sampler`` (``tuner.strategies.registry``; ``depths`` and
    ``repeats`` are a sweep's); ``trials=None`` runs a strategy that chooses
    its depths until it has nothing to add.
    """
    reporter = reporter or Reporter()
    if trials is None and not STRATEGIES[config.sampler].chooses_depths and seconds_budget is None:
        raise UsageError("--trials is needed: how many measured trials the study should have")
    if seconds_budget is not None and seconds_budget <= 0:
        raise UsageError(f"--budget-seconds {seconds_budget:g}: give a positive number of seconds")
    if trials is not None and trials < 1:
        raise UsageError(f"--trials {trials}: ask for at least 1 trial")
    confirm = resolve_confirm(confirm, trials)
    if max_consecutive_failures < 0:
        raise UsageError("--max-consecutive-failures must be 0 (never stop) or more")
    if not cache_gib > 0:
        raise UsageError(f"--cache-size {cache_gib:g}: give a positive number of GiB")
    objective = get_objective(config.objective)
    spec = get_backbone_spec(config.protocol.backbone)
    signatures = depth_signatures(spec.name)  # SearchConfig has checked the range and image size
    strategy = make_strategy(StrategySpec(config.sampler, confirm=confirm), Setup(
        space=config.space, seed=config.protocol.seed, budget=trials, objective=objective,
        dataset=config.data.name, depths=depths, repeats=repeats))
    sampler = strategy.sampler()  # a strategy that chooses its depths never lets it be asked

    # An existing storage is read now, so that a study with another
    # configuration is refused before any slow work; a new storage file is
    # created only once the weights and the data have loaded.
    check_study_name(study_name)
    check_storage_location(storage)
    if cache_dir is not None:
        cache_dir = check_folder(cache_dir, "--cache-dir")
    if artifacts_dir is not None:
        artifacts_dir = check_folder(artifacts_dir, "--artifacts-dir")
    if checkpoint_dir is not None:
        checkpoint_dir = check_folder(checkpoint_dir, "--keep-checkpoints")
    path = storage_file(storage)
    store = open_storage(storage) if path is None or os.path.exists(path) else None
    wanted = config.as_config()
    stored = check_resumable(store, study_name, wanted) if store is not None else None
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
    datasets = load_datasets(config.data, image_size=config.protocol.image_size,
                             seed=config.protocol.seed, data_dir=data_dir)
    label = " (FAKE generated images)" if config.data.source == "fake" else ""
    reporter.say(f"data {config.data.name}{label}: {datasets.train_examples} training, "
                 f"{datasets.val_examples} validation images, {datasets.num_classes} classes")
    skipped = scan_image_folder(config.data.name).skipped_line() if config.data.source == "folder" else ""
    if skipped:
        reporter.say(skipped)

    artifacts_dir = artifacts_dir or default_artifacts_dir(storage, study_name)
    fresh = FreshStudy(storage=storage, study_name=study_name, artifacts_dir=artifacts_dir)
    try:
        store = store or open_storage(storage)
        fresh.opened(store, created_study=False)  # until the study is there: the file, if new
        study, created = create_or_load_study(name=study_name, storage=store, config=wanted,
                                              sampler=sampler)
        fresh.opened(store, created_study=created, study=study)
        record_examples(study, train=datasets.train_examples, validation=datasets.val_examples)
        outcome = _search(
            study, config=config, storage=storage, trials=trials, reporter=reporter,
            datasets=datasets, signatures=signatures, objective=objective,
            max_consecutive_failures=max_consecutive_failures, checkpoint_dir=checkpoint_dir,
            isolate=isolate, strategy=strategy, seconds_budget=seconds_budget, cache_dir=cache_dir,
            cache_gib=cache_gib, artifacts_dir=artifacts_dir, new=stored is None,
        )
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            fresh.take_back()
        raise
    if outcome.interrupted and fresh.take_back():
        reporter.say(f"nothing was measured: study {study_name!r} removed again")
    return outcome


def _search(study: optuna.Study, *, config: SearchConfig, storage: str, trials: int | None,
            reporter: Reporter, datasets, signatures, objective, max_consecutive_failures: int,
            checkpoint_dir: str | None, isolate: bool, strategy: Strategy,
            seconds_budget: float | None, cache_dir: str | None, cache_gib: float,
            artifacts_dir: str, new: bool) -> SearchOutcome:
    """The trials themselves, in an opened study (``run_search`` has checked the input)."""
    study_name = study.study_name
    if new:
        reporter.say(f"new study {study_name!r} in {storage}")
    oracle = OptunaOracle(
        study=study, space=config.space, signatures=signatures, total_trials=trials,
        max_consecutive_failures=max_consecutive_failures, reporter=reporter, strategy=strategy,
        seconds_budget=seconds_budget, study_metrics=objective.study_metrics,
        ranking=objective, base_seed=config.protocol.seed,
    )
    neighbours = workers_here(study)
    if neighbours:
        reporter.say(f"{len(neighbours)} other worker(s) of this study train on this machine (pid "
                     f"{', '.join(map(str, neighbours))}): a training uses every core, so each trial's seconds "
                     f"run high while they overlap; one worker per machine measures honestly")
    hypermodel = DepthHyperModel(protocol=config.protocol, num_classes=datasets.num_classes,
                                 space=config.space)
    # A failed trial's traceback is stored on it; Keras Tuner need not print it.
    # Keras Tuner exports no switch for that: its config.DEBUG is the one reach-in.
    kt_config.DEBUG = bool(os.environ.get("DEPTH_TUNER_DEBUG"))
    for folder in reclaim_workdirs():
        reporter.say(f"removed {folder}, left behind by a stopped worker")
    cache = PrefixCache(cache_dir or default_cache_dir(), cache_gib * 2**30)
    for folder in cache.reclaim():
        reporter.say(f"removed a half-written cache entry ({folder}) of a stopped worker")
    workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
    trials_process = TrialProcess(on_note=reporter.say) if isolate else None
    try:
        images_dir = os.path.join(workdir, "images")  # beside, not inside, Keras Tuner's folder
        save_images(datasets, images_dir)
        # In memory once, for the calibration and the cache keys.
        train, val = dataset_arrays(datasets.train_images), dataset_arrays(datasets.val_images)
        base = make_request(
            protocol=_trial_protocol(config.protocol, train.x, workdir, reporter),
            num_classes=datasets.num_classes, space=config.space,
            images_dir=images_dir, mode=config.trial_mode, cache_dir=cache.root,
            cache_bytes=cache.cap_bytes,
            images_sha256=sha256_of(train.x, train.y, val.x, val.y),  # part of every cache key
        )
        serve = trials_process.request if trials_process else _in_process
        try:
            if config.trial_mode == "cached":
                try:
                    base = _with_head_phase(
                        base, study=study, serve=serve, workdir=workdir, reporter=reporter,
                        artifacts_dir=artifacts_dir)
                except TrialError as exc:
                    raise SearchStopped(f"the shared head phase failed ({exc}); fix the cause, "
                                        "or pass --trial-mode plain") from None
                oracle.price_with(_pricer(base, serve, reporter, len(signatures) - 1))
            tuner = DepthTuner(
                oracle=oracle, hypermodel=hypermodel, objective=objective, reporter=reporter,
                directory=os.path.join(workdir, "keras-tuner"), project_name=study_name,
                checkpoint_dir=checkpoint_dir, base_request=base, serve=serve,
            )
            tuner.search(verbose=0)
        except KeyboardInterrupt:
            oracle.abandon_running("interrupted (Ctrl-C / SIGTERM); its depth is queued again")
            done = len(measured_trials(study))
            reporter.say(f"stopped: {done} of {trials or '?'} trials measured; run the same command to continue")
            return SearchOutcome(study_name, done, trials, interrupted=True)
        except ConsecutiveFailures:
            done = len(measured_trials(study))
            raise SearchStopped(
                f"stopped after {max_consecutive_failures} failed trials in a row "
                f"({done} of {trials} measured; reasons: depth-tuner show --study {study_name} --all); "
                "fix the cause, or pass --max-consecutive-failures 0 to keep going"
            ) from None
    finally:
        if trials_process:
            trials_process.close(kill=True)
        shutil.rmtree(workdir, ignore_errors=True)
    done = len(measured_trials(study))
    reporter.say(f"done: {done} trials measured" + (f"; {oracle.stop_reason}" if oracle.stop_reason else ""))
    return SearchOutcome(study_name, done, trials, stop_reason=oracle.stop_reason)


def resolve_confirm(confirm: int | None, trials: int | None) -> int:
    """``--confirm N`` checked: it must leave the sampler at least one trial of the budget.

    None (not given) is ``DEFAULT_CONFIRM``, but never more than a quarter of
    what is left after one trial: a small budget is for exploring."""
    if confirm is None:
        return 0 if trials is None else min(DEFAULT_CONFIRM, (trials - 1) // 4)
    if confirm < 0:
        raise UsageError(f"--confirm {confirm}: give 0 (no confirmations) or more")
    if confirm and trials is not None and confirm >= trials:
        raise UsageError(f"--confirm {confirm} leaves no trial to explore of --trials {trials}: "
                         f"use at most {trials - 1}")
    return confirm


def _trial_protocol(protocol, train_images, workdir: str, reporter: Reporter):
    """The protocol trials run: random weights become their calibrated file (tuner.model.calibration)."""
    if not needs_calibration(protocol):
        return protocol
    path = calibrated_weights(protocol, train_images, workdir)
    reporter.say(f"random weights (seed {protocol.seed}): BatchNormalization calibrated on "
                 f"{min(len(train_images), CALIBRATION_IMAGES)} training images")
    return trial_protocol(protocol, path)


def _in_process(request: dict, *, progress=None) -> dict:
    """``--in-process``: serve the request in this process (memory grows per trial)."""
    from tuner.trials.work import handle

    def emit(event, **fields):
        if event == "epoch" and progress:
            progress(fields["phase"], fields["epoch"], fields["epochs"], fields["seconds"])

    try:
        return handle(request, emit)
    except TrialError:
        raise
    except Exception as exc:
        raise TrialError(f"{type(exc).__name__}: {exc}") from exc


def _pricer(base: dict, serve, reporter: Reporter, n_layers: int):
    """A depth's plain-protocol seconds by a probe in the trial process, before it trains.

    Only where the cached trial would cost about what a plain one does (it
    trains on the images: ``cached_on_images``) and the probe a fraction of it;
    a shallower cached trial prices itself for little more than the probe."""
    def price(depth: int) -> dict | None:
        if not cached_on_images(depth, n_layers):
            return None
        probed = serve({**base, "kind": "price", "depth": depth})["price"]
        reporter.say(f"depth {depth}: priced by a probe before training, "
                     f"{probed['protocol_seconds']:.1f} s in the plain protocol")
        return probed

    return price


def _with_head_phase(base: dict, *, study, serve, workdir: str, reporter: Reporter,
                     artifacts_dir: str) -> dict:
    """Run (or fetch) the study's shared head phase; trials then start from it."""
    def compute(path: str) -> dict:
        reporter.say("shared head phase: one pass over the images, then the head alone (once per study)")
        return serve({**base, "kind": "head", "head_out": path})["head"]

    path = os.path.join(workdir, "head.npz")
    head, computed = ensure_head_phase(
        study, artifacts_dir=artifacts_dir, destination=path, compute=compute,
        wait_note=lambda: reporter.say("another worker is computing the shared head phase; waiting"))
    verb = "computed" if computed else "loaded"
    reporter.say(f"shared head phase {verb}: val_accuracy {head['val_accuracy']:.4f} after phase 1, "
                 f"{head['protocol_seconds']:.1f} s in the plain protocol")
    if computed and head.get("cached_bytes"):
        reporter.say(f"cached the activations at {len(head['cached_points'])} cut points: "
                     f"{head['cached_bytes'] / 2**20:.0f} MiB in {base['cache_dir']} "
                     "(depth-tuner cache lists and clears them)")
    return {**base, "head_path": path, "phase1": head}


def reclaim_workdirs() -> list[str]:
    """Temporary folders (full copies of the images) of workers that were killed."""
    removed = left_by_dead(tempfile.gettempdir(), re.escape(WORKDIR_PREFIX) + r"(\d+)-\w+")
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
