"""Where a plain fit's seconds go that the probe does not see: every batch of both phases stamped.

In one process, on an image folder (the CLI's own split), per ``--depths``
and ``--repeats``: a plain trial (``DepthHyperModel``: phase 1, then phase 2
at the depth), every training and validation batch stamped (begin and end),
epoch and validation boundaries too; then the accounting's probes of the
same models (``StepProbe``: phase 1 as the head phase probes it, phase 2 as
a cached trial does), with their raw steps. Writes everything to a JSON and
prints per phase: the steps' median, mean and sum, the gaps between batches,
what each epoch pays outside its batches, and the price against the phase.

    python benchmarks/price_bias.py --dataset /tmp/digits96 --weights /tmp/mnv2_imagenet.weights.h5 \
        --image-size 96 --depths 0,30,100 --repeats 1 --json benchmarks/out/price_bias.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tuner.data.batches import (  # noqa: E402
    dataset_arrays,
    image_transform,
    training_batches,
    validation_batches,
)
from tuner.data.sources import load_datasets, resolve_data_spec  # noqa: E402
from tuner.model.backbones import get_backbone_spec, set_depth  # noqa: E402
from tuner.model.hypermodel import DepthHyperModel, Head, backbone_of, compile_for, plain_model  # noqa: E402
from tuner.model.protocol import TrainingProtocol  # noqa: E402
from tuner.model.space import DepthSpace  # noqa: E402
from tuner.trials import accounting  # noqa: E402
from tuner.trials.accounting import PROBE_STEPS, StepProbe  # noqa: E402
from tuner.trials.head_phase import HEAD_PROBE_STEPS  # noqa: E402


class Stamps(keras.callbacks.Callback):
    """(event, perf_counter) for every callback hook of a fit."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, float]] = []

    def _at(self, kind):
        self.events.append((kind, time.perf_counter()))

    def on_train_begin(self, logs=None): self._at("train_begin")
    def on_epoch_begin(self, epoch, logs=None): self._at("epoch_begin")
    def on_train_batch_begin(self, batch, logs=None): self._at("tb")
    def on_train_batch_end(self, batch, logs=None): self._at("te")
    def on_test_begin(self, logs=None): self._at("val_begin")
    def on_test_batch_begin(self, batch, logs=None): self._at("vb")
    def on_test_batch_end(self, batch, logs=None): self._at("ve")
    def on_test_end(self, logs=None): self._at("val_end")
    def on_epoch_end(self, epoch, logs=None): self._at("epoch_end")
    def on_train_end(self, logs=None): self._at("train_end")


_fit = keras.Model.fit
_current: list[Stamps] = []


def _stamped_fit(self, *args, **kwargs):
    """Model.fit with a Stamps callback added, and the call itself stamped."""
    stamps = Stamps()
    stamps._at("fit_call")
    kwargs["callbacks"] = [stamps, *(kwargs.get("callbacks") or [])]
    _current.append(stamps)
    out = _fit(self, *args, **kwargs)
    stamps._at("fit_return")
    return out


def epochs_of(events):
    out, cur = [], None
    for kind, t in events:
        if kind == "epoch_begin":
            cur = [(kind, t)]
        elif cur is not None:
            cur.append((kind, t))
            if kind == "epoch_end":
                out.append(cur)
                cur = None
    return out


def epoch_parts(seg):
    """One epoch's seconds, split: training steps (batch end to batch end, as the probe times them),
    the rest of the training loop, the validation steps and the rest of validation."""
    t0, t_end = seg[0][1], seg[-1][1]
    te = [t for k, t in seg if k == "te"]
    tb = [t for k, t in seg if k == "tb"]
    ve = [t for k, t in seg if k == "ve"]
    vb = [t for k, t in seg if k == "vb"]
    v0 = next(t for k, t in seg if k == "val_begin")
    v1 = next(t for k, t in seg if k == "val_end")
    steps = list(np.diff([t0] + te))  # first: epoch begin to first batch end
    inner = [e - b for b, e in zip(tb, te)]  # batch begin -> end: the step itself
    gaps = [b - e for e, b in zip(te, tb[1:])]  # batch end -> next begin: callbacks, next()
    vsteps = list(np.diff([v0] + ve))
    return {
        "seconds": t_end - t0, "train_steps": steps, "train_inner": inner, "train_gaps": gaps,
        "after_train": v0 - te[-1], "val_seconds": v1 - v0, "val_steps": vsteps,
        "val_inner": [e - b for b, e in zip(vb, ve)], "after_val": t_end - v1,
        "n_train": len(te), "n_val": len(ve),
    }


def fit_summary(stamps: Stamps):
    ev = stamps.events
    at = lambda k: next(t for kk, t in ev if kk == k)
    return {"before_first_epoch": at("epoch_begin") - at("fit_call"),
            "train_end": at("train_end") - at("fit_call"),
            "teardown": at("fit_return") - at("train_end"),
            "epochs": [epoch_parts(seg) for seg in epochs_of(ev)]}


def probe_steps(probe: StepProbe):
    return {"train": [list(np.diff(b)) for b in probe._train], "test": [list(np.diff(b)) for b in probe._test]}


