"""The Keras Tuner ``Tuner`` that builds, trains and times one depth per trial.

Its metrics go onto the Optuna trial (user attributes) before the objective
value is handed back to Keras Tuner, so the study holds everything even if
Keras Tuner's folder is deleted.
"""

from __future__ import annotations

import os

import keras_tuner as kt

from objectives import Objective
from tuner import stored_keys as keys
from tuner.errors import ConsecutiveFailures, TrialError
from tuner.load import LoadMeter, is_busy
from tuner.model.hypermodel import DepthHyperModel
from tuner.model.metrics import TrialMetrics
from tuner.progress import Reporter, time_left
from tuner.search.oracle import OBJECTIVE_NAME, OptunaOracle
from tuner.store.trials import measured_trials, trained_count
from tuner.strategies.early_stop import report_epoch
from tuner.trials.request import Serve, TrialContext, TrialRequest


class DepthTuner(kt.Tuner):
    def __init__(
        self,
        *,
        oracle: OptunaOracle,
        hypermodel: DepthHyperModel,
        objective: Objective,
        reporter: Reporter,
        directory: str,
        project_name: str,
        context: TrialContext,
        serve: Serve,
        checkpoint_dir: str | None = None,
    ):
        self.objective_fn = objective
        self.reporter = reporter
        self.checkpoint_dir = checkpoint_dir
        # Every trial is a request (tuner.trials.request) served by the long-lived
        # trial process, or in this process with --in-process.
        self.trial_context = context
        self.serve = serve
        self.consecutive_failures = 0  # of this run, as Keras Tuner would count them
        # Keras Tuner's folder only holds disposable artifacts: start it fresh
        # so its reload logic never replays trials the study already owns.
        super().__init__(
            oracle=oracle, hypermodel=hypermodel, directory=directory,
            project_name=project_name, overwrite=True,
        )

    def _populate_initial_space(self) -> None:  # no public hook; its docstring makes it the override point
        # Declaring the one hyperparameter is enough; Keras Tuner would
        # otherwise build (and load weights for) a whole model up front.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial: kt.engine.trial.Trial, *_: object, **__: object) -> dict:
        ot = self.oracle.optuna_trials[trial.trial_id]
        depth = int(trial.hyperparameters.get("depth"))
        number, total = self._announce(ot, depth)
        stop_early = keys.TARGET in ot.user_attrs  # given by the ask-round where --stop-early is on

        def progress(phase, epoch, epochs, seconds, val_accuracy):
            self.reporter.epoch(trial=number, total=total, depth=depth, phase=phase,
                                epoch=epoch, epochs=epochs, seconds=seconds, val_accuracy=val_accuracy)
            # each trial's curve, for the pruner and the dashboard
            return phase == 2 and report_epoch(ot, val_accuracy, epoch=epoch, epochs=epochs, asks=stop_early)

        seed = ot.user_attrs.get(keys.SEED)  # a repeat (sweep, confirmation) trains with its own seed
        request = TrialRequest.trial(self.trial_context, depth, checkpoint=self._checkpoint_path(ot.number),
                                     seed=None if seed is None else int(seed),
                                     priced_between=ot.user_attrs.get(keys.PRICED_BETWEEN),
                                     stop_early=stop_early)
        meter = LoadMeter().start()
        result = self.serve(request, progress=progress)
        metrics = self._metrics(result, meter, depth=depth, number=ot.number)
        if not metrics.is_finite():
            raise TrialError(f"depth {depth} produced non-finite metrics")
        if keys.STOPPED_AFTER in metrics.extra:  # the oracle stores it PRUNED (tuner.strategies.early_stop)
            last = getattr(self.oracle.study.pruner, "last", None)
            reason = last.reason() if last is not None else f"stopped after epoch {metrics.extra[keys.STOPPED_AFTER]}"
            metrics.extra[keys.STOPPED] = reason
            self.reporter.say(f"trial {number}/{total} depth {depth}: stopped early, {reason}")
        # The trial's metrics as DepthHyperModel.fit returns them to a Keras Tuner user's tuner;
        # the study's objective reads its value from them, like any Keras Tuner objective.
        report = metrics.keras_metrics()
        value = self.objective_fn(report)
        for key, v in metrics.as_attrs().items():
            ot.set_user_attr(key, v)
        if request.priced_between and keys.PRICED_BETWEEN not in metrics.extra:
            # offered, not used (it trained on the images, or ran plain): its seconds were measured
            ot.set_user_attr(keys.PRICED_BETWEEN, None)
        if keys.STOPPED in metrics.extra:
            return {**report, OBJECTIVE_NAME: value}
        if request.checkpoint and keys.CHECKPOINT_ERROR not in metrics.extra:  # export may reuse it
            ot.set_user_attr(keys.CHECKPOINT, request.checkpoint)
        self.reporter.trial_done(trial=number, total=total, depth=depth,
                                 val_accuracy=report["val_accuracy"], seconds=report["protocol_seconds"],
                                 objective=self.objective_fn.name, value=value,
                                 search_seconds=metrics.search_seconds, mode=metrics.trial_mode)
        return {**report, OBJECTIVE_NAME: value}

    def _metrics(self, result: dict, meter: LoadMeter, *, depth: int, number: int) -> TrialMetrics:
        """The trial process's result with what the worker adds (load, shared seconds, memory);
        what a user should know of it said."""
        metrics = TrialMetrics.from_attrs(result["metrics"], extra=result.get("extra", {}))
        metrics.extra.update(meter.read())  # other work on the machine meanwhile, in cores
        if is_busy(metrics.extra):
            self.reporter.say(f"while depth {depth} trained, other work kept "
                              f"{metrics.extra[keys.OTHER_LOAD]:.1f} of {metrics.extra[keys.CORES]} cores busy: "
                              "its seconds run high")
        head = self.trial_context.phase1
        if head and self.oracle.search.trials:  # this trial's share of the shared head phase
            share = float(head["search_seconds"]) / self.oracle.search.trials
            metrics.extra[keys.SHARED_SECONDS] = share
            metrics.search_seconds += share
        for key in ("rss_mib", "peak_rss_mib"):  # the trial process's memory now and its peak so far
            if key in result:
                metrics.extra[keys.PROCESS_PREFIX + key] = result[key]
        if metrics.extra.get(keys.CACHE_WRITTEN_BYTES):
            self.reporter.say(f"cached the activations at depth {metrics.extra[keys.CACHE_POINT]}'s cut: "
                              f"{metrics.extra[keys.CACHE_WRITTEN_BYTES] / 2**20:.0f} MiB written "
                              f"to {self.trial_context.cache_dir} (depth-tuner cache lists them)")
        if keys.CHECKPOINT_ERROR in metrics.extra:  # artifacts are optional: the result is stored
            self.reporter.say(f"could not keep the checkpoint of trial {number}: "
                              f"{metrics.extra[keys.CHECKPOINT_ERROR]}")
        return metrics

    def _announce(self, ot, depth: int) -> tuple[int, int | str]:
        """Say which trial starts, with the time left; its number and the total."""
        measured = measured_trials(self.oracle.study)
        number, total = trained_count(self.oracle.study) + 1, self.oracle.search.trials or "?"
        kind = "confirmation repeat" if ot.user_attrs.get(keys.CONFIRM) else "repeat"
        again = f", {kind} with seed {ot.user_attrs[keys.SEED]}" if ot.user_attrs.get(keys.MEASURE_AGAIN) else ""
        left = time_left([float(t.user_attrs[keys.SEARCH_SECONDS]) for t in measured
                          if keys.SEARCH_SECONDS in t.user_attrs],
                         self.oracle.search.trials - number + 1 if self.oracle.search.trials else 0)
        target = ot.user_attrs.get(keys.TARGET)
        needs = f", needs val_accuracy >= {target:.4f} at its price" if target else ""
        self.reporter.say(f"trial {number}/{total}: depth {depth} (study trial #{ot.number}{again}){needs}{left}")
        return number, total

    def on_trial_end(self, trial: kt.engine.trial.Trial) -> None:
        """The failure policy: stop after ``max_consecutive_failures`` failed trials in a row.

        Counted here rather than by Keras Tuner, whose stop is a RuntimeError
        known only by its text and has no "never" (0 here)."""
        super().on_trial_end(trial)  # the oracle has told the study by now
        failed = trial.status != kt.engine.trial.TrialStatus.COMPLETED
        self.consecutive_failures = self.consecutive_failures + 1 if failed else 0
        limit = self.oracle.max_consecutive_failures
        if limit and self.consecutive_failures >= limit:
            raise ConsecutiveFailures(self.consecutive_failures)

    def _checkpoint_path(self, number: int) -> str | None:
        if not self.checkpoint_dir:
            return None
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        return os.path.abspath(os.path.join(self.checkpoint_dir, f"trial_{number}.weights.h5"))

    def save_model(self, trial_id, model, step=0) -> None:
        """Checkpoints are written only when asked for (``checkpoint_dir``)."""

    def save(self) -> None:
        try:
            super().save()
        except OSError as exc:  # disk full etc.: Keras Tuner's files are optional
            self.oracle._artifact_error(exc)
