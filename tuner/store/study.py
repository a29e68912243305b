"""Stored studies: the Optuna storage is the only record of a search.

Opening a study checks its recorded configuration; finding the trials a
dead worker left RUNNING marks them FAIL and queues their depth again, so a
search killed at any moment (SIGKILL included) completes when rerun.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner import __version__
from tuner import stored_keys as keys
from tuner.errors import UsageError, one_line
from tuner.model.protocol import host_name
from tuner.model.space import DepthSpace
from tuner.processes import pid_alive

# Folder of the default storage (``FOLDER/STUDY.db``): ``studies`` in the
# current folder, or this environment variable's folder from anywhere.
STUDIES_ENV = "DEPTH_TUNER_STUDIES"
# A worker writes a heartbeat this often; another host's RUNNING trial is
# taken as dead when its heartbeat is older than the grace period.
HEARTBEAT_SECONDS = 20.0
GRACE_SECONDS = 120.0


def studies_dir() -> str:
    """Where default storages live: $DEPTH_TUNER_STUDIES, else ./studies."""
    return os.path.expanduser(os.environ.get(STUDIES_ENV) or "studies")


def default_study_name(dataset: str, *, fake: bool = False) -> str:
    """The dataset's name; generated images get their own (``NAME-fake``) so that
    an offline demo never claims the real job's study."""
    base = os.path.basename(os.path.normpath(dataset)) if os.path.isdir(dataset) else dataset
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", base) or "study"
    return f"{name}-fake" if fake else name


def check_study_name(name: str) -> str:
    """A study name is a name: it becomes ``STUDY.db`` and ``STUDY.artifacts`` in the studies
    folder, so a separator or a leading dot would put them elsewhere (``../x``) or hide them."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or name != name.strip():
        raise UsageError(f"--study {name!r} is not a plain name: no '/', no leading '.' or spaces "
                         "(use --storage URL to keep a study elsewhere)")
    return name


def default_storage(study_name: str) -> str:
    """``sqlite:///FOLDER/STUDY.db`` in ``studies_dir()`` (an absolute folder gives four slashes)."""
    return f"sqlite:///{os.path.join(studies_dir(), check_study_name(study_name) + '.db')}"


def check_storage_location(url: str) -> None:
    """A storage file's folder must exist or be creatable: refused before the data loads."""
    from tuner.paths import check_file

    path = storage_file(url)
    if path is not None:
        check_file(path, "--storage")


def storage_file(url: str) -> str | None:
    """The file behind a SQLite or journal storage URL, None for a server (or in-memory) storage."""
    if url.startswith("journal:") or url.endswith(".log"):
        return url.removeprefix("journal:")
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?", 1)[0]
        return path if path and path != ":memory:" else None
    return None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna storage for a URL, or a journal file for a path ending in .log.

    SQLite locks under several writers; a journal file (``journal:PATH`` or
    ``PATH.log``) is Optuna's answer for several workers on one machine.
    """
    path = storage_file(url)
    try:
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if url.startswith("journal:") or url.endswith(".log"):
            backend = optuna.storages.journal.JournalFileBackend(path)
            return optuna.storages.JournalStorage(backend)
        if path is not None:
            if os.path.exists(path) and not _looks_like_sqlite(path):
                raise UsageError(
                    f"{path} is not an SQLite database (damaged or another file): "
                    "move it away or pass another --storage"
                )
        return _rdb_storage(url)
    except UsageError:
        raise
    except ImportError as exc:
        raise UsageError(
            f"cannot open storage {url!r} ({one_line(exc)}): for PostgreSQL "
            "pip install 'depth-tuner[postgres]', or pass another --storage"
        ) from None
    except Exception as exc:
        raise UsageError(
            f"cannot open storage {url!r} ({one_line(exc)}): pass a valid --storage "
            "(sqlite:///PATH.db, postgresql://..., or PATH.log for a journal file)"
        ) from None


def _rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """RDBStorage, retried: workers starting together race to create the tables."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except ImportError:
            raise
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))
    raise AssertionError("unreachable")


def _looks_like_sqlite(path: str) -> bool:
    if os.path.getsize(path) == 0:
        return True
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


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


