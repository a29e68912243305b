"""Train depths by the thesis' coarse-to-fine narrowing, into a stored study.

Stage 1 trains 0, 10, 30, 60, 100; stage 2 steps by 5 between the neighbours
of the stage-1 best; stage 3 is the best so far +-2 (docs/strategies.md has
the rule, ties and edges). Each stage is computed from the measured results,
so rerunning the same command resumes. --thesis-grids replays the thesis'
exact 13 depths instead.
"""

from __future__ import annotations

import argparse

EPILOG = """examples:
  depth-tuner narrow --dataset tf_flowers                  # stages 0,10,30,60,100 / steps of 5 / best +-2
  depth-tuner narrow --dataset tf_flowers --thesis-grids   # the thesis' exact 13 depths
  depth-tuner narrow --dataset tf_flowers --fake-data --weights none --image-size 32   # offline smoke run
  depth-tuner show --study tf_flowers-narrowing            # the stored result
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.cli.search import add_run_arguments

    add_run_arguments(p, strategy=False)
    p.add_argument("--thesis-grids", action="store_true",
                   help="train the thesis' exact depths (0,10,30,60,100 / 5..25 / 3-7 or 18-22)")


def run(args: argparse.Namespace) -> int:
    from tuner.cli.search import run_strategy

    name = "thesis-grids" if args.thesis_grids else "narrowing"
    return run_strategy(args, strategy=name, study_suffix=f"-{name}")
