"""Replay a strategy on a landscape without training: the live search's loop, readings drawn.

Comparing strategies over many seeds is ``tuner.analysis.comparison``; the
noisy worlds and the truth answers are judged by, ``tuner.analysis.worlds``.

Rules of the replay (summarised in ``docs/strategies.md``):

* **Domain.** Every strategy works on all integer depths ``low..high``
  (default the landscape's ``depth_range``: its study's, or 0..the layers of
  the backbone that measured it) in its own space: samplers through ``tuner.model.space.DepthSpace``
  (linear or log), the narrowing through its rule. A depth the landscape did
  not measure gets values linearly interpolated between measured depths
  (``Landscape.interpolated``). Because efficiency is monotone between two
  interpolated points, the landscape's best depth is always a measured one,
  so no sampler can "win" on an interpolated value; nor does any strategy
  lose suggestions to the wide gaps (30-60-100) the way snapping to the
  nearest measured depth would make it.
* **Cost.** A step costs the (noisy) seconds of its depth. A strategy that
  suggests a depth it already trained gets the stored result back for free
  (the live search reuses it the same way, user attr ``reused_from``; after
  ``MAX_REPEATS`` such suggestions in a row the nearest unread depth is
  queued, as live);
  ``trials`` counts trainings, and a run also stops after ``max_asks``
  suggestions (default ``5 x trials``) or when the strategy has nothing left.
* **Noise.** Each seed draws one noisy realisation of the landscape
  ("world"), shared by all strategies under that seed (common random
  numbers): ``seconds = mean * exp(cv*z - cv^2/2)`` (mean-preserving
  log-normal), ``accuracy = clip(mean + sd*z, 0, 1)``. ``sd`` and ``cv``
  come from the landscape's spread where a depth has repeats; depths without
  repeats use the spread pooled over the repeated depths; a landscape with
  no repeats at all (the thesis tables) uses the noise model's stated
  defaults, ``objectives.noise.DEFAULT_NOISE`` (accuracy sd 0.015, seconds cv
  15 %; the answer assumes the same before it has repeats).
  ``noise_scale`` multiplies both (0 replays the mean landscape; 2/3 gives
  the 0.01 / 10 % this replay used before the defaults were unified).
* **Repeats.** The first reading of a depth is the seed's world; every
  further reading of it (a confirmation repeat, ``tpe+confirm2``, a sweep's
  repeat) draws new noise of its own, reproducible from (seed, depth, reading),
  as a live repeat trains under a seed of its own.
* **Strategies.** The replay runs the very objects of ``tuner.strategies.registry``
  on an in-memory Optuna study through the live oracle's own ask-round
  (``tuner.strategies.rounds.ask_round``): a replay and a live run of one
  strategy on one landscape pick the same depths.
* **Ruled out.** A sampler's suggestion that its price rules out
  (``tuner.strategies.bound``: even accuracy 1 could not beat the best so
  far, beyond noise) costs nothing and is not counted against ``max_asks``;
  ``ruled_out`` counts them.
* **Stops.** On a landscape with phase-2 curves (``Landscape.epochs``,
  ``tuner.analysis.curves``), a trial the live search gives an accuracy
  target reports its curve epoch by epoch to the live search's pruner
  (``tuner.strategies.early_stop``) and is stopped where it would be: the
  curve is the depth's mean curve moved by the reading's noise, and a stop
  after epoch e of E costs the seconds less ``(E - e) / E`` of phase 2's
  share. A stopped trial counts as a training, never as a reading. Without
  curves nothing is stopped (``compare`` says so).
* **Answer.** A strategy's final choice is the answer rule of
  ``objectives.best.answer`` on its readings pooled per depth (with one
  reading per depth: its best observed depth, ties shallower). It is judged
  on the landscape's *mean* value by its objective (``Landscape.objective``:
  efficiency for thesis tables and CSV files, the study's own for
  ``study:NAME``, or ``compare --objective``): relative regret (``regret``;
  a cheapest-within answer below its accuracy bar is worth nothing), and whether
  the choice is *within noise* of the best depth: the answer's test
  (``|v_d - v_best| < 1.96 sqrt(sd_d^2 + sd_best^2)``) with each depth's
  value sd of one reading under the replayed noise. A re-suggested depth is
  told its pooled value. Columns ``value`` and ``choice_value`` hold the objective's value.
"""

from __future__ import annotations

import optuna
import pandas as pd

from objectives.best import best_depth
from objectives.noise import pool
from tuner import stored_keys as keys
from tuner.analysis import curves
from tuner.analysis.landscape import Landscape
from tuner.analysis.worlds import judged_values, make_world, noise_arrays, reading
from tuner.errors import UsageError
from tuner.model.protocol import probed_where_cached_on_images
from tuner.model.space import DepthSpace
from tuner.strategies.decision import Kind
from tuner.strategies.registry import (
    Setup,
    Strategy,
    StrategySpec,
    make_strategy,
    parse_strategy,
)
from tuner.strategies.early_stop import TargetPruner, report_epoch
from tuner.strategies.rounds import Search, ask_round

