"""What a search asks of its trial process: a named request, and the one form it crosses the pipe in.

The worker builds requests (``tuner.search``), the trial process serves them
(``tuner.trials.handler``), and between them they are JSON lines
(``tuner.trials.process``). ``to_wire`` / ``from_wire`` are the only code that
knows the keys, so both sides read the same fields by name, and a request
that is not one (an unknown kind, a field missing or misspelt) is refused at
the boundary with a message instead of a ``KeyError`` deep inside a trial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace

# trial: train one depth; head: the shared phase 1 of a cached search; probe: a depth's
# plain-protocol seconds by a short probe, before it trains; device: where the process trains.
KINDS = ("trial", "head", "probe", "device")
MODES = ("plain", "cached")

# What serves a request: TrialProcess.request, or the search's in-process stand-in.
Serve = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class TrialContext:
    """What every request of one search shares: the protocol, the images, the cache and,
    once the shared head phase has run (cached mode), its weights and metrics."""

    protocol: TrainingProtocol
    num_classes: int
    space: DepthSpace
    images_dir: str
    mode: str = "plain"
    cache_dir: str | None = None
    cache_size_bytes: float | None = None  # --cache-size, in bytes
    images_sha256: str | None = None  # part of every cache key
    head_path: str | None = None  # phase 1's weights (.npz), for cached trials
    phase1: dict[str, Any] | None = None  # phase 1's metrics, for cached trials and probes

    def after_head_phase(self, head_path: str, phase1: dict[str, Any]) -> TrialContext:
        """The context of the trials that start from the shared head phase."""
        return replace(self, head_path=head_path, phase1=phase1)

    def to_wire(self) -> dict[str, Any]:
        """The shared fields as they cross the pipe (None fields left out)."""
        wire = {f.name: getattr(self, f.name) for f in fields(self)}
        wire.update(protocol=asdict(self.protocol), space=asdict(self.space))
        return {key: value for key, value in wire.items() if value is not None}


@dataclass(frozen=True)
class TrialRequest:
    """One request to the trial process; build it by ``trial``, ``head``, ``probe`` or ``device``."""

    kind: str
    context: TrialContext
    depth: int | None = None
    checkpoint: str | None = None  # where a trial keeps its weights (--keep-checkpoints)
    trial_seed: int | None = None  # a repeat's own phase-2 seed (sweep, confirmation)
    head_out: str | None = None  # where the head phase writes phase 1's weights
    priced_between: dict[str, Any] | None = None
    """A cached trial's phase-2 step costs, interpolated by the search between two read depths
    (``stored_keys.PRICED_BETWEEN``): the trial skips its own probe."""
    stop_early: bool | None = None
    """After each phase-2 epoch but the last, the trial asks whether to go on (``--stop-early``)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown trial request kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        c = self.context
        if c.mode not in MODES:
            raise ValueError(f"trial request mode {c.mode!r}: expected one of {', '.join(MODES)}")
        needed = {"trial": ["depth"], "probe": ["depth", "phase1"], "device": [],
                  "head": ["head_out", "cache_dir", "images_sha256"]}[self.kind]
        if self.kind == "trial" and c.mode == "cached":
            needed += ["head_path", "phase1", "cache_dir", "images_sha256"]
        missing = [name for name in needed
                   if getattr(self, name, None) is None and getattr(c, name, None) is None]
        if missing:
            raise ValueError(f"a {self.kind!r} request needs {', '.join(missing)}")

    @classmethod
    def trial(cls, context: TrialContext, depth: int, *, checkpoint: str | None = None,
              seed: int | None = None, priced_between: dict[str, Any] | None = None,
              stop_early: bool = False) -> TrialRequest:
        """Train ``depth`` (plain or cached, as the context says)."""
        return cls("trial", context, depth=depth, checkpoint=checkpoint, trial_seed=seed,
                   priced_between=priced_between, stop_early=stop_early or None)

    @classmethod
    def head(cls, context: TrialContext, out: str) -> TrialRequest:
        """Run the shared head phase, its weights written to ``out``."""
        return cls("head", context, head_out=out)

    @classmethod
    def probe(cls, context: TrialContext, depth: int) -> TrialRequest:
        """Probe what ``depth`` would cost in the plain protocol."""
        return cls("probe", context, depth=depth)

    @classmethod
    def device(cls, context: TrialContext) -> TrialRequest:
        """Say where the process trains (``tuner.devices.describe_training_device``)."""
        return cls("device", context)

    def to_wire(self) -> dict[str, Any]:
        """The request as one JSON-ready dict: the context's fields and this request's, flat."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "context"}
        return {**self.context.to_wire(), **{k: v for k, v in own.items() if v is not None}}

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> TrialRequest:
        """The request ``to_wire`` wrote; ``ValueError`` names what is wrong with any other dict."""
        if not isinstance(wire, dict):
            raise ValueError(f"a trial request is a JSON object, not {type(wire).__name__}")
        if wire.get("kind") not in KINDS:
            raise ValueError(f"unknown trial request kind {wire.get('kind')!r}: "
                             f"expected one of {', '.join(KINDS)}")
        shared = {f.name for f in fields(TrialContext)}
        own = {f.name for f in fields(cls)} - {"context"}
        unknown = sorted(set(wire) - shared - own)
        if unknown:
            raise ValueError(f"trial request fields not known: {', '.join(unknown)}")
        missing = [name for name in ("protocol", "num_classes", "space", "images_dir") if name not in wire]
        if missing:
            raise ValueError(f"trial request without {', '.join(missing)}")
        values = {k: v for k, v in wire.items() if k in shared}
        values.update(protocol=TrainingProtocol(**wire["protocol"]), space=DepthSpace(**wire["space"]))
        return cls(context=TrialContext(**values), **{k: v for k, v in wire.items() if k in own})