def describe(xs):
    xs = np.asarray(xs)
    return (f"n {len(xs)} median {np.median(xs):.4f} mean {xs.mean():.4f} p10 {np.percentile(xs, 10):.4f} "
            f"p90 {np.percentile(xs, 90):.4f} max {xs.max():.4f} sum {xs.sum():.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--finetune-lr", type=float, default=1e-4)
    ap.add_argument("--depths", default="0,30,100")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--long-probe", type=int, default=16, help="steps per burst of an extra, longer probe")
    ap.add_argument("--json", default="benchmarks/out/price_bias.json")
    args = ap.parse_args()

    protocol = TrainingProtocol(weights=args.weights, image_size=args.image_size, head_lr=args.head_lr,
                        finetune_lr=args.finetune_lr)
    spec = resolve_data_spec(dataset=args.dataset)
    ds = load_datasets(spec, image_size=protocol.image_size, seed=protocol.seed)
    train, val = dataset_arrays(ds.train_images), dataset_arrays(ds.val_images)
    print(f"{len(train)} training / {len(val)} validation images", flush=True)
    p = protocol
    bspec = get_backbone_spec(p.backbone)
    transform = image_transform(bspec.preprocess)
    hm = DepthHyperModel(protocol=p, num_classes=spec.num_classes, space=DepthSpace(0, 154))
    keras.Model.fit = _stamped_fit
    records = []
    shape = dict(train_examples=len(train), val_examples=len(val), batch_size=p.batch_size)

    def probe_of(model, epoch0, bursts, steps, validation=None):
        pr = StepProbe(model, training_batches(train, seed=p.seed, first_epoch=epoch0, epochs=1,
                                               batch_size=p.batch_size, transform=transform),
                       validation_batches(val, batch_size=p.batch_size, transform=transform).repeat(),
                       validation=validation)
        for _ in range(bursts):
            pr.run(steps)
        return pr

    for rep in range(args.repeats):
        for depth in [int(d) for d in args.depths.split(",")]:
            _current.clear()
            hp = hm.hyperparameters(depth)
            model = hm.build(hp)
            metrics = getattr(hm, "run_protocol", hm.fit)(hp, model, train=train, validation=val)
            fits = [fit_summary(s) for s in _current]
            _current.clear()
            # Phase 1's probe as the head phase runs it: 2 bursts of HEAD_PROBE_STEPS // 2.
            backbone = backbone_of(hm.build(hp))
            pm = plain_model(backbone, Head.for_protocol(p, spec.num_classes), p.image_size, "probe")
            compile_for(pm, spec.num_classes, p.head_lr)
            pr1 = probe_of(pm, 0, 2, HEAD_PROBE_STEPS // 2)
            c1 = pr1.costs()
            # Phase 2's as a cached trial runs it: 2 bursts of PROBE_STEPS // 2.
            set_depth(backbone, depth)
            pm2 = plain_model(backbone, Head.for_protocol(p, spec.num_classes), p.image_size, "probe2")
            compile_for(pm2, spec.num_classes, p.finetune_lr)
            pr2 = probe_of(pm2, p.head_epochs, 2, PROBE_STEPS // 2, validation=c1)
            c2 = pr2.costs() if depth else c1
            # A longer phase-2 probe on the same model, for the distribution of its steps.
            pr2l = probe_of(pm2, p.head_epochs, 2, args.long_probe, validation=c1)
            _current.clear()
            price1 = c1.phase_seconds(epochs=p.head_epochs, **shape)
            price2 = c2.phase_seconds(epochs=p.finetune_epochs, **shape)
            rec = {"rep": rep, "depth": depth, "phase_seconds": metrics.phase_seconds,
                   "epoch_seconds": metrics.epoch_seconds, "fits": fits,
                   "probe1": probe_steps(pr1), "probe2": probe_steps(pr2), "probe2_long": probe_steps(pr2l),
                   "costs1": c1.__dict__, "costs2": c2.__dict__, "price1": price1, "price2": price2}
            records.append(rec)
            print(f"\n== rep {rep} depth {depth}: plain phases {metrics.phase_seconds[0]:.2f} / "
                  f"{metrics.phase_seconds[1]:.2f} s; price {price1:.2f} / {price2:.2f} s", flush=True)
            for ph, f in enumerate(fits, 1):
                print(f"  phase {ph}: before first epoch {f['before_first_epoch']:.2f} s, "
                      f"teardown {f['teardown']:.2f} s")
                for e, ep in enumerate(f["epochs"]):
                    st = ep["train_steps"]
                    print(f"    epoch {e}: {ep['seconds']:.2f} s = train {sum(st):.2f} "
                          f"(first {st[0]:.3f}; rest {describe(st[1:])}) + after_train {ep['after_train']:.3f} "
                          f"+ val {ep['val_seconds']:.2f} (first {ep['val_steps'][0]:.3f}, rest median "
                          f"{np.median(ep['val_steps'][1:]):.4f} mean {np.mean(ep['val_steps'][1:]):.4f}) "
                          f"+ after_val {ep['after_val']:.3f}")
                    print(f"      inner steps {describe(ep['train_inner'][1:])}; gaps {describe(ep['train_gaps'])}")
            print(f"  probe1 train {c1.train_step:.4f} (trace {c1.train_trace:.2f}) val {c1.val_step:.4f} "
                  f"(trace {c1.val_trace:.2f}); steps {describe([s for b in rec['probe1']['train'] for s in b[1:]])}")
            print(f"  probe2 train {c2.train_step:.4f} (trace {c2.train_trace:.2f}); long probe "
                  f"{describe([s for b in rec['probe2_long']['train'] for s in b[1:]])}", flush=True)
            os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
            with open(args.json, "w") as fh:
                json.dump(records, fh, default=float)


if __name__ == "__main__":
    main()
