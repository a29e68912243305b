"""Memory over one search: the worker's and the trial process's RSS after every trial.

Runs a real search (fake data, random weights, 1+1 epochs) twice, side by
side: trials in the long-lived trial process (the default; replaced when its
memory has grown by 1.5 GiB) and trials in the worker's process
(``--in-process``), and prints RSS figures read from /proc:

    python benchmarks/memory.py --trials 24 --image-size 64 --trial-mode cached
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import optuna

from tuner.data.sources import resolve_data_spec
from tuner.model.protocol import Protocol
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.search.config import SearchConfig
from tuner.search.one_pass import run_search
from tuner.store.study import measured_trials
from tuner.trials.process import proc_status_mib


def rss_mib() -> float:
    return proc_status_mib("VmRSS")


class MemoryReporter(Reporter):
    def __init__(self):
        super().__init__(quiet=True)
        self.rss: list[float] = []

    def trial_done(self, **_):
        self.rss.append(rss_mib())


def run(trials: int, image_size: int, isolate: bool, mode: str) -> tuple[list[float], list[float]]:
    config = SearchConfig(
        data=resolve_data_spec(dataset="tf_flowers", fake=True, fake_examples=(64, 32)),
        protocol=Protocol(weights=None, image_size=image_size, head_epochs=1, finetune_epochs=1),
        strategy="random", space=DepthSpace(0, 154, "linear"), trial_mode=mode,
    )
    reporter = MemoryReporter()
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/m.db"
        run_search(config=config, study_name="memory", storage=storage, trials=trials,
                   reporter=reporter, isolate=isolate, cache_dir=os.path.join(tmp, "cache"))
        study = optuna.load_study(study_name="memory", storage=storage)
        peaks = [t.user_attrs.get("process_rss_mib", float("nan")) for t in measured_trials(study)]
    return reporter.rss, peaks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--trial-mode", default="cached", choices=["cached", "plain"])
    args = p.parse_args()
    print(f"worker RSS before any search: {rss_mib():.0f} MiB")
    isolated, peaks = run(args.trials, args.image_size, isolate=True, mode=args.trial_mode)
    inproc, _ = run(args.trials, args.image_size, isolate=False, mode=args.trial_mode)
    print("\n| trial | worker RSS, trial process (MiB) | trial process RSS after it (MiB) "
          "| worker RSS, --in-process (MiB) |\n|---|---|---|---|")
    for i, (a, b, c) in enumerate(zip(isolated, peaks, inproc), start=1):
        print(f"| {i} | {a:.0f} | {b:.0f} | {c:.0f} |")
    for name, xs in (("worker, trial process", isolated), ("trial process itself", peaks),
                     ("--in-process", inproc)):
        print(f"{name}: first {xs[0]:.0f} MiB, last {xs[-1]:.0f} MiB, "
              f"{(xs[-1] - xs[0]) / (len(xs) - 1):+.1f} MiB per trial")


if __name__ == "__main__":
    main()
