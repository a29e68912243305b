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

Adding a strategy is a subclass and one line in ``STRATEGIES``::

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

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import optuna
from optuna.trial import TrialState

from objectives import Objective, get_objective
from tuner.errors import UsageError
from tuner.model.space import SCALES, DepthSpace
from tuner.store.records import study_records
from tuner.store.study import enqueue, measured_trials, queued_count, trial_depth
from tuner.strategies.confirm import CONFIRM_ATTR, in_confirm_phase, next_confirmation
from tuner.strategies.decision import (
    MAX_REPEATS,  # the nudge's threshold (tuner.strategies.decision), still exported here
    Decision,
    Kind,
    Snapshot,
    before_asking,
)
from tuner.strategies.narrowing import THESIS_STAGE3, next_stage, thesis_plan

__all__ = [
    "ALIASES",
    "MAX_REPEATS",
    "STARTUP_TRIALS",
    "STRATEGIES",
    "Confirmed",
    "Setup",
    "Strategy",
    "StrategySpec",
    "completed_values",
    "make_strategy",
    "parse_depths",
    "parse_strategy",
]

Queued = tuple[int, dict[str, Any]]

# Budgets here are ~13 trials; Optuna's default of 10 random start-up trials
# would leave TPE and GP almost nothing to decide.
STARTUP_TRIALS = 4


@dataclass(frozen=True)
class Setup:
    """What a strategy may read besides the study: one object for live runs and replays."""

    space: DepthSpace
    seed: int = 0
    budget: int | None = None
    """Trainings in all (``--trials``, ``--budget``); None: until the strategy has nothing left."""
    objective: Objective = field(default_factory=lambda: get_objective("efficiency"))
    dataset: str | None = None
    """The dataset's name (the thesis' grids differ per dataset)."""
    depths: tuple[int, ...] | None = None
    """A sweep's depths (None: the whole range)."""
    repeats: int = 1
    """A sweep's readings per depth."""


class Strategy:
    """One way to choose depths; subclasses set ``name`` and override what differs."""

    name: ClassVar[str] = "sampler"
    chooses_depths: ClassVar[bool] = False
    """True: the sampler is never asked, and an empty ``queue`` ends the run."""
    multi_objective: ClassVar[bool] = True
    """False: ranks one value per depth, so ``--objective pareto`` is refused."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    def sampler(self) -> optuna.samplers.BaseSampler:
        """The sampler the study asks when nothing is queued (never, if ``chooses_depths``)."""
        return optuna.samplers.RandomSampler(seed=self.setup.seed)

    def queue(self, study: optuna.Study) -> list[Queued]:
        """Depths to queue now, in order, with their user attributes (asked when none waits)."""
        return []


CHEAPEST_FIRST = {"chosen_by": "cheapest-first"}
"""User attributes of a sampler's first depth."""


class _CheapestFirst(Strategy):
    """A sampler that trains the shallowest depth of the range first, then samples.

    Why: before any reading nothing can be ruled out (``tuner.strategies.bound``),
    and a first random suggestion deep in the range costs as much as a plain
    trial even in cached mode (on the log scale a quarter of them land beyond
    depth 40 of MobileNetV2's 154). The shallowest
    depth is the cheapest (a cached depth 0 reuses the head phase: ~3 s), and
    its value is the first best for the bound to rule dear depths out by.
    Replayed on the thesis tables it changed no answer beyond the noise of 50
    seeds and saved 1-3 % of the training seconds (benchmarks/RESULTS.md)."""

    def queue(self, study: optuna.Study) -> list[Queued]:
        if study.get_trials(deepcopy=False):
            return []
        return [(self.setup.space.low, dict(CHEAPEST_FIRST))]


# -- Optuna samplers -------------------------------------------------------------


class TPE(_CheapestFirst):
    """Optuna's TPE (the default: best on the thesis tables, benchmarks/RESULTS.md)."""

    name = "tpe"

    def sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=self.setup.seed, n_startup_trials=STARTUP_TRIALS,
                                          constant_liar=True)


