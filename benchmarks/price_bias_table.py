"""The price against plain, from a ``cached_trials.py`` CSV, by the old and the new step estimator.

Every cached trial and head phase records the probe's timed steps
(``phase1_samples``, ``phase2_samples``), so one run prices the same probes
both ways: **old**, the median over every burst's timed steps (phase 2: the
first two of each burst, as the probe took them before); **new**, the mean of
the last burst's timed steps (``tuner.trials.accounting._costs``). The plain
reference of a depth is the median plain phase 1 pooled over every depth
(the same work at each) plus the median plain phase 2 at that depth.

    python benchmarks/price_bias_table.py benchmarks/out/price_bias_validation.csv \\
        --train 2876 --val 718
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tuner.trials.accounting import StepCosts  # noqa: E402


def old(bursts, per_burst=None):
    timed = [s for b in bursts for s in b[1:1 + per_burst if per_burst else None]]
    step = statistics.median(timed)
    return step, max(bursts[0][0] - step, 0.0)


def new(bursts, per_burst=None):
    last = next(b[1:] for b in reversed(bursts) if b[1:])
    step = statistics.fmean(last)
    return step, max(bursts[0][0] - step, 0.0)


def mean_all(bursts, per_burst=None):
    timed = [s for b in bursts for s in b[1:]]
    step = statistics.fmean(timed)
    return step, max(bursts[0][0] - step, 0.0)


ESTIMATORS = {"old (median, all bursts)": old, "new (mean, last burst)": new, "mean, all bursts": mean_all}


def phase_price(costs: StepCosts, shape) -> float:
    return costs.phase_seconds(epochs=3, **shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--train", type=int, required=True)
    ap.add_argument("--val", type=int, required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    shape = dict(train_examples=args.train, val_examples=args.val, batch_size=args.batch_size)
    rows = list(csv.DictReader(open(args.csv)))
    plain = [r for r in rows if r["mode"] == "plain"]
    cached = [r for r in rows if r["mode"] == "cached"]
    depths = sorted({int(r["depth"]) for r in rows})
    p1 = [json.loads(r["phase_seconds"])[0] for r in plain]
    print(f"plain phase 1, pooled over {len(p1)} readings: median {statistics.median(p1):.1f} s "
          f"[{min(p1):.1f}-{max(p1):.1f}]\n")

    def priced(r, estimator):
        c1, c2 = json.loads(r["phase1_costs"]), json.loads(r["phase2_costs"])
        s1 = c1["samples"]
        t1, tt1 = estimator(s1["train"])
        v1, vt1 = estimator(s1["val"])
        phase1 = StepCosts(t1, tt1, v1, vt1)
        if int(r["depth"]) == 0 or not c2.get("samples"):
            phase2 = phase1
        else:
            t2, tt2 = estimator(c2["samples"]["train"], per_burst=2)
            phase2 = StepCosts(t2, tt2, v1, vt1)
        return phase_price(phase1, shape), phase_price(phase2, shape)

    # Burst against burst: the steps timed right after the trace, and after the trial's own work.
    print("| depth | probe burst 1 (after the trace) mean step | last burst (after training) | ratio last / first |")
    print("|---|---|---|---|")
    for d in depths:
        ratios, firsts, lasts = [], [], []
        for r in cached:
            c2 = json.loads(r["phase2_costs"])
            if int(r["depth"]) != d or not c2.get("samples"):
                continue
            b = c2["samples"]["train"]
            first, last = statistics.fmean(b[0][1:]), statistics.fmean(b[-1][1:])
            firsts.append(first), lasts.append(last), ratios.append(last / first)
        if ratios:
            print(f"| {d} | {statistics.median(firsts):.4f} | {statistics.median(lasts):.4f} | "
                  f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) |")
    heads = {r["phase1_costs"] for r in cached}
    for h in sorted(heads):
        s = json.loads(h)["samples"]
        for k in ("train", "val"):
            b = s[k]
            print(f"head phase {k}: burst 1 mean {statistics.fmean(b[0][1:]):.4f}, last burst mean "
                  f"{statistics.fmean(b[-1][1:]):.4f} (ratio {statistics.fmean(b[-1][1:]) / statistics.fmean(b[0][1:]):.2f})")
    print()

    for name, est in ESTIMATORS.items():
        print(f"### {name}\n")
        print("| depth | plain phase 1 (pooled) + phase 2, median [range] | price median [range] | error | "
              "phase 1 price / plain | phase 2 price / plain | plain total median | error vs plain total |")
        print("|---|---|---|---|---|---|---|---|")
        errors = []
        for d in depths:
            p2 = [json.loads(r["phase_seconds"])[1] for r in plain if int(r["depth"]) == d]
            tot = [float(r["fit_seconds"]) for r in plain if int(r["depth"]) == d]
            ref = statistics.median(p1) + statistics.median(p2)
            prices = [priced(r, est) for r in cached if int(r["depth"]) == d]
            totals = [a + b for a, b in prices]
            price = statistics.median(totals)
            err = price / ref - 1
            errors.append(err)
            e1 = statistics.median([a for a, _ in prices]) / statistics.median(p1) - 1
            e2 = statistics.median([b for _, b in prices]) / statistics.median(p2) - 1
            print(f"| {d} | {ref:.1f} [{min(p1) + min(p2):.1f}-{max(p1) + max(p2):.1f}] (n={len(p2)}) | "
                  f"{price:.1f} [{min(totals):.1f}-{max(totals):.1f}] | {err:+.1%} | {e1:+.1%} | {e2:+.1%} | "
                  f"{statistics.median(tot):.1f} | {price / statistics.median(tot) - 1:+.1%} |")
        print(f"\nmedian error {statistics.median(errors):+.1%}, worst {max(errors, key=abs):+.1%}\n")


if __name__ == "__main__":
    main()
