"""Memory over one search: resident memory of the worker and its trial process, per trial.

Runs a real search (fake data, random weights, 1+1 epochs, random depths over
the whole of MobileNetV2) in each trial mode and prints, per trained trial,
the worker's resident memory, the trial process's resident memory and its peak
(VmHWM, since that process started), and their sum: the peak the machine had
to hold for that trial. The growth per trial is the least-squares slope of that
sum over the trials, and the mean of the last four against the first three (the
peak is a running maximum; the slope of what both hold after each trial is printed too):

    python benchmarks/memory.py --trials 20 --image-size 32
    python benchmarks/memory.py --trials 20 --image-size 32 --in-process   # no trial process
    python benchmarks/memory.py --trials 3 --image-size 224 --backbone ResNet50
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import optuna

from tuner.data.sources import resolve_data_spec
from tuner.model.protocol import TrainingProtocol
from tuner.model.signatures import n_layers
from tuner.model.space import DepthSpace
from tuner.progress import Reporter
from tuner.search.config import SearchConfig
from tuner.search.one_pass import run_search
from tuner.store.trials import measured_trials
from tuner.trials.process import proc_status_mib


class MemoryReporter(Reporter):
    """Reads the worker's resident memory as each trial ends."""

    def __init__(self):
        super().__init__(quiet=True)
        self.rss: list[float] = []

    def trial_done(self, **_):
        self.rss.append(proc_status_mib("VmRSS"))


def run(trials: int, image_size: int, mode: str, in_process: bool, backbone: str = "MobileNetV2",
        examples: tuple[int, int] = (64, 32)) -> list[dict[str, float]]:
    """One search; per trained trial (in order) the worker's and the trial process's memory."""
    config = SearchConfig(
        data=resolve_data_spec(dataset="tf_flowers", fake=True, fake_examples=examples),
        protocol=TrainingProtocol(backbone=backbone, weights=None, image_size=image_size, head_epochs=1,
                          finetune_epochs=1),
        strategy="random", space=DepthSpace(0, n_layers(backbone), "linear"), trial_mode=mode,
    )
    reporter = MemoryReporter()
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/m.db"
        run_search(config=config, study_name="memory", storage=storage, trials=trials,
                   reporter=reporter, in_process=in_process, cache_dir=os.path.join(tmp, "cache"))
        study = optuna.load_study(study_name="memory", storage=storage)
        rows = [{"depth": t.params["depth"],
                 "child": t.user_attrs.get("process_rss_mib", 0.0),
                 "child_peak": t.user_attrs.get("process_peak_rss_mib", 0.0)}
                for t in sorted(measured_trials(study), key=lambda t: t.number)]
    for row, worker in zip(rows, reporter.rss):
        row["worker"] = worker
        row["sum"] = worker + row["child_peak"]
    return rows


def slope(ys: list[float]) -> float:
    """Least-squares MiB per trial."""
    xs = range(len(ys))
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--modes", default="cached,plain", help="trial modes to run, in order")
    p.add_argument("--backbone", default="MobileNetV2")
    p.add_argument("--examples", default="64,32", help="fake training,validation images")
    p.add_argument("--in-process", action="store_true", help="train in the worker's own process")
    args = p.parse_args()
    print(f"worker RSS before any search: {proc_status_mib('VmRSS'):.0f} MiB")
    for mode in args.modes.split(","):
        examples = tuple(int(n) for n in args.examples.split(","))
        rows = run(args.trials, args.image_size, mode, in_process=args.in_process, backbone=args.backbone,
                   examples=examples)
        print(f"\n{args.backbone} at {args.image_size} px, {mode} mode, {len(rows)} trained trials"
              f"{' in the worker process' if args.in_process else ''}:\n")
        print("| trial | depth | worker RSS | trial process RSS | its peak | worker + peak (MiB) |")
        print("|---|---|---|---|---|---|")
        for i, r in enumerate(rows, start=1):
            print(f"| {i} | {r['depth']} | {r['worker']:.0f} | {r['child']:.0f} | {r['child_peak']:.0f} "
                  f"| {r['sum']:.0f} |")
        sums = [r["sum"] for r in rows]
        first, last = statistics.fmean(sums[:3]), statistics.fmean(sums[-4:])
        span = (len(sums) - 2.5) - 1  # from the middle of the first three to that of the last four
        print(f"\n{mode}: worker + trial process peak {min(sums):.0f}-{max(sums):.0f} MiB; "
              f"slope {slope(sums):+.1f} MiB per trial; last four against first three "
              f"{(last - first) / span:+.1f} MiB per trial; worker + trial process after each trial: "
              f"slope {slope([r['worker'] + r['child'] for r in rows]):+.1f} MiB per trial")


if __name__ == "__main__":
    main()
