"""A search's full configuration, validated in one place and recorded on the study."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from objectives import get_objective
from tuner import stored_keys as keys
from tuner.data.sources import DataSpec
from tuner.errors import UsageError
from tuner.model.backbones import check_image_size, get_backbone_spec
from tuner.model.protocol import TrainingProtocol
from tuner.model.signatures import n_layers
from tuner.model.space import DepthSpace
from tuner.strategies.registry import check_objective, parse_strategy

TRIAL_MODES = ("cached", "plain")


@dataclass(frozen=True)
class SearchConfig:
    data: DataSpec
    protocol: TrainingProtocol = field(default_factory=TrainingProtocol)
    objective: str = "efficiency"
    strategy: str = "tpe"  # a name of tuner.strategies.registry.STRATEGIES, recorded as "sampler"
    space: DepthSpace | None = None  # None: every layer of the protocol's backbone
    trial_mode: str = "cached"
    stop_early: bool | None = None
    """Stop a trial after a phase-2 epoch when its depth's accuracy target is out of reach
    (``tuner.strategies.early_stop``); None: as the stored study recorded (off for one from
    before stops), on for a new one (``with_recorded``)."""

    def __post_init__(self) -> None:
        objective = get_objective(self.objective)
        spec = parse_strategy(self.strategy)
        if spec.scale is not None or spec.confirm:
            raise UsageError(f"strategy {self.strategy!r}: the study records the bare name; "
                             "give the scale as --depth-scale and confirmations as --confirm")
        object.__setattr__(self, "strategy", spec.name)  # aliases recorded by their one name
        backbone = get_backbone_spec(self.protocol.backbone)
        check_image_size(backbone, self.protocol.image_size)
        n = n_layers(backbone.name)
        if self.space is None:
            object.__setattr__(self, "space", DepthSpace(0, n))
        elif self.space.high > n:
            raise UsageError(f"--max-depth {self.space.high} exceeds the {n} layers of {backbone.name}: "
                             f"use at most {n}")
        check_objective(self.strategy, objective)
        if self.trial_mode not in TRIAL_MODES:
            raise UsageError(f"unknown --trial-mode {self.trial_mode!r}: use one of {', '.join(TRIAL_MODES)}")

    def with_recorded(self, stored: dict[str, Any] | None) -> SearchConfig:
        """Choices left open (``stop_early`` None) as the stored study made them, or today's default."""
        if self.stop_early is not None:
            return self
        return replace(self, stop_early=bool(stored.get("stop_early", False)) if stored else True)

    def as_config(self) -> dict[str, Any]:
        """What the study records; resuming with anything different is refused."""
        return {
            "data": self.data.as_config(),
            "protocol": self.protocol.as_config(),
            "objective": self.objective,
            keys.CONFIG_STRATEGY: self.strategy,
            "space": {"low": self.space.low, "high": self.space.high, "scale": self.space.scale},
            "trial_mode": self.trial_mode,
            "stop_early": self.with_recorded(None).stop_early,
        }
