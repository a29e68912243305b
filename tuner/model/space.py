"""How the depth is put to the sampler.

Every efficient depth measured so far is shallow (3-22 of 154), and the
thesis' coarse grid 0, 10, 30, 60, 100 is roughly geometric. A sampler that
spreads suggestions evenly over 0..154 spends most of its budget deep down,
so the parameterisation is a choice of its own: ``linear`` suggests the
depth itself, ``log`` suggests ``depth + 1`` on a log scale (so 0 stays
reachable). Either way the stored Optuna parameter maps to exactly one
integer depth, and every trial also carries a parameter (and a user
attribute) named ``depth`` with the depth itself (``record``), which is what
optuna-dashboard plots.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.distributions import BaseDistribution, IntDistribution

from tuner import stored_keys as keys
from tuner.errors import UsageError

SCALES = ("linear", "log")
PARAM = {"linear": "depth", "log": "depth_plus_one"}


@dataclass(frozen=True)
class DepthSpace:
    low: int
    high: int
    scale: str = "log"

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise UsageError(
                f"unknown depth scale {self.scale!r}: use one of {', '.join(SCALES)}"
            )
        if not 0 <= self.low <= self.high:
            raise UsageError(
                f"depth range {self.low}..{self.high} is empty or negative: "
                "pass --min-depth <= --max-depth, both >= 0"
            )

    @property
    def param_name(self) -> str:
        return PARAM[self.scale]

    def distributions(self) -> dict[str, BaseDistribution]:
        if self.scale == "linear":
            return {"depth": IntDistribution(self.low, self.high)}
        return {"depth_plus_one": IntDistribution(self.low + 1, self.high + 1, log=True)}

    def params_for(self, depth: int) -> dict[str, int]:
        """Optuna parameters that stand for ``depth`` (for enqueued trials)."""
        return {self.param_name: depth + (1 if self.scale == "log" else 0)}

    def depth_of(self, params: dict[str, object]) -> int:
        if self.scale == "linear":
            return int(params["depth"])
        return int(params["depth_plus_one"]) - 1

    def record(self, trial: optuna.Trial, depth: int) -> None:
        """Put the plain depth on an asked trial, as a user attribute and a parameter.

        On the log scale the sampler's parameter is ``depth_plus_one`` (kept
        so that older studies resume); the extra ``depth`` parameter has a
        one-value distribution, so Optuna records it without asking any
        sampler and no sampler's search space changes.
        """
        trial.set_user_attr(keys.DEPTH, depth)
        if self.param_name != "depth":
            trial.suggest_int("depth", depth, depth)

    def depths(self) -> range:
        return range(self.low, self.high + 1)
