"""``DepthSearch``: a search into a stored Optuna study, its options stored as given."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from studies.presets import DEFAULT_FAKE_EXAMPLES
from tuner.api.answer import StudyAnswer
from tuner.errors import UsageError
from tuner.model.protocol import DEFAULT_FINETUNE_LR, DEFAULT_HEAD_LR
from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB

if TYPE_CHECKING:
    import keras
    import optuna

    from tuner.progress import Reporter
    from tuner.search.config import SearchConfig
    from tuner.search.one_pass import SearchOutcome
    from tuner.search.options import SearchOptions

__all__ = ["DepthSearch", "ResolvedSearch"]


@dataclass(frozen=True)
class ResolvedSearch:
    """A checked search: what the study records, where it lives, how it runs."""

    config: SearchConfig
    options: SearchOptions  # its trials and a sweep's depths are run_strategy's

    @property
    def study_name(self) -> str:
        """The study's name (it travels in ``options``, with the run's other choices)."""
        return self.options.study_name

    @property
    def storage(self) -> str:
        """The study's Optuna storage URL."""
        return self.options.storage


class DepthSearch(StudyAnswer):
    """Search the unfreeze depth of a pretrained backbone into a stored Optuna study.

    Every option of ``depth-tuner search`` is a keyword argument, with the
    CLI's default (``--trials`` is ``run(trials=...)``; ``study`` is the
    study's name, kept as ``study_name``). Nothing is checked or written
    until ``run``: bad options then raise ``UsageError`` with the CLI's
    one-line message, before any study is touched. After ``run``, ``study``
    is the stored ``optuna.Study``; ``best_depth``, ``best_value``, ``interval``
    and ``within_noise`` are its answer, exactly what ``show`` says, and
    ``trials_dataframe()`` its trials.

    >>> search = DepthSearch(dataset="tf_flowers", backbone="ResNet50")  # doctest: +SKIP
    >>> search.run(trials=13)                                            # doctest: +SKIP
    >>> search.best_depth, search.trials_dataframe()                     # doctest: +SKIP

    Parameters (each the flag of the same name; ``depth-tuner search --help``):

    dataset: TFDS name, a thesis preset (``cats_vs_dogs``, ``cats_vs_dogs_big``,
        ``tf_flowers``) or a folder of class sub-folders.
    train_split, val_split: TFDS slices (default: the preset's, else 80 % / 20 %).
    val_fraction: validation share of a folder. data_dir: TFDS's data folder.
    strict_data: refuse a folder holding non-image or unreadable files (default: skip them).
    fake_data, fake_examples: generated images (train, validation counts) for offline demos.
    backbone: ``MobileNetV2``, ``EfficientNetB0``, ``ResNet50`` or ``MobileNetV3Small``.
    weights: ``"imagenet"``, ``None`` / ``"none"`` (random, BatchNormalization calibrated)
        or a ``.weights.h5`` file.
    image_size, batch_size, head_epochs, finetune_epochs, head_lr, finetune_lr, dropout, seed:
        the two-phase protocol (phase 1 the head alone, phase 2 the top ``depth`` layers too).
    jit_compile: train with XLA (recorded in the protocol; off by default on every device).
    strategy: what picks the depths (``tuner.strategies.registry.STRATEGIES``);
        depth_scale: ``log`` or ``linear``. confirm: confirmation repeats (None: default).
    sampler: the older name of ``strategy`` (deprecated, still accepted).
    objective: what best means (``efficiency``, ``accuracy``, ``steady-efficiency``,
        ``cheapest-within:EPS``, ``pareto``). min_depth, max_depth: the depth range.
    study, storage: the study's name and Optuna storage URL (default ``studies/STUDY.db``).
    max_consecutive_failures: stop after this many failed trials in a row (0: never).
    keep_checkpoints: a folder for each trial's weights (``export`` reuses them).
    trial_mode: ``cached`` (phase 1 once, phase 2 on cached activations) or ``plain``.
    stop_early: stop a trial after a phase-2 epoch when its depth's accuracy target is out of
        reach (``"on"``/``"off"`` or a bool); None: on for a new study, as recorded for a stored one.
    cache_dir, cache_size: the activation cache's folder and cap in GiB.
    artifacts_dir: where the shared head phase is kept. in_process: train in this process.
    gpu: the one GPU this search's trials train on (one worker per GPU); None: what CUDA shows.
        When trials run in their own process (the default), this process's TensorFlow is
        kept off the GPUs from the search on: start it before this process touches a GPU.
    progress: progress lines on stderr (default: quiet).
    """

    def __init__(
        self,
        dataset: str,
        *,
        train_split: str | None = None,
        val_split: str | None = None,
        val_fraction: float = 0.2,
        data_dir: str | None = None,
        strict_data: bool = False,
        fake_data: bool = False,
        fake_examples: tuple[int, int] = DEFAULT_FAKE_EXAMPLES,
        backbone: str = "MobileNetV2",
        weights: str | os.PathLike | None = "imagenet",
        image_size: int = 224,
        batch_size: int = 32,
        head_epochs: int = 3,
        finetune_epochs: int = 3,
        head_lr: float = DEFAULT_HEAD_LR,
        finetune_lr: float = DEFAULT_FINETUNE_LR,
        dropout: float = 0.2,
        seed: int = 0,
        jit_compile: bool = False,
        strategy: str = "tpe",
        depth_scale: str = "log",
        objective: str = "efficiency",
        min_depth: int = 0,
        max_depth: int | None = None,
        study: str | None = None,
        storage: str | None = None,
        max_consecutive_failures: int = 3,
        keep_checkpoints: str | None = None,
        trial_mode: str = "cached",
        stop_early: bool | str | None = None,
        cache_dir: str | None = None,
        cache_size: float = DEFAULT_CACHE_GIB,
        artifacts_dir: str | None = None,
        in_process: bool = False,
        gpu: int | None = None,
        confirm: int | None = None,
        progress: bool = False,
        sampler: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.train_split = train_split
        self.val_split = val_split
        self.val_fraction = val_fraction
        self.data_dir = data_dir
        self.strict_data = strict_data
        self.fake_data = fake_data
        self.fake_examples = fake_examples
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.batch_size = batch_size
        self.head_epochs = head_epochs
        self.finetune_epochs = finetune_epochs
        self.head_lr = head_lr
        self.finetune_lr = finetune_lr
        self.dropout = dropout
        self.seed = seed
        self.jit_compile = jit_compile
        self.strategy = strategy
        self.depth_scale = depth_scale
        self.objective = objective
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.study_name = study  # ``study`` is the stored optuna.Study, once there is one
        self.storage = storage
        self.max_consecutive_failures = max_consecutive_failures
        self.keep_checkpoints = keep_checkpoints
        self.trial_mode = trial_mode
        self.stop_early = stop_early
        self.cache_dir = cache_dir
        self.cache_size = cache_size
        self.artifacts_dir = artifacts_dir
        self.in_process = in_process
        self.gpu = gpu
        self.confirm = confirm
        self.progress = progress
        self.sampler = sampler
        if sampler is not None:
            warnings.warn("DepthSearch(sampler=...) is now DepthSearch(strategy=...)", DeprecationWarning,
                          stacklevel=2)

    @classmethod
    def option_names(cls) -> list[str]:
        """The constructor's options, in order (the CLI maps its flags onto them)."""
        return list(inspect.signature(cls.__init__).parameters)[1:]

    def get_params(self) -> dict[str, Any]:
        """The options as given to the constructor (``DepthSearch(**search.get_params())`` copies it)."""
        return {name: getattr(self, "study_name" if name == "study" else name)
                for name in self.option_names()}

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                   if name == "dataset" or value != defaults[name].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- configuration ---------------------------------------------------

    def resolve(self) -> ResolvedSearch:
        """Check every option and build the study's configuration (nothing is written).

        The one place where the API and the CLI turn options into a
        configuration; raises ``UsageError`` with the CLI's message.
        """
        if not isinstance(self.dataset, (str, os.PathLike)):
            raise UsageError(f"dataset={type(self.dataset).__name__}: pass a TFDS name, a preset or the path "
                             "of a folder with one sub-folder of images per class (arrays are not read)")
        from tuner.data.sources import resolve_data_spec
        from tuner.model.backbones import get_backbone_spec, weights_source
        from tuner.model.protocol import TrainingProtocol
        from tuner.model.signatures import n_layers
        from tuner.model.space import DepthSpace
        from tuner.search.config import SearchConfig
        from tuner.search.options import SearchOptions
        from tuner.strategies.registry import parse_strategy

        spec = get_backbone_spec(self.backbone)
        weights = "none" if self.weights is None else os.fspath(self.weights)
        protocol = TrainingProtocol(
            backbone=spec.name, weights=weights_source(weights), image_size=self.image_size,
            batch_size=self.batch_size, head_epochs=self.head_epochs,
            finetune_epochs=self.finetune_epochs, head_lr=self.head_lr,
            finetune_lr=self.finetune_lr, dropout=self.dropout, seed=self.seed,
            jit_compile=bool(self.jit_compile),
        )
        strategy = parse_strategy(self._strategy_name())
        high = n_layers(spec.name) if self.max_depth is None else self.max_depth
        space = DepthSpace(self.min_depth, high, strategy.scale or self.depth_scale)
        data = resolve_data_spec(
            dataset=os.fspath(self.dataset), train_split=self.train_split, val_split=self.val_split,
            val_fraction=self.val_fraction, fake=self.fake_data,
            fake_examples=_fake_examples(self.fake_examples), data_dir=self.data_dir,
            strict=self.strict_data,
        )
        config = SearchConfig(data=data, protocol=protocol, objective=self.objective,
                              strategy=strategy.name, space=space, trial_mode=self.trial_mode,
                              stop_early=_on_off(self.stop_early))
        confirm = self.confirm
        if strategy.confirm:
            if confirm is not None and confirm != strategy.confirm:
                raise UsageError(f"--strategy {self._strategy_name()} and --confirm {confirm} disagree: give one")
            confirm = strategy.confirm
        study, storage = self._location()
        return ResolvedSearch(config=config, options=SearchOptions(
            study_name=study, storage=storage, trials=None, confirm=confirm, data_dir=self.data_dir,
            max_consecutive_failures=self.max_consecutive_failures, checkpoint_dir=self.keep_checkpoints,
            in_process=self.in_process, cache_dir=self.cache_dir, cache_size=self.cache_size,
            artifacts_dir=self.artifacts_dir, gpu=self.gpu,
        ))

    def _strategy_name(self) -> str:
        """``strategy``, or the deprecated ``sampler`` when only that was given."""
        if self.sampler is None or self.sampler == self.strategy:
            return self.strategy
        if self.strategy != "tpe":
            raise UsageError(f"strategy={self.strategy!r} and sampler={self.sampler!r} disagree: "
                             "give strategy only (sampler is its older name)")
        return self.sampler

    # -- running ---------------------------------------------------------

    def run(self, trials: int = 13, *, n_trials: int | None = None) -> optuna.Study:
        """Create or resume the study until it has ``trials`` measured trials in total.

        A total, as ``--trials`` (not Optuna's ``optimize(n_trials=...)``, which adds that
        many): ``n_trials`` is its older name here, still accepted with a DeprecationWarning.

        Like ``--trials``: running again with the same number does nothing,
        a higher one adds the difference. Ctrl-C marks the running trial
        FAIL, queues its depth and re-raises ``KeyboardInterrupt``; the
        failure policy raises ``tuner.SearchStopped``.
        """
        if n_trials is not None:
            warnings.warn("DepthSearch.run(n_trials=...) is now run(trials=...): the total the study "
                          "should have, as --trials", DeprecationWarning, stacklevel=2)
            trials = n_trials
        outcome = self.run_strategy(trials=trials)
        if outcome.interrupted:
            raise KeyboardInterrupt(f"stopped after {outcome.measured} measured trials; run again to continue")
        return self.study

    def run_strategy(
        self,
        *,
        trials: int | None,
        depths: Sequence[int] | None = None,
        repeats: int = 1,
        budget_seconds: float | None = None,
        reporter: Reporter | None = None,
    ) -> SearchOutcome:
        """What ``run`` does, with the options of ``sweep`` and ``live-compare``.

        The strategy is ``strategy`` (any name of ``tuner.strategies.registry.STRATEGIES``);
        ``depths`` and ``repeats`` are a sweep's; ``trials=None`` runs until the
        strategy has nothing left (or ``budget_seconds`` is spent).
        """
        from tuner.progress import Reporter
        from tuner.search.one_pass import run_search

        resolved = self.resolve()
        options = replace(resolved.options, trials=trials, repeats=repeats, budget_seconds=budget_seconds,
                          depths=None if depths is None else tuple(depths))
        reporter = reporter or Reporter(quiet=not self.progress)
        with _optuna_quiet(not self.progress):
            outcome = run_search(config=resolved.config, options=options, reporter=reporter)
        return outcome

    # -- the model (what the study says: tuner.api.answer) ---------------

    def export(self, path: str | os.PathLike, *, depth: int | None = None, choose: str = "best",
               head_epochs: int | None = None, finetune_epochs: int | None = None,
               include_validation: bool = False) -> keras.Model:
        """Train the chosen depth again by the study's protocol and save it to ``path`` (.keras).

        What ``depth-tuner export`` does: ``choose`` is ``best``, ``cheapest`` or
        ``most-accurate`` (of the best and the depths within noise of it), or
        ``depth`` names one. Returns the self-contained model (uint8 images in,
        class probabilities out); its card is ``model.depth_tuner_card`` and
        ``tuner.model_card(path)``. The study is only read.
        """
        from tuner.export.train import ExportOptions, export_study
        from tuner.progress import Reporter

        name, storage = self._location()
        options = ExportOptions(depth=depth, choose=choose, head_epochs=head_epochs,
                                finetune_epochs=finetune_epochs,
                                include_validation=include_validation, data_dir=self.data_dir)
        exported = export_study(name, storage=storage, output=os.fspath(path), options=options,
                                reporter=Reporter(quiet=not self.progress))
        exported.model.depth_tuner_card = exported.card
        return exported.model

    def _location(self) -> tuple[str, str]:
        """The study's name and storage URL, defaults as the CLI's."""
        from tuner.store.storage import default_storage, default_study_name

        name = self.study_name or default_study_name(os.fspath(self.dataset), fake=self.fake_data)
        return name, self.storage or default_storage(name)


def _fake_examples(value: Sequence[int]) -> tuple[int, int]:
    try:
        train, val = (int(v) for v in value)
    except (TypeError, ValueError):
        train = val = 0
    if train < 1 or val < 1:
        raise UsageError(f"--fake-examples {value!r}: write TRAIN,VAL image counts, e.g. 96,32")
    return train, val


@contextmanager
def _optuna_quiet(quiet: bool) -> Iterator[None]:
    """Optuna's INFO lines (one per trial) stay out of a quiet run; the caller's level returns after."""
    import optuna

    level = optuna.logging.get_verbosity()
    if quiet:
        optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _on_off(value: bool | str | None) -> bool | None:
    """``stop_early`` as a bool (None kept): ``--stop-early on`` / ``off``, or a bool."""
    if value is None or isinstance(value, bool):
        return value
    if str(value).lower() in ("on", "off"):
        return str(value).lower() == "on"
    raise UsageError(f"stop_early={value!r}: use 'on' or 'off' (or True / False)")
