"""Show a stored study: its measured trials, and the best depth by its objective."""

from __future__ import annotations

import argparse
import json
import sys

from tuner import stored_keys as keys

EPILOG = """examples:
  depth-tuner show --study tf_flowers                     # table of trials, best depth
  depth-tuner show --study tf_flowers --all               # also failed and repeated suggestions
  depth-tuner show --study tf_flowers --format csv > trials.csv
  DEPTH_TUNER_STUDIES=~/depth-studies depth-tuner show --study tf_flowers   # from any folder
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.cli.options import STORAGE_HELP

    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--format", default="table", choices=["table", "csv", "json"],
                   help="table for reading, csv or json for scripts")
    p.add_argument("--all", action="store_true",
                   help="also failed, running, repeated (not retrained) and ruled-out suggestions, "
                        "and the price each depth was given before it trained")


def print_study(*, study: str, storage: str | None, fmt: str = "table", include_all: bool = False,
                out=None) -> None:
    """Table (or csv/json) of the trials; the answer (best depth ± interval, within noise) under it."""
    from tuner.analysis.summary import (
        best_trial_row,
        busy_line,
        devices_line,
        ruled_out_line,
        stopped_line,
        study_answer,
        trials_frame,
    )
    from tuner.store.provenance import provenance_note
    from tuner.store.storage import load_stored_study
    from tuner.store.study import recorded_config

    out = out or sys.stdout
    s = load_stored_study(study, storage=storage)
    frame = trials_frame(s, include_all=include_all)
    answer = study_answer(s)
    best = None if answer is None else best_trial_row(frame, depth=answer.best_depth)
    config = recorded_config(s)
    if fmt == "csv":
        frame.to_csv(out, index=False)
        return
    if fmt == "json":
        fields = answer.as_dict() if answer is not None else {
            "objective": config.get("objective"), "best_depth": None, "best_value": None,
            "best_interval": None, "within_noise": [],
        }
        json.dump({
            "study": study, "config": config, **fields, "devices_note": devices_line(s) or None,
            "stopped_note": stopped_line(s) or None,
            "best": None if best is None else {k: _plain(v) for k, v in best.items()},
            "trials": json.loads(frame.to_json(orient="records")),
        }, out, indent=2)
        out.write("\n")
        return
    data = config.get("data", {})
    fake = " (FAKE data)" if data.get("source") == "fake" else ""
    print(f"study {study}: {data.get('name')}{fake}, {config.get('protocol', {}).get('backbone')}, "
          f"objective {config.get('objective')}, strategy {config.get(keys.CONFIG_STRATEGY)}", file=out)
    note = provenance_note(config)
    if note:
        print(note, file=out)
    if frame.empty:
        print("no measured trials yet", file=out)
        return
    hidden = ["fit_seconds", "steady_seconds", "trainable_params", "trained"]
    if not include_all:
        hidden += ["price_low", "price_high", "price", "price_sd", "price_miss"]
    shown = frame.drop(columns=hidden)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}", na_rep="-"), file=out)
    if answer is not None:
        print(answer.line(), file=out)
        if answer.choices_line():
            print(answer.choices_line(), file=out)
    for line in (ruled_out_line(s), stopped_line(s), busy_line(s), devices_line(s)):
        if line:
            print(line, file=out)


def _plain(v):
    try:
        return v.item()
    except AttributeError:
        return v


def run(args: argparse.Namespace) -> int:
    print_study(study=args.study, storage=args.storage, fmt=args.format, include_all=args.all)
    return 0