class GP(_CheapestFirst):
    """Optuna's Gaussian-process sampler (needs torch and scipy)."""

    name = "gp"

    def sampler(self) -> optuna.samplers.BaseSampler:
        try:
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            raise UsageError(
                f"the 'gp' sampler needs torch and scipy ({exc.name} is missing): "
                "pip install 'depth-tuner[gp]' (a CPU build of torch is enough), "
                "or pick --sampler tpe|random|grid"
            ) from None
        return optuna.samplers.GPSampler(seed=self.setup.seed, n_startup_trials=STARTUP_TRIALS)


class Random(_CheapestFirst):
    """Uniform on the depth scale."""

    name = "random"


class _GridThatDoesNotStop(optuna.samplers.GridSampler):
    """GridSampler whose used-up grid leaves stopping to the search.

    Optuna's calls ``study.stop()`` after the last grid point's trial, which
    raises outside ``study.optimize``: the search tells trials itself, and
    stops once every depth is measured (``tuner.strategies.decision``)."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


class Grid(Strategy):
    """Every depth of the range once, in Optuna's GridSampler order."""

    name = "grid"

    def sampler(self) -> optuna.samplers.BaseSampler:
        space = self.setup.space
        grid = [space.params_for(d)[space.param_name] for d in space.depths()]
        return _GridThatDoesNotStop({space.param_name: grid}, seed=self.setup.seed)


# -- strategies that choose their depths -----------------------------------------


def completed_values(study: optuna.Study, space: DepthSpace) -> dict[int, float]:
    """Mean objective per depth over every COMPLETE trial (repeats and equivalents too)."""
    values: dict[int, list[float]] = defaultdict(list)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        values[trial_depth(t, space)].append(t.value)
    return {d: sum(v) / len(v) for d, v in values.items()}


class Narrowing(Strategy):
    """The thesis' coarse-to-fine rule (``tuner.strategies.narrowing``), stage by stage from the study."""

    name = "narrowing"
    chooses_depths = True
    multi_objective = False

    def queue(self, study: optuna.Study) -> list[Queued]:
        space = self.setup.space
        stage = next_stage(completed_values(study, space), low=space.low, high=space.high)
        return [(d, {"chosen_by": self.name}) for d in stage]


