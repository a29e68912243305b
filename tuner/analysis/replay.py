"""Replay strategies on a landscape without training, and compare them.

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
  ``budget`` counts trainings, and a run also stops after ``max_asks``
  suggestions (default ``5 x budget``) or when the strategy has nothing left.
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
  told its pooled value. Columns named ``efficiency`` hold the value.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from objectives.best import best_depth, depth_values, within_noise
from objectives.noise import (
    DEFAULT_ACCURACY_SD,
    DEFAULT_SECONDS_CV,
    NoiseModel,
    pool,
)
from tuner.analysis.landscape import Landscape
from tuner.errors import UsageError
from tuner.model.protocol import cached_on_images
from tuner.model.space import DepthSpace
from tuner.strategies.confirm import CONFIRM_ATTR
from tuner.strategies.decision import Kind
from tuner.strategies.registry import (
    Setup,
    Strategy,
    StrategySpec,
    make_strategy,
    parse_strategy,
)
from tuner.strategies.rounds import PROBED_ATTR, Search, ask_round

PROBE_READING = 10**6
"""A probe's reading of a depth draws noise of its own, apart from every training's."""

__all__ = [
    "DEFAULT_ACCURACY_SD",
    "DEFAULT_SECONDS_CV",
    "Comparison",
    "StrategySpec",
    "anytime_curves",
    "compare",
    "make_world",
    "parse_strategies",
    "replay",
    "summarise",
]

def parse_strategies(
    text: str, *, scale: str = "log", thesis_grids: bool = False
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


def _strategy(spec: StrategySpec, *, land: Landscape, seed: int, budget: int, low: int,
              high: int) -> Strategy:
    """The registry's strategy on the replay's setup (what the live search builds, on a landscape)."""
    space = DepthSpace(low, high, spec.scale or "linear")
    setup = Setup(space=space, seed=seed, budget=budget, objective=land.objective_spec,
                  dataset=land.thesis.dataset if land.thesis else None)
    return make_strategy(spec, setup)


def _noise_arrays(land: Landscape) -> tuple[np.ndarray, np.ndarray]:
    """Per-depth accuracy sd and seconds cv (own spread, else pooled, else the defaults)."""
    t = land.table
    sd = np.array(t["val_accuracy_std"], dtype=float)
    cv = np.array(t["fit_seconds_std"] / t["fit_seconds"], dtype=float)
    for arr, default in ((sd, DEFAULT_ACCURACY_SD), (cv, DEFAULT_SECONDS_CV)):
        known = arr[~np.isnan(arr)]
        pooled = math.sqrt(float(np.mean(known**2))) if known.size else default
        arr[np.isnan(arr)] = pooled
    return sd, cv


def make_world(land: Landscape, *, seed: int, noise_scale: float = 1.0) -> pd.DataFrame:
    """One noisy realisation of ``land`` (indexed by depth), reproducible from ``seed``.

    Column ``efficiency`` holds the landscape objective's value (efficiency by default).
    """
    sd, cv = _noise_arrays(land)
    rng = np.random.default_rng(seed)
    z_acc = rng.standard_normal(len(land.table))
    z_sec = rng.standard_normal(len(land.table))
    sd, cv = sd * noise_scale, cv * noise_scale
    acc = np.clip(land.table["val_accuracy"].to_numpy() + sd * z_acc, 0.0, 1.0)
    sec = land.table["fit_seconds"].to_numpy() * np.exp(cv * z_sec - cv**2 / 2)
    value = land.objective_spec.values(acc, sec)
    return pd.DataFrame(
        {"val_accuracy": acc, "fit_seconds": sec, "efficiency": value}, index=land.table.index
    )


def _reading(land: Landscape, sd: np.ndarray, cv: np.ndarray, *, seed: int, depth: int,
             k: int) -> tuple[float, float]:
    """Reading ``k >= 1`` of ``depth`` (a repeat): new noise, reproducible from (seed, depth, k)."""
    i = land.table.index.get_loc(depth)
    z_acc, z_sec = np.random.default_rng([seed, depth, k]).standard_normal(2)
    acc = float(np.clip(land.table["val_accuracy"].iloc[i] + sd[i] * z_acc, 0.0, 1.0))
    sec = float(land.table["fit_seconds"].iloc[i] * np.exp(cv[i] * z_sec - cv[i] ** 2 / 2))
    return acc, sec


def judged_values(landscape: Landscape) -> pd.Series:
    """Each depth's true value by the landscape's objective, as a final answer is judged.

    A depth below the objective's accuracy bar (cheapest-within: more than EPS
    under the best mean accuracy) is worth nothing: the worst value there is.
    """
    objective = landscape.objective_spec
    values = landscape.values.astype(float)
    if objective.eligible is not None:
        # The bar comes from the measured range, as the best depth does (``true_best``):
        # an extrapolated depth neither sets it nor clears it.
        inside = _measured_range(landscape)
        accuracy = landscape.table["val_accuracy"].where(inside).to_numpy(dtype=float)
        worst = -math.inf if objective.direction == "maximize" else math.inf
        values = values.where(np.asarray(objective.eligible(accuracy), dtype=bool), worst)
    return values


def _measured_range(landscape: Landscape) -> pd.Series:
    """True for the depths between the shallowest and the deepest measured one."""
    measured = landscape.measured_depths
    depths = landscape.table.index.to_series()
    if not measured:
        return depths == depths  # all
    return (depths >= min(measured)) & (depths <= max(measured))


def true_best(landscape: Landscape) -> tuple[int, float]:
    """The best depth of the (interpolated) landscape between its shallowest and deepest
    measured depth (never an extrapolated one), and its value.

    For efficiency and accuracy it is a measured depth (the formula is monotone
    between two interpolated points); under an accuracy bar the cheapest depth
    that clears it can lie between two measured ones.
    """
    inside = landscape.table[_measured_range(landscape).to_numpy()]
    depth = best_depth(inside, landscape.objective_spec)
    return depth, float(judged_values(landscape).loc[depth])


def regret(value: float, best: float, direction: str) -> float:
    """Relative regret of an answer worth ``value`` against the best depth's ``best``:
    the share of the best value lost (maximised objectives) or the extra share paid
    (minimised ones); 0 at the best, inf for an answer below the accuracy bar."""
    return 1.0 - value / best if direction == "maximize" else value / best - 1.0


def replay(
    *,
    landscape: Landscape,
    strategy: StrategySpec | str,
    seed: int,
    budget: int = 13,
    low: int | None = None,
    high: int | None = None,
    noise_scale: float = 1.0,
    max_asks: int | None = None,
    probe: bool = False,
) -> pd.DataFrame:
    """One run: a row per training, with the incumbent and its mean efficiency.

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
    noise of its own, counted free (live it costs a few seconds).
    """
    if low is None or high is None:
        low, high = landscape.depth_range()
    if landscape.depths != list(range(low, high + 1)):
        raise ValueError(f"replay needs every depth {low}..{high}: pass landscape.interpolated()")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = landscape.objective_spec
    spec = parse_strategy(strategy, scale="log") if isinstance(strategy, str) else strategy
    truth = judged_values(landscape)
    world = make_world(landscape, seed=seed, noise_scale=noise_scale)
    sd, cv = _noise_arrays(landscape)
    sd, cv = sd * noise_scale, cv * noise_scale
    strat = _strategy(spec, land=landscape, seed=seed, budget=budget, low=low, high=high)
    space = strat.setup.space
    # Told what the live study is told: one value, or accuracy and seconds (pareto).
    study = optuna.create_study(directions=list(objective.study_directions), sampler=strat.sampler())
    # The live search's rounds (tuner.strategies.rounds), on one worker; a depth is its own signature.
    search = Search(study=study, space=space, strategy=strat, signatures=range(high + 1),
                    total=budget, objective=objective, base_seed=seed,
                    pricer=_probe_pricer(landscape, sd, cv, seed=seed) if probe else None)
    max_asks = max_asks if max_asks is not None else 5 * budget
    readings: list[dict] = []
    rows = []
    cum = 0.0
    asks = repeats = 0
    while asks < max_asks:
        out = ask_round(search, repeats)
        repeats = out.repeats
        if out.trial is None:
            break  # the budget is spent, every depth is read or ruled out, or the strategy has nothing left
        is_confirmation = bool(out.trial.user_attrs.get(CONFIRM_ATTR))
        # A ruled-out suggestion is not counted: the nudge after MAX_REPEATS of them in a
        # row queues a free depth, so the run goes on as live.
        asks += not is_confirmation and out.kind is not Kind.RULE_OUT
        if out.kind is not Kind.TRAIN:  # answered for free, or ruled out unseen
            continue
        trial, depth = out.trial, out.depth
        k = sum(r["depth"] == depth for r in readings)
        if k == 0:  # the seed's world; a repeat draws noise of its own
            acc, sec = float(world.loc[depth, "val_accuracy"]), float(world.loc[depth, "fit_seconds"])
        else:
            acc, sec = _reading(landscape, sd, cv, seed=seed, depth=depth, k=k)
        for key in ("fit_seconds", "protocol_seconds", "steady_seconds"):
            trial.set_user_attr(key, sec)
        trial.set_user_attr("val_accuracy", acc)
        readings.append({"depth": depth, "val_accuracy": acc, "fit_seconds": sec, "seed": k})
        study.tell(trial, objective.told(acc, sec))
        cum += sec
        choice = best_depth(pool(readings), objective)
        rows.append(dict(
            strategy=spec.label, seed=seed, step=len(readings), asks=asks, depth=depth,
            confirmation=is_confirmation, val_accuracy=acc, fit_seconds=sec,
            efficiency=float(objective.values(acc, sec)), cum_seconds=cum, choice=choice,
            choice_efficiency=float(truth.loc[choice]), **_untrained_counts(study)))
    return pd.DataFrame(rows)


def _probe_pricer(landscape: Landscape, sd: np.ndarray, cv: np.ndarray, *, seed: int):
    """A cached search's probe, replayed: where it probes (``cached_on_images``), a reading of
    the depth's seconds with noise of its own."""
    layers = landscape.depth_range()[1]

    def price(depth: int) -> dict | None:
        if not cached_on_images(depth, layers):
            return None
        sec = _reading(landscape, sd, cv, seed=seed, depth=depth, k=PROBE_READING)[1]
        return {"protocol_seconds": sec, "steady_seconds": sec, "fit_seconds": sec}

    return price


