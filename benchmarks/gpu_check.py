"""One check for whoever has a TensorFlow GPU machine: a plain and a cached trial at 224 px.

Runs ``depth-tuner search --trials 1`` once per trial mode, as a user
would, each a fresh study on generated images (``--fake-data``; the device
work is what is checked, not the answer), and polls ``nvidia-smi`` every
half second for the GPU memory each process holds. Prints, per mode: where
training ran (the search's own start-up line), the wall clock, the trial's
seconds, and the peak GPU memory of the worker and of its trial process.
What to expect is in benchmarks/RESULTS.md ("A GPU check"): the worker holds
no GPU memory, the trial process holds what it needs (memory growth), and
both trials train on the GPU.

    python benchmarks/gpu_check.py                       # ImageNet weights (downloads once)
    python benchmarks/gpu_check.py --weights none --image-size 224 --gpu 0
    python benchmarks/gpu_check.py --allow-cpu --image-size 32 --weights none   # the script itself, no GPU
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

CLI = os.path.join(os.path.dirname(sys.executable), "depth-tuner")


def gpu_memory_by_pid() -> dict[int, float]:
    """MiB of GPU memory each process holds now, from nvidia-smi (every GPU)."""
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    held: dict[int, float] = {}
    for line in out.strip().splitlines():
        pid, _, mib = line.partition(",")
        try:
            held[int(pid)] = held.get(int(pid), 0.0) + float(mib)
        except ValueError:
            continue
    return held


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class Poll(threading.Thread):
    """Peak GPU MiB of the worker and of any process below it (its trial process)."""

    def __init__(self, worker: int, smi: bool):
        super().__init__(daemon=True)
        self.worker, self.smi = worker, smi
        self.peak = {"worker": 0.0, "trial process": 0.0}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            if not self.smi:
                continue
            held = gpu_memory_by_pid()
            below = children(self.worker)
            self.peak["worker"] = max(self.peak["worker"], held.get(self.worker, 0.0))
            self.peak["trial process"] = max(self.peak["trial process"], sum(held.get(p, 0.0) for p in below))


def one_trial(mode: str, args, work: str, smi: bool) -> dict:
    folder = os.path.join(work, mode)
    os.makedirs(folder)
    common = ["--study", f"gpu-check-{mode}", "--storage", f"sqlite:///{folder}/study.db"]
    command = [CLI, "search", "--dataset", "tf_flowers", "--fake-data", "--weights", args.weights,
               "--image-size", str(args.image_size), "--trials", "1", "--trial-mode", mode,
               "--min-depth", str(args.depth), "--max-depth", str(args.depth),
               "--cache-dir", os.path.join(folder, "cache"), *common,
               *(["--gpu", str(args.gpu)] if args.gpu is not None else []),
               *(["--jit-compile"] if args.jit_compile else [])]
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    poll = Poll(proc.pid, smi)
    poll.start()
    lines = []
    for line in proc.stderr:
        lines.append(line.rstrip())
        if args.verbose:
            print(line, end="", file=sys.stderr)
    proc.wait()
    poll.done.set()
    poll.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{mode}: depth-tuner search failed ({proc.returncode}):\n" + "\n".join(lines[-5:]))
    shown = json.loads(subprocess.run([CLI, "show", "--format", "json", *common], check=True,
                                      capture_output=True, text=True).stdout)
    (trial,) = shown["trials"]
    where = next((line.split("] ", 1)[1] for line in lines if "training on " in line), "?")
    return {"mode": mode, "where": where, "wall": wall, "protocol_seconds": trial["protocol_seconds"],
            "search_seconds": trial["search_seconds"], "val_accuracy": trial["val_accuracy"],
            "gpu_mib": dict(poll.peak)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="imagenet")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--depth", type=int, default=30, help="the one depth both trials train")
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--jit-compile", action="store_true")
    p.add_argument("--allow-cpu", action="store_true", help="run without nvidia-smi (checks the script only)")
    p.add_argument("--verbose", action="store_true", help="the searches' progress lines too")
    args = p.parse_args()
    smi = shutil.which("nvidia-smi") is not None
    if not smi and not args.allow_cpu:
        sys.exit("nvidia-smi not found: this check is for a machine with an NVIDIA GPU "
                 "(--allow-cpu runs it anyway, without GPU memory figures)")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        rows = [one_trial(mode, args, work, smi) for mode in ("plain", "cached")]
    print(f"{args.image_size} px, depth {args.depth}, weights {args.weights}"
          f"{', XLA' if args.jit_compile else ''}")
    for r in rows:
        print(f"  {r['where']}")
        memory = (f"GPU memory peak: worker {r['gpu_mib']['worker']:.0f} MiB, "
                  f"trial process {r['gpu_mib']['trial process']:.0f} MiB" if smi else "no nvidia-smi: no GPU figures")
        print(f"  {r['mode']:>6}: wall {r['wall']:.1f} s, trial {r['search_seconds']:.1f} s "
              f"(plain protocol {r['protocol_seconds']:.1f} s), val_accuracy {r['val_accuracy']:.3f}; {memory}")
    if smi and any(r["gpu_mib"]["worker"] > 0 for r in rows):
        print("UNEXPECTED: the worker held GPU memory (it should hide every GPU from itself)")
    if smi and not all(r["where"].startswith("training on GPU") for r in rows):
        print("UNEXPECTED: a trial did not train on the GPU (see its start-up line above)")


if __name__ == "__main__":
    main()
