"""Replay many strategies under many seeds on one landscape, and summarise how they did.

Why apart from the replay: one replay is the live search's loop on a
landscape (``tuner.analysis.replay``); comparing strategies is a process
pool over (strategy, seed) jobs and statistics over their runs (the cost
until the best depth is first trained, the regret of the final answer,
the anytime curves), judged by ``tuner.analysis.worlds``.
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

from tuner.analysis.landscape import Landscape
from tuner.analysis.replay import replay, strategy_for
from tuner.analysis.worlds import regret, true_best, within_noise_of_best
from tuner.errors import UsageError
from tuner.model.space import DepthSpace
from tuner.strategies.registry import StrategySpec

__all__ = ["Comparison", "anytime_curves", "compare", "summarise"]


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
    trials: int = 13,
    low: int = 0,
    high: int | None = None,
    noise_scale: float = 1.0,
    workers: int = 1,
    probe: bool = False,
    stop_early: bool = True,
) -> Comparison:
    """Replay each strategy under seeds ``0..seeds-1`` on the interpolated landscape.

    ``high`` None: the landscape's own range (``Landscape.depth_range``).
    """
    if seeds < 1 or trials < 1:
        raise UsageError(f"--seeds and --trials must be >= 1; got {seeds} and {trials}")
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
            trials=trials,
            low=low,
            high=high,
            noise_scale=noise_scale,
            probe=probe,
            stop_early=stop_early,
        )
        for spec in strategies
        for seed in range(seeds)
    ]
    # Build each strategy once up front so a usage error surfaces before any work.
    for spec in strategies:
        strategy_for(spec, land=land, seed=0, trials=trials, low=low, high=high)
    runs = pd.concat(_run(jobs, workers), ignore_index=True)
    order = [s.label for s in strategies]
    return Comparison(
        landscape=land,
        runs=runs,
        table=summarise(runs, landscape=land, order=order, noise_scale=noise_scale),
        curves=anytime_curves(runs, order=order, direction=land.objective_spec.direction),
        **dict(zip(("best_depth", "best_value"), true_best(land))),
    )


def _run(jobs: list[dict], workers: int) -> list[pd.DataFrame]:
    """Every replay, in worker processes where that is safe.

    Forked workers only: a process that has loaded TensorFlow (a search earlier in the
    same notebook or script) leaves threads and locks a forked child dies on, and the
    other start methods run the caller's script again in every worker unless it is
    guarded by `if __name__ == "__main__"`. There the replays run in this process."""
    workers = max(1, min(workers, os.cpu_count() or 1))
    if workers == 1 or "tensorflow" in sys.modules:
        return [_replay_job(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread_per_worker,
                             mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_replay_job, jobs, chunksize=max(1, len(jobs) // (4 * workers))))


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
    unseen (``tuner.strategies.bound``); ``probes``: median depths probed before training;
    ``stopped``: median trials stopped after an epoch (``tuner.strategies.early_stop``), which
    count as trainings but never as the best depth found.
    """
    best, best_value = true_best(landscape)
    direction = landscape.objective_spec.direction
    close = within_noise_of_best(landscape, noise_scale=noise_scale)
    out = []
    for label in order or list(dict.fromkeys(runs["strategy"])):
        per_seed = pd.DataFrame([_seed_figures(run, best=best, best_value=best_value, direction=direction,
                                               close=close)
                                 for _, run in runs[runs["strategy"] == label].groupby("seed", sort=True)])
        r = per_seed["regret"].to_numpy(dtype=float)
        trials = per_seed["trials"].to_numpy(dtype=float)
        median = {k: float(np.median(per_seed[k])) for k in
                  ("confirmations", "trainings", "ruled_out", "probes", "stopped", "seconds")}
        out.append(
            {
                "strategy": label,
                "seeds": len(r),
                "trials_to_best": float(np.median(trials)),
                "seconds_to_best": float(np.median(per_seed["secs"])),
                "p_found": float(np.mean(np.isfinite(trials))),
                "regret_median": _quantile(r, 0.5),
                "regret_p05": _quantile(r, 0.05),
                "regret_p95": _quantile(r, 0.95),
                "p_final_best": float(np.mean(per_seed["final_best"])),
                "p_within_noise": float(np.mean(per_seed["near"])),
                "p_meets_bar": float(np.mean(per_seed["meets"])),
                **median,
            }
        )
    return pd.DataFrame(out)


def _seed_figures(run: pd.DataFrame, *, best: int, best_value: float, direction: str, close) -> dict:
    """One replay's figures: when the best depth was first read (a stopped trial is no reading of
    it), the final choice's regret, and what the run spent."""
    hit = run[(run["depth"] == best) & ((run["stopped"] == 0) if "stopped" in run else True)]
    last = run.iloc[-1]
    return {
        "trials": float(hit["step"].iloc[0]) if len(hit) else math.inf,
        "secs": float(hit["cum_seconds"].iloc[0]) if len(hit) else math.inf,
        "regret": regret(float(last["choice_value"]), best_value, direction),
        "final_best": int(last["choice"]) == best,
        "near": int(last["choice"]) in close,
        "meets": math.isfinite(float(last["choice_value"])),
        "confirmations": int(run["confirmation"].sum()) if "confirmation" in run else 0,
        "trainings": len(run),
        "ruled_out": int(last["ruled_out"]) if "ruled_out" in run else 0,
        "probes": int(last["probes"]) if "probes" in run else 0,
        "stopped": int((run["stopped"] > 0).sum()) if "stopped" in run else 0,
        "seconds": float(last["cum_seconds"]),
    }


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
            v = run["choice_value"].to_numpy()
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
