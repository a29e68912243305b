"""Run strategies for real on one dataset, each with the same budget of training seconds.

Each strategy trains into its own stored study (DATASET-live-STRATEGY), until
its measured trials have used --budget-seconds of training (the trial that
crosses the budget finishes). The table compares what each found: trials,
seconds used, the best depth by the objective and its value, and the gap to
the best any strategy found. Rerunning resumes every study.
"""

from __future__ import annotations

import argparse
import os

LIVE_STRATEGIES = ("narrowing", "tpe", "gp", "random")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.cli.search import add_run_arguments

    add_run_arguments(p, sampler=False)
    p.add_argument("--strategies", default="narrowing,tpe",
                   help=f"comma-separated, from {', '.join(LIVE_STRATEGIES)} (default narrowing,tpe)")
    p.add_argument("--budget-seconds", type=float, required=True,
                   help="training seconds (sum of protocol_seconds) each strategy may spend")
    p.add_argument("--depth-scale", default="log", choices=["linear", "log"],
                   help="how the samplers see the depth (default log)")
    p.add_argument("--output", help="also write comparison.csv to this folder")


def live_table(studies: dict[str, str], *, storage_for) -> "object":
    """One row per strategy from its stored study (a pandas DataFrame)."""
    import pandas as pd

    from tuner.study import load_stored_study
    from tuner.summary import best_trial_row, trials_frame

    rows = []
    for strategy, name in studies.items():
        frame = trials_frame(load_stored_study(name, storage=storage_for(name)))
        best = best_trial_row(frame)
        rows.append({
            "strategy": strategy, "study": name, "trials": len(frame),
            "seconds": float(frame["protocol_seconds"].sum()),
            "best_depth": None if best is None else int(best["depth"]),
            "best_value": None if best is None else float(best["value"]),
        })
    table = pd.DataFrame(rows)
    top = table["best_value"].max()
    table["gap_to_best_found"] = 1 - table["best_value"] / top
    return table


def run(args: argparse.Namespace) -> int:
    from tuner.cli.search import default_study_name, run_strategy
    from tuner.errors import UsageError
    from tuner.queued import narrowing_refill
    from tuner.study import default_storage

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in LIVE_STRATEGIES]
    if unknown or not strategies:
        raise UsageError(f"--strategies: {unknown[0] if unknown else 'nothing'} is not one of "
                         f"{', '.join(LIVE_STRATEGIES)}")
    if args.budget_seconds <= 0:
        raise UsageError("--budget-seconds must be positive")
    if args.study or args.storage:
        raise UsageError("live-compare names one study per strategy (DATASET-live-STRATEGY) "
                         "under studies/: drop --study/--storage")
    base = default_study_name(args.dataset, fake=args.fake_data)
    studies = {}
    for strategy in strategies:
        suffix = f"-live-{strategy}"
        refill = (lambda space, data: narrowing_refill(space)) if strategy == "narrowing" else None
        code = run_strategy(args, strategy=strategy, scale=args.depth_scale,
                            refill_for=refill, study_suffix=suffix,
                            seconds_budget=args.budget_seconds, show=False)
        if code:
            return code
        studies[strategy] = base + suffix
    table = live_table(studies, storage_for=default_storage)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        table.to_csv(os.path.join(args.output, "comparison.csv"), index=False)
    return 0
