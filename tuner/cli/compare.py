"""Replay strategies (the thesis' narrowing, Optuna samplers) on a landscape, without training.

Each step costs the landscape's seconds for its depth, with noise drawn from
the landscape's spread; see docs/strategies.md for the rules.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EPILOG = """examples:
  depth-tuner compare --landscape thesis:5.1                         # narrowing, tpe, random on Table 5.1
  depth-tuner compare --landscape thesis:5.2 --strategies narrowing,tpe,tpe:linear,gp --seeds 20
  depth-tuner compare --landscape study:tf_flowers-sweep --output out/cmp   # a measured landscape
  depth-tuner compare --landscape my_landscape.csv --noise-scale 0           # depth,val_accuracy,time_s
  depth-tuner compare --landscape thesis:5.1 --objective cheapest-within:0.01 --strategies tpe+confirm2,narrowing
"""

TABLE_COLUMNS = {
    "strategy": "strategy",
    "trials_to_best": "trials to best",
    "seconds_to_best": "s to best",
    "p_found": "P(found)",
    "regret_median": "regret med",
    "regret_p05": "regret p05",
    "regret_p95": "regret p95",
    "p_final_best": "P(ends on best)",
    "p_within_noise": "P(within noise)",
    "confirmations": "confirms",
    "trainings": "trainings",
    "ruled_out": "ruled out",
    "probes": "probes",
    "stopped": "stopped",
    "seconds": "seconds",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landscape", required=True,
                   help="thesis:5.1 .. thesis:5.4, study:NAME (with --storage) or a CSV with "
                   "columns depth,val_accuracy,time_s")
    p.add_argument("--storage", help="Optuna storage URL or PATH.log for study:NAME (default: "
                   "sqlite:///studies/NAME.db, in $DEPTH_TUNER_STUDIES instead of ./studies when set)")
    from tuner.model.space import SCALES
    from tuner.strategies.registry import STRATEGIES

    p.add_argument("--strategies", default="narrowing,tpe,random",
                   help=f"comma-separated, from {', '.join(STRATEGIES)} (tuner/strategies/registry.py; "
                   "narrowing:thesis is thesis-grids); a sampler may take a scale, e.g. tpe:linear, "
                   "and any strategy confirmation repeats at the end of the budget, e.g. tpe+confirm2 "
                   "(default: %(default)s)")
    from objectives import OBJECTIVE_CHOICES

    p.add_argument("--objective", metavar="NAME",
                   help=f"what best means in the replay: {', '.join(OBJECTIVE_CHOICES)} (default: the "
                   "landscape's own, a study's recorded one, else efficiency)")
    p.add_argument("--depth-scale", "--scale", dest="scale", default="log", choices=list(SCALES),
                   help="depth scale for samplers named without one, as search's --depth-scale "
                   "(--scale is its older name)")
    p.add_argument("--seeds", type=int, default=50, help="replays per strategy, seeds 0..N-1")
    p.add_argument("--trials", "--budget", dest="trials", type=int, default=13,
                   help="trainings per replay, as search's --trials (13: the thesis' count; --budget is "
                   "its older name)")
    p.add_argument("--min-depth", type=int, default=0, help="shallowest depth a strategy may pick")
    p.add_argument("--max-depth", type=int, default=None,
                   help="deepest depth a strategy may pick (default: the landscape's range, a study's "
                   "recorded one or every layer of the backbone that measured it)")
    p.add_argument("--noise-scale", type=float, default=1.0,
                   help="multiplies the landscape's spread; 0 replays the mean landscape")
    p.add_argument("--thesis-grids", action="store_true",
                   help="narrowing replays the thesis' exact 13 depths instead of its rule "
                   "(same as naming narrowing:thesis)")
    p.add_argument("--probe", "--probe-prices", dest="probe", action="store_true",
                   help="probe a deep depth's seconds before training it where a cached search does "
                   "(the probe's seconds are not counted; --probe-prices is its older name)")
    p.add_argument("--stop-early", choices=["on", "off"], default="on", type=str.lower,
                   help="stop a trial after a fine-tune epoch where the live search would (search's "
                   "--stop-early; needs a landscape with phase-2 curves, val_accuracy_e1..; default: on)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes for the replays (default: all cores, %(default)s)")
    p.add_argument("--output", type=Path,
                   help="folder for comparison.csv, runs.csv and the figures (PNG + SVG) (default: print only)")


def _percent(v: float) -> str:
    return "below bar" if v == float("inf") else f"{100 * v:.1f}%"


def format_table(table, *, bar: bool = False) -> str:
    """The comparison as fixed-width text (regret in %, never-found as 'never'); ``bar``: the
    objective has an accuracy bar, so say how often the answer clears it."""
    columns = {**TABLE_COLUMNS, **({"p_meets_bar": "P(meets bar)"} if bar else {})}
    shown = table[list(columns)].rename(columns=columns)
    fmt = {
        "trials to best": lambda v: "never" if v == float("inf") else f"{v:.0f}",
        "s to best": lambda v: "never" if v == float("inf") else f"{v:.0f}",
        "P(found)": "{:.2f}".format,
        "regret med": _percent,
        "regret p05": _percent,
        "regret p95": _percent,
        "P(ends on best)": "{:.2f}".format,
        "P(within noise)": "{:.2f}".format,
        "confirms": "{:.0f}".format,
        "trainings": "{:.0f}".format,
        "ruled out": "{:.0f}".format,
        "probes": "{:.0f}".format,
        "stopped": "{:.0f}".format,
        "seconds": "{:.0f}".format,
        "P(meets bar)": "{:.2f}".format,
    }
    return shown.to_string(index=False, formatters=fmt)


def landscape_note(spec: str, *, storage: str | None) -> str | None:
    """The provenance caveat of a ``study:NAME`` landscape (fake data, random weights), for its
    figures; thesis tables and CSVs carry no configuration, so None."""
    if not spec.startswith("study:"):
        return None
    from tuner.store.provenance import provenance_note
    from tuner.store.storage import load_stored_study
    from tuner.store.study import recorded_config

    return provenance_note(recorded_config(load_stored_study(spec.removeprefix("study:"),
                                                             storage=storage)))


def run(args: argparse.Namespace) -> int:
    from tuner.paths import check_folder
    from tuner.analysis.figures import anytime_figure, efficiency_figure, save
    from tuner.analysis.landscape import load_landscape
    from tuner.api import comparison

    if args.output is not None:  # before the replays, which take minutes
        check_folder(args.output, "--output")
    land = load_landscape(args.landscape, storage=args.storage).judged_by(args.objective)
    result = comparison(
        landscape=land, strategies=args.strategies, scale=args.scale, thesis_grids=args.thesis_grids,
        seeds=args.seeds, trials=args.trials, min_depth=args.min_depth, max_depth=args.max_depth,
        noise_scale=args.noise_scale, workers=args.workers, probe=args.probe,
        stop_early=args.stop_early == "on",
    )
    full = result.landscape
    print(
        f"landscape {land.name}: best depth {result.best_depth} "
        f"({full.objective} {result.best_value:.6g}), {len(land.measured_depths)} measured depths, "
        f"depths {full.depths[0]}..{full.depths[-1]} interpolated; "
        f"{args.seeds} seeds, trials {args.trials}, noise x{args.noise_scale:g}"
    )
    if args.stop_early == "on" and not land.epochs:
        print("stops after an epoch not replayed: the landscape has no phase-2 curves (val_accuracy_e1..)")
    print(format_table(result.table, bar=full.objective_spec.eligible is not None))
    if args.output is not None:
        out = args.output
        out.mkdir(parents=True, exist_ok=True)
        result.table.to_csv(out / "comparison.csv", index=False)
        result.runs.to_csv(out / "runs.csv", index=False)
        note = landscape_note(args.landscape, storage=args.storage)
        title = f"{land.name}: {args.seeds} seeds, trials {args.trials}"
        paths = save(
            anytime_figure(result.curves, best_value=result.best_value, title=title,
                           ylabel=f"mean {land.objective_spec.label} of current choice",
                           noise=land.answer().half_width, note=note),
            out_dir=out,
            stem="anytime",
        )
        paths += save(efficiency_figure(land, note=note), out_dir=out, stem="efficiency_vs_depth")
        print(f"wrote {out / 'comparison.csv'}, {out / 'runs.csv'}, "
              + ", ".join(str(p) for p in paths))
    return 0
