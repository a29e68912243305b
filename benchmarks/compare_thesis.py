"""Regenerate the "Strategy comparison on the thesis tables" outputs.

    python benchmarks/compare_thesis.py                # all four tables
    python benchmarks/compare_thesis.py 5.1 --workers 1  # one table, one core

Per table it runs two `depth-tuner compare` command lines (printed as they
run): the strategies of the issue plus the narrowing on the thesis' exact
grids, and the samplers on the linear and the log depth scale. Outputs go to
benchmarks/out/ (git-ignored size: CSVs of every replay); the anytime
figures are copied to benchmarks/figures/ and the Markdown tables that
benchmarks/RESULTS.md quotes are written to benchmarks/out/results.md.
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

import pandas as pd  # noqa: E402

from tuner.cli import compare as compare_cli  # noqa: E402
from tuner.landscape import from_thesis  # noqa: E402
from tuner.narrowing import plan  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
FIGURES = ROOT / "benchmarks" / "figures"
COMMON = "--seeds 50 --budget 13"
RUNS = {
    "main": "--strategies narrowing,narrowing:thesis,tpe,gp,random",
    "scales": "--strategies tpe:linear,tpe:log,gp:linear,gp:log,random:linear,random:log",
}


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


def main(tables: list[str], *, workers: int | None) -> None:
    os.chdir(ROOT)  # the printed command lines use paths relative to the repository
    OUT.mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(parents=True, exist_ok=True)
    report = []
    for key in tables:
        land = from_thesis(key)
        full = land.interpolated(low=0, high=154)
        stages = plan(full.efficiency.to_dict())
        report.append(f"### Table {key} ({land.thesis.title}): best depth {land.best_depth}\n")
        report.append(f"Narrowing rule on the mean landscape: "
                      + " / ".join(",".join(map(str, sorted(s))) for s in stages) + "\n")
        for kind, strategies in RUNS.items():
            out = OUT / f"thesis-{key}-{kind}"
            rel = out.relative_to(ROOT)
            argline = f"--landscape thesis:{key} {strategies} {COMMON} --output {rel}"
            extra = f" --workers {workers}" if workers else ""  # speed only: same results
            print(f"$ depth-tuner compare {argline}", flush=True)
            start = time.perf_counter()
            text = run_compare(argline + extra)
            print(text + f"({time.perf_counter() - start:.0f} s)\n", flush=True)
            table = pd.read_csv(out / "comparison.csv")
            report.append(f"`depth-tuner compare {argline}`\n\n{markdown(table)}\n")
            for ext in ("png", "svg"):
                shutil.copy(out / f"anytime.{ext}", FIGURES / f"anytime_{key}_{kind}.{ext}")
    (OUT / "results.md").write_text("\n".join(report), encoding="utf-8")
    print(f"wrote {OUT / 'results.md'}")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("tables", nargs="*", default=["5.1", "5.2", "5.3", "5.4"])
    cli.add_argument("--workers", type=int, help="replay processes (default: all cores)")
    opts = cli.parse_args()
    main(opts.tables, workers=opts.workers)