PROBE_READING = 10**6
"""A probe's reading of a depth draws noise of its own, apart from every training's."""

__all__ = ["PROBE_READING", "parse_strategies", "replay", "strategy_for"]


def parse_strategies(
    text: str, *, scale: str | None = "log", thesis_grids: bool = False
) -> list[StrategySpec]:
    """``"narrowing,tpe,gp:linear"`` -> specs of ``tuner.strategies.registry.STRATEGIES``.

    A sampler without ``:scale`` gets ``scale``; ``thesis_grids`` (``--thesis-grids``)
    turns ``narrowing`` into ``thesis-grids``, the thesis' exact depths.
    """
    specs = []
    for raw in (p.strip() for p in text.split(",")):
        if not raw:
            continue
        spec = parse_strategy(raw, scale=scale)
        if thesis_grids and spec.name == "narrowing":
            spec = StrategySpec("thesis-grids", None, spec.confirm)
        specs.append(spec)
    if not specs:
        raise UsageError("--strategies is empty: name at least one, e.g. narrowing,tpe")
    if len({s.label for s in specs}) != len(specs):
        raise UsageError(f"--strategies {text!r} names a strategy twice")
    return specs


def strategy_for(spec: StrategySpec, *, land: Landscape, seed: int, trials: int, low: int,
              high: int) -> Strategy:
    """The registry's strategy on the replay's setup (what the live search builds, on a landscape)."""
    space = DepthSpace(low, high, spec.scale or "linear")
    setup = Setup(space=space, seed=seed, trials=trials, objective=land.objective_spec,
                  dataset=land.thesis.dataset if land.thesis else None, signatures=tuple(range(high + 1)))
    return make_strategy(spec, setup)


def replay(
    *,
    landscape: Landscape,
    strategy: StrategySpec | str,
    seed: int,
    trials: int = 13,
    low: int | None = None,
    high: int | None = None,
    noise_scale: float = 1.0,
    max_asks: int | None = None,
    probe: bool = False,
    stop_early: bool = False,
) -> pd.DataFrame:
    """One run: a row per training, with the incumbent and its mean value (``choice_value``).
    The strategy (``tuner.strategies.registry``) runs on an in-memory Optuna study
    exactly as the live search runs it (``tuner.search.oracle``): its queue is
    refilled whenever nothing waits, the study is asked, a depth already
    read is answered from its pooled readings for free unless the trial is
    a repeat (``measure_again``: a sweep's repeat or a confirmation), and
    every other trial's objective reads the landscape. ``landscape`` must
    cover every depth of ``low..high`` (default: its ``depth_range``;
    ``Landscape.interpolated``). ``probe``: a depth beyond every reading is
    priced before it trains where a cached search prices it (deeper than two
    thirds of the layers, ``cached_on_images``): a reading of its seconds with
    noise of its own, counted free (live it costs a few seconds). ``stop_early``: see "Stops"
    in the module's docstring (column ``stopped``: the epoch, 0 for a trial run to its end).
    """
    if low is None or high is None:
        low, high = landscape.depth_range()
    if landscape.depths != list(range(low, high + 1)):
        raise ValueError(f"replay needs every depth {low}..{high}: pass landscape.interpolated()")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = parse_strategy(strategy, scale="log") if isinstance(strategy, str) else strategy
    draw = _Draws(landscape, seed=seed, noise_scale=noise_scale)
    epochs = landscape.epochs if stop_early else 0
    search = _search(landscape, spec, seed=seed, trials=trials, low=low, high=high,
                     prober=_replayed_prober(draw) if probe else None, epochs=epochs)
    objective, truth = landscape.objective_spec, judged_values(landscape)
    max_asks = max_asks if max_asks is not None else 5 * trials
    rows: list[dict] = []
    asks = repeats = 0
    while asks < max_asks:
        out = ask_round(search, repeats)
        repeats = out.repeats
        if out.trial is None:
            break  # the budget is spent, every depth is read or ruled out, or the strategy has nothing left
        is_confirmation = bool(out.trial.user_attrs.get(keys.CONFIRM))
        # A ruled-out suggestion is not counted: the nudge after MAX_REPEATS of them in a
        # row queues a free depth, so the run goes on as live.
        asks += not is_confirmation and out.kind is not Kind.RULE_OUT
        if out.kind is not Kind.TRAIN:  # answered for free, or ruled out unseen
            continue
        acc, sec, stopped = draw.train(out.trial, out.depth, epochs=epochs, told=objective.told)
        choice = best_depth(pool(draw.readings), objective)
        rows.append(dict(
            strategy=spec.label, seed=seed, step=draw.trained, asks=asks, depth=out.depth,
            confirmation=is_confirmation, val_accuracy=acc, seconds=sec, stopped=stopped,
            value=float(objective.values(acc, sec)), cum_seconds=draw.seconds, choice=choice,
            choice_value=float(truth.loc[choice]), **_untrained_counts(search.study)))
    return pd.DataFrame(rows)


