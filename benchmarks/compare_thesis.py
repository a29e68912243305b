"""Regenerate the "Strategy comparison on the thesis tables" outputs.

    python benchmarks/compare_thesis.py                # all four tables
    python benchmarks/compare_thesis.py 5.1 --workers 1  # one table, one core

Per table it runs three `depth-tuner compare` command lines (printed as
they run): the strategies of the issue plus the narrowing on the thesis'
exact grids; the samplers on the linear and the log depth scale; and both
again without noise. Outputs go to benchmarks/out/ (git-ignored: CSVs of
every replay); the anytime figures of the first two are copied to
benchmarks/figures/, and the Markdown tables that benchmarks/RESULTS.md
quotes are assembled in benchmarks/out/results.md.
GP needs torch and scipy (`pip install 'depth-tuner[gp]'`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd

from tuner.analysis.landscape import from_thesis
from tuner.cli import compare as compare_cli
from tuner.strategies.narrowing import plan

OUT = ROOT / "benchmarks" / "out"
FIGURES = ROOT / "benchmarks" / "figures"
COMMON = "--seeds 50 --trials 13"
SAMPLERS_BOTH_SCALES = "tpe:linear,tpe:log,gp:linear,gp:log,random:linear,random:log"
RUNS = {
    "main": "--strategies narrowing,narrowing:thesis,tpe,gp,random",
    "scales": f"--strategies {SAMPLERS_BOTH_SCALES}",
    # The same search without noise: what each strategy finds when measurements are exact.
    "noisefree": f"--strategies narrowing,{SAMPLERS_BOTH_SCALES} --noise-scale 0",
}
FIGURE_KINDS = ("main", "scales")
ALL_TABLES = ["5.1", "5.2", "5.3", "5.4"]


def run_compare(argline: str) -> str:
    parser = argparse.ArgumentParser()
    compare_cli.add_arguments(parser)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = compare_cli.run(parser.parse_args(shlex.split(argline)))
    if code:
        raise SystemExit(code)
    return buf.getvalue()


def markdown(table: pd.DataFrame) -> str:
    text = compare_cli.format_table(table)
    rows = [line.split() for line in text.splitlines()[1:]]
    head = ["strategy", "trials to best", "s to best", "P(found)", "regret median",
            "regret 5-95 %", "P(ends on best)", "trainings", "s total"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(r[:5] + [f"{r[5]}-{r[6]}"] + r[7:]) + " |")
    return "\n".join(lines)


def header(key: str) -> str:
    land = from_thesis(key)
    stages = plan(land.interpolated(low=0, high=154).efficiency.to_dict())
    return (
        f"### Table {key} ({land.thesis.title}): best depth {land.best_depth}\n\n"
        "Narrowing rule on the mean landscape: "
        + " / ".join(",".join(map(str, sorted(s))) for s in stages) + "\n"
    )


def across_tables() -> str:
    """Per run kind and strategy: the mean over the tables present of the key columns."""
    parts = ["### Across the four tables (mean of the per-table numbers)\n"]
    for kind in RUNS:
        frames = [pd.read_csv(p) for p in sorted(OUT.glob(f"thesis-*-{kind}/comparison.csv"))]
        if not frames:
            continue
        cols = ["p_found", "regret_median", "regret_p95", "p_final_best", "seconds"]
        mean = pd.concat(frames).groupby("strategy", sort=False)[cols].mean()
        lines = [f"{kind} ({len(frames)} tables):\n",
                 "| strategy | P(found) | regret median | regret p95 | P(ends on best) | s total |",
                 "|---|---|---|---|---|---|"]
        for name, r in mean.iterrows():
            lines.append(f"| {name} | {r.p_found:.2f} | {100 * r.regret_median:.1f}% | "
                         f"{100 * r.regret_p95:.1f}% | {r.p_final_best:.2f} | {r.seconds:.0f} |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def main(tables: list[str], *, kinds: list[str], workers: int | None) -> None:
    os.chdir(ROOT)  # the printed command lines use paths relative to the repository
    OUT.mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(parents=True, exist_ok=True)
    unknown = set(kinds) - set(RUNS)
    if unknown:
        raise SystemExit(f"unknown --kinds {', '.join(sorted(unknown))}: use {', '.join(RUNS)}")
    for key in tables:
        for kind in kinds:
            out = OUT / f"thesis-{key}-{kind}"
            rel = out.relative_to(ROOT)
            argline = f"--landscape thesis:{key} {RUNS[kind]} {COMMON} --output {rel}"
            extra = f" --workers {workers}" if workers else ""  # speed only: same results
            print(f"$ depth-tuner compare {argline}", flush=True)
            start = time.perf_counter()
            text = run_compare(argline + extra)
            took = time.perf_counter() - start
            print(text + f"({took:.0f} s)\n", flush=True)
            table = pd.read_csv(out / "comparison.csv")
            (out / "section.md").write_text(
                f"`depth-tuner compare {argline}` ({took:.0f} s)\n\n{markdown(table)}\n",
                encoding="utf-8",
            )
            if kind in FIGURE_KINDS:
                for ext in ("png", "svg"):
                    shutil.copy(out / f"anytime.{ext}", FIGURES / f"anytime_{key}_{kind}.{ext}")
    # Assemble every section present, also from earlier invocations (replays are deterministic).
    report = []
    for key in ALL_TABLES:
        sections = [OUT / f"thesis-{key}-{kind}" / "section.md" for kind in RUNS]
        if any(p.is_file() for p in sections):
            report.append(header(key))
            report += [p.read_text(encoding="utf-8") for p in sections if p.is_file()]
    report.append(across_tables())
    (OUT / "results.md").write_text("\n".join(report), encoding="utf-8")
    print(f"wrote {OUT / 'results.md'}")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("tables", nargs="*", default=ALL_TABLES)
    cli.add_argument("--kinds", default=",".join(RUNS), help="comma-separated subset of "
                     + ", ".join(RUNS))
    cli.add_argument("--workers", type=int, help="replay processes (default: all cores)")
    opts = cli.parse_args()
    # --kinds "" only reassembles benchmarks/out/results.md from the stored outputs.
    main(opts.tables, kinds=[k for k in opts.kinds.split(",") if k], workers=opts.workers)
