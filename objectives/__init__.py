"""What a trial is worth.

Every objective is a pure function of the metrics stored on a trial (see
``tuner.metrics.TrialMetrics``), so a study's values can be recomputed from
its trials at any time. ``OBJECTIVES`` is the one table the CLI and the API
read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tuner.errors import UsageError
from tuner.metrics import protocol_seconds

Metrics = Mapping[str, object]


@dataclass(frozen=True)
class Objective:
    name: str
    compute: Callable[[Metrics], float]
    description: str
    direction: str = "maximize"

    def __call__(self, metrics: Metrics) -> float:
        return float(self.compute(metrics))


def _efficiency(m: Metrics) -> float:
    return float(m["val_accuracy"]) / protocol_seconds(m)


def _accuracy(m: Metrics) -> float:
    return float(m["val_accuracy"])


def _steady_efficiency(m: Metrics) -> float:
    return float(m["val_accuracy"]) / float(m["steady_seconds"])


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "efficiency",
            _efficiency,
            "val_accuracy / protocol_seconds (the thesis' definition: seconds of the plain protocol)",
        ),
        Objective("accuracy", _accuracy, "val_accuracy alone"),
        Objective(
            "steady-efficiency",
            _steady_efficiency,
            "val_accuracy / steady_seconds (first-epoch tracing overhead removed)",
        ),
    )
}

DEFAULT_OBJECTIVE = "efficiency"


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise UsageError(
            f"unknown objective {name!r}: use one of {', '.join(OBJECTIVES)}"
        ) from None


__all__ = ["OBJECTIVES", "DEFAULT_OBJECTIVE", "Objective", "get_objective"]
