"""A whole default search, plain against cached, through the CLI a user runs.

"plain" is the search before issue 30 (``--trial-mode plain --stop-early
off``); "cached" is today's default (cached trials, stops after an epoch;
``--cached-stops off`` leaves the stops out).

Each run is a fresh study (its own storage, cache and head phase) made by
``depth-tuner search`` with the default strategy and ``--trials``; the runs
alternate between the modes (``--order``) so both see the same machine.
Prints each run's wall clock (the command, TensorFlow's start-up included),
the best depth it found and every trial's depth and cost
(``search_seconds``); writes one row per trial to a CSV. While a search
runs, its process tree and activation cache are read every ``--poll``
seconds: the peak memory (VmHWM, the kernel's high-water mark of RSS) of
the worker (the ``depth-tuner search`` process) and of its trial process
(``python -m tuner.trials.process``, its child), and the cache's peak size
on disk. ``--limit`` stops a search that runs longer (SIGTERM, which
``depth-tuner`` takes as Ctrl-C: the trials measured so far stay in its
study) and reports it as partial.

    python benchmarks/digits_folder.py --out /tmp/digits160 --size 160
    python benchmarks/whole_search.py --dataset /tmp/digits160 \\
        --weights /tmp/digits160.weights.h5 --image-size 160 --order cached,plain,cached

The README's main command, ImageNet weights through Keras' cache (the path
users take: ``--weights imagenet``, the search's learning rates), e.g.
with ``benchmarks/imagenet_weights.py --keras-home /tmp/keras_home``:

    python benchmarks/whole_search.py --dataset /tmp/digits224c5 --weights imagenet \\
        --keras-home /tmp/keras_home --image-size 224 --head-lr default --finetune-lr default \\
        --order cached,plain
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
import threading
import time

# The command a user runs, from the same environment as this interpreter.
CLI = os.path.join(os.path.dirname(sys.executable), "depth-tuner")


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(root: int) -> list[int]:
    """``root``'s child processes and theirs, from /proc/*/stat."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    parent[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [root]
    while frontier:
        kids = [pid for pid, ppid in parent.items() if ppid in frontier]
        found += kids
        frontier = kids
    return found


def _load() -> str:
    """The 1, 5 and 15 minute load averages, as uptime shows them."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _on_disk(folder: str) -> int:
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:
                continue
    return total


class Watch(threading.Thread):
    """Peak memory of a search's worker and trial process, and its cache's peak size on disk."""

    def __init__(self, pid: int, cache: str, every: float):
        super().__init__(daemon=True)
        self.pid, self.cache, self.every = pid, cache, every
        self.peak = {"worker": 0, "trial process": 0, "other": 0}  # VmHWM, KiB
        self.cache_bytes = 0
        self.done = threading.Event()

    def role(self, pid: int) -> str:
        if pid == self.pid:
            return "worker"
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().split(b"\0")
        except OSError:
            return "other"
        return "trial process" if b"tuner.trials.process" in command else "other"

    def run(self) -> None:
        while not self.done.is_set():
            for pid in [self.pid, *_descendants(self.pid)]:
                role = self.role(pid)
                self.peak[role] = max(self.peak[role], _status_kib(pid, "VmHWM"))
            self.cache_bytes = max(self.cache_bytes, _on_disk(self.cache))
            self.done.wait(self.every)


def _recorded(storage: str, study: str) -> dict:
    """Trial number -> the trial process's VmHWM (MiB) the study stored after that trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    found = {t.number: t.user_attrs.get("process_peak_rss_mib") for t in trials}
    return {k: float(v) for k, v in found.items() if v is not None}


def read_study(storage: str, name: str) -> dict:
    """``depth-tuner show --all`` of a study, its trained and ruled-out trials apart, with the
    trial process's memory the study stored after each trial (``process_peak_rss_mib``)."""
    shown = subprocess.run([CLI, "show", "--format", "json", "--all", "--study", name, "--storage", storage],
                           check=True, capture_output=True, text=True)
    study = json.loads(shown.stdout)
    recorded = _recorded(storage, name)
    for t in study["trials"]:
        t["process_peak_rss_mib"] = recorded.get(t.get("number"))
    study["recorded_peak_mib"] = max(recorded.values(), default=None)
    every = study["trials"]
    study["trials"] = [t for t in every if t["state"] == "COMPLETE" and t["trained"]]
    study["stopped"] = [t for t in every if t["state"] == "PRUNED" and _stopped(t)]
    study["ruled_out"] = [t for t in every if t["state"] == "PRUNED" and not _stopped(t)]
    return study


