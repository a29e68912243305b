"""Each trial in a fresh process, so memory cannot grow from trial to trial.

TensorFlow 2.21 / Keras 3 keep the traced graphs of every ``fit`` alive
after ``clear_session()`` (about 150-180 MB per MobileNetV2 trial, see
benchmarks/RESULTS.md; keras-team/keras#17458). A search worker therefore
runs every trial in a child process that loads the resized images the worker
saved once, trains one depth, and reports JSON lines on stdout: epoch
progress, then the metrics or the error. The child dies with its worker
(``PR_SET_PDEATHSIG``), so a SIGKILLed worker leaves nothing training.

The child is started as ``python -m tuner.trial_process``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from tuner.errors import TrialError
from tuner.metrics import TrialMetrics
from tuner.protocol import Protocol
from tuner.space import DepthSpace

CHILD_COMMAND = [sys.executable, "-m", "tuner.trial_process"]


def make_request(*, protocol: Protocol, num_classes: int, space: DepthSpace, depth: int,
                 images_dir: str, checkpoint: str | None) -> dict[str, Any]:
    return {"protocol": asdict(protocol), "num_classes": num_classes,
            "space": asdict(space), "depth": depth, "images_dir": images_dir,
            "checkpoint": checkpoint, "parent_pid": os.getpid()}


def run_trial_process(
    request: dict[str, Any], *, progress: Callable[[int, int, int, float], None] | None = None
) -> TrialMetrics:
    """Train one depth in a child process; raises ``TrialError`` if it fails."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(CHILD_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, text=True, env=env)
        result: dict[str, Any] | None = None
        try:
            proc.stdin.write(json.dumps(request))
            proc.stdin.close()
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "epoch" and progress:
                    progress(event["phase"], event["epoch"], event["epochs"], event["seconds"])
                elif event.get("event") in ("result", "error"):
                    result = event
            proc.wait()
        except BaseException:  # Ctrl-C, SIGTERM: the child must not outlive the trial
            proc.kill()
            proc.wait()
            raise
        if result and result["event"] == "result":
            return TrialMetrics.from_attrs(result["metrics"], extra=result.get("extra", {}))
        if result and result["event"] == "error":
            raise TrialError(result["message"])
        err.seek(0)
        tail = " | ".join(line.strip() for line in err.read().strip().splitlines()[-3:])
        how = (f"signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit code {proc.returncode}")
        raise TrialError(f"the trial process died ({how}); its last output: {tail or '-'}")


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the parent still kills us on Ctrl-C
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before we could ask to follow it


def main() -> None:
    request = json.loads(sys.stdin.read())
    _die_with_parent(request["parent_pid"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides what a Ctrl-C means
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the protocol

    def emit(**event) -> None:
        out.write(json.dumps(event) + "\n")

    try:
        emit(event="result", **_train(request, emit))
    except TrialError as exc:
        emit(event="error", message=str(exc))
    except Exception as exc:  # recorded on the trial; the search goes on
        emit(event="error", message=f"{type(exc).__name__}: {exc}")


def _train(request: dict[str, Any], emit) -> dict[str, Any]:
    import keras_tuner as kt

    from tuner.backbones import get_backbone_spec
    from tuner.data import datasets_from_images, load_saved_images
    from tuner.hypermodel import DepthHyperModel

    protocol = Protocol(**request["protocol"])
    spec = get_backbone_spec(protocol.backbone)
    train, val = load_saved_images(request["images_dir"])
    data = datasets_from_images(train, val, name="saved images", num_classes=request["num_classes"],
                                preprocess=spec.preprocess, batch_size=protocol.batch_size,
                                seed=protocol.seed)
    hm = DepthHyperModel(protocol=protocol, num_classes=request["num_classes"],
                         space=DepthSpace(**request["space"]))
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values["depth"] = request["depth"]
    model = hm.build(hp)
    metrics = hm.fit(
        hp, model, train=data.train, validation=data.val,
        progress=lambda phase, epoch, epochs, seconds: emit(
            event="epoch", phase=phase, epoch=epoch, epochs=epochs, seconds=seconds),
    )
    if request.get("checkpoint"):
        try:
            model.save_weights(request["checkpoint"])
        except OSError as exc:
            metrics.extra["checkpoint_error"] = str(exc)
    metrics.extra["peak_rss_mib"] = proc_status_mib("VmHWM")
    attrs = metrics.as_attrs()
    return {"metrics": attrs, "extra": metrics.extra}


def proc_status_mib(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS now, VmHWM its peak), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


if __name__ == "__main__":
    main()
