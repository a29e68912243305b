"""Evidence for ``search --confirm``: confirmation repeats replayed on the thesis tables.

    python benchmarks/confirm_thesis.py                    # 50 and 200 seeds, four tables
    python benchmarks/confirm_thesis.py --reuse            # only re-read benchmarks/out/confirm-*

Runs, for T in 5.1 .. 5.4 (printed as they run):

* ``--seeds 50``: the hand narrowing (rule and the thesis' own depths), TPE
  without confirmations and with 1, 2, 3, 4, 6, at the default noise;
* ``--seeds 200``: TPE with 0-6 confirmations, for the choice of the default;
* ``--seeds 50 --noise-scale 0.6667``: the noise the replays used before the
  defaults were unified (0.01 / 10 %).

Then prints Markdown tables: per table and strategy P(within noise),
regret median / p95 / mean, seconds; and, from the 200 seeds, the paired
difference in final regret against TPE without confirmations (the same seed
draws the same world and the same sampler, so the runs agree until the
confirmations start) with its standard error. Outputs: benchmarks/out/confirm-*.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import pandas as pd

from benchmarks.compare_thesis import run_compare
from tuner.analysis.landscape import from_thesis

OUT = ROOT / "benchmarks" / "out"
TABLES = ["5.1", "5.2", "5.3", "5.4"]
RUNS = {
    "main": ("--seeds 50 --strategies narrowing,narrowing:thesis,tpe,tpe+confirm1,tpe+confirm2,"
             "tpe+confirm3,tpe+confirm4,tpe+confirm6"),
    "many": "--seeds 200 --strategies tpe,tpe+confirm1,tpe+confirm2,tpe+confirm3,tpe+confirm4,tpe+confirm6",
    "oldnoise": ("--seeds 50 --noise-scale 0.6667 --strategies narrowing,tpe,tpe+confirm1,tpe+confirm2,"
                 "tpe+confirm3,tpe+confirm4"),
}


def folder(kind: str, table: str) -> Path:
    return OUT / f"confirm-{kind}-{table}"


def run_all(workers: int) -> None:
    for kind, args in RUNS.items():
        for t in TABLES:
            line = (f"--landscape thesis:{t} {args} --trials 13 --workers {workers} "
                    f"--output {folder(kind, t)}")
            print(f"depth-tuner compare {line}", flush=True)
            print(run_compare(line), flush=True)


def per_strategy(kind: str) -> pd.DataFrame:
    rows = []
    for t in TABLES:
        table = pd.read_csv(folder(kind, t) / "comparison.csv")
        runs = pd.read_csv(folder(kind, t) / "runs.csv")
        best = from_thesis(t).best_value
        final = runs.groupby(["strategy", "seed"]).tail(1)
        mean_regret = (1 - final["choice_value"] / best).groupby(final["strategy"]).mean()
        for r in table.itertuples():
            rows.append({"table": t, "strategy": r.strategy, "p_within_noise": r.p_within_noise,
                         "p_final_best": r.p_final_best, "regret_median": r.regret_median,
                         "regret_p95": r.regret_p95, "regret_mean": mean_regret[r.strategy],
                         "seconds": r.seconds, "confirmations": r.confirmations})
    return pd.DataFrame(rows)


def paired(kind: str = "many", base: str = "tpe:log") -> pd.DataFrame:
    """Per table and strategy: mean (strategy - base) final regret over seeds, and its SE."""
    rows = []
    for t in TABLES:
        runs = pd.read_csv(folder(kind, t) / "runs.csv")
        best = from_thesis(t).best_value
        final = runs.groupby(["strategy", "seed"]).tail(1).set_index(["strategy", "seed"])
        regret = 1 - final["choice_value"] / best
        for s in dict.fromkeys(runs["strategy"]):
            if s == base:
                continue
            d = (regret.loc[s] - regret.loc[base]).to_numpy()
            rows.append({"table": t, "strategy": s, "diff_mean": d.mean(),
                         "diff_se": d.std(ddof=1) / np.sqrt(len(d)), "seeds": len(d)})
    return pd.DataFrame(rows)


def pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def markdown() -> str:
    out = []
    for kind in ("main", "oldnoise"):
        if not folder(kind, TABLES[0]).exists():
            continue
        d = per_strategy(kind)
        out.append(f"\n{kind}: table | strategy | P(within noise) | P(ends on best) | regret median | "
                   "regret p95 | regret mean | s total | confirmations")
        for r in d.itertuples():
            out.append(f"| {r.table} | {r.strategy} | {r.p_within_noise:.2f} | {r.p_final_best:.2f} | "
                       f"{pct(r.regret_median)} | {pct(r.regret_p95)} | {pct(r.regret_mean)} | "
                       f"{r.seconds:.0f} | {r.confirmations:.0f} |")
        avg = d.groupby("strategy", sort=False)[["p_within_noise", "p_final_best", "regret_median",
                                                 "regret_p95", "regret_mean", "seconds"]].mean()
        out.append(f"\n{kind}, mean over the tables:")
        for s, r in avg.iterrows():
            out.append(f"| {s} | {r.p_within_noise:.2f} | {r.p_final_best:.2f} | {pct(r.regret_median)} | "
                       f"{pct(r.regret_p95)} | {pct(r.regret_mean)} | {r.seconds:.0f} |")
    if folder("many", TABLES[0]).exists():
        p = paired()
        out.append("\nmany (200 seeds): paired mean regret difference vs tpe:log (points), ± SE")
        wide = p.assign(cell=[f"{100 * m:+.2f} ± {100 * s:.2f}" for m, s in zip(p.diff_mean, p.diff_se)])
        grid = wide.pivot(index="strategy", columns="table", values="cell")
        out.append("| strategy | " + " | ".join(grid.columns) + " |")
        out.append("|---" * (len(grid.columns) + 1) + "|")
        out.extend(f"| {k} | " + " | ".join(row) + " |" for k, row in grid.iterrows())
        allt = p.groupby("strategy").apply(
            lambda g: f"{100 * g.diff_mean.mean():+.2f} ± {100 * np.sqrt((g.diff_se ** 2).sum()) / len(g):.2f}")
        out.append("mean over tables: " + "; ".join(f"{k} {v}" for k, v in allt.items()))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reuse", action="store_true", help="only summarise existing outputs")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not args.reuse:
        run_all(args.workers)
    print(markdown())


if __name__ == "__main__":
    main()