def _stopped(trial: dict) -> bool:
    return (trial.get("note") or "").startswith("stopped early")


def _stop_epoch(trial: dict) -> str:
    """"epoch 1" of a stopped trial's note "stopped early: epoch 1: 0.27, needed ..."."""
    return (trial.get("note") or "").removeprefix("stopped early: ").split(":")[0]


def run_search(mode: str, index: int, args, work: str) -> dict:
    folder = os.path.join(work, f"{index}-{mode}")
    os.makedirs(folder)
    storage = f"sqlite:///{folder}/study.db"
    name = f"whole-{mode}-{index}"
    common = ["--study", name, "--storage", storage]
    cache = os.path.join(folder, "cache")
    command = [CLI, "search", "--dataset", args.dataset,
               "--weights", args.weights, "--image-size", str(args.image_size),
               *(["--head-lr", args.head_lr] if args.head_lr != "default" else []),
               *(["--finetune-lr", args.finetune_lr] if args.finetune_lr != "default" else []),
               "--trials", str(args.trials), "--trial-mode", mode,
               "--stop-early", "on" if mode == "cached" and args.cached_stops == "on" else "off",
               *(["--head-epochs", str(args.head_epochs)] if args.head_epochs else []),
               "--cache-dir", cache, "--quiet", *common]
    env = dict(os.environ, **({"KERAS_HOME": args.keras_home} if args.keras_home else {}))
    print("  " + " ".join(command), flush=True)
    load_before = _load()
    print(f"  {time.strftime('%H:%M:%S')} load average {load_before}", flush=True)
    t0 = time.perf_counter()
    search = subprocess.Popen(command, env=env)
    watch = Watch(search.pid, cache, args.poll)
    watch.start()
    try:
        code, stopped = search.wait(timeout=args.limit), False
    except subprocess.TimeoutExpired:
        search.terminate()
        code, stopped = search.wait(), True
    wall = time.perf_counter() - t0
    watch.done.set()
    watch.join()
    load_after = _load()
    print(f"  {time.strftime('%H:%M:%S')} load average {load_after}", flush=True)
    if code and not (stopped and code == 130):  # 130: depth-tuner stopped as asked
        raise subprocess.CalledProcessError(code, command)
    study = read_study(storage, name)
    shutil.rmtree(os.path.join(folder, "cache"), ignore_errors=True)
    if args.keep:  # the study itself, for what the summary leaves out (probe_seconds, ...)
        os.makedirs(args.keep, exist_ok=True)
        shutil.copy(os.path.join(folder, "study.db"), os.path.join(args.keep, f"{index}-{mode}.db"))
    memory = {"worker_peak_mib": watch.peak["worker"] / 1024,
              "trial_process_peak_mib": watch.peak["trial process"] / 1024,
              "cache_peak_gib": watch.cache_bytes / 2**30}
    return {"mode": mode, "run": index, "wall": wall, "stopped": stopped, "study": study, "memory": memory,
            "load_before": load_before, "load_after": load_after}


