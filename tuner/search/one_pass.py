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
from dataclasses import dataclass, replace
from typing import Any

import keras
import optuna
from keras_tuner.src import config as kt_config  # no public switch (below)

from objectives import Objective, get_objective
from tuner.data.batches import dataset_arrays
from tuner.data.sources import load_datasets, save_images, scan_image_folder
from tuner.devices import hide_gpus, train_here
from tuner.errors import ConsecutiveFailures, OutOfMemory, SearchStopped, TrialError, UsageError
from tuner.model.backbones import build_backbone, get_backbone_spec
from tuner.model.calibration import (
    CALIBRATION_IMAGES,
    calibrated_weights,
    needs_calibration,
    trial_protocol,
)
from tuner.model.hypermodel import DepthHyperModel
from tuner.model.protocol import probed_where_cached_on_images
from tuner.model.signatures import depth_signatures
from tuner.processes import left_by_dead
from tuner.progress import Reporter
from tuner.search.config import SearchConfig
from tuner.search.depth_tuner import DepthTuner
from tuner.search.options import SearchOptions
from tuner.search.oracle import OptunaOracle
from tuner.store.fresh import FreshStudy
from tuner.store.head_result import default_artifacts_dir, ensure_head_phase
from tuner.store.storage import open_storage, storage_file
from tuner.store.study import check_resumable, create_or_load_study, existing_config, record_examples
from tuner.store.trials import stopped_trials, trained_count, workers_here
from tuner.strategies.early_stop import TargetPruner
from tuner.strategies.registry import Setup, Strategy, StrategySpec, make_strategy
from tuner.strategies.rounds import Search
from tuner.trials.activations import sha256_of
from tuner.trials.prefix_cache import PrefixCache, default_cache_dir
from tuner.trials.process import TrialProcess
from tuner.trials.request import Serve, TrialContext, TrialRequest

WORKDIR_PREFIX = "depth-tuner-"


@dataclass
class SearchOutcome:
    study_name: str
    measured: int
    requested: int
    interrupted: bool = False
    stop_reason: str = ""


@dataclass(frozen=True)
class _Plan:
    """What the checked configuration and options decide before the study opens."""

    objective: Objective
    signatures: tuple[int, ...]
    strategy: Strategy
    sampler: optuna.samplers.BaseSampler  # a strategy that chooses its depths never lets it be asked


def run_search(*, config: SearchConfig, options: SearchOptions | None = None,
               reporter: Reporter | None = None, **fields: Any) -> SearchOutcome:
    """Run (or resume) the study until it has ``options.trials`` measured trials.

    The strategy is ``config.strategy`` (``tuner.strategies.registry``; ``depths`` and
    ``repeats`` are a sweep's); ``trials=None`` runs a strategy that chooses
    its depths until it has nothing to add. ``fields`` are ``SearchOptions``'
    by keyword (``study_name=..., storage=..., trials=...``), for callers that build none.
    """
    options = options if options is not None else SearchOptions(**fields)
    options = (replace(options, **fields) if fields else options).checked(config.strategy)
    reporter = reporter or Reporter()
    _claim_devices(options, reporter)  # before this process's first TensorFlow operation
    plan = _plan(config, options)
    # An existing storage is read now, so that a study with another
    # configuration is refused before any slow work; a new storage file is
    # created only once the weights and the data have loaded.
    options = options.checked_places()
    path = storage_file(options.storage)
    store = open_storage(options.storage) if path is None or os.path.exists(path) else None
    config = config.with_recorded(existing_config(store, options.study_name) if store is not None else None)
    wanted = config.as_config()
    stored = check_resumable(store, options.study_name, wanted) if store is not None else None
    if stored is not None and options.trials is not None:
        finished = _finished(options, store, reporter)
        if finished:
            return finished
    datasets = _load_data(config, options.data_dir, reporter)
    options = replace(options, artifacts_dir=options.artifacts_dir
                      or default_artifacts_dir(options.storage, options.study_name))
    fresh = FreshStudy(storage=options.storage, study_name=options.study_name,
                       artifacts_dir=options.artifacts_dir)
    try:
        store = store or open_storage(options.storage)
        fresh.opened(store, created_study=False)  # until the study is there: the file, if new
        study, created = create_or_load_study(name=options.study_name, storage=store, config=wanted,
                                              sampler=plan.sampler, pruner=_pruner(config))
        fresh.opened(store, created_study=created, study=study)
        record_examples(study, train=datasets.train_examples, validation=datasets.val_examples)
        outcome = _search(study, config=config, options=options, reporter=reporter,
                          datasets=datasets, plan=plan, new=stored is None)
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            fresh.take_back()
        raise
    if outcome.interrupted and fresh.take_back():
        reporter.say(f"nothing was measured: study {options.study_name!r} removed again")
    return outcome