class Sweep(Strategy):
    """Every listed depth, ``repeats`` times; a repeat trains with a seed of its own.

    A depth that trains exactly the weights of one measured before it is
    queued once and answered from that measurement (``reused_from``). A
    repeat (``measure_again``) gets the seed ``confirmation_seed(base,
    trial number)`` from the search, so repeats measure seed noise too.
    """

    name = "sweep"
    chooses_depths = True

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        space = setup.space
        depths = setup.depths if setup.depths is not None else tuple(space.depths())
        outside = [d for d in depths if not space.low <= d <= space.high]
        if outside:
            raise UsageError(f"depth {outside[0]} is outside {space.low}..{space.high}: "
                             f"fix --depths or the depth range of {self.name}")
        if setup.repeats < 1:
            raise UsageError("--repeats must be 1 or more")
        self.depths = list(dict.fromkeys(depths))

    def queue(self, study: optuna.Study) -> list[Queued]:
        space = self.setup.space
        trained = Counter(trial_depth(t, space) for t in measured_trials(study))
        seen = {trial_depth(t, space) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        out: list[Queued] = []
        for d in self.depths:
            if trained[d] == 0:
                if d not in seen:  # first time: trained, or answered from an equivalent depth
                    out.append((d, {"chosen_by": self.name}))
                continue
            again = {"chosen_by": self.name, "measure_again": True}
            out.extend((d, dict(again)) for _ in range(self.setup.repeats - trained[d]))
        return out


def parse_depths(text: str, *, low: int, high: int) -> list[int]:
    """'0-10,20,30-40:5' -> depths (``sweep --depths``); ranges are inclusive, ':N' is a step."""
    depths: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            span, _, step = part.partition(":")
            a, sep, b = span.partition("-")
            lo, hi = int(a), int(b) if sep else int(a)
            depths.extend(range(lo, hi + 1, int(step) if step else 1))
        except ValueError:
            raise UsageError(f"--depths {text!r}: write depths like 0-40, 0,5,10 or 0-100:10") from None
    if not depths:
        raise UsageError("--depths is empty: list at least one depth")
    bad = [d for d in depths if not low <= d <= high]
    if bad:
        raise UsageError(f"depth {bad[0]} is outside {low}..{high}: fix --depths")
    return depths


class ThesisGrids(Sweep):
    """The 13 depths the thesis trained for its dataset, in its order, whatever they measure."""

    name = "thesis-grids"
    multi_objective = False

    def __init__(self, setup: Setup) -> None:
        stage3 = THESIS_STAGE3.get(setup.dataset or "")
        if stage3 is None:
            where = (f"not {setup.dataset!r}: drop --thesis-grids to narrow by the rule"
                     if setup.dataset else "and a thesis landscape (thesis:5.1..thesis:5.4)")
            raise UsageError(f"--thesis-grids knows the thesis' depths for "
                             f"{', '.join(THESIS_STAGE3)} only, {where}")
        depths = tuple(dict.fromkeys(d for stage in thesis_plan(stage3) for d in stage))
        super().__init__(replace(setup, depths=depths, repeats=1))


# -- confirmation repeats, for any strategy ---------------------------------------


class Confirmed(Strategy):
    """``inner`` with the last ``count`` trainings of the budget kept for confirmation repeats.

    The rule is ``tuner.strategies.confirm``'s: re-measure the leader or its runner-up
    while they are within noise; otherwise (and before the last ``count``)
    ``inner`` decides. A confirmation is queued with user attributes
    ``confirm`` and ``measure_again``; the search gives it its own seed.
    """

    def __init__(self, inner: Strategy, count: int) -> None:
        super().__init__(inner.setup)
        if count < 0:
            raise UsageError(f"--confirm {count}: give 0 (no confirmations) or more")
        if count and inner.setup.budget is None:
            raise UsageError(f"{inner.name}+confirm{count}: confirmation repeats come at the end "
                             "of a budget of trials (--trials); this run has none")
        self.inner, self.count = inner, count
        self.name = f"{inner.name}+confirm{count}"  # type: ignore[misc]
        self.chooses_depths = inner.chooses_depths  # type: ignore[misc]
        self.multi_objective = inner.multi_objective  # type: ignore[misc]

    def sampler(self) -> optuna.samplers.BaseSampler:
        return self.inner.sampler()

    def queue(self, study: optuna.Study) -> list[Queued]:
        depth = self.confirmation(study)
        if depth is None:
            return self.inner.queue(study)
        return [(depth, {"chosen_by": "confirm", CONFIRM_ATTR: True, "measure_again": True})]

    def confirmation(self, study: optuna.Study) -> int | None:
        """The depth to measure again now, or None (not in the last ``count``, or separated)."""
        setup = self.setup
        measured = measured_trials(study)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        confirmed = sum(1 for t in [*measured, *running] if t.user_attrs.get(CONFIRM_ATTR))
        if not self.count or not in_confirm_phase(total=int(setup.budget or 0),
                                                  trained=len(measured) + len(running),
                                                  confirm=self.count, confirmed=confirmed):
            return None
        records = study_records(study, space=setup.space, objective=setup.objective, seed=setup.seed)
        return next_confirmation(records, setup.objective)


# -- the registry -----------------------------------------------------------------

STRATEGIES: dict[str, type[Strategy]] = {
    "tpe": TPE,
    "gp": GP,
    "random": Random,
    "grid": Grid,
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
