"""A whole default search, plain against cached, through the CLI a user runs.

Each run is a fresh study (its own storage, cache and head phase) made by
``depth-tuner search`` with the default strategy and ``--trials``; the runs
alternate between the modes (``--order``) so both see the same machine.
Prints each run's wall clock (the command, TensorFlow's start-up included),
the best depth it found and every trial's depth and cost
(``search_seconds``); writes one row per trial to a CSV.

    python benchmarks/digits_folder.py --out /tmp/digits160 --size 160
    python benchmarks/whole_search.py --dataset /tmp/digits160 \\
        --weights /tmp/digits160.weights.h5 --image-size 160 --order cached,plain,cached
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The command a user runs, from the same environment as this interpreter.
CLI = os.path.join(os.path.dirname(sys.executable), "depth-tuner")


def run_search(mode: str, index: int, args, work: str) -> dict:
    folder = os.path.join(work, f"{index}-{mode}")
    os.makedirs(folder)
    storage = f"sqlite:///{folder}/study.db"
    common = ["--study", f"whole-{mode}-{index}", "--storage", storage]
    command = [CLI, "search", "--dataset", args.dataset,
               "--weights", args.weights, "--image-size", str(args.image_size),
               "--head-lr", args.head_lr, "--finetune-lr", args.finetune_lr,
               "--trials", str(args.trials), "--trial-mode", mode,
               *(["--head-epochs", str(args.head_epochs)] if args.head_epochs else []),
               "--cache-dir", os.path.join(folder, "cache"), "--quiet", *common]
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - t0
    shown = subprocess.run([CLI, "show", "--format", "json", "--all", *common],
                           check=True, capture_output=True, text=True)
    study = json.loads(shown.stdout)
    every = study["trials"]
    study["trials"] = [t for t in every if t["state"] == "COMPLETE" and t["trained"]]
    study["ruled_out"] = [t for t in every if t["state"] == "PRUNED"]
    shutil.rmtree(os.path.join(folder, "cache"), ignore_errors=True)
    if args.keep:  # the study itself, for what the summary leaves out (probe_seconds, ...)
        os.makedirs(args.keep, exist_ok=True)
        shutil.copy(os.path.join(folder, "study.db"), os.path.join(args.keep, f"{index}-{mode}.db"))
    return {"mode": mode, "run": index, "wall": wall, "study": study}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="a folder of class sub-folders")
    p.add_argument("--weights", required=True)
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--trials", type=int, default=13)
    p.add_argument("--head-epochs", type=int, default=None, help="the search's default if not given")
    p.add_argument("--head-lr", default="1e-3", help="1e-4 (the default of search) for ImageNet weights")
    p.add_argument("--finetune-lr", default="1e-4", help="1e-5 (the default of search) for ImageNet weights")
    p.add_argument("--order", default="cached,plain,cached", help="modes, one run each, in this order")
    p.add_argument("--csv", default="benchmarks/out/whole_search.csv")
    p.add_argument("--keep", default=None, help="a folder to copy each run's study.db into")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="whole-search-")
    runs = []
    for i, mode in enumerate(args.order.split(",")):
        print(f"run {i}: {mode} ...", flush=True)
        runs.append(run_search(mode, i, args, work))
        r = runs[-1]
        print(f"run {i}: {mode} took {r['wall']:.0f} s, best depth {r['study'].get('best_depth')}", flush=True)

    os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "mode", "wall_seconds", "best_depth", "trial", "depth", "search_seconds",
                     "protocol_seconds", "val_accuracy", "price", "price_sd", "price_miss", "ruled_out",
                     "note"])
        for r in runs:
            for t in r["study"]["trials"] + r["study"]["ruled_out"]:
                w.writerow([r["run"], r["mode"], f"{r['wall']:.1f}", r["study"].get("best_depth"),
                            t.get("number"), t.get("depth"), t.get("search_seconds"),
                            t.get("protocol_seconds"), t.get("val_accuracy"), t.get("price"),
                            t.get("price_sd"), t.get("price_miss"), t["state"] == "PRUNED", t.get("note")])

    print(f"\n{args.image_size} px, {args.trials} trials; wall clock of `depth-tuner search`\n")
    print("| run | mode | wall clock | best depth (within noise) | trials (depth: took s; * priced between "
          "read depths, not probed) | ruled out |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        s = r["study"]
        trials = ", ".join(f"{t.get('depth')}{'*' if 'priced between' in (t.get('note') or '') else ''}: "
                           f"{float(t.get('search_seconds') or 0):.1f}" for t in s["trials"])
        ruled = ", ".join(str(t.get("depth")) for t in s["ruled_out"]) or "none"
        near = ", ".join(map(str, s.get("within_noise") or [])) or "none"
        print(f"| {r['run']} | {r['mode']} | {r['wall']:.0f} s | {s.get('best_depth')} ({near}) | {trials} "
              f"| {ruled} |")
    for r in runs:  # the cost model's estimate before each trial trained, against what it measured
        misses = [float(t["price_miss"]) for t in r["study"]["trials"] if t.get("price_miss") is not None]
        if misses:
            print(f"run {r['run']} ({r['mode']}): measured against the price given before training, "
                  f"median {statistics.median(misses):+.1%}, range {min(misses):+.1%} to {max(misses):+.1%} "
                  f"over {len(misses)} trials")
    walls = {m: [r["wall"] for r in runs if r["mode"] == m] for m in ("plain", "cached")}
    if all(walls.values()):
        plain, cached = statistics.median(walls["plain"]), statistics.median(walls["cached"])
        print(f"\nmedian wall clock plain {plain:.0f} s / cached {cached:.0f} s = {plain / cached:.1f}x")
    print(f"trials written to {args.csv}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
