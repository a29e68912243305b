"""Trials run in a long-lived child process, replaced should its memory grow.

A trial that crashes or meets the out-of-memory killer takes its child, not
the worker. One child serves trial after trial (its imports and the loaded
images are paid once, not per trial); each request gives back the graphs its
fits traced (``tuner.trials.released``: TensorFlow's gradient registry
keeps every traced graph otherwise), and the child is replaced by a fresh one
should its resident memory still grow by ``max_growth_mib`` since its first
request: memory stays bounded over any number of trials.

Requests (``tuner.trials.request``, one ``to_wire`` each) and answers are
JSON lines (stdin / stdout): epoch progress, then the result or the error. An
epoch event that asks (``--stop-early``) waits for one answer line: go on, or stop.
The child dies with its worker (``PR_SET_PDEATHSIG``), so a SIGKILLed worker
leaves nothing training. It is the only process that sees the GPUs, and it
grows its GPU memory as needed (``tuner.devices``); after an out-of-memory
error it is replaced, since TensorFlow keeps what it had taken.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from tuner.devices import trial_environment
from tuner.errors import OutOfMemory, TrialError
from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace
from tuner.quiet import quiet_tensorflow
from tuner.trials.request import TrialContext, TrialRequest

CHILD_COMMAND = [sys.executable, "-m", "tuner.trials.process"]
DEFAULT_MAX_GROWTH_MIB = 1536.0


def make_request(*, protocol: TrainingProtocol, num_classes: int, space: DepthSpace, images_dir: str,
                 **fields: Any) -> dict[str, Any]:
    """A hand-built request in its wire form, for scripts (benchmarks/cached_trials.py).

    The search builds ``TrialRequest``s; the trial process checks a dict
    like this one by ``TrialRequest.from_wire`` all the same."""
    context = TrialContext(protocol=protocol, num_classes=num_classes, space=space, images_dir=images_dir)
    return {**context.to_wire(), **fields}


class TrialProcess:
    """The worker's handle on its child; ``request`` starts one when needed."""

    def __init__(self, *, max_growth_mib: float = DEFAULT_MAX_GROWTH_MIB,
                 on_note: Callable[[str], None] | None = None, gpu: int | None = None):
        self.max_growth_mib = max_growth_mib
        self.on_note = on_note
        self.gpu = gpu  # the one GPU the child may see (--gpu); None: those the worker hid from itself
        self.proc: subprocess.Popen | None = None
        self.started = 0  # children started so far (replacements included)
        self._err = None
        self._first_rss: float | None = None

    def _start(self) -> None:
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(CHILD_COMMAND + [str(os.getpid())], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True,
                                     env=trial_environment(self.gpu))
        self.started += 1
        self._first_rss = None

    def request(self, request: TrialRequest | dict[str, Any], *,
                progress: Callable[..., bool | None] | None = None) -> dict[str, Any]:
        """Serve one request in the child; raises ``TrialError`` if it fails or the child dies.

        A dict is a request already in its wire form (``make_request``)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        proc = self.proc
        result: dict[str, Any] | None = None
        wire = request.to_wire() if isinstance(request, TrialRequest) else request
        try:
            proc.stdin.write(json.dumps(wire) + "\n")
            proc.stdin.flush()
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                kind = event.get("event")
                if kind == "epoch":
                    stop = progress(event["phase"], event["epoch"], event["epochs"], event["seconds"],
                                    event.get("val_accuracy", math.nan)) if progress else False
                    if event.get("ask"):  # the trial waits for the answer: go on, or stop early
                        proc.stdin.write(json.dumps({"stop": bool(stop)}) + "\n")
                        proc.stdin.flush()
                elif kind == "note" and self.on_note:
                    self.on_note(event["message"])
                elif kind in ("result", "error"):
                    result = event
                    break
        except BrokenPipeError:
            pass  # the child died; told below
        except BaseException:  # Ctrl-C, SIGTERM: the child must not outlive the trial
            self.close(kill=True)
            raise
        if result is None:
            proc.wait()
            self._err.seek(0)
            tail = " | ".join(line.strip() for line in self._err.read().strip().splitlines()[-3:])
            how = (f"signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
                   else f"exit code {proc.returncode}")
            self.close()
            raise TrialError(f"the trial process died ({how}); its last output: {tail or '-'}")
        self._check_memory(float(result.get("rss_mib", "nan")))
        if result["event"] == "error":
            if result.get("out_of_memory"):
                self.close()  # TensorFlow keeps what it holds: the next request gets a fresh child
                raise OutOfMemory(result["message"])
            raise TrialError(result["message"])
        return result

    def _check_memory(self, rss: float) -> None:
        if self._first_rss is None:
            self._first_rss = rss
        elif rss - self._first_rss > self.max_growth_mib:
            self.close()  # the next request starts a fresh child

    def close(self, *, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if kill:
                proc.kill()
            else:
                proc.stdin.close()
            proc.wait(timeout=None if kill else 60)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if self._err:
            self._err.close()
            self._err = None


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the parent still kills us on Ctrl-C
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before we could ask to follow it


def main() -> None:
    quiet_tensorflow()  # before trial_work imports it; verbose if the worker is
    _die_with_parent(int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides what a Ctrl-C means
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the protocol

    def emit(**event) -> dict | None:
        """Write one event; one that asks (an epoch: go on?) waits for the worker's answer line."""
        out.write(json.dumps(event) + "\n")
        if event.get("ask"):
            return json.loads(sys.stdin.readline() or "{}")
        return None

    from tuner.trials.handler import handle

    for line in iter(sys.stdin.readline, ""):  # readline, as emit's answers are read
        if not line.strip():
            continue
        try:
            answer = dict(event="result", **handle(TrialRequest.from_wire(json.loads(line)), emit))
        except TrialError as exc:
            answer = dict(event="error", message=str(exc), out_of_memory=isinstance(exc, OutOfMemory))
        except Exception as exc:  # recorded on the trial; the search goes on
            answer = dict(event="error", message=f"{type(exc).__name__}: {exc}")
        emit(**answer, rss_mib=proc_status_mib("VmRSS"), peak_rss_mib=proc_status_mib("VmHWM"))


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
