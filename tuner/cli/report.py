"""Tables and figures of a stored study, like the thesis' tables and plots.

Writes table.md and table.csv (one row per trained depth: mean accuracy,
time and efficiency, with spread and repeats), the figures accuracy vs
depth, efficiency vs depth, the accuracy/time Pareto front and the study's
best-so-far efficiency against cumulative training seconds (PNG + SVG).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", help="Optuna storage URL or PATH.log "
                   "(default sqlite:///studies/STUDY.db)")
    p.add_argument("--output", type=Path, help="folder for the table and figures "
                   "(default out/STUDY)")


def markdown_table(frame, *, best_depth: int) -> str:
    """The thesis' table layout; spread shown as ± sd where a depth was repeated."""
    repeated = bool((frame["repeats"] > 1).any())
    head = ["depth", "val_accuracy", "time (s)", "efficiency (1/s)"] + (["n"] if repeated else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in frame.itertuples(index=False):
        def pm(mean: float, sd: float, fmt: str) -> str:
            return format(mean, fmt) + ("" if math.isnan(sd) else f" ± {format(sd, fmt)}")

        cells = [
            str(r.depth),
            pm(r.val_accuracy, r.val_accuracy_std, ".3f"),
            pm(r.time_s, r.time_s_std, ".1f"),
            f"{r.efficiency:.6f}",
        ] + ([str(r.repeats)] if repeated else [])
        if r.depth == best_depth:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def study_curve(records):
    """Best-so-far observed efficiency against cumulative seconds, in trial order."""
    import pandas as pd

    rows, cum, best = [], 0.0, -math.inf
    for r in sorted(records, key=lambda r: r["number"]):
        cum += r["fit_seconds"]
        best = max(best, r["val_accuracy"] / r["fit_seconds"])
        rows.append({"seconds": cum, "median": best, "p05": best, "p95": best})
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> int:
    from tuner.figures import anytime_figure, landscape_figures, save
    from tuner.landscape import from_study, study_records
    from tuner.provenance import provenance_note
    from tuner.study import load_stored_study, recorded_config

    study = load_stored_study(args.study, storage=args.storage)
    land = from_study(study)  # refuses a study without measured trials
    records = study_records(study)
    frame = land.frame()
    md = markdown_table(frame, best_depth=land.best_depth)
    out = args.output if args.output is not None else Path("out") / args.study
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "table.csv", index=False)
    summary = (
        f"Study `{args.study}`: {len(records)} trainings over {len(frame)} depths, "
        f"{sum(r['fit_seconds'] for r in records):.0f} s of training. Best depth "
        f"{land.best_depth} (efficiency {land.best_efficiency:.6g} /s)."
    )
    note = provenance_note(recorded_config(study))
    summary += f"\n\n{note}" if note else ""
    (out / "table.md").write_text(f"{summary}\n\n{md}\n", encoding="utf-8")
    paths = []
    for stem, fig in landscape_figures(land).items():
        paths += save(fig, out_dir=out, stem=stem)
    curve = study_curve(records).assign(strategy=args.study)
    fig = anytime_figure(
        curve, best_efficiency=None, title=f"study:{args.study}, in trial order",
        ylabel="best efficiency so far (val_accuracy / s)",
    )
    paths += save(fig, out_dir=out, stem="anytime")
    print(summary)
    print(md)
    print(f"wrote {out / 'table.md'}, {out / 'table.csv'}, " + ", ".join(str(p) for p in paths))
    return 0
