"""A search's full configuration, validated in one place and recorded on the study."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from objectives import get_objective
from tuner.backbones import check_image_size, get_backbone_spec, n_layers
from tuner.data import DataSpec
from tuner.protocol import Protocol
from tuner.samplers import SAMPLERS
from tuner.errors import UsageError
from tuner.space import DepthSpace


TRIAL_MODES = ("cached", "plain")

# Strategies that queue their own depths (tuner.queued); recorded like a sampler.
QUEUED_STRATEGIES = ("narrowing", "thesis-grids", "sweep")


@dataclass(frozen=True)
class SearchConfig:
    data: DataSpec
    protocol: Protocol = field(default_factory=Protocol)
    objective: str = "efficiency"
    sampler: str = "tpe"
    space: DepthSpace | None = None  # None: every layer of the protocol's backbone
    trial_mode: str = "cached"

    def __post_init__(self) -> None:
        get_objective(self.objective)
        spec = get_backbone_spec(self.protocol.backbone)
        check_image_size(spec, self.protocol.image_size)
        n = n_layers(spec.name)
        if self.space is None:
            object.__setattr__(self, "space", DepthSpace(0, n))
        elif self.space.high > n:
            raise UsageError(f"--max-depth {self.space.high} exceeds the {n} layers of {spec.name}: "
                             f"use at most {n}")
        if get_objective(self.objective).is_multi and self.sampler in ("narrowing", "thesis-grids"):
            raise UsageError(f"the narrowing ranks one value per depth: use --objective efficiency "
                             f"(or accuracy) with it, not {self.objective!r}")
        if self.trial_mode not in TRIAL_MODES:
            raise UsageError(f"unknown --trial-mode {self.trial_mode!r}: use one of {', '.join(TRIAL_MODES)}")
        if self.sampler not in SAMPLERS and self.sampler not in QUEUED_STRATEGIES:
            raise UsageError(f"unknown sampler {self.sampler!r}: use one of {', '.join(SAMPLERS)}")

    def as_config(self) -> dict[str, Any]:
        """What the study records; resuming with anything different is refused."""
        return {
            "data": self.data.as_config(),
            "protocol": self.protocol.as_config(),
            "objective": self.objective,
            "sampler": self.sampler,
            "space": {"low": self.space.low, "high": self.space.high, "scale": self.space.scale},
            "trial_mode": self.trial_mode,
        }
