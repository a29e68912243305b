"""The Keras Tuner ``Tuner`` that builds, trains and times one depth per trial.

Its metrics go onto the Optuna trial (user attributes) before the objective
value is handed back to Keras Tuner, so the study holds everything even if
Keras Tuner's folder is deleted.
"""

from __future__ import annotations

import os

import keras_tuner as kt

from objectives import Objective
from tuner.data import Datasets
from tuner.errors import TrialError
from tuner.hypermodel import DepthHyperModel
from tuner.oracle import OBJECTIVE_NAME, OptunaOracle
from tuner.progress import Reporter
from tuner.study import measured_trials


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
        checkpoint_dir: str | None = None,
    ):
        self.objective_fn = objective
        self.reporter = reporter
        self.checkpoint_dir = checkpoint_dir
        # Keras Tuner's folder only holds disposable artifacts: start it fresh
        # so its reload logic never replays trials the study already owns.
        super().__init__(
            oracle=oracle, hypermodel=hypermodel, directory=directory,
            project_name=project_name, overwrite=True,
        )

    def _populate_initial_space(self) -> None:
        # Declaring the one hyperparameter is enough; Keras Tuner would
        # otherwise build (and load weights for) a whole model up front.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial: kt.engine.trial.Trial, datasets: Datasets, **_: object) -> dict:
        ot = self.oracle.optuna_trials[trial.trial_id]
        depth = int(trial.hyperparameters.get("depth"))
        number = len(measured_trials(self.oracle.study)) + 1
        total = self.oracle.total_trials
        self.reporter.say(f"trial {number}/{total}: depth {depth} (study trial #{ot.number})")

        def progress(phase, epoch, epochs, seconds):
            self.reporter.epoch(trial=number, total=total, depth=depth, phase=phase,
                                epoch=epoch, epochs=epochs, seconds=seconds)

        model = self._try_build(trial.hyperparameters)
        metrics = self.hypermodel.fit(
            trial.hyperparameters, model, train=datasets.train,
            validation=datasets.val, progress=progress,
        )
        if not metrics.is_finite():
            raise TrialError(f"depth {depth} produced non-finite metrics")
        value = self.objective_fn(metrics.as_attrs())
        for key, v in metrics.as_attrs().items():
            ot.set_user_attr(key, v)
        self._save_checkpoint(model, ot.number)
        self.reporter.say(
            f"trial {number}/{total} depth {depth}: val_accuracy {metrics.val_accuracy:.4f}, "
            f"{metrics.fit_seconds:.1f} s, {self.objective_fn.name} {value:.6g}"
        )
        return {
            OBJECTIVE_NAME: value,
            "val_accuracy": metrics.val_accuracy,
            "fit_seconds": metrics.fit_seconds,
        }

    def _save_checkpoint(self, model, number: int) -> None:
        if not self.checkpoint_dir:
            return
        try:
            os.makedirs(self.checkpoint_dir, exist_ok=True)
            model.save_weights(os.path.join(self.checkpoint_dir, f"trial_{number}.weights.h5"))
        except OSError as exc:  # artifacts are optional: the result is already stored
            self.reporter.say(f"could not keep the checkpoint of trial {number}: {exc}")

    def save_model(self, trial_id, model, step=0) -> None:
        """Checkpoints are kept by ``_save_checkpoint`` only when asked for."""

    def save(self) -> None:
        try:
            super().save()
        except OSError as exc:  # disk full etc.: Keras Tuner's files are optional
            self.oracle._artifact_error(exc)