def _pruner(config: SearchConfig) -> optuna.pruners.BasePruner | None:
    """What stops a trial after an epoch: its depth's target (``--stop-early``), or nothing."""
    return TargetPruner(config.protocol.finetune_epochs) if config.stop_early else None


def _claim_devices(options: SearchOptions, reporter: Reporter) -> None:
    """The worker keeps off the GPU its trial process trains on; with --in-process it trains itself."""
    if options.in_process:
        train_here(options.gpu)
        return
    seen = hide_gpus()
    if seen:
        reporter.say(f"this process used the GPU before the search started ({len(seen)} visible): "
                     "it keeps the memory TensorFlow took, which the trial process may need; "
                     "start the search in a fresh process")


def _plan(config: SearchConfig, options: SearchOptions) -> _Plan:
    """The objective, the depths' signatures and the strategy: each may refuse the input, before any file is touched."""
    objective = get_objective(config.objective)
    spec = get_backbone_spec(config.protocol.backbone)
    signatures = depth_signatures(spec.name)  # SearchConfig has checked the range and image size
    strategy = make_strategy(StrategySpec(config.strategy, confirm=options.confirm), Setup(
        space=config.space, seed=config.protocol.seed, trials=options.trials, objective=objective,
        dataset=config.data.name, depths=options.depths, repeats=options.repeats,
        signatures=tuple(signatures)))
    return _Plan(objective, signatures, strategy, strategy.sampler())


def _finished(options: SearchOptions, store, reporter: Reporter) -> SearchOutcome | None:
    """The outcome if the stored study already has ``options.trials``; refuses fewer."""
    name, trials = options.study_name, options.trials
    study = optuna.load_study(study_name=name, storage=store)
    done, stopped = trained_count(study), len(stopped_trials(study))
    has = (f"{done} trials ({done - stopped} measured, {stopped} stopped early)" if stopped
           else f"{done} measured trials")
    if trials < done:
        raise UsageError(f"study {name!r} already has {has}: pass --trials {done} or more")
    if trials == done:
        reporter.say(f"study {name!r} already has {has}; nothing to do")
        return SearchOutcome(name, done, trials, stop_reason="already complete")
    return None


def _load_data(config: SearchConfig, data_dir: str | None, reporter: Reporter):
    """The weights checked (they fit the backbone), then the images loaded."""
    spec = get_backbone_spec(config.protocol.backbone)
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
    return datasets


def _search(study: optuna.Study, *, config: SearchConfig, options: SearchOptions, reporter: Reporter,
            datasets, plan: _Plan, new: bool) -> SearchOutcome:
    """The trials themselves, in an opened study (``run_search`` has checked the input)."""
    if new:
        reporter.say(f"new study {study.study_name!r} in {options.storage}")
    _say_neighbours(study, reporter)
    # A failed trial's traceback is stored on it; Keras Tuner need not print it.
    # Keras Tuner exports no switch for that: its config.DEBUG is the one reach-in.
    kt_config.DEBUG = bool(os.environ.get("DEPTH_TUNER_DEBUG"))
    cache = _reclaimed_cache(options, reporter)
    workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
    trials_process = None if options.in_process else TrialProcess(on_note=reporter.say, gpu=options.gpu)
    try:
        context = _trial_context(config, datasets, cache, workdir, reporter)
        serve = trials_process.request if trials_process else _in_process
        device = _training_device(serve, context, options.gpu, reporter)
        search = Search(study=study, space=config.space, strategy=plan.strategy, signatures=plan.signatures,
                        trials=options.trials, objective=plan.objective, base_seed=config.protocol.seed,
                        budget_seconds=options.budget_seconds, device=device,
                        stop_early=bool(config.stop_early))
        oracle = OptunaOracle(search, reporter=reporter,
                              max_consecutive_failures=options.max_consecutive_failures)
        stopped = _run_trials(study, config=config, options=options, plan=plan, oracle=oracle,
                              context=context, serve=serve, workdir=workdir, reporter=reporter)
        if stopped:
            return stopped
    finally:
        if trials_process:
            trials_process.close(kill=True)
        shutil.rmtree(workdir, ignore_errors=True)
    done = trained_count(study)
    reporter.say(f"done: {done} trials measured" + (f"; {oracle.stop_reason}" if oracle.stop_reason else ""))
    return SearchOutcome(study.study_name, done, options.trials, stop_reason=oracle.stop_reason)


