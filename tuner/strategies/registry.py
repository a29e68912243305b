"""Every depth strategy, in one table that ``search``, ``narrow``, ``sweep``,
``live-compare`` and the offline ``compare`` all read.

Why one shape: a strategy used to exist as an Optuna sampler, a refill closure
and an ask/tell class, under different names per command. Now a strategy is
one ``Strategy`` object on an Optuna study:

* ``sampler()``: the Optuna sampler the study asks when nothing is queued
  (a strategy that chooses its depths itself never lets it be asked);
* ``queue(study)``: the depths it wants trained next, with their user
  attributes, read from the study's trials alone. It is called whenever
  nothing waits in the study's queue; for a strategy that ``chooses_depths``
  an empty answer ends the run.

The live search (``tuner.search.oracle``) trains the asked trials; the replay
(``tuner.analysis.replay``) drives the same object on an in-memory study whose
objective reads a landscape. Because ``queue`` is a function of the study, a
killed, resumed or parallel search comes to the same decisions.

The families live in their own modules: ``base`` (``Strategy``, ``Setup``),
``samplers`` (Optuna's), ``gain_per_second``, ``listed`` (those that choose their depths)
and ``with_confirmations`` (the ``+confirmN`` wrapper); this module names them. Adding a
strategy is a subclass and one line in ``STRATEGIES``::

    class Halving(Strategy):
        \"\"\"Every depth of the range, then the better half again, ...\"\"\"
        name = "halving"
        chooses_depths = True

        def queue(self, study):
            ...  # (depth, user attrs) pairs from the study's COMPLETE trials

    STRATEGIES["halving"] = Halving   # or a line in the table below

Any strategy takes confirmation repeats as ``NAME+confirmN`` (``Confirmed``),
a sampler a depth scale as ``NAME:linear`` / ``NAME:log``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import optuna

from objectives import Objective
from tuner.errors import UsageError
from tuner.model.space import SCALES, DepthSpace
from tuner.store.trials import enqueue, queued_count
from tuner.strategies.base import Queued, Setup, Strategy, completed_values
from tuner.strategies.with_confirmations import Confirmed
from tuner.strategies.decision import (
    Decision,
    Kind,
    Snapshot,
    before_asking,
)
from tuner.strategies.gain_per_second import GainPerSecond
from tuner.strategies.listed import Narrowing, Sweep, ThesisGrids, parse_depths
from tuner.strategies.samplers import GP, STARTUP_TRIALS, TPE, Grid, Random

__all__ = [
    "ALIASES",
    "STARTUP_TRIALS",
    "STRATEGIES",
    "Confirmed",
    "Queued",
    "Setup",
    "Strategy",
    "StrategySpec",
    "completed_values",
    "make_strategy",
    "parse_depths",
    "parse_strategy",
]


STRATEGIES: dict[str, type[Strategy]] = {
    "tpe": TPE,
    "gp": GP,
    "random": Random,
    "grid": Grid,
    "gain-per-second": GainPerSecond,
    "narrowing": Narrowing,
    "thesis-grids": ThesisGrids,
    "sweep": Sweep,
}
"""Every strategy by the one name a study records and every command accepts."""

ALIASES = {"thesis": "thesis-grids", "narrowing:thesis": "thesis-grids"}
"""Older names (``compare``'s ``narrowing:thesis``) that still load."""

CONFIRM_SUFFIX = "+confirm"
DEFAULT_STRATEGY = "tpe"


@dataclass(frozen=True)
class StrategySpec:
    """A strategy as named on a command line: registry name, a sampler's scale, confirmations."""

    name: str
    scale: str | None = None
    confirm: int = 0

    @property
    def label(self) -> str:
        base = self.name if self.scale is None else f"{self.name}:{self.scale}"
        return f"{base}{CONFIRM_SUFFIX}{self.confirm}" if self.confirm else base


def parse_strategy(text: str, *, scale: str | None = None) -> StrategySpec:
    """``"tpe:linear+confirm2"`` -> ``StrategySpec("tpe", "linear", 2)``; aliases resolved.

    A sampler named without a scale gets ``scale``; a bad name is a one-line UsageError.
    """
    raw = text.strip()
    plain, sep, count = raw.partition(CONFIRM_SUFFIX)
    if sep and not count.isdigit():
        raise UsageError(f"strategy {raw!r}: write the confirmations as a whole number, e.g. tpe+confirm2")
    plain = ALIASES.get(plain, plain)
    name, _, sc = plain.partition(":")
    name = ALIASES.get(name, name)
    cls = STRATEGIES.get(name)
    if cls is None:
        raise UsageError(f"unknown strategy {raw!r}: use one of {', '.join(STRATEGIES)} "
                         "(a sampler may add :linear or :log, any strategy +confirmN)")
    if sc and cls.chooses_depths:
        raise UsageError(f"strategy {raw!r}: {name} chooses its depths itself and has no scale "
                         "(the thesis' exact depths are thesis-grids, or narrowing:thesis)")
    if sc and sc not in SCALES:
        raise UsageError(f"strategy {raw!r}: unknown scale {sc!r}, use linear or log")
    return StrategySpec(name, None if cls.chooses_depths else (sc or scale), int(count) if sep else 0)


def check_objective(name: str, objective: Objective) -> None:
    """A one-line usage error when strategy ``name`` cannot serve ``objective``."""
    if objective.is_multi and not STRATEGIES[name].multi_objective:
        able = ", ".join(n for n, cls in STRATEGIES.items() if cls.multi_objective)
        raise UsageError(f"{name} ranks one value per depth, so it cannot search --objective "
                         f"{objective.name}: use one of {able}, or another objective")


def make_strategy(spec: StrategySpec | str, setup: Setup) -> Strategy:
    """The strategy ``spec`` names, on ``setup`` (a named scale replaces the setup's)."""
    if isinstance(spec, str):
        spec = parse_strategy(spec)
    cls = STRATEGIES[spec.name]
    if spec.scale is not None and spec.scale != setup.space.scale:
        setup = replace(setup, space=DepthSpace(setup.space.low, setup.space.high, spec.scale))
    check_objective(spec.name, setup.objective)
    strategy = cls(setup)
    return Confirmed(strategy, spec.confirm) if spec.confirm else strategy


def decide_before_asking(snap: Snapshot, strategy: Strategy, study: optuna.Study,
                         space: DepthSpace) -> tuple[Decision, Snapshot]:
    """``tuner.strategies.decision.before_asking``, letting ``strategy`` queue depths when the rules say so.

    The one step the live oracle and the offline replay share before they ask
    the study; returns the decision and the snapshot it was made on."""
    decision = before_asking(snap)
    if decision.kind is Kind.REFILL:
        for depth, attrs in strategy.queue(study):
            enqueue(study, space, depth, attrs)
        snap = replace(snap, queued=queued_count(study), refilled=True)
        decision = before_asking(snap)
    return decision, snap
