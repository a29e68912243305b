"""How one pass of a search runs, beside what its study records: one frozen object from the API down.

``SearchConfig`` is what the study records (resuming with another is
refused); these are the run's own choices (how many trials, where the cache
and the checkpoints go, in which process trials train), which may differ from
run to run of the same study (a study's workers may each train on their own GPU). Built once by the API (``tuner.api``; the CLI
parses flags into it) and passed down whole instead of a dozen keywords.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tuner.errors import UsageError
from tuner.paths import check_folder
from tuner.store.storage import check_storage_location, check_study_name
from tuner.strategies.confirm import DEFAULT_CONFIRM
from tuner.strategies.registry import STRATEGIES
from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB


@dataclass(frozen=True)
class SearchOptions:
    study_name: str
    storage: str
    trials: int | None  # the measured trials the study should end with (--trials); None: until the strategy is done
    depths: tuple[int, ...] | None = None  # a sweep's depths
    repeats: int = 1  # a sweep's repeats of each depth
    budget_seconds: float | None = None  # stop once measured protocol seconds reach it (live-compare)
    confirm: int | None = 0  # confirmation repeats; None: the default for ``trials``
    max_consecutive_failures: int = 3  # 0: never stop
    data_dir: str | None = None  # TFDS's data folder
    checkpoint_dir: str | None = None  # --keep-checkpoints
    cache_dir: str | None = None  # None: ~/.cache/depth-tuner/prefix
    cache_size: float = DEFAULT_CACHE_GIB  # --cache-size, in GiB
    artifacts_dir: str | None = None  # None: beside the study file
    in_process: bool = False  # --in-process: train in the worker, not in a trial process
    gpu: int | None = None  # --gpu: the one GPU this worker's trials train on (None: what CUDA shows)

    def checked(self, strategy: str) -> SearchOptions:
        """The numbers checked (the CLI's messages) and ``confirm`` resolved, for ``strategy``."""
        trials, seconds = self.trials, self.budget_seconds
        if trials is None and not STRATEGIES[strategy].chooses_depths and seconds is None:
            raise UsageError("--trials is needed: how many measured trials the study should have")
        if seconds is not None and seconds <= 0:
            raise UsageError(f"--budget-seconds {seconds:g}: give a positive number of seconds")
        if trials is not None and trials < 1:
            raise UsageError(f"--trials {trials}: ask for at least 1 trial")
        confirm = resolve_confirm(self.confirm, trials)
        if self.max_consecutive_failures < 0:
            raise UsageError("--max-consecutive-failures must be 0 (never stop) or more")
        if self.gpu is not None and self.gpu < 0:
            raise UsageError(f"--gpu {self.gpu}: give a GPU's number, 0 or more (nvidia-smi lists them)")
        if not self.cache_size > 0:
            raise UsageError(f"--cache-size {self.cache_size:g}: give a positive number of GiB")
        return replace(self, confirm=confirm)

    def checked_places(self) -> SearchOptions:
        """The study's name and storage checked, and the folders made absolute: before any slow work."""
        check_study_name(self.study_name)
        check_storage_location(self.storage)
        folders = {}
        for name, flag in (("cache_dir", "--cache-dir"), ("artifacts_dir", "--artifacts-dir"),
                           ("checkpoint_dir", "--keep-checkpoints")):
            if getattr(self, name) is not None:
                folders[name] = check_folder(getattr(self, name), flag)
        return replace(self, **folders)


def resolve_confirm(confirm: int | None, trials: int | None) -> int:
    """``--confirm N`` checked: it must leave the sampler at least one trial of the trials.

    None (not given) is ``DEFAULT_CONFIRM``, but never more than a quarter of
    what is left after one trial: a small trials is for exploring."""
    if confirm is None:
        return 0 if trials is None else min(DEFAULT_CONFIRM, (trials - 1) // 4)
    if confirm < 0:
        raise UsageError(f"--confirm {confirm}: give 0 (no confirmations) or more")
    if confirm and trials is not None and confirm >= trials:
        raise UsageError(f"--confirm {confirm} leaves no trial to explore of --trials {trials}: "
                         f"use at most {trials - 1}")
    return confirm
