"""A Keras Tuner oracle whose decisions come from a stored Optuna study.

Keras Tuner asks ``populate_space`` for the next depth; the oracle asks the
Optuna study (ask/tell) and tells it each result in ``end_trial``. Keras
Tuner's own retry queue is never used (``max_retries_per_trial=0``): it
hands retried trials out without asking the oracle, which would leave the
Optuna trial RUNNING. A depth that must be trained again is enqueued in the
Optuna study instead, where every worker sees it.

What to do next is decided by the ask-round the replay shares
(``tuner.strategies.rounds``); this module keeps what is Keras Tuner's:
trial statuses, heartbeats, waits, and what other workers are running.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import replace

import keras_tuner as kt
import optuna
from keras_tuner.engine import trial as kt_trial
from optuna.trial import TrialState

from tuner import stored_keys as keys
from tuner.model.protocol import host_name
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.store.trials import HEARTBEAT_SECONDS, is_stale, recover_stale_trials, requeue
from tuner.strategies.decision import Kind
from tuner.strategies.rounds import Search, ask_round

OBJECTIVE_NAME = "objective"
IDLE_POLL_SECONDS = 5.0
# How long to wait for a trial asked an instant earlier elsewhere to show its depth.
AHEAD_WAIT_SECONDS = 5.0
# Keras Tuner's ``max_consecutive_failed_trials`` has no "never": a count its
# own check cannot reach. The failure policy is DepthTuner's (tuner.search.depth_tuner).
KERAS_TUNER_NEVER = sys.maxsize


class Heartbeat:
    """Writes a timestamp on a running trial so other workers see it is alive.

    Through the asked trial's own ``set_user_attr``: Optuna's storages are
    safe to call from another thread, and a finished trial refuses the write,
    which ends the heartbeat."""

    def __init__(self, trial: optuna.Trial, every: float = HEARTBEAT_SECONDS):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(trial, every), daemon=True)
        self._thread.start()

    def _run(self, trial: optuna.Trial, every: float) -> None:
        while not self._stop.wait(every):
            try:
                trial.set_user_attr(keys.HEARTBEAT, time.time())
            except Exception:
                return  # trial finished or storage gone: nothing left to keep alive

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class OptunaOracle(kt.Oracle):
    """Keras Tuner's oracle for one worker of a stored study.

    ``search`` is everything the ask-rounds read (``tuner.strategies.rounds.Search``:
    the study, the depth space, the strategy, the budget, the objective that
    ranks and rules out), one frozen object rather than a dozen keywords; the
    oracle puts itself in as what runs elsewhere. The strategy queues depths
    in the study whenever none waits (confirmation repeats too, decided from
    the study alone, so parallel workers and resumed runs agree); one that
    chooses its depths itself never lets the sampler be asked. A
    multi-objective study (``--objective pareto``) is told its objective's
    ``study_metrics``, one per direction, instead of the one value.
    ``max_consecutive_failures``: 0 never stops (counted and enforced by
    ``DepthTuner.on_trial_end``).
    """

    def __init__(self, search: Search, *, reporter: Reporter, max_consecutive_failures: int = 3):
        super().__init__(
            objective=kt.Objective(OBJECTIVE_NAME, direction="max"),
            max_trials=None,
            max_retries_per_trial=0,
            max_consecutive_failed_trials=KERAS_TUNER_NEVER,
        )
        self.search = replace(search, elsewhere=self)
        self.reporter = reporter
        self.max_consecutive_failures = max_consecutive_failures
        self.optuna_trials: dict[str, optuna.Trial] = {}
        self._heartbeats: dict[str, Heartbeat] = {}
        self._repeats = 0
        self.stop_reason = ""

    @property
    def study(self) -> optuna.Study:
        return self.search.study

    @property
    def space(self) -> DepthSpace:
        return self.search.space

    @property
    def study_metrics(self) -> tuple[str, ...]:
        """What a multi-objective study is told of a trial, one metric per direction; () for one value."""
        return self.search.objective.study_metrics if self.search.objective is not None else ()

    # -- Keras Tuner side --------------------------------------------------
    def populate_space(self, trial_id: str) -> dict:
        """Ask-rounds (``tuner.strategies.rounds``) until one trial is to train, or the search stops or waits."""
        for t in recover_stale_trials(self.study, self.space):
            self.reporter.say(f"trial {t} was left running by a stopped worker: marked FAIL, its depth queued again")
        while True:
            out = ask_round(self.search, self._repeats)
            self._repeats = out.repeats
            if out.kind is Kind.STOP:
                self.stop_reason = out.reason
                return {"status": kt_trial.TrialStatus.STOPPED}
            if out.kind is Kind.RULE_OUT:
                self.reporter.say(f"depth {out.depth} ruled out: {out.reason}")
            if out.pause:
                time.sleep(IDLE_POLL_SECONDS)
                return {"status": kt_trial.TrialStatus.IDLE}
            if out.kind is Kind.TRAIN:
                ot = out.trial
                self.optuna_trials[trial_id] = ot
                self._heartbeats[trial_id] = Heartbeat(ot)
                return {"status": kt_trial.TrialStatus.RUNNING, "values": {"depth": out.depth}}

    def end_trial(self, trial: kt_trial.Trial) -> None:
        ot = self.optuna_trials.pop(trial.trial_id, None)
        if ot is not None:
            self._finish(ot, trial)
        super().end_trial(trial)

    def _finish(self, ot: optuna.Trial, trial: kt_trial.Trial) -> None:
        self._heartbeats.pop(trial.trial_id).stop()
        if trial.status == kt_trial.TrialStatus.COMPLETED and keys.STOPPED in ot.user_attrs:
            self.study.tell(ot, state=TrialState.PRUNED)  # stopped after an epoch: a training, not a reading
            return
        values = None
        names = self.study_metrics or (OBJECTIVE_NAME,)
        if trial.status == kt_trial.TrialStatus.COMPLETED and all(map(trial.metrics.exists, names)):
            values = [trial.metrics.get_last_value(n) for n in names]
        if values is not None and all(v is not None and math.isfinite(v) for v in values):
            self.study.tell(ot, values)  # one value per direction, as Optuna takes them
            return
        reason = _last_line(trial.message).removeprefix("tuner.errors.TrialError: ")
        reason = reason or "the objective is not a finite number"
        ot.set_user_attr(keys.FAIL_REASON, reason)
        if trial.message:
            ot.set_user_attr(keys.FAIL_TRACEBACK, trial.message[-4000:])
        self.study.tell(ot, state=TrialState.FAIL)
        self.reporter.say(f"trial {ot.number} depth {trial.hyperparameters.get('depth')} failed: {reason}")

    def abandon_running(self, reason: str) -> None:
        """Mark this worker's running trials FAIL and queue their depths again (Ctrl-C)."""
        for trial_id, ot in list(self.optuna_trials.items()):
            self._heartbeats.pop(trial_id).stop()
            ot.set_user_attr(keys.FAIL_REASON, reason)
            self.study.tell(ot, state=TrialState.FAIL, skip_if_finished=True)
            requeue(self.study, self.space, ot)
            del self.optuna_trials[trial_id]

    # Keras Tuner's files are disposable artifacts: a full disk must not
    # cost a result that is already in the study.
    def save(self) -> None:
        try:
            super().save()
        except OSError as exc:
            self._artifact_error(exc)

    def _save_trial(self, trial) -> None:  # no public hook: every write of a trial's file passes here
        try:
            super()._save_trial(trial)
        except OSError as exc:
            self._artifact_error(exc)

    def _artifact_error(self, exc: OSError) -> None:
        if not getattr(self, "_warned_artifacts", False):
            self._warned_artifacts = True
            self.reporter.say(f"could not write Keras Tuner's files ({exc}); results still go to the study")

    # -- other workers (tuner.strategies.rounds.Elsewhere) --------------------
    def _running_elsewhere(self) -> list:
        mine = {ot.number for ot in self.optuna_trials.values()}
        return [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if t.number not in mine and not is_stale(t)]

    def claim(self, trial: optuna.Trial) -> None:
        """This worker's, alive: a rerun after ``kill -9`` sees at once that its process is gone."""
        for key, value in ((keys.WORKER_HOST, host_name()), (keys.WORKER_PID, os.getpid()),
                           (keys.HEARTBEAT, time.time())):
            trial.set_user_attr(key, value)

    def probe_with(self, prober) -> None:
        """Cached mode: price depths beyond every reading by a probe before training them, and
        closely bracketed ones by interpolation (the trial skips its own probe)."""
        self.search = replace(self.search, prober=prober, interpolates=True)

    def running(self) -> list:
        return [t for t in self._running_elsewhere() if _has_depth(t)]

    def ahead_of(self, number: int) -> list:
        """The trials asked before ``number`` that still run elsewhere, each with its depth.

        Optuna stores an asked trial as RUNNING before its sampler has set the
        depth, so a worker that asked an instant earlier can still show none;
        counted without it, both workers trained the same weights (seen in
        CI). Wait for it to show, for at most ``AHEAD_WAIT_SECONDS`` (a worker
        killed mid-ask never shows one)."""
        deadline = time.monotonic() + AHEAD_WAIT_SECONDS
        while True:
            ahead = [t for t in self._running_elsewhere() if t.number < number]
            if all(map(_has_depth, ahead)) or time.monotonic() > deadline:
                return [t for t in ahead if _has_depth(t)]
            time.sleep(0.05)


def _has_depth(trial) -> bool:
    return keys.DEPTH in trial.user_attrs or bool(trial.params)


def _last_line(message: str | None) -> str:
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