def _training_device(serve: Serve, context: TrialContext, gpu: int | None, reporter: Reporter) -> str:
    """Where trials train, asked of the process that trains them and said on stderr (TensorFlow's
    own lines are kept quiet, so a broken CUDA install would otherwise train on the CPU unseen)."""
    try:
        info = serve(TrialRequest.device(context))["device"]
    except TrialError as exc:
        raise SearchStopped(f"the trial process could not start ({exc}); "
                            "DEPTH_TUNER_VERBOSE=1 shows TensorFlow's own lines") from None
    if gpu is not None and not info["gpus"]:
        raise UsageError(f"--gpu {gpu}: the trial process sees no GPU {gpu} ({info['line']}); "
                         "pass a GPU that nvidia-smi lists, or leave --gpu out")
    reporter.say(info["line"])
    return info["device"]


def _say_neighbours(study: optuna.Study, reporter: Reporter) -> None:
    neighbours = workers_here(study)
    if neighbours:
        reporter.say(f"{len(neighbours)} other worker(s) of this study train on this machine (pid "
                     f"{', '.join(map(str, neighbours))}): a training uses every core, so each trial's seconds "
                     f"run high while they overlap; one worker per machine measures honestly")


def _reclaimed_cache(options: SearchOptions, reporter: Reporter) -> PrefixCache:
    """The activation cache, after what stopped workers left half done is removed."""
    for folder in reclaim_workdirs():
        reporter.say(f"removed {folder}, left behind by a stopped worker")
    cache = PrefixCache(options.cache_dir or default_cache_dir(), options.cache_size * 2**30)
    for folder in cache.reclaim():
        reporter.say(f"removed a half-written cache entry ({folder}) of a stopped worker")
    return cache


def _trial_context(config: SearchConfig, datasets, cache: PrefixCache, workdir: str,
                   reporter: Reporter) -> TrialContext:
    """What every request of this search shares; the images are written to ``workdir`` for the trial process."""
    images_dir = os.path.join(workdir, "images")  # beside, not inside, Keras Tuner's folder
    save_images(datasets, images_dir)
    # In memory once, for the calibration and the cache keys.
    train, val = dataset_arrays(datasets.train_images), dataset_arrays(datasets.val_images)
    return TrialContext(
        protocol=_trial_protocol(config.protocol, train.x, workdir, reporter),
        num_classes=datasets.num_classes, space=config.space, images_dir=images_dir,
        mode=config.trial_mode, cache_dir=cache.root, cache_size_bytes=cache.cache_size_bytes,
        images_sha256=sha256_of(train.x, train.y, val.x, val.y),  # part of every cache key
    )


