"""One reporter for everything a long search tells the user (stderr, quiet in tests)."""

from __future__ import annotations

import math
import statistics
import sys
import time
from typing import TextIO


class Reporter:
    def __init__(self, *, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._t0 = time.perf_counter()

    def say(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self._t0
            print(f"[{_clock(elapsed)}] {message}", file=self.stream, flush=True)

    def epoch(self, *, trial: int, total: int | str, depth: int, phase: int,
              epoch: int, epochs: int, seconds: float, val_accuracy: float = math.nan) -> None:
        name = "head" if phase == 1 else "fine-tune"
        accuracy = f", val_accuracy {val_accuracy:.4f}" if math.isfinite(val_accuracy) else ""
        self.say(
            f"trial {trial}/{total} depth {depth}: phase {phase}/2 ({name}) "
            f"epoch {epoch}/{epochs}, {seconds:.1f} s in training{accuracy}"
        )


    def trial_done(self, *, trial: int, total: int | str, depth: int, val_accuracy: float,
                   seconds: float, objective: str, value: float, search_seconds: float = float("nan"),
                   mode: str = "plain") -> None:
        cost = f" (took {search_seconds:.1f} s, {mode})" if mode != "plain" else ""
        self.say(f"trial {trial}/{total} depth {depth}: val_accuracy {val_accuracy:.4f}, "
                 f"{seconds:.1f} s in the plain protocol{cost}, {objective} {value:.6g}")


def time_left(trial_seconds: list[float], remaining: int) -> str:
    """"; about 12 min left" from what the study's trials cost so far (their median, times the
    trials still to run, this one included), or "" before any."""
    if not trial_seconds or remaining < 1:
        return ""
    left = statistics.median(trial_seconds) * remaining
    return f"; about {left:.0f} s left" if left < 90 else f"; about {left / 60:.0f} min left"


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}"
