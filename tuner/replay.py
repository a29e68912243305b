"""Replay strategies on a landscape without training, and compare them.

Rules of the replay (summarised in ``docs/strategies.md``):

* **Domain.** Every strategy works on all integer depths ``low..high``
  (default 0..154) in its own space: samplers through ``tuner.space.DepthSpace``
  (linear or log), the narrowing through its rule. A depth the landscape did
  not measure gets values linearly interpolated between measured depths
  (``Landscape.interpolated``). Because efficiency is monotone between two
  interpolated points, the landscape's best depth is always a measured one,
  so no sampler can "win" on an interpolated value; nor does any strategy
  lose suggestions to the wide gaps (30-60-100) the way snapping to the
  nearest measured depth would make it.
* **Cost.** A step costs the (noisy) seconds of its depth. A strategy that
  suggests a depth it already trained gets the stored result back for free
  (the live search reuses it the same way, user attr ``reused_from``);
  ``budget`` counts trainings, and a run also stops after ``max_asks``
  suggestions (default ``5 x budget``) or when the strategy has nothing left.
* **Noise.** Each seed draws one noisy realisation of the landscape
  ("world"), shared by all strategies under that seed (common random
  numbers): ``seconds = mean * exp(cv*z - cv^2/2)`` (mean-preserving
  log-normal), ``accuracy = clip(mean + sd*z, 0, 1)``. ``sd`` and ``cv``
  come from the landscape's spread where a depth has repeats; depths without
  repeats use the spread pooled over the repeated depths; a landscape with
  no repeats at all (the thesis tables) uses the noise model's stated
  defaults, ``tuner.noise.DEFAULT_NOISE`` (accuracy sd 0.015, seconds cv
  15 %; the answer assumes the same before it has repeats).
  ``noise_scale`` multiplies both (0 replays the mean landscape; 2/3 gives
  the 0.01 / 10 % this replay used before the defaults were unified).
* **Repeats.** The first reading of a depth is the seed's world; every
  further reading of it (a confirmation repeat, ``tpe+confirm2``) draws new
  noise of its own, reproducible from (seed, depth, reading).
* **Answer.** A strategy's final choice is the answer rule of
  ``objectives.best.answer`` on its readings pooled per depth (with one
  reading per depth: its best observed depth, ties shallower). It is judged
  on the landscape's *mean* value by its objective (``Landscape.objective``:
  efficiency for thesis tables and CSV files, the study's own for
  ``study:NAME``): relative regret ``1 - v(choice) / v(best)``, and whether
  the choice is *within noise* of the best depth: the answer's test
  (``|v_d - v_best| < 1.96 sqrt(sd_d^2 + sd_best^2)``) with each depth's
  value sd of one reading under the replayed noise. A re-suggested depth is
  told its pooled value. Columns named ``efficiency`` hold the value.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from objectives.best import best_depth, depth_values
from tuner.confirm import in_confirm_phase, next_confirmation
from tuner.errors import UsageError
from tuner.landscape import Landscape
from tuner.narrowing import NarrowingStrategy, thesis_plan
from tuner.noise import DEFAULT_ACCURACY_SD, DEFAULT_SECONDS_CV, Z95, NoiseModel, pool
from tuner.samplers import SAMPLERS, make_sampler
from tuner.space import SCALES, DepthSpace

__all__ = [
    "DEFAULT_ACCURACY_SD",
    "DEFAULT_SECONDS_CV",
    "StrategySpec",
    "SamplerStrategy",
    "parse_strategies",
    "make_world",
    "replay",
    "compare",
    "summarise",
    "anytime_curves",
    "Comparison",
]

NARROWING = "narrowing"
THESIS_GRIDS = "thesis"
CONFIRM_SUFFIX = "+confirm"


def _split_confirm(raw: str) -> tuple[str, int]:
    """``"tpe:log+confirm2"`` -> ``("tpe:log", 2)``; no suffix -> 0."""
    name, sep, count = raw.partition(CONFIRM_SUFFIX)
    if not sep:
        return raw, 0
    if not count.isdigit():
        raise UsageError(f"strategy {raw!r}: write the confirmations as a whole number, "
                         "e.g. tpe+confirm2")
    return name, int(count)


@dataclass(frozen=True)
class StrategySpec:
    """A strategy by name and variant: a sampler's depth scale, or the narrowing's
    ``thesis`` variant (the thesis' exact depths instead of the rule)."""

    name: str
    variant: str | None = None
    confirm: int = 0
    """Confirmation repeats at the end of the budget (``tuner.confirm``)."""

    @property
    def label(self) -> str:
        base = self.name if self.variant is None else f"{self.name}:{self.variant}"
        return f"{base}{CONFIRM_SUFFIX}{self.confirm}" if self.confirm else base


def parse_strategies(
    text: str, *, scale: str = "log", thesis_grids: bool = False
) -> list[StrategySpec]:
    """``"narrowing,tpe,gp:linear"`` -> specs.

    A sampler without ``:scale`` gets ``scale``; ``narrowing:thesis`` (or
    ``narrowing`` with ``thesis_grids``) replays the thesis' exact grids.
    """
    specs = []
    for raw in (p.strip() for p in text.split(",")):
        if not raw:
            continue
        plain, confirm = _split_confirm(raw)
        name, _, sc = plain.partition(":")
        if name == NARROWING:
            if sc not in ("", THESIS_GRIDS):
                raise UsageError(
                    f"strategy {raw!r}: use 'narrowing' (the rule) or 'narrowing:thesis' "
                    "(the thesis' exact depths)"
                )
            grids = sc == THESIS_GRIDS or thesis_grids
            specs.append(StrategySpec(NARROWING, THESIS_GRIDS if grids else None, confirm))
            continue
        if name not in SAMPLERS:
            raise UsageError(
                f"unknown strategy {raw!r} in --strategies: use narrowing or "
                f"{', '.join(SAMPLERS)} (optionally NAME:linear / NAME:log)"
            )
        sc = sc or scale
        if sc not in SCALES:
            raise UsageError(f"strategy {raw!r}: unknown scale {sc!r}, use linear or log")
        specs.append(StrategySpec(name, sc, confirm))
    if not specs:
        raise UsageError("--strategies is empty: name at least one, e.g. narrowing,tpe")
    if len({s.label for s in specs}) != len(specs):
        raise UsageError(f"--strategies {text!r} names a strategy twice")
    return specs


class SamplerStrategy:
    """An Optuna sampler behind the same ask/tell interface as ``NarrowingStrategy``."""

    def __init__(self, *, sampler: str, space: DepthSpace, seed: int) -> None:
        self.space = space
        self.study = optuna.create_study(
            direction="maximize", sampler=make_sampler(sampler, space=space, seed=seed)
        )
        self._pending: optuna.Trial | None = None

    def ask(self) -> int | None:
        self._pending = self.study.ask(self.space.distributions())
        return self.space.depth_of(self._pending.params)

    def ask_depth(self, depth: int) -> None:
        """Put ``depth`` to the study next (a queued trial, as the live search queues a repeat)."""
        self.study.enqueue_trial(self.space.params_for(depth))
        self._pending = self.study.ask(self.space.distributions())

    def tell(self, depth: int, efficiency: float) -> None:
        trial, self._pending = self._pending, None
        if trial is None:
            raise RuntimeError("tell() without ask()")
        self.study.tell(trial, efficiency)


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


def _make_strategy(spec: StrategySpec, *, land: Landscape, seed: int, low: int, high: int):
    if spec.name == NARROWING:
        fixed = None
        if spec.variant == THESIS_GRIDS:
            if land.thesis is None:
                raise UsageError(
                    f"--thesis-grids / narrowing:thesis need a thesis landscape "
                    f"(thesis:5.1..thesis:5.4), not {land.name!r}"
                )
            fixed = thesis_plan(land.thesis.stage3)
        return NarrowingStrategy(low=low, high=high, fixed_plan=fixed)
    return SamplerStrategy(
        sampler=spec.name, space=DepthSpace(low, high, spec.variant or "log"), seed=seed
    )


def _reading(land: Landscape, sd: np.ndarray, cv: np.ndarray, *, seed: int, depth: int,
             k: int) -> tuple[float, float]:
    """Reading ``k >= 1`` of ``depth`` (a repeat): new noise, reproducible from (seed, depth, k)."""
    i = land.table.index.get_loc(depth)
    z_acc, z_sec = np.random.default_rng([seed, depth, k]).standard_normal(2)
    acc = float(np.clip(land.table["val_accuracy"].iloc[i] + sd[i] * z_acc, 0.0, 1.0))
    sec = float(land.table["fit_seconds"].iloc[i] * np.exp(cv[i] * z_sec - cv[i] ** 2 / 2))
    return acc, sec


def _pooled_value(readings: list[dict], depth: int, objective) -> float:
    mine = [r for r in readings if r["depth"] == depth]
    acc = sum(r["val_accuracy"] for r in mine) / len(mine)
    sec = sum(r["fit_seconds"] for r in mine) / len(mine)
    return float(objective.values(acc, sec))


def replay(
    *,
    landscape: Landscape,
    strategy: StrategySpec,
    seed: int,
    budget: int = 13,
    low: int = 0,
    high: int = 154,
    noise_scale: float = 1.0,
    max_asks: int | None = None,
) -> pd.DataFrame:
    """One run: a row per training, with the incumbent and its mean efficiency.

    ``landscape`` must cover every depth of ``low..high`` (``Landscape.interpolated``).
    With ``strategy.confirm`` the last trainings of the budget re-measure the
    leading candidates (``tuner.confirm``, as the live search does); the
    incumbent is the answer rule on the readings pooled per depth.
    """
    if landscape.depths != list(range(low, high + 1)):
        raise ValueError(f"replay needs every depth {low}..{high}: pass landscape.interpolated()")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = landscape.objective_spec
    if objective.eligible is not None:
        raise UsageError(f"compare does not replay objective {landscape.objective!r} yet: "
                         "replay a landscape of an efficiency or accuracy study")
    truth = landscape.values
    world = make_world(landscape, seed=seed, noise_scale=noise_scale)
    sd, cv = _noise_arrays(landscape)
    sd, cv = sd * noise_scale, cv * noise_scale
    strat = _make_strategy(strategy, land=landscape, seed=seed, low=low, high=high)
    max_asks = max_asks if max_asks is not None else 5 * budget
    readings: list[dict] = []
    count: dict[int, int] = {}
    rows = []
    cum = 0.0
    asks = confirmed = 0
    while len(readings) < budget and asks < max_asks:
        depth = None
        if strategy.confirm and in_confirm_phase(total=budget, trained=len(readings),
                                                 confirm=strategy.confirm, confirmed=confirmed):
            depth = next_confirmation(readings, objective)
        is_confirmation = depth is not None
        if is_confirmation:
            confirmed += 1
            if hasattr(strat, "ask_depth"):
                strat.ask_depth(depth)
        else:
            depth = strat.ask()
            if depth is None:
                break
            asks += 1
            if depth in count:  # answered from the readings so far, pooled, for free
                strat.tell(depth, _pooled_value(readings, depth, objective))
                continue
        k = count.get(depth, 0)
        if k == 0:
            obs = world.loc[depth]
            acc, sec = float(obs["val_accuracy"]), float(obs["fit_seconds"])
        else:
            acc, sec = _reading(landscape, sd, cv, seed=seed, depth=depth, k=k)
        readings.append({"depth": depth, "val_accuracy": acc, "fit_seconds": sec, "seed": k})
        count[depth] = k + 1
        eff = float(objective.values(acc, sec))
        # a sampler is told each reading (as the live study is); the narrowing keeps one value
        strat.tell(depth, eff if hasattr(strat, "ask_depth") or k == 0
                   else _pooled_value(readings, depth, objective))
        cum += sec
        choice = best_depth(pool(readings), objective)
        rows.append(
            {
                "strategy": strategy.label,
                "seed": seed,
                "step": len(readings),
                "asks": asks,
                "depth": depth,
                "confirmation": is_confirmation,
                "val_accuracy": acc,
                "fit_seconds": sec,
                "efficiency": eff,
                "cum_seconds": cum,
                "choice": choice,
                "choice_efficiency": float(truth.loc[choice]),
            }
        )
    return pd.DataFrame(rows)


def within_noise_of_best(landscape: Landscape, *, noise_scale: float = 1.0) -> set[int]:
    """The best depth and every depth whose mean value is within noise of it.

    The answer's test (``objectives.best``) with one reading per depth under
    the replayed noise (pooled over depths): ``|v_d - v_best| < 1.96 *
    sqrt(sd_d^2 + sd_best^2)``. Without noise only the best depth (and exact ties).
    """
    sd, cv = _noise_arrays(landscape)
    noise = NoiseModel(accuracy_sd=float(np.sqrt(np.mean(sd**2))) * noise_scale,
                       seconds_cv=float(np.sqrt(np.mean(cv**2))) * noise_scale)
    table = landscape.table.assign(repeats=1, seeds=1)
    vals = depth_values(table, landscape.objective_spec, noise)
    best = landscape.best_depth
    b = vals.loc[best]
    limit = Z95 * np.sqrt(vals["sd"] ** 2 + b["sd"] ** 2)
    close = ((vals["value"] - b["value"]).abs() < limit) | (vals["value"] == b["value"])
    return {int(d) for d in vals.index[close.to_numpy(dtype=bool)]} | {best}


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


def compare(
    *,
    landscape: Landscape,
    strategies: Sequence[StrategySpec],
    seeds: int = 50,
    budget: int = 13,
    low: int = 0,
    high: int = 154,
    noise_scale: float = 1.0,
    workers: int = 1,
) -> Comparison:
    """Replay each strategy under seeds ``0..seeds-1`` on the interpolated landscape."""
    if seeds < 1 or budget < 1:
        raise UsageError(f"--seeds and --budget must be >= 1; got {seeds} and {budget}")
    if noise_scale < 0:
        raise UsageError(f"--noise-scale must be >= 0; got {noise_scale}")
    if landscape.objective_spec.eligible is not None:
        raise UsageError(f"compare does not replay objective {landscape.objective!r} yet: "
                         "replay a landscape of an efficiency or accuracy study")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
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
        )
        for spec in strategies
        for seed in range(seeds)
    ]
    # Build each strategy once up front so a usage error surfaces before any work.
    for spec in strategies:
        _make_strategy(spec, land=land, seed=0, low=low, high=high)
    workers = max(1, min(workers, os.cpu_count() or 1))
    if workers == 1:
        frames = [_replay_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread_per_worker) as pool:
            frames = list(pool.map(_replay_job, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    runs = pd.concat(frames, ignore_index=True)
    order = [s.label for s in strategies]
    return Comparison(
        landscape=land,
        runs=runs,
        table=summarise(runs, landscape=land, order=order, noise_scale=noise_scale),
        curves=anytime_curves(runs, order=order),
    )


def summarise(
    runs: pd.DataFrame, *, landscape: Landscape, order: Sequence[str] | None = None,
    noise_scale: float = 1.0,
) -> pd.DataFrame:
    """Per strategy: cost until the best depth is first trained, regret of the final choice.

    ``trials_to_best`` / ``seconds_to_best`` are medians over seeds, ``inf``
    when the best depth was trained in fewer than half of them; ``p_found``
    is that fraction. Regret is relative (0 = the best depth's efficiency).
    ``p_within_noise``: share of seeds whose final answer is within noise of
    the best depth (``within_noise_of_best``); ``confirmations``: median
    confirmation repeats spent.
    """
    best, best_eff = landscape.best_depth, landscape.best_value
    close = within_noise_of_best(landscape, noise_scale=noise_scale)
    out = []
    for label in order or list(dict.fromkeys(runs["strategy"])):
        per_seed = runs[runs["strategy"] == label].groupby("seed", sort=True)
        trials, secs, regrets, final_best, trainings, totals = [], [], [], [], [], []
        near, confirms = [], []
        for _, run in per_seed:
            hit = run[run["depth"] == best]
            trials.append(float(hit["step"].iloc[0]) if len(hit) else math.inf)
            secs.append(float(hit["cum_seconds"].iloc[0]) if len(hit) else math.inf)
            last = run.iloc[-1]
            regrets.append(1.0 - float(last["choice_efficiency"]) / best_eff)
            final_best.append(int(last["choice"]) == best)
            near.append(int(last["choice"]) in close)
            confirms.append(int(run["confirmation"].sum()) if "confirmation" in run else 0)
            trainings.append(len(run))
            totals.append(float(last["cum_seconds"]))
        r = np.asarray(regrets)
        out.append(
            {
                "strategy": label,
                "seeds": len(r),
                "trials_to_best": float(np.median(trials)),
                "seconds_to_best": float(np.median(secs)),
                "p_found": float(np.mean(np.isfinite(trials))),
                "regret_median": float(np.median(r)),
                "regret_p05": float(np.quantile(r, 0.05)),
                "regret_p95": float(np.quantile(r, 0.95)),
                "p_final_best": float(np.mean(final_best)),
                "p_within_noise": float(np.mean(near)),
                "confirmations": float(np.median(confirms)),
                "trainings": float(np.median(trainings)),
                "seconds": float(np.median(totals)),
            }
        )
    return pd.DataFrame(out)


def anytime_curves(
    runs: pd.DataFrame, *, order: Sequence[str] | None = None, points: int = 200
) -> pd.DataFrame:
    """Mean efficiency of each strategy's current choice against cumulative seconds.

    On a common time grid per strategy: median and 5-95 % band over seeds.
    A run holds its last choice after it stops; before its first training
    finishes it has no choice (NaN, ignored).
    """
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
            filled = np.where(np.isnan(m), -np.inf, m)  # "no choice yet" ranks lowest
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