def _search(land: Landscape, spec: StrategySpec, *, seed: int, trials: int, low: int, high: int,
            prober, epochs: int) -> Search:
    """The live search's rounds (``tuner.strategies.rounds``) on an in-memory study, one worker;
    a depth is its own signature. Told what the live study is told: one value, or accuracy
    and seconds (pareto); with ``epochs``, stopped by the live search's pruner."""
    strat = strategy_for(spec, land=land, seed=seed, trials=trials, low=low, high=high)
    objective = land.objective_spec
    study = optuna.create_study(directions=list(objective.study_directions), sampler=strat.sampler(),
                                pruner=TargetPruner(epochs) if epochs else optuna.pruners.NopPruner())
    return Search(study=study, space=strat.setup.space, strategy=strat, signatures=range(high + 1),
                  trials=trials, objective=objective, base_seed=seed, prober=prober, stop_early=bool(epochs))


class _Draws:
    """The readings of one seed's replay: the seed's world for a depth's first reading, new noise
    of its own for each further one (a repeat), and a probe's apart from both."""

    def __init__(self, land: Landscape, *, seed: int, noise_scale: float):
        self.land, self.seed = land, seed
        self.world = make_world(land, seed=seed, noise_scale=noise_scale)
        sd, cv = noise_arrays(land)
        self.sd, self.cv = sd * noise_scale, cv * noise_scale
        self.readings: list[dict] = []
        self.seconds = 0.0
        self.trained = 0  # readings and stopped trials

    def train(self, trial: optuna.Trial, depth: int, *, epochs: int, told) -> tuple[float, float, int]:
        """Read ``depth`` as a training would and store it on ``trial`` as the live search does:
        its accuracy, seconds and the phase-2 epoch it was stopped after (0: none)."""
        k = sum(r["depth"] == depth for r in self.readings)
        if k == 0:
            acc, sec = float(self.world.loc[depth, "val_accuracy"]), float(self.world.loc[depth, "seconds"])
        else:
            acc, sec = reading(self.land, self.sd, self.cv, seed=self.seed, depth=depth, k=k)
        curve = curves.drawn_curve(self.land.table, depth, acc) if epochs else []
        stopped = _stopped_after(trial, curve, epochs)
        if stopped:
            acc = curve[stopped - 1]
            sec = curves.stopped_seconds(sec, share=curves.phase2_share(self.land.table, depth),
                                         epoch=stopped, epochs=epochs)
            trial.set_user_attr(keys.STOPPED_AFTER, stopped)
            trial.set_user_attr(keys.STOPPED, trial.study.pruner.last.reason())
        for key in (keys.FIT_SECONDS, keys.PROTOCOL_SECONDS, keys.STEADY_SECONDS):
            trial.set_user_attr(key, sec)
        trial.set_user_attr(keys.VAL_ACCURACY, acc)
        if curve:
            trial.set_user_attr(keys.VAL_ACCURACIES, curve[:stopped or epochs])
        self.seconds += sec
        self.trained += 1
        if stopped:
            trial.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.readings.append({"depth": depth, "val_accuracy": acc, "seconds": sec, "seed": k})
            trial.study.tell(trial, told(acc, sec))
        return acc, sec, stopped

    def probe(self, depth: int) -> float:
        return reading(self.land, self.sd, self.cv, seed=self.seed, depth=depth, k=PROBE_READING)[1]


def _stopped_after(trial: optuna.Trial, curve: list[float], epochs: int) -> int:
    """Report ``curve`` epoch by epoch as the live worker does; the epoch the pruner stopped the
    trial after (only a trial given a target asks), else 0."""
    asks = keys.TARGET in trial.user_attrs
    for epoch, accuracy in enumerate(curve, start=1):
        if report_epoch(trial, accuracy, epoch=epoch, epochs=epochs, asks=asks):
            return epoch
    return 0


def _replayed_prober(draw: _Draws):
    """A cached search's probe, replayed: a reading of the depth's seconds with noise of its own."""
    def probe(depth: int) -> dict:
        sec = draw.probe(depth)
        return {keys.PROTOCOL_SECONDS: sec, keys.STEADY_SECONDS: sec, keys.FIT_SECONDS: sec}

    return probed_where_cached_on_images(probe, draw.land.depth_range()[1])


def _untrained_counts(study: optuna.Study) -> dict[str, int]:
    """Depths ruled out unseen so far by the bound (``tuner.strategies.bound``; as ``show`` counts
    them: not a stopped trial, nor the re-suggestion of stopped weights) and depths probed."""
    trials = study.get_trials(deepcopy=False)
    return {"ruled_out": sum(t.state == optuna.trial.TrialState.PRUNED and keys.RULED_OUT_BY in t.user_attrs
                             for t in trials),
            "probes": sum(keys.PROBED in t.user_attrs for t in trials)}