def _untrained_counts(study: optuna.Study) -> dict[str, int]:
    """Depths ruled out unseen so far (PRUNED trials: ``tuner.strategies.bound``) and depths probed."""
    trials = study.get_trials(deepcopy=False)
    return {"ruled_out": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
            "probes": sum(PROBED_ATTR in t.user_attrs for t in trials)}


def within_noise_of_best(landscape: Landscape, *, noise_scale: float = 1.0) -> set[int]:
    """The best depth and every depth whose mean value is within noise of it.

    The answer's test (``objectives.best``) with one reading per depth under
    the replayed noise (pooled over depths): ``|v_d - v_best| < 1.96 *
    sqrt(sd_d^2 + sd_best^2)``. Without noise only the best depth (and exact ties).
    A depth below the objective's accuracy bar (on the mean landscape) never is.
    """
    sd, cv = _noise_arrays(landscape)
    noise = NoiseModel(accuracy_sd=float(np.sqrt(np.mean(sd**2))) * noise_scale,
                       seconds_cv=float(np.sqrt(np.mean(cv**2))) * noise_scale)
    table = landscape.table.assign(repeats=1, seeds=1)
    vals = depth_values(table, landscape.objective_spec, noise)
    best = true_best(landscape)[0]
    clears_bar = np.isfinite(judged_values(landscape).to_numpy())
    tie = (vals["value"] == vals.loc[best, "value"]).to_numpy(dtype=bool)
    close = clears_bar & (within_noise(vals, best).to_numpy(dtype=bool) | tie)
    return {int(d) for d in vals.index[close]} | {best}


