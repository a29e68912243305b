"""Train every listed depth (optionally several times) into a stored study.

For measured landscapes: `--depths 0-40` (up to the backbone's layers) or `--depths 0,5,10-30:2`. A depth
that trains exactly the same weights as one already measured (layers without
weights) is not trained again: it is recorded as equivalent (show --all).
Rerunning the same command resumes; a longer list or more --repeats extends.
"""

from __future__ import annotations

import argparse

EPILOG = """examples:
  depth-tuner sweep --dataset tf_flowers --depths 0-40 --repeats 3   # a measured landscape
  depth-tuner sweep --dataset tf_flowers --depths 0,5,10-30:2        # lists, ranges, ranges with a step
  depth-tuner compare --landscape study:tf_flowers-sweep            # replay strategies on it
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.cli.options import positive_int
    from tuner.cli.search import add_run_arguments

    add_run_arguments(p, strategy=False)
    p.add_argument("--depths", required=True, help="depths to train: ranges and lists, e.g. 0-40, 0,5,10, 0-100:10 "
                   "(within 0..the backbone's layers, or --min-depth..--max-depth)")
    p.add_argument("--repeats", type=positive_int, default=1,
                   help="measurements per depth; each repeat trains with a seed of its own, so "
                   "repeats show seed and timing noise")


def run(args: argparse.Namespace) -> int:
    from tuner.cli.search import run_strategy
    from tuner.errors import UsageError
    from tuner.strategies.registry import parse_depths

    if args.repeats < 1:
        raise UsageError("--repeats must be 1 or more")
    # The range is the backbone's (or --min-depth/--max-depth): checked again by the strategy.
    depths = parse_depths(args.depths, low=0, high=10**6)
    return run_strategy(args, strategy="sweep", study_suffix="-sweep", depths=depths,
                        repeats=args.repeats)
