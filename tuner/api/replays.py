"""Replays of depth strategies on a landscape, without training (``depth-tuner compare``)."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tuner.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from tuner.analysis.comparison import Comparison
    from tuner.analysis.landscape import Landscape

__all__ = ["compare", "comparison"]


def comparison(
    *,
    landscape: str | Landscape,
    strategies: str | Sequence[str] = ("narrowing", "tpe", "random"),
    seeds: int = 50,
    trials: int = 13,
    scale: str = "log",
    min_depth: int = 0,
    max_depth: int | None = None,
    noise_scale: float = 1.0,
    thesis_grids: bool = False,
    storage: str | None = None,
    workers: int | None = None,
    objective: str | None = None,
    probe: bool = False,
    stop_early: bool = True,
    budget: int | None = None,
    probe_prices: bool | None = None,
) -> Comparison:
    """Everything ``depth-tuner compare`` computes: per-replay rows, the table, the curves.

    ``landscape`` is ``thesis:5.1``..``thesis:5.4``, ``study:NAME`` (with
    ``storage``) or a CSV path; ``strategies`` are names of
    ``tuner.strategies.registry.STRATEGIES`` (``narrowing``, ``thesis-grids``, ``sweep``,
    ``tpe``, ``gp``, ``random``, ``grid``; a sampler may add ``:linear`` /
    ``:log``, any strategy ``+confirmN``). ``max_depth`` None: the
    landscape's own range (its study's, or its backbone's layers).
    ``objective`` (any ``--objective``, e.g. ``cheapest-within:0.01`` or
    ``pareto``) replaces the landscape's own (a study's recorded one, else
    efficiency): the replayed study is told what a live search with it is told.
    ``probe``: a deep depth beyond every reading is probed before it trains, as
    a cached search does (``tuner.strategies.bound``). ``stop_early``: stop trials after an
    epoch where the live search would, on a landscape with phase-2 curves
    (``Landscape.epochs``; without them nothing is stopped). ``budget`` and
    ``probe_prices`` are the older names of ``trials`` and ``probe``, still
    accepted with a DeprecationWarning.
    """
    from tuner.analysis.landscape import Landscape, load_landscape
    from tuner.analysis.comparison import compare as replay_compare
    from tuner.analysis.replay import parse_strategies

    if budget is not None:
        warnings.warn("comparison(budget=...) is now trials=...", DeprecationWarning, stacklevel=2)
        trials = budget
    if probe_prices is not None:
        warnings.warn("comparison(probe_prices=...) is now probe=...", DeprecationWarning, stacklevel=2)
        probe = probe_prices
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise UsageError(f"--workers must be >= 1; got {workers}")
    land = landscape if isinstance(landscape, Landscape) else load_landscape(landscape, storage=storage)
    land = land.judged_by(objective)
    text = strategies if isinstance(strategies, str) else ",".join(strategies)
    specs = parse_strategies(text, scale=scale, thesis_grids=thesis_grids)
    return replay_compare(landscape=land, strategies=specs, seeds=seeds, trials=trials,
                          low=min_depth, high=max_depth, noise_scale=noise_scale, workers=workers,
                          probe=probe, stop_early=stop_early)


def _with_options_of(full: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Show ``full``'s options on a function that takes ``**options``: one signature, written once."""

    def wrap(short: Callable[..., Any]) -> Callable[..., Any]:
        returns = inspect.signature(short).return_annotation
        short.__signature__ = inspect.signature(full).replace(return_annotation=returns)  # type: ignore[attr-defined]
        return short

    return wrap


@_with_options_of(comparison)
def compare(**options: Any) -> pd.DataFrame:
    """Replay strategies on a landscape without training: one row per strategy.

    The table ``depth-tuner compare`` prints (trials and seconds until the
    best depth was first trained, regret of the final choice, P(ends on
    best)); the options are ``comparison``'s.
    """
    return comparison(**options).table
