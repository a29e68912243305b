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
  no repeats at all (the thesis tables) uses ``DEFAULT_ACCURACY_SD = 0.01``
  and ``DEFAULT_SECONDS_CV = 0.10``: the spread of the thesis' five
  consecutive stage-3 depths, where the true values barely differ, is
  0.002-0.013 in accuracy and 5-13 % in time. ``noise_scale`` multiplies
  both (0 replays the mean landscape).
* **Answer.** A strategy's final choice is its best *observed* depth (ties:
  shallower). It is judged on the landscape's *mean* value by its objective
  (``Landscape.objective``: efficiency for thesis tables and CSV files, the
  study's own for ``study:NAME``): relative regret ``1 - v(choice) / v(best)``.
  Columns named ``efficiency`` hold that value.
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

from tuner.errors import UsageError
from tuner.landscape import Landscape
from tuner.narrowing import NarrowingStrategy, thesis_plan
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

DEFAULT_ACCURACY_SD = 0.01
DEFAULT_SECONDS_CV = 0.10
NARROWING = "narrowing"
THESIS_GRIDS = "thesis"


@dataclass(frozen=True)
class StrategySpec:
    """A strategy by name and variant: a sampler's depth scale, or the narrowing's
    ``thesis`` variant (the thesis' exact depths instead of the rule)."""

    name: str
    variant: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.variant is None else f"{self.name}:{self.variant}"


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
        name, _, sc = raw.partition(":")
        if name == NARROWING:
            if sc not in ("", THESIS_GRIDS):
                raise UsageError(
                    f"strategy {raw!r}: use 'narrowing' (the rule) or 'narrowing:thesis' "
                    "(the thesis' exact depths)"
                )
            grids = sc == THESIS_GRIDS or thesis_grids
            specs.append(StrategySpec(NARROWING, THESIS_GRIDS if grids else None))
            continue
        if name not in SAMPLERS:
            raise UsageError(
                f"unknown strategy {raw!r} in --strategies: use narrowing or "
                f"{', '.join(SAMPLERS)} (optionally NAME:linear / NAME:log)"
            )
        sc = sc or scale
        if sc not in SCALES:
            raise UsageError(f"strategy {raw!r}: unknown scale {sc!r}, use linear or log")
        specs.append(StrategySpec(name, sc))
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
    """
    if landscape.depths != list(range(low, high + 1)):
        raise ValueError(f"replay needs every depth {low}..{high}: pass landscape.interpolated()")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if landscape.objective_spec.eligible is not None:
        raise UsageError(f"compare does not replay objective {landscape.objective!r} yet: "
                         "replay a landscape of an efficiency or accuracy study")
    truth = landscape.values
    world = make_world(landscape, seed=seed, noise_scale=noise_scale)
    strat = _make_strategy(strategy, land=landscape, seed=seed, low=low, high=high)
    max_asks = max_asks if max_asks is not None else 5 * budget
    measured: dict[int, float] = {}
    rows = []
    cum = 0.0
    choice, choice_obs = None, -math.inf
    asks = 0
    while len(measured) < budget and asks < max_asks:
        depth = strat.ask()
        if depth is None:
            break
        asks += 1
        if depth in measured:
            strat.tell(depth, measured[depth])
            continue
        obs = world.loc[depth]
        eff = float(obs["efficiency"])
        measured[depth] = eff
        strat.tell(depth, eff)
        cum += float(obs["fit_seconds"])
        if eff > choice_obs or (eff == choice_obs and depth < choice):
            choice, choice_obs = depth, eff
        rows.append(
            {
                "strategy": strategy.label,
                "seed": seed,
                "step": len(measured),
                "asks": asks,
                "depth": depth,
                "val_accuracy": float(obs["val_accuracy"]),
                "fit_seconds": float(obs["fit_seconds"]),
                "efficiency": eff,
                "cum_seconds": cum,
                "choice": choice,
                "choice_efficiency": float(truth.loc[choice]),
            }
        )
    return pd.DataFrame(rows)


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
        table=summarise(runs, landscape=land, order=order),
        curves=anytime_curves(runs, order=order),
    )


def summarise(
    runs: pd.DataFrame, *, landscape: Landscape, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per strategy: cost until the best depth is first trained, regret of the final choice.

    ``trials_to_best`` / ``seconds_to_best`` are medians over seeds, ``inf``
    when the best depth was trained in fewer than half of them; ``p_found``
    is that fraction. Regret is relative (0 = the best depth's efficiency).
    """
    best, best_eff = landscape.best_depth, landscape.best_value
    out = []
    for label in order or list(dict.fromkeys(runs["strategy"])):
        per_seed = runs[runs["strategy"] == label].groupby("seed", sort=True)
        trials, secs, regrets, final_best, trainings, totals = [], [], [], [], [], []
        for _, run in per_seed:
            hit = run[run["depth"] == best]
            trials.append(float(hit["step"].iloc[0]) if len(hit) else math.inf)
            secs.append(float(hit["cum_seconds"].iloc[0]) if len(hit) else math.inf)
            last = run.iloc[-1]
            regrets.append(1.0 - float(last["choice_efficiency"]) / best_eff)
            final_best.append(int(last["choice"]) == best)
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
