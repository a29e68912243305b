"""A stored study's trials as the workers share them: the measured ones, the queue, and the
trials a dead worker left RUNNING (marked FAIL and queued again, so a search killed at any
moment, SIGKILL included, completes when rerun)."""

from __future__ import annotations

import os
import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner import stored_keys as keys
from tuner.model.protocol import host_name
from tuner.model.space import DepthSpace
from tuner.processes import pid_alive

# A worker writes a heartbeat this often; another host's RUNNING trial is
# taken as dead when its heartbeat is older than the grace period.
HEARTBEAT_SECONDS = 20.0


GRACE_SECONDS = 120.0


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


def stopped_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials stopped after an epoch (``tuner.strategies.early_stop``): PRUNED with ``stopped``;
    a ruled-out trial is PRUNED too, but never trained."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
            if keys.STOPPED in t.user_attrs]


def trained_count(study: optuna.Study) -> int:
    """Trials that count toward ``--trials``: the measured and the stopped ones (as Optuna
    counts pruned trials toward ``n_trials``)."""
    return len(measured_trials(study)) + len(stopped_trials(study))


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
