"""What one trial measured, and how it is stored on an Optuna trial.

The Optuna storage is the only record of a study, so every metric lives in
the trial's user attributes under the field names below; objectives are
recomputed from them (``objectives.OBJECTIVES``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields


def efficiency(accuracy, seconds):
    """Validation accuracy per second of the plain protocol: the thesis' measure, and the
    default objective's formula (``objectives``); numbers or numpy arrays."""
    return accuracy / seconds


def steady_seconds(phase_epoch_seconds: Sequence[Sequence[float]]) -> float:
    """Training time had every epoch run at its phase's steady speed.

    The first epoch of each phase includes graph tracing (phase 2 retraces
    after the recompile), so each phase is costed as ``epochs x median`` of
    its later epochs; a one-epoch phase keeps its only epoch.
    """
    total = 0.0
    for epochs in phase_epoch_seconds:
        if not epochs:
            continue
        later = list(epochs[1:]) or list(epochs)
        total += len(epochs) * statistics.median(later)
    return total


@dataclass
class TrialMetrics:
    depth: int
    val_accuracy: float
    val_loss: float
    fit_seconds: float
    phase_seconds: list[float]
    epoch_seconds: list[float]
    first_epoch_seconds: float
    steady_seconds: float
    trainable_params: int
    trained_layers_with_weights: int
    host: str
    # What the plain protocol costs for this depth on this machine: measured
    # in plain mode, accounted from measured step costs in cached mode. The
    # objectives' denominator.
    protocol_seconds: float = math.nan
    # What the trial really cost the tool: its process's wall clock for it,
    # plus its share of the shared head phase (``shared_seconds``).
    search_seconds: float = math.nan
    trial_mode: str = "plain"
    losses: list[float] = field(default_factory=list)  # training loss per epoch, both phases
    val_accuracies: list[float] = field(default_factory=list)  # phase 2's, after each of its epochs
    extra: dict = field(default_factory=dict)

    def as_attrs(self) -> dict[str, object]:
        attrs = asdict(self)
        attrs.update(attrs.pop("extra"))
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, object], *, extra: dict | None = None) -> TrialMetrics:
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: attrs[k] for k in names if k in attrs}, extra=dict(extra or {}))

    def keras_metrics(self) -> dict[str, float]:
        """The trial's metrics as Keras Tuner records them: what ``DepthHyperModel.fit``
        returns and the tool's own tuner (``tuner.search.depth_tuner``) reads.

        Every stored attribute (``as_attrs``) that is a finite number, as a
        plain float (lists, text and NaN left out), plus ``efficiency`` =
        ``val_accuracy / protocol_seconds``: the default objective's value
        of this one trial, so ``kt.Objective("efficiency", "max")`` (or any
        metric here, e.g. ``"val_accuracy"``, ``"protocol_seconds"`` with
        ``"min"``) needs no depth-tuner objective around it.
        """
        numbers = {k: float(v) for k, v in self.as_attrs().items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.protocol_seconds > 0:
            numbers["efficiency"] = float(efficiency(self.val_accuracy, self.protocol_seconds))
        return {k: v for k, v in numbers.items() if math.isfinite(v)}

    def is_finite(self) -> bool:
        return all(
            math.isfinite(v) for v in (self.val_accuracy, self.fit_seconds, self.steady_seconds,
                                       self.protocol_seconds)
        )


METRIC_FIELDS = tuple(f.name for f in fields(TrialMetrics) if f.name != "extra")