def write_csv(path: str, runs: list[dict]) -> None:
    """One row per trained or ruled-out trial of every run."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "mode", "wall_seconds", "stopped", "best_depth", "trial", "depth", "search_seconds",
                    "protocol_seconds", "val_accuracy", "price", "price_sd", "price_miss", "ruled_out", "stopped_early",
                    "note", "worker_peak_rss_mib", "trial_process_peak_rss_mib", "cache_peak_gib",
                    "recorded_trial_process_peak_mib", "load_before", "load_after"])
        for r in runs:
            m = r["memory"]
            for t in r["study"]["trials"] + r["study"]["stopped"] + r["study"]["ruled_out"]:
                w.writerow([r["run"], r["mode"], f"{r['wall']:.1f}", r["stopped"], r["study"].get("best_depth"),
                            t.get("number"), t.get("depth"), t.get("search_seconds"),
                            t.get("protocol_seconds"), t.get("val_accuracy"), t.get("price"),
                            t.get("price_sd"), t.get("price_miss"), t in r["study"]["ruled_out"],
                            t in r["study"]["stopped"], t.get("note"),
                            f"{m['worker_peak_mib']:.0f}", f"{m['trial_process_peak_mib']:.0f}",
                            f"{m['cache_peak_gib']:.3f}", t.get("process_peak_rss_mib"),
                            r["load_before"], r["load_after"]])


def print_tables(runs: list[dict], image_size: int, trials: int) -> None:
    print(f"\n{image_size} px, {trials} trials; wall clock of `depth-tuner search`\n")
    print("| run | mode | wall clock | best depth (within noise) | trials (depth: took s; * priced between "
          "read depths, not probed) | stopped (depth: after epoch, took s) | ruled out |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        s = r["study"]
        trials = ", ".join(f"{t.get('depth')}{'*' if 'priced between' in (t.get('note') or '') else ''}: "
                           f"{float(t.get('search_seconds') or 0):.1f}" for t in s["trials"])
        ruled = ", ".join(str(t.get("depth")) for t in s["ruled_out"]) or "none"
        stopped = ", ".join(f"{t.get('depth')}: {_stop_epoch(t)}, {float(t.get('search_seconds') or 0):.1f}"
                            for t in s["stopped"]) or "none"
        near = ", ".join(map(str, s.get("within_noise") or [])) or "none"
        wall = f"{r['wall']:.0f} s" + (" (stopped: partial)" if r["stopped"] else "")
        print(f"| {r['run']} | {r['mode']} | {wall} | {s.get('best_depth')} ({near}) | {trials} | {stopped} | {ruled} |")
    for r in runs:  # the cost model's estimate before each trial trained, against what it measured
        misses = [float(t["price_miss"]) for t in r["study"]["trials"] if t.get("price_miss") is not None]
        if misses:
            print(f"run {r['run']} ({r['mode']}): measured against the price given before training, "
                  f"median {statistics.median(misses):+.1%}, range {min(misses):+.1%} to {max(misses):+.1%} "
                  f"over {len(misses)} trials")
    print("\n| run | mode | peak RSS worker | peak RSS trial process (as the study stored it) "
          "| cache peak on disk | load average before / after |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        m = r["memory"]
        print(f"| {r['run']} | {r['mode']} | {m['worker_peak_mib']:.0f} MiB | {m['trial_process_peak_mib']:.0f} MiB "
              f"({r['study'].get('recorded_peak_mib') or 0:.0f}) | {m['cache_peak_gib']:.2f} GiB "
              f"| {r['load_before']} / {r['load_after']} |")
    walls = {m: [r["wall"] for r in runs if r["mode"] == m and not r["stopped"]] for m in ("plain", "cached")}
    if all(walls.values()):
        plain, cached = statistics.median(walls["plain"]), statistics.median(walls["cached"])
        print(f"\nmedian wall clock plain {plain:.0f} s / cached {cached:.0f} s = {plain / cached:.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="a folder of class sub-folders")
    p.add_argument("--weights", default="imagenet",
                   help="a weights file, or imagenet (the search's default: Keras' cache, see --keras-home)")
    p.add_argument("--keras-home", default=None,
                   help="KERAS_HOME for the searches: its models/ holds Keras' imagenet file "
                        "(benchmarks/imagenet_weights.py --keras-home)")
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--trials", type=int, default=13)
    p.add_argument("--head-epochs", type=int, default=None, help="the search's default if not given")
    p.add_argument("--head-lr", default="1e-3",
                   help="'default': pass none, the search's own (1e-4, for ImageNet weights)")
    p.add_argument("--finetune-lr", default="1e-4",
                   help="'default': pass none, the search's own (1e-5, for ImageNet weights)")
    p.add_argument("--cached-stops", choices=("on", "off"), default="on",
                   help="stops after an epoch in the cached runs (plain runs never stop: the search before them)")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between readings of memory and cache")
    p.add_argument("--order", default="cached,plain,cached", help="modes, one run each, in this order")
    p.add_argument("--limit", type=float, default=None,
                   help="seconds: stop a search still running then, and report it as partial")
    p.add_argument("--csv", default="benchmarks/out/whole_search.csv")
    p.add_argument("--keep", default=None, help="a folder to copy each run's study.db into")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="whole-search-")
    runs = []
    for i, mode in enumerate(args.order.split(",")):
        print(f"run {i}: {mode} ...", flush=True)
        runs.append(run_search(mode, i, args, work))
        r = runs[-1]
        m = r["memory"]
        print(f"run {i}: {mode} {'stopped after' if r['stopped'] else 'took'} {r['wall']:.0f} s, best depth "
              f"{r['study'].get('best_depth')}; peak RSS worker {m['worker_peak_mib']:.0f} MiB, trial process "
              f"{m['trial_process_peak_mib']:.0f} MiB, cache {m['cache_peak_gib']:.2f} GiB", flush=True)
    write_csv(args.csv, runs)
    print_tables(runs, args.image_size, args.trials)
    print(f"trials written to {args.csv}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