def load_stored_study(name: str, *, storage: str | None) -> optuna.Study:
    """Load a study to read it: a missing file, storage or study is a one-line UsageError.

    A storage file that does not exist is refused first, so reading never
    creates an empty study file.
    """
    check_study_name(name)
    url = storage or default_storage(name)
    path = storage_file(url)
    if path is not None and not os.path.isfile(path):
        hint = "" if storage else f" or set {STUDIES_ENV} to the folder that holds it"
        raise UsageError(f"no study storage at {url}: pass --storage URL{hint}, or run `search` first")
    store = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = [x.study_name for x in optuna.get_all_study_summaries(store)]
        raise UsageError(
            f"no study {name!r} in {url}"
            + (f": pick one of {', '.join(names)}" if names else ": run depth-tuner search first")
        ) from None


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
) -> tuple[optuna.Study, bool]:
    """Create the study, or load it if its recorded configuration matches; and whether this call
    created it.

    Of several workers starting together exactly one creates it (Optuna
    refuses a duplicate name), so only that one may take it back.
    """
    from objectives import get_objective

    stored = check_resumable(storage, name, config)
    objective = get_objective(config.get("objective") or "efficiency")
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                    directions=list(objective.study_directions))
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        created = False
    if study.metric_names != objective.metric_names:  # new studies, and those from before names
        with warnings.catch_warnings():  # experimental since Optuna 3.2, unchanged through 4.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(objective.metric_names)
    if not stored:
        study.set_user_attr(keys.CONFIG, json.dumps(config, sort_keys=True))
        study.set_user_attr(keys.TOOL_VERSION, __version__)
    return study, created


def workers_here(study: optuna.Study) -> list[int]:
    """Pids of other live workers training a trial of ``study`` on this machine."""
    pids = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        a = t.user_attrs
        if a.get(keys.WORKER_HOST) == host_name() and keys.WORKER_PID in a:
            pid = int(a[keys.WORKER_PID])
            if pid != os.getpid() and pid_alive(pid):
                pids.add(pid)
    return sorted(pids)


def trial_depth(trial: FrozenTrial, space: DepthSpace) -> int:
    if keys.DEPTH in trial.user_attrs:
        return int(trial.user_attrs[keys.DEPTH])
    return space.depth_of(trial.params)


def measured_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials that really trained (not answered from an equivalent depth)."""
    return [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if keys.REUSED_FROM not in t.user_attrs
    ]


def queued_count(study: optuna.Study) -> int:
    """Depths waiting in the study's queue (WAITING trials), as the decision rules count them."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def is_stale(trial: FrozenTrial, *, now: float | None = None, grace: float = GRACE_SECONDS) -> bool:
    """Is this RUNNING trial's worker gone?"""
    attrs = trial.user_attrs
    if attrs.get(keys.WORKER_HOST) == host_name() and keys.WORKER_PID in attrs:
        if int(attrs[keys.WORKER_PID]) == os.getpid():
            return False
        return not pid_alive(int(attrs[keys.WORKER_PID]))
    now = time.time() if now is None else now
    beat = attrs.get(keys.HEARTBEAT)
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return beat is not None and now - float(beat) > grace


def enqueue(study: optuna.Study, space: DepthSpace, depth: int, attrs: dict[str, Any]) -> None:
    """Queue ``depth`` in the study, for any worker to train, marked as queued (``keys.QUEUED``),
    so that the trial a worker asks tells it came from the queue without reading Optuna's internals."""
    study.enqueue_trial(space.params_for(depth), user_attrs={**attrs, keys.QUEUED: True})


def was_queued(trial: optuna.Trial | FrozenTrial) -> bool:
    """Did this trial come from the study's queue rather than from the sampler? (older studies too)"""
    return keys.came_from_queue(trial.user_attrs)


def requeue(study: optuna.Study, space: DepthSpace, trial, *, retry_of: int | None = None) -> None:
    """Queue ``trial``'s depth again, for any worker to train."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k in keys.QUEUE_CARRIED}
    attrs[keys.RETRY_OF] = trial.number if retry_of is None else retry_of
    enqueue(study, space, trial_depth(trial, space), attrs)


def recover_stale_trials(study: optuna.Study, space: DepthSpace) -> list[int]:
    """Mark dead workers' RUNNING trials FAIL and queue their depths again.

    ``study.tell`` is the compare-and-set: every storage refuses to finish a
    trial twice, so of two workers recovering at once only one gets past it
    and queues the depth, and it is not trained twice.
    """
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_stale(t):
            continue
        host = t.user_attrs.get(keys.WORKER_HOST, "?")
        pid = t.user_attrs.get(keys.WORKER_PID, "?")
        try:
            _set_trial_user_attr(study, t.number, keys.FAIL_REASON, f"worker {pid} on {host} stopped mid-trial")
            study.tell(t.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker got there first
        if keys.DEPTH in t.user_attrs or t.params:
            requeue(study, space, t)
        recovered.append(t.number)
    return recovered


def _set_trial_user_attr(study: optuna.Study, number: int, key: str, value: Any) -> None:
    """A user attribute on a trial this process did not ask (a dead worker's), by number.

    Optuna offers no public handle on another process's trial, nor on a
    study's storage, hence the one private read below; the rest are public
    ``BaseStorage`` methods.
    """
    storage = study._storage  # private: Optuna has no public accessor for a study's storage
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), number)
    storage.set_trial_user_attr(trial_id, key, value)
