"""Run strategies for real on one dataset, each with the same budget of training seconds.

Each strategy trains into its own stored study (DATASET-live-STRATEGY), until
its measured trials have used --budget-seconds of training (the trial that
crosses the budget finishes). The table compares what each found: trials,
seconds used, the best depth by the objective (ranked like ``show``, pooled per
depth) with its value and 95 % interval, and the gap to the best any
strategy found. Rerunning resumes every study.
"""

from __future__ import annotations

import argparse
import os

EPILOG = """examples:
  depth-tuner live-compare --dataset tf_flowers --strategies narrowing,tpe --budget-seconds 3600
  depth-tuner live-compare --dataset tf_flowers --strategies narrowing,tpe,random --budget-seconds 3600 --output out/live
  depth-tuner show --study tf_flowers-live-tpe             # one strategy's stored trials
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.cli.search import add_run_arguments

    add_run_arguments(p, strategy=False)
    from tuner.model.space import SCALES
    from tuner.strategies.registry import STRATEGIES

    p.add_argument("--strategies", default="narrowing,tpe",
                   help=f"comma-separated, from {', '.join(STRATEGIES)} (tuner/strategies/registry.py)")
    p.add_argument("--budget-seconds", type=float, required=True,
                   help="training seconds (sum of protocol_seconds) each strategy may spend")
    p.add_argument("--depth-scale", default="log", choices=list(SCALES),
                   help="how the samplers see the depth")
    p.add_argument("--output", help="also write comparison.csv to this folder (default: print only)")


def live_table(studies: dict[str, str], *, storage_for) -> object:
    """One row per strategy from its stored study (a pandas DataFrame)."""
    import pandas as pd

    from tuner.analysis.summary import study_answer, trials_frame
    from tuner.store.storage import load_stored_study

    rows = []
    direction = "maximize"
    for strategy, name in studies.items():
        study = load_stored_study(name, storage=storage_for(name))
        frame = trials_frame(study)
        answer = study_answer(study)
        if answer is not None:
            direction = answer.objective.direction
        rows.append({
            "strategy": strategy, "study": name, "trials": len(frame),
            "seconds": float(frame["protocol_seconds"].sum()),
            "best_depth": None if answer is None else answer.best_depth,
            "best_value": None if answer is None else answer.best_value,
            "best_low": None if answer is None else answer.best_interval[0],
            "best_high": None if answer is None else answer.best_interval[1],
        })
    table = pd.DataFrame(rows)
    values = table["best_value"].astype(float)
    top = values.max() if direction == "maximize" else values.min()
    table["gap_to_best_found"] = (1 - values / top).abs()
    return table


def run(args: argparse.Namespace) -> int:
    from tuner.analysis.replay import parse_strategies
    from tuner.cli.search import run_strategy
    from tuner.errors import UsageError
    from tuner.store.storage import default_storage, default_study_name

    specs = parse_strategies(args.strategies, scale=None)  # compare's parser: one set of messages
    for spec in specs:
        if spec.scale or spec.confirm:
            raise UsageError(f"--strategies {spec.label!r}: live-compare runs each strategy on "
                             "--depth-scale until --budget-seconds, without confirmations: name it plainly")
    if args.budget_seconds <= 0:
        raise UsageError("--budget-seconds must be positive")
    if args.study or args.storage:
        raise UsageError("live-compare names one study per strategy (DATASET-live-STRATEGY) "
                         "in the default storage folder (./studies or $DEPTH_TUNER_STUDIES): drop --study/--storage")
    base = default_study_name(args.dataset, fake=args.fake_data)
    studies = {}
    for spec in specs:
        suffix = f"-live-{spec.name}"
        code = run_strategy(args, strategy=spec.name, scale=args.depth_scale, study_suffix=suffix,
                            budget_seconds=args.budget_seconds, show=False)
        if code:
            return code
        studies[spec.name] = base + suffix
    table = live_table(studies, storage_for=default_storage)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        table.to_csv(os.path.join(args.output, "comparison.csv"), index=False)
    return 0
