"""What a trial is worth, and what "best" means: each objective's formula exists here once.

Every objective is a pure function of the metrics stored on a trial (see
``tuner.model.metrics.TrialMetrics``), so a study's values can be recomputed from
its trials at any time. An objective is written as ``formula(accuracy,
seconds)`` on numbers or numpy arrays, so the same formula values one trial
(what the study is told), a depth's pooled means (what ``show``, ``report``,
``compare`` and ``live-compare`` rank by, through ``objectives.best``) and a
replayed landscape. ``get_objective`` is the one way to get one by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner import stored_keys as keys
from tuner.errors import UsageError
from tuner.model.metrics import efficiency
from tuner.stored_keys import protocol_seconds

Metrics = Mapping[str, object]
Formula = Callable[[Any, Any], Any]

CHEAPEST_WITHIN = "cheapest-within"


def _steady_seconds(m: Metrics) -> float:
    return float(m[keys.STEADY_SECONDS])  # type: ignore[arg-type]


@dataclass(frozen=True)
class Objective:
    """An objective: its formula, which seconds it counts, and how depths are ranked by it.

    ``formula(accuracy, seconds)`` ranks depths (``direction``), among the
    depths ``eligible`` allows given every depth's mean accuracy (all when
    None). ``trial_formula`` is what the Optuna study is told and maximises
    when that is not ``formula`` itself (a rule over all depths, like
    cheapest-within, has no per-trial value of its own). A multi-objective
    study (pareto) is told ``study_metrics`` instead, one per
    ``study_directions``.
    """

    name: str
    formula: Formula
    description: str
    seconds_of: Callable[[Metrics], float] = protocol_seconds
    direction: str = "maximize"
    label: str = "value"
    eligible: Callable[[np.ndarray], np.ndarray] | None = None
    trial_formula: Formula | None = None
    # What the Optuna study itself optimises, when not the one value above:
    # metric names (as the trial reports them) and their directions.
    study_metrics: tuple[str, ...] = ()
    study_directions: tuple[str, ...] = ("maximize",)
    value_name: str = ""
    within: float | None = None
    """cheapest-within's EPS: how far below the best accuracy a depth stays eligible."""

    @property
    def is_multi(self) -> bool:
        """A multi-objective study (a Pareto front rather than one value per trial)."""
        return len(self.study_directions) > 1

    @property
    def metric_names(self) -> list[str]:
        """What the study's values are, by name, for Optuna's tools (the dashboard's axis): the
        study metrics, else the accuracy a rule's trials are told, else the objective's name."""
        if self.study_metrics:
            return list(self.study_metrics)
        return [keys.VAL_ACCURACY if self.trial_formula is _accuracy else self.name]

    @property
    def shown_as(self) -> str:
        """What a depth's value is called in one-line answers."""
        return self.value_name or self.name

    def seconds(self, metrics: Metrics) -> float:
        """The seconds this objective counts for one trial."""
        return float(self.seconds_of(metrics))

    def __call__(self, metrics: Metrics) -> float:
        """A trial's one value: what a one-objective study is told (maximised), and
        Keras Tuner's score in every study."""
        f = self.trial_formula or self.formula
        return float(f(float(metrics[keys.VAL_ACCURACY]), self.seconds(metrics)))  # type: ignore[arg-type]

    def told(self, accuracy: float, seconds: float) -> list[float]:
        """What the study is told for an accuracy and its seconds: one trial's, or a depth's
        pooled means (a re-suggested depth, live and in a replay); one value per direction."""
        if not self.study_metrics:
            return [float((self.trial_formula or self.formula)(accuracy, seconds))]
        by_name = {keys.VAL_ACCURACY: accuracy, keys.PROTOCOL_SECONDS: seconds}
        return [float(by_name[k]) for k in self.study_metrics]

    def values(self, accuracy: Any, seconds: Any) -> np.ndarray:
        """The ranking formula on (arrays of) accuracies and seconds."""
        return np.asarray(self.formula(np.asarray(accuracy, dtype=float),
                                       np.asarray(seconds, dtype=float)), dtype=float)


_efficiency = efficiency  # val_accuracy / seconds, also Keras Tuner's "efficiency" metric of a trial


def _accuracy(acc, sec):
    return acc + 0.0 * sec


def _seconds(acc, sec):
    return sec + 0.0 * acc


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "efficiency", _efficiency,
            "val_accuracy / protocol_seconds (the thesis' definition: seconds of the plain protocol)",
            label="efficiency (val_accuracy / s)",
        ),
        Objective("accuracy", _accuracy, "val_accuracy alone", label="validation accuracy"),
        Objective(
            "steady-efficiency", _efficiency,
            "val_accuracy / steady_seconds (first-epoch tracing overhead removed)",
            seconds_of=_steady_seconds, label="steady efficiency (val_accuracy / steady s)",
        ),
        Objective(
            "pareto", _efficiency,
            "a two-objective study: maximise val_accuracy, minimise protocol_seconds; "
            "the Pareto front is the answer, its most efficient depth the one best depth",
            label="efficiency (val_accuracy / s)", value_name="efficiency",
            study_metrics=("val_accuracy", "protocol_seconds"),
            study_directions=("maximize", "minimize"),
        ),
    )
}

DEFAULT_OBJECTIVE = "efficiency"
OBJECTIVE_CHOICES = (*OBJECTIVES, f"{CHEAPEST_WITHIN}:EPS")


def cheapest_within(eps: float) -> Objective:
    """The cheapest depth (lowest protocol seconds) whose mean accuracy is within ``eps``
    of the best mean accuracy measured.

    The study itself is told val_accuracy: the sampler has to find the best
    accuracy, which sets the bar; the answer is then chosen by the rule over
    every measured depth.
    """
    def within(acc: np.ndarray) -> np.ndarray:
        acc = np.asarray(acc, dtype=float)
        return acc >= np.nanmax(acc) - eps - 1e-12

    return Objective(
        f"{CHEAPEST_WITHIN}:{eps:g}", _seconds,
        f"lowest protocol_seconds among depths whose val_accuracy is within {eps:g} of the best",
        direction="minimize", label="protocol seconds", eligible=within, trial_formula=_accuracy,
        within=eps,
    )


def get_objective(name: str) -> Objective:
    """An objective by name: one of ``OBJECTIVES`` or ``cheapest-within:EPS``."""
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    family, sep, arg = name.partition(":")
    if family == CHEAPEST_WITHIN:
        try:
            eps = float(arg)
        except ValueError:
            eps = math.nan
        if not sep or not (math.isfinite(eps) and 0 <= eps < 1):
            raise UsageError(
                f"objective {name!r}: EPS must be an accuracy difference in [0, 1), "
                f"e.g. {CHEAPEST_WITHIN}:0.01"
            )
        return cheapest_within(eps)
    raise UsageError(f"unknown objective {name!r}: use one of {', '.join(OBJECTIVE_CHOICES)}")


__all__ = [
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "OBJECTIVE_CHOICES",
    "Objective",
    "cheapest_within",
    "get_objective",
]
