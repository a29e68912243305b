"""Phase-2 learning curves on a landscape: each depth's validation accuracy after every fine-tune
epoch, and phase 2's share of its seconds.

Why apart from the landscape: a landscape without them (the thesis tables, a CSV of depth,
accuracy and seconds) replays as before; one with them replays stops after an epoch
(``tuner.strategies.early_stop``) as a live search makes them. Columns: ``val_accuracy_e1`` ..
``val_accuracy_eE`` (means per depth, E = phase 2's epochs) and ``phase2_share`` (what a stop
after epoch e saves is ``(E - e) / E`` of phase 2's seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from tuner import stored_keys as keys
from tuner.store.records import PHASE2_SHARE

CURVE_PREFIX = "val_accuracy_e"
DEFAULT_PHASE2_SHARE = 0.5
"""Where a landscape does not say: phase 2's share of a trial's seconds. Measured, it is about
half at shallow depths (phase 1 and phase 2 both three epochs, phase 2's backward pass short)
and more at deep ones, so assuming half undercounts what a deep stop saves."""


def curve_columns(columns: Iterable[str]) -> list[str]:
    """The curve's columns, in epoch order."""
    found = [c for c in columns if c.startswith(CURVE_PREFIX) and c[len(CURVE_PREFIX):].isdigit()]
    return sorted(found, key=lambda c: int(c[len(CURVE_PREFIX):]))


def epochs(table: pd.DataFrame) -> int:
    """Phase 2's epochs the landscape has curves for (0: none, stops are not replayed)."""
    return len(curve_columns(table.columns))


def pooled(records: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """Per depth, the mean curve of its readings that have one of the common length, and the mean
    phase-2 share of those that have one; empty without curves."""
    rows = [r for r in records if r.get(keys.VAL_ACCURACIES)]
    if not rows:
        return pd.DataFrame()
    lengths = pd.Series([len(r[keys.VAL_ACCURACIES]) for r in rows])
    n = int(lengths.mode().iloc[0])
    frame = pd.DataFrame(
        [{"depth": int(r["depth"]), **{f"{CURVE_PREFIX}{e + 1}": float(r[keys.VAL_ACCURACIES][e]) for e in range(n)},
          PHASE2_SHARE: float(r.get(PHASE2_SHARE) or np.nan)}
         for r in rows if len(r[keys.VAL_ACCURACIES]) == n])
    return frame.groupby("depth").mean()


def phase2_share(table: pd.DataFrame, depth: int) -> float:
    """Phase 2's share of ``depth``'s seconds (the landscape's, else ``DEFAULT_PHASE2_SHARE``)."""
    if PHASE2_SHARE in table.columns:
        value = float(table.loc[depth, PHASE2_SHARE])
        if np.isfinite(value) and 0 < value <= 1:
            return value
    return DEFAULT_PHASE2_SHARE


def drawn_curve(table: pd.DataFrame, depth: int, accuracy: float) -> list[float]:
    """The depth's mean curve moved by what this reading's noise moved its final accuracy: a
    noisy world shifts the whole curve, so its last epoch is the reading (``accuracy``)."""
    columns = curve_columns(table.columns)
    curve = table.loc[depth, columns].to_numpy(dtype=float)
    shifted = np.clip(curve + (accuracy - curve[-1]), 0.0, 1.0)
    shifted[-1] = accuracy
    return [float(v) for v in shifted]


def stopped_seconds(seconds: float, *, share: float, epoch: int, epochs: int) -> float:
    """What a trial stopped after ``epoch`` of phase 2's ``epochs`` used of its ``seconds``."""
    return float(seconds * (1.0 - share * (epochs - epoch) / epochs))