def _replay_job(kwargs: dict) -> pd.DataFrame:
    return replay(**kwargs)


def _one_thread_per_worker() -> None:
    """Worker processes share the cores: torch (GPSampler) must not spawn a thread per core."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@dataclass(frozen=True)
class Comparison:
    """Everything ``compare`` measured: per-training rows, the summary, the anytime curves."""

    landscape: Landscape
    runs: pd.DataFrame
    table: pd.DataFrame
    curves: pd.DataFrame
    best_depth: int  # what the answers are judged against (``true_best``)
    best_value: float


def compare(
    *,
    landscape: Landscape,
    strategies: Sequence[StrategySpec],
    seeds: int = 50,
    budget: int = 13,
    low: int = 0,
    high: int | None = None,
    noise_scale: float = 1.0,
    workers: int = 1,
    probe: bool = False,
) -> Comparison:
    """Replay each strategy under seeds ``0..seeds-1`` on the interpolated landscape.

    ``high`` None: the landscape's own range (``Landscape.depth_range``).
    """
    if seeds < 1 or budget < 1:
        raise UsageError(f"--seeds and --budget must be >= 1; got {seeds} and {budget}")
    if noise_scale < 0:
        raise UsageError(f"--noise-scale must be >= 0; got {noise_scale}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    high = landscape.depth_range()[1] if high is None else high
    DepthSpace(low, high)  # the range checked: one line if it is empty
    land = landscape.interpolated(low=low, high=high)
    jobs = [
        dict(
            landscape=land,
            strategy=spec,
            seed=seed,
            budget=budget,
            low=low,
            high=high,
            noise_scale=noise_scale,
            probe=probe,
        )
        for spec in strategies
        for seed in range(seeds)
    ]
    # Build each strategy once up front so a usage error surfaces before any work.
    for spec in strategies:
        _strategy(spec, land=land, seed=0, budget=budget, low=low, high=high)
    workers = max(1, min(workers, os.cpu_count() or 1))
    # Forked workers only: a process that has loaded TensorFlow (a search earlier in the
    # same notebook or script) leaves threads and locks a forked child dies on, and the
    # other start methods run the caller's script again in every worker unless it is
    # guarded by `if __name__ == "__main__"`. There the replays run in this process.
    if workers == 1 or "tensorflow" in sys.modules:
        frames = [_replay_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread_per_worker,
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            frames = list(pool.map(_replay_job, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    runs = pd.concat(frames, ignore_index=True)
    order = [s.label for s in strategies]
    return Comparison(
        landscape=land,
        runs=runs,
        table=summarise(runs, landscape=land, order=order, noise_scale=noise_scale),
        curves=anytime_curves(runs, order=order, direction=land.objective_spec.direction),
        **dict(zip(("best_depth", "best_value"), true_best(land))),
    )


def _quantile(values: np.ndarray, q: float) -> float:
    """Interpolated quantile; with infinite regrets (answers below the bar) the nearest
    order statistic instead, since interpolating between two infinities has no value."""
    method = "linear" if np.isfinite(values).all() else "nearest"
    return float(np.quantile(values, q, method=method))


def summarise(
    runs: pd.DataFrame, *, landscape: Landscape, order: Sequence[str] | None = None,
    noise_scale: float = 1.0,
) -> pd.DataFrame:
    """Per strategy: cost until the best depth is first trained, regret of the final choice.

    ``trials_to_best`` / ``seconds_to_best`` are medians over seeds, ``inf``
    when the best depth was trained in fewer than half of them; ``p_found``
    is that fraction. Regret is relative to the best depth's value (``regret``:
    0 at the best; inf for an answer below the objective's accuracy bar, and
    ``p_meets_bar`` is the share of answers at or above it).
    ``p_within_noise``: share of seeds whose final answer is within noise of
    the best depth (``within_noise_of_best``); ``confirmations``: median
    confirmation repeats spent; ``ruled_out``: median suggestions ruled out
    unseen (``tuner.strategies.bound``); ``probes``: median depths priced by a probe.
    """
    best, best_eff = true_best(landscape)
    direction = landscape.objective_spec.direction
    close = within_noise_of_best(landscape, noise_scale=noise_scale)
    out = []
    for label in order or list(dict.fromkeys(runs["strategy"])):
        per_seed = runs[runs["strategy"] == label].groupby("seed", sort=True)
        trials, secs, regrets, final_best, trainings, totals = [], [], [], [], [], []
        near, confirms, meets, ruled, probes = [], [], [], [], []
        for _, run in per_seed:
            hit = run[run["depth"] == best]
            trials.append(float(hit["step"].iloc[0]) if len(hit) else math.inf)
            secs.append(float(hit["cum_seconds"].iloc[0]) if len(hit) else math.inf)
            last = run.iloc[-1]
            regrets.append(regret(float(last["choice_efficiency"]), best_eff, direction))
            final_best.append(int(last["choice"]) == best)
            near.append(int(last["choice"]) in close)
            meets.append(math.isfinite(float(last["choice_efficiency"])))
            confirms.append(int(run["confirmation"].sum()) if "confirmation" in run else 0)
            trainings.append(len(run))
            ruled.append(int(last["ruled_out"]) if "ruled_out" in run else 0)
            probes.append(int(last["probes"]) if "probes" in run else 0)
            totals.append(float(last["cum_seconds"]))
        r = np.asarray(regrets)
        out.append(
            {
                "strategy": label,
                "seeds": len(r),
                "trials_to_best": float(np.median(trials)),
                "seconds_to_best": float(np.median(secs)),
                "p_found": float(np.mean(np.isfinite(trials))),
                "regret_median": _quantile(r, 0.5),
                "regret_p05": _quantile(r, 0.05),
                "regret_p95": _quantile(r, 0.95),
                "p_final_best": float(np.mean(final_best)),
                "p_within_noise": float(np.mean(near)),
                "p_meets_bar": float(np.mean(meets)),
                "confirmations": float(np.median(confirms)),
                "trainings": float(np.median(trainings)),
                "ruled_out": float(np.median(ruled)),
                "probes": float(np.median(probes)),
                "seconds": float(np.median(totals)),
            }
        )
    return pd.DataFrame(out)


def anytime_curves(
    runs: pd.DataFrame, *, order: Sequence[str] | None = None, points: int = 200,
    direction: str = "maximize",
) -> pd.DataFrame:
    """Mean value of each strategy's current choice against cumulative seconds.

    On a common time grid per strategy: median and 5-95 % band over seeds.
    A run holds its last choice after it stops; before its first training
    finishes it has no choice, which ranks as the worst value (in
    ``direction``) and is left out of the curve.
    """
    worst = -np.inf if direction == "maximize" else np.inf
    t_max = float(runs["cum_seconds"].max())
    grid = np.linspace(0.0, t_max, points)
    frames = []
    for label in order or list(dict.fromkeys(runs["strategy"])):
        sub = runs[runs["strategy"] == label]
        curves = []
        for _, run in sub.groupby("seed", sort=True):
            t = run["cum_seconds"].to_numpy()
            v = run["choice_efficiency"].to_numpy()
            idx = np.searchsorted(t, grid, side="right") - 1
            curves.append(np.where(idx >= 0, v[np.clip(idx, 0, None)], np.nan))
        m = np.vstack(curves)
        with np.errstate(all="ignore"):
            have = np.mean(~np.isnan(m), axis=0)
            filled = np.where(np.isnan(m), worst, m)  # "no choice yet" ranks worst
            med = np.quantile(filled, 0.5, axis=0)
            lo = np.quantile(filled, 0.05, axis=0)
            hi = np.quantile(filled, 0.95, axis=0)
        frames.append(
            pd.DataFrame(
                {
                    "strategy": label,
                    "seconds": grid,
                    "median": np.where(np.isfinite(med), med, np.nan),
                    "p05": np.where(np.isfinite(lo), lo, np.nan),
                    "p95": np.where(np.isfinite(hi), hi, np.nan),
                    "share_started": have,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
