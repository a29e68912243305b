"""Tables and figures of a stored study, like the thesis' tables and plots.

Writes table.md and table.csv (one row per trained depth: mean accuracy,
time and efficiency, with spread and repeats, and the study objective's
value with its 95 % interval), the figures accuracy vs depth, objective vs
depth (both with 95 % error bars), the accuracy/time Pareto front and the
study's best-so-far value against cumulative training seconds (PNG + SVG).
"Best" is the study's objective, ranked like ``show`` (``objectives.best``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module for --help: no matplotlib or pandas then
    from matplotlib.figure import Figure

    from tuner.analysis.landscape import Landscape

EPILOG = """examples:
  depth-tuner report --study tf_flowers                   # writes out/tf_flowers/table.md, table.csv, figures
  depth-tuner report --study tf_flowers-sweep --output out/sweep
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.cli.options import STORAGE_HELP

    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--output", type=Path, help="folder for the table and figures "
                   "(default out/STUDY)")


def markdown_table(frame, *, answer) -> str:
    """The thesis' layout plus the objective's value ± its 95 % half-width; spread as ± sd
    where a depth was repeated; the best depth in bold, depths within noise of it marked ≈."""
    repeated = bool((frame["repeats"] > 1).any())
    name = answer.objective.name
    head = (["depth", "val_accuracy", "time (s)", "efficiency (1/s)"] + (["n"] if repeated else [])
            + [f"{name} (± 95 %)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    values = answer.depths
    for r in frame.itertuples(index=False):
        def pm(mean: float, sd: float, fmt: str) -> str:
            return format(mean, fmt) + ("" if math.isnan(sd) else f" ± {format(sd, fmt)}")

        v = values.loc[r.depth]
        mark = " ≈" if r.depth in answer.within_noise else ""
        cells = [
            str(r.depth),
            pm(r.val_accuracy, r.val_accuracy_std, ".3f"),
            pm(r.time_s, r.time_s_std, ".1f"),
            f"{r.efficiency:.6f}",
        ] + ([str(r.repeats)] if repeated else []) + [
            f"{v['value']:.4g} ± {(v['high'] - v['low']) / 2:.2g}{mark}"]
        if r.depth == answer.best_depth:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def study_curve(records, *, objective: str):
    """The study's best depth's value after each trial, in trial order, against cumulative seconds.

    Each point ranks the trials so far exactly as ``show`` would (pooled per depth).
    """
    import pandas as pd

    from tuner.analysis.landscape import from_records

    rows, cum, done = [], 0.0, []
    for r in sorted(records, key=lambda r: r["number"]):
        cum += r["protocol_seconds"]
        done.append(r)
        best = from_records(done, name="so far", objective=objective).best_value
        rows.append({"seconds": cum, "median": best, "p05": best, "p95": best})
    return pd.DataFrame(rows)


def study_figures(
    land: Landscape, records: list[dict[str, Any]], *, study_name: str, note: str | None
) -> dict[str, Figure]:
    """The report's figures by file stem; ``note`` (the provenance caveat, if any) goes on each,
    so a figure copied out of the report still says when its numbers are a demo."""
    from tuner.analysis.figures import anytime_figure, landscape_figures

    figs = landscape_figures(land, note=note)
    # One panel: the title names the study, the panel and the line need no name of their own.
    curve = study_curve(records, objective=land.objective).assign(strategy="best depth so far")
    figs["anytime"] = anytime_figure(
        curve, best_value=None, title=f"study:{study_name}, in trial order",
        ylabel=f"best depth's {land.objective_spec.label} so far",
        noise=land.answer().half_width, note=note,
    )
    return figs


def run(args: argparse.Namespace) -> int:
    from tuner.analysis.figures import save
    from tuner.analysis.landscape import from_study
    from tuner.analysis.summary import devices_line
    from tuner.store.provenance import provenance_note
    from tuner.store.records import study_records
    from tuner.paths import check_folder
    from tuner.store.storage import load_stored_study
    from tuner.store.study import recorded_config

    out = Path(check_folder(args.output if args.output is not None else Path("out") / args.study, "--output"))
    study = load_stored_study(args.study, storage=args.storage)
    land = from_study(study)  # refuses a study without measured trials
    records = study_records(study)
    frame = land.frame()
    answer = land.answer()
    md = markdown_table(frame, answer=answer)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "table.csv", index=False)
    others = ", ".join(str(d) for d in answer.within_noise) or "none"
    summary = (
        f"Study `{args.study}`: {len(records)} trainings over {len(frame)} depths, "
        f"{sum(r['protocol_seconds'] for r in records):.0f} s of training. Best depth "
        f"{answer.best_depth} ({land.objective_spec.shown_as} {answer.best_value:.6g} ± "
        f"{answer.half_width:.2g}, 95 %); within noise of it: {others} "
        f"[{answer.noise.describe(answer.best_accuracy)}]."
    )
    note = provenance_note(recorded_config(study))
    devices = devices_line(study)
    summary += "".join(f"\n\n{line}" for line in (note, devices) if line)
    (out / "table.md").write_text(f"{summary}\n\n{md}\n", encoding="utf-8")
    paths = []
    for stem, fig in study_figures(land, records, study_name=args.study, note=note).items():
        paths += save(fig, out_dir=out, stem=stem)
    print(summary)
    print(md)
    print(f"wrote {out / 'table.md'}, {out / 'table.csv'}, " + ", ".join(str(p) for p in paths))
    return 0
