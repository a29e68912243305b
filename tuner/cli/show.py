"""Show a stored study: its measured trials, and the best depth by its objective."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", help="Optuna storage URL or PATH.log (default sqlite:///studies/STUDY.db)")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("--all", action="store_true",
                   help="also failed, running and repeated (not retrained) suggestions")


def print_study(*, study: str, storage: str | None, fmt: str = "table", include_all: bool = False,
                out=None) -> None:
    from tuner.provenance import provenance_note
    from tuner.study import load_stored_study, recorded_config
    from tuner.summary import best_trial_row, trials_frame

    out = out or sys.stdout
    s = load_stored_study(study, storage=storage)
    frame = trials_frame(s, include_all=include_all)
    best = best_trial_row(frame)
    config = recorded_config(s)
    if fmt == "csv":
        frame.to_csv(out, index=False)
        return
    if fmt == "json":
        json.dump({
            "study": study, "config": config,
            "best": None if best is None else {k: _plain(v) for k, v in best.items()},
            "trials": json.loads(frame.to_json(orient="records")),
        }, out, indent=2)
        out.write("\n")
        return
    data = config.get("data", {})
    fake = " (FAKE data)" if data.get("source") == "fake" else ""
    print(f"study {study}: {data.get('name')}{fake}, {config.get('protocol', {}).get('backbone')}, "
          f"objective {config.get('objective')}, sampler {config.get('sampler')}", file=out)
    note = provenance_note(config)
    if frame.empty:
        print("no measured trials yet", file=out)
        if note:
            print(note, file=out)
        return
    shown = frame.drop(columns=["fit_seconds", "steady_seconds", "trainable_params", "trained"])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}", na_rep="-"), file=out)
    if best is not None:
        print(f"best depth: {int(best['depth'])} ({config.get('objective')} {best['value']:.6g}, "
              f"val_accuracy {best['val_accuracy']:.4f}, {best['protocol_seconds']:.1f} s in the plain protocol, trial #{int(best['number'])})",
              file=out)
    if note:
        print(note, file=out)


def _plain(v):
    try:
        return v.item()
    except AttributeError:
        return v


def run(args: argparse.Namespace) -> int:
    print_study(study=args.study, storage=args.storage, fmt=args.format, include_all=args.all)
    return 0