def _run_trials(study: optuna.Study, *, config: SearchConfig, options: SearchOptions, plan: _Plan,
                oracle: OptunaOracle, context: TrialContext, serve: Serve, workdir: str,
                reporter: Reporter) -> SearchOutcome | None:
    """Keras Tuner's loop (after the shared head phase in cached mode); an outcome if Ctrl-C stopped it."""
    try:
        if config.trial_mode == "cached":
            try:
                context = _with_head_phase(context, study=study, serve=serve, workdir=workdir,
                                           reporter=reporter, artifacts_dir=options.artifacts_dir)
            except OutOfMemory as exc:  # a plain trial would need the same memory
                raise SearchStopped(f"the shared head phase failed: {exc}") from None
            except TrialError as exc:
                raise SearchStopped(f"the shared head phase failed ({exc}); fix the cause, "
                                    "or pass --trial-mode plain") from None
            oracle.probe_with(_prober(context, serve, reporter, len(plan.signatures) - 1))
        hypermodel = DepthHyperModel(protocol=config.protocol, num_classes=context.num_classes,
                                     space=config.space)
        tuner = DepthTuner(
            oracle=oracle, hypermodel=hypermodel, objective=plan.objective, reporter=reporter,
            directory=os.path.join(workdir, "keras-tuner"), project_name=study.study_name,
            checkpoint_dir=options.checkpoint_dir, context=context, serve=serve,
        )
        tuner.search(verbose=0)
    except KeyboardInterrupt:
        oracle.abandon_running("interrupted (Ctrl-C / SIGTERM); its depth is queued again")
        done = trained_count(study)
        reporter.say(f"stopped: {done} of {options.trials or '?'} trials measured; "
                     "run the same command to continue")
        return SearchOutcome(study.study_name, done, options.trials, interrupted=True)
    except ConsecutiveFailures:
        done = trained_count(study)
        raise SearchStopped(
            f"stopped after {options.max_consecutive_failures} failed trials in a row "
            f"({done} of {options.trials} measured; reasons: depth-tuner show --study {study.study_name} "
            "--all); fix the cause, or pass --max-consecutive-failures 0 to keep going"
        ) from None
    return None


def _trial_protocol(protocol, train_images, workdir: str, reporter: Reporter):
    """The protocol trials run: random weights become their calibrated file (tuner.model.calibration)."""
    if not needs_calibration(protocol):
        return protocol
    path = calibrated_weights(protocol, train_images, workdir)
    reporter.say(f"random weights (seed {protocol.seed}): BatchNormalization calibrated on "
                 f"{min(len(train_images), CALIBRATION_IMAGES)} training images")
    return trial_protocol(protocol, path)


def _in_process(request: TrialRequest, *, progress=None) -> dict:
    """``--in-process``: serve the request in this process (memory grows per trial)."""
    from tuner.trials.handler import handle

    def emit(event, **fields):
        if event == "epoch" and progress:
            return {"stop": progress(fields["phase"], fields["epoch"], fields["epochs"], fields["seconds"],
                                     fields["val_accuracy"])}
        return None

    try:
        return handle(request, emit)
    except TrialError:
        raise
    except Exception as exc:
        raise TrialError(f"{type(exc).__name__}: {exc}") from exc


def _prober(context: TrialContext, serve: Serve, reporter: Reporter, n_layers: int):
    """A depth's plain-protocol seconds by a probe in the trial process, before it trains."""
    def probe(depth: int) -> dict:
        probed = serve(TrialRequest.probe(context, depth))["probe"]
        reporter.say(f"depth {depth}: probed before training, "
                     f"{probed['protocol_seconds']:.1f} s in the plain protocol")
        return probed

    return probed_where_cached_on_images(probe, n_layers)


def _with_head_phase(context: TrialContext, *, study: optuna.Study, serve: Serve, workdir: str,
                     reporter: Reporter, artifacts_dir: str) -> TrialContext:
    """Run (or fetch) the study's shared head phase; trials then start from it."""
    def compute(path: str) -> dict:
        reporter.say("shared head phase: one pass over the images, then the head alone (once per study)")
        return serve(TrialRequest.head(context, path))["head"]

    path = os.path.join(workdir, "head.npz")
    head, computed = ensure_head_phase(
        study, artifacts_dir=artifacts_dir, destination=path, compute=compute,
        wait_note=lambda: reporter.say("another worker is computing the shared head phase; waiting"))
    verb = "computed" if computed else "loaded"
    reporter.say(f"shared head phase {verb}: val_accuracy {head['val_accuracy']:.4f} after phase 1, "
                 f"{head['protocol_seconds']:.1f} s in the plain protocol")
    if computed and head.get("cached_bytes"):
        reporter.say(f"cached the activations at {len(head['cached_points'])} cut points: "
                     f"{head['cached_bytes'] / 2**20:.0f} MiB in {context.cache_dir} "
                     "(depth-tuner cache lists and clears them)")
    return context.after_head_phase(path, head)


def reclaim_workdirs() -> list[str]:
    """Temporary folders (full copies of the images) of workers that were killed."""
    removed = left_by_dead(tempfile.gettempdir(), re.escape(WORKDIR_PREFIX) + r"(\d+)-\w+")
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
