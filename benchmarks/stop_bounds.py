"""How much any stop rule could save: today's default replayed, with its stops and with oracles.

    python benchmarks/stop_bounds.py                       # the repo's landscapes with phase-2 curves
    python benchmarks/stop_bounds.py my_curves.csv --seeds 100

Per landscape, over the same seeds (common random numbers), the mean replay
seconds (``tuner.analysis.replay``) of today's default search, ``tpe+confirm2``
with 13 trials:

* **off**: no stops (the search before issue 30);
* **rule**: the stops the live search makes (``TargetPruner``);
* **oracle**: the depths of the run without stops, each trial whose depth is
  not within noise of the landscape's best stopped after its first phase-2
  epoch (what a stop rule that never errs and always stops at the first
  chance saves; a confirmation repeat is never stopped);
* **every trial after epoch 1**: the floor of any stop rule on these depths,
  winners stopped too;
* **any strategy**: a floor for any search of ``trials`` trainings and two
  confirmations, whatever depths it picks: the best depth trained three
  times, every other trial at the depth cheapest once stopped after epoch 1
  (and the same without confirmations: the best depth trained once).

A target such as the issue's "<= 60 % of today's seconds" is out of reach of
stops alone where **oracle** stays above it, and out of reach of any
strategy with that many trainings where **any strategy** does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuner.analysis import curves
from tuner.analysis.landscape import Landscape, from_csv
from tuner.analysis.replay import replay
from tuner.analysis.worlds import true_best, within_noise_of_best

LANDSCAPES = sorted((ROOT / "benchmarks" / "landscapes").glob("*_curves.csv"))


def _stopped_at_epoch_1(land: Landscape, depth: int, seconds: float) -> float:
    return curves.stopped_seconds(seconds, share=curves.phase2_share(land.table, depth), epoch=1,
                                  epochs=land.epochs)


def bounds(land: Landscape, *, seeds: int, trials: int, strategy: str) -> dict[str, list[float]]:
    """Per seed, the seconds of each row of the module's docstring but the last."""
    close = within_noise_of_best(land)
    out: dict[str, list[float]] = {"off": [], "rule": [], "oracle": [], "every trial after epoch 1": []}
    for seed in range(seeds):
        off = replay(landscape=land, strategy=strategy, seed=seed, trials=trials)
        rule = replay(landscape=land, strategy=strategy, seed=seed, trials=trials, stop_early=True)
        out["off"].append(float(off["seconds"].sum()))
        out["rule"].append(float(rule["seconds"].sum()))
        cut = [_stopped_at_epoch_1(land, r.depth, r.seconds) for r in off.itertuples()]
        out["oracle"].append(sum(c if r.depth not in close and not r.confirmation else r.seconds
                                 for r, c in zip(off.itertuples(), cut)))
        out["every trial after epoch 1"].append(sum(cut))
    return out


def any_strategy_floor(land: Landscape, *, trials: int, confirmations: int = 2) -> float:
    """The mean landscape's best depth trained ``1 + confirmations`` times, every other training
    at the cheapest depth stopped after its first epoch."""
    best = true_best(land)[0]
    seconds = land.table["seconds"]
    cheapest = min(_stopped_at_epoch_1(land, int(d), float(s)) for d, s in seconds.items())
    return (1 + confirmations) * float(seconds.loc[best]) + (trials - 1 - confirmations) * cheapest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("landscapes", nargs="*", default=[str(p) for p in LANDSCAPES],
                   help="landscape CSVs with phase-2 curves (default: benchmarks/landscapes/*_curves.csv)")
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--trials", type=int, default=13)
    p.add_argument("--strategy", default="tpe+confirm2")
    args = p.parse_args()
    print(f"{args.strategy}, {args.trials} trials, {args.seeds} seeds; mean replay seconds per run "
          "(mean over seeds, share of 'off')\n")
    print("| landscape | within noise of the best | off | rule | oracle | every trial after epoch 1 | any strategy | any, no confirmations |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.landscapes:
        raw = from_csv(path)
        if not raw.epochs:
            print(f"{path}: no phase-2 curves, skipped", file=sys.stderr)
            continue
        low, high = raw.depth_range()
        land = raw.interpolated(low=low, high=high)
        close = sorted(within_noise_of_best(land))
        runs = bounds(land, seeds=args.seeds, trials=args.trials, strategy=args.strategy)
        base = statistics.fmean(runs["off"])
        cells = [f"{statistics.fmean(v):.0f} ({statistics.fmean(v) / base:.0%})" for v in runs.values()]
        floors = [any_strategy_floor(land, trials=args.trials, confirmations=c) for c in (2, 0)]
        near = ", ".join(map(str, close)) if len(close) <= 8 else f"{len(close)} depths, {close[0]}-{close[-1]}"
        print(f"| {Path(path).stem} | {near} | {' | '.join(cells)} | "
              + " | ".join(f"{f:.0f} ({f / base:.0%})" for f in floors) + " |", flush=True)


if __name__ == "__main__":
    main()
