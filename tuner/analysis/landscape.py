"""Landscapes: depth -> (accuracy, seconds) tables that strategies are replayed on.

A landscape holds, per measured depth, the mean ``val_accuracy`` and mean
seconds (``seconds``: what the objective counts), their spread (sample standard deviation, NaN with a single
measurement) and the number of repeats. It comes from

* a thesis table (``thesis:5.1`` .. ``thesis:5.4``, shipped as package data in
  ``studies/thesis/``),
* any CSV with the thesis' columns ``depth,val_accuracy,time_s`` (``seconds``
  or ``fit_seconds`` is accepted for ``time_s``; ``efficiency`` is recomputed, never trusted; rows
  repeating a depth are averaged and their spread kept),
* a stored Optuna study: COMPLETE trials only, trials reusing another trial's
  measurement (user attr ``reused_from``) skipped, depth from user attr
  ``depth`` (fallback: the study's depth parameter), metrics from the user
  attrs ``val_accuracy`` and the seconds its objective counts
  (``protocol_seconds``, falling back to ``fit_seconds`` for old studies;
  ``steady_seconds`` for steady-efficiency); repeats are pooled
  (``objectives.noise.pool``).

Optional columns: phase 2's learning curve per depth and its share of the
seconds (``tuner.analysis.curves``), from a study's trials or a CSV's
``val_accuracy_e1..eE`` and ``phase2_share``; with them a replay stops trials
after an epoch as a live search does, without them it says stops were not replayed.

A landscape ranks its depths by its objective (a study's recorded one;
``efficiency`` for thesis tables and CSV files) through
``objectives.best.best_depth``, the one ranking every command uses (ties to
the shallower depth), never copied from the thesis' text (its Table 5.5
names a depth that is not the best of its own Table 5.3). ``answer()`` adds
each depth's uncertainty (``objectives.best.answer``).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from objectives import DEFAULT_OBJECTIVE, Objective, get_objective
from objectives.best import Answer, answer, best_depth
from objectives.noise import POOLED_COLUMNS, pool
from tuner import stored_keys as keys
from tuner.analysis import curves
from tuner.errors import UsageError
from tuner.model.space import DepthSpace
from tuner.store.records import PHASE2_SHARE, study_objective, study_records
from tuner.store.storage import load_stored_study
from tuner.store.study import recorded_space, study_val_examples
from tuner.strategies.narrowing import THESIS_STAGE3

__all__ = [
    "THESIS_TABLES",
    "Landscape",
    "ThesisTable",
    "from_csv",
    "from_records",
    "from_study",
    "from_thesis",
    "load_landscape",
]

COLUMNS = POOLED_COLUMNS


@dataclass(frozen=True)
class ThesisTable:
    file: str
    title: str
    dataset: str
    """The dataset the table measured; its stage 3 is ``tuner.strategies.narrowing.THESIS_STAGE3``'s."""
    backbone: str = "MobileNetV2"
    """The backbone the thesis trained: its layers are the table's depth range."""

    @property
    def stage3(self) -> tuple[int, ...]:
        """The thesis' hand-picked third stage for this experiment."""
        return THESIS_STAGE3[self.dataset]


THESIS_TABLES: dict[str, ThesisTable] = {
    "5.1": ThesisTable(
        "table_5_1_cats_vs_dogs_small.csv", "cats_vs_dogs, 10 % train, 3+3 epochs", "cats_vs_dogs"
    ),
    "5.2": ThesisTable("table_5_2_tf_flowers.csv", "tf_flowers, 3+3 epochs", "tf_flowers"),
    "5.3": ThesisTable(
        "table_5_3_cats_vs_dogs_big.csv", "cats_vs_dogs, 20 % train, 3+3 epochs", "cats_vs_dogs"
    ),
    "5.4": ThesisTable(
        "table_5_4_tf_flowers_epochs6.csv", "tf_flowers, 6+6 epochs", "tf_flowers"
    ),
}


@dataclass(frozen=True)
class Landscape:
    """Per-depth mean metrics and their spread; ``table`` is indexed by depth.

    ``table`` columns: ``val_accuracy``, ``seconds`` (means),
    ``val_accuracy_std``, ``seconds_std`` (NaN when unknown), ``repeats``
    (0 for a depth that was interpolated, not measured). ``seconds`` are
    the seconds ``objective`` counts. ``objective`` names what "best" means.
    """

    name: str
    table: pd.DataFrame
    thesis: ThesisTable | None = None
    objective: str = DEFAULT_OBJECTIVE
    space: DepthSpace | None = None
    """The depth range the depths come from (a study's recorded space); None: the backbone's."""
    val_examples: int | None = None
    """Validation images behind each accuracy (a study's), for the noise's binomial floor."""

    def __post_init__(self) -> None:
        if self.table.empty:
            raise UsageError(f"landscape {self.name!r} has no depth with metrics")

    @property
    def depths(self) -> list[int]:
        return [int(d) for d in self.table.index]

    @property
    def epochs(self) -> int:
        """Phase 2's epochs its curves cover (0: no curves; stops are not replayed)."""
        return curves.epochs(self.table)

    def depth_range(self) -> tuple[int, int]:
        """The depths a strategy may pick on this landscape: the study's recorded range, else
        0..the layers of the backbone that measured it (the thesis' MobileNetV2; for a CSV the
        default backbone, widened to its deepest row)."""
        if self.space is not None:
            return self.space.low, self.space.high
        from tuner.model.protocol import DEFAULT_BACKBONE
        from tuner.model.signatures import n_layers

        high = n_layers(self.thesis.backbone if self.thesis else DEFAULT_BACKBONE)
        return 0, max(high, max(self.depths))

    @property
    def measured_depths(self) -> list[int]:
        return [int(d) for d in self.table.index[self.table["repeats"] > 0]]

    @property
    def objective_spec(self) -> Objective:
        return get_objective(self.objective)

    def judged_by(self, objective: str | None) -> Landscape:
        """The same measurements ranked by another objective (None: its own); the seconds
        stay the ones it counted."""
        if objective is None or objective == self.objective:
            return self
        get_objective(objective)  # an unknown name is a one-line usage error here
        return replace(self, objective=objective)

    @property
    def values(self) -> pd.Series:
        """The objective's value of every depth (its formula on the depth's means)."""
        t = self.table
        return pd.Series(self.objective_spec.values(t["val_accuracy"], t["seconds"]),
                         index=t.index, name=self.objective)

    @property
    def efficiency(self) -> pd.Series:
        """The thesis' column, val_accuracy / seconds, whatever the objective."""
        t = self.table
        return pd.Series(get_objective("efficiency").values(t["val_accuracy"], t["seconds"]),
                         index=t.index, name="efficiency")

    @property
    def best_depth(self) -> int:
        """Best measured depth by the objective (interpolated depths are never the answer:
        extrapolated accuracy can run past every measured one)."""
        t = self.table
        measured = t[t["repeats"] > 0]
        return best_depth(measured if not measured.empty else t, self.objective_spec)

    @property
    def best_value(self) -> float:
        return float(self.values.loc[self.best_depth])

    @property
    def best_efficiency(self) -> float:
        """Efficiency of the best depth (by the objective)."""
        return float(self.efficiency.loc[self.best_depth])

    def answer(self) -> Answer:
        """Best depth with its 95 % interval and the depths within noise (measured depths only)."""
        return answer(self.table, self.objective_spec, val_examples=self.val_examples)

    def frame(self) -> pd.DataFrame:
        """The thesis' columns (``depth, val_accuracy, time_s, efficiency``) plus spread."""
        t = self.table
        out = pd.DataFrame(
            {
                "depth": t.index.astype(int),
                "val_accuracy": t["val_accuracy"].to_numpy(),
                "time_s": t["seconds"].to_numpy(),
                "efficiency": self.efficiency.to_numpy(),
                "value": self.values.to_numpy(),
                "val_accuracy_std": t["val_accuracy_std"].to_numpy(),
                "time_s_std": t["seconds_std"].to_numpy(),
                "repeats": t["repeats"].astype(int).to_numpy(),
            }
        )
        for column in _optional(t.columns):
            out[column] = t[column].to_numpy()
        return out

    def interpolated(self, *, low: int, high: int) -> Landscape:
        """Every integer depth of ``low..high``, linearly interpolated between measured depths.

        Accuracy and seconds are interpolated separately (and extrapolated
        from the two outermost measured depths, clipped to valid values).
        On each segment the efficiency is then a ratio of two linear
        functions, which is monotone, so the best depth of the interpolated
        landscape is always one of the measured depths: interpolation adds
        no optimum that was not measured. Spreads are interpolated likewise.
        """
        t = self.table
        x = t.index.to_numpy(dtype=float)
        grid = np.arange(low, high + 1)
        cols = {}
        for col in ("val_accuracy", "seconds", "val_accuracy_std", "seconds_std", *_optional(t.columns)):
            cols[col] = _interp_extrap(grid, x, t[col].to_numpy(dtype=float))
        for col in ("val_accuracy", *_optional(t.columns)):
            cols[col] = np.clip(cols[col], 0.0, 1.0)
        floor = float(t["seconds"].min()) * 0.1
        cols["seconds"] = np.maximum(cols["seconds"], floor)
        for col in ("val_accuracy_std", "seconds_std"):
            cols[col] = np.maximum(cols[col], 0.0)
        reps = t["repeats"].reindex(grid, fill_value=0).to_numpy()
        table = pd.DataFrame(cols, index=pd.Index(grid, name="depth"))
        table["repeats"] = reps.astype(int)
        if "seeds" in t.columns:
            table["seeds"] = t["seeds"].reindex(grid, fill_value=0).astype(int).to_numpy()
        return replace(self, table=table)


def _optional(columns) -> list[str]:
    """The curve's columns and phase 2's share, where the table has them (``tuner.analysis.curves``)."""
    return [*curves.curve_columns(columns), *([PHASE2_SHARE] if PHASE2_SHARE in columns else [])]


def _interp_extrap(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """np.interp, extended linearly beyond the ends; NaN stays NaN where y has no value."""
    ok = ~np.isnan(y)
    if not ok.any():
        return np.full(grid.shape, np.nan)
    x, y = x[ok], y[ok]
    out = np.interp(grid, x, y)
    if len(x) >= 2:
        lo, hi = grid < x[0], grid > x[-1]
        out[lo] = y[0] + (grid[lo] - x[0]) * (y[1] - y[0]) / (x[1] - x[0])
        out[hi] = y[-1] + (grid[hi] - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2])
    return out


def from_records(
    records: Iterable[Mapping[str, float]], *, name: str, thesis: ThesisTable | None = None,
    objective: str = DEFAULT_OBJECTIVE,
) -> Landscape:
    """Pool ``{depth, val_accuracy, seconds[, seed]}`` records: mean, std, repeats per depth."""
    records = list(records)
    df = pd.DataFrame(records, columns=["depth", "val_accuracy", "seconds"])
    if df.empty:
        raise UsageError(f"landscape {name!r} has no depth with metrics")
    df = df.astype({"depth": int, "val_accuracy": float, "seconds": float})
    bad = df[~np.isfinite(df["val_accuracy"]) | ~(df["seconds"] > 0)]
    if not bad.empty:
        raise UsageError(
            f"landscape {name!r}: depth {int(bad['depth'].iloc[0])} has a non-finite accuracy "
            "or non-positive seconds: fix or drop that row"
        )
    return Landscape(name=name, table=pool(records).join(curves.pooled(records)), thesis=thesis,
                     objective=objective)


def from_thesis(name: str) -> Landscape:
    """A thesis table by number (``"5.2"`` or ``"thesis:5.2"``), from the package data."""
    key = name.removeprefix("thesis:")
    try:
        info = THESIS_TABLES[key]
    except KeyError:
        raise UsageError(
            f"unknown thesis table {name!r}: use one of "
            + ", ".join(f"thesis:{k}" for k in THESIS_TABLES)
        ) from None
    ref = importlib.resources.files("studies") / "thesis" / info.file
    with importlib.resources.as_file(ref) as path:
        land = from_csv(path, name=f"thesis:{key}")
    return Landscape(name=land.name, table=land.table, thesis=info)


# What a CSV may call its seconds column, first match wins: the name the
# readings use, the one README and earlier releases document, the thesis'.
CSV_SECONDS = ("fit_seconds", "time_s")


def from_csv(path: str | Path, *, name: str | None = None) -> Landscape:
    """A CSV with ``depth, val_accuracy, time_s`` (or ``seconds``, or ``fit_seconds`` as
    earlier releases named it); repeated depths averaged."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read landscape CSV {str(path)!r}: {exc}") from None
    for column in CSV_SECONDS:  # the first one present is the seconds
        if "seconds" not in df.columns and column in df.columns:
            df = df.rename(columns={column: "seconds"})
    missing = [c for c in ("depth", "val_accuracy", "seconds") if c not in df.columns]
    if missing:
        named = ["time_s (or fit_seconds)" if c == "seconds" else c for c in missing]
        raise UsageError(
            f"landscape CSV {str(path)!r} lacks the column(s) {', '.join(named)}: "
            "give it a header row depth,val_accuracy,time_s"
        )
    try:
        df = df.astype({"depth": int, "val_accuracy": float, "seconds": float})
    except (ValueError, TypeError) as exc:
        raise UsageError(f"landscape CSV {str(path)!r} has a non-numeric value: {exc}") from None
    label = name or str(path)
    if df["depth"].duplicated().any() or "repeats" not in df.columns:
        rows, columns = df.to_dict("records"), curves.curve_columns(df.columns)
        for r in rows:  # a curve's columns as the list a study's record holds
            r[keys.VAL_ACCURACIES] = [r[c] for c in columns] if columns else None
        return from_records(rows, name=label)
    # A table written by `report` (one row per depth with its spread): keep the spread.
    table = pd.DataFrame(
        {
            "val_accuracy": df["val_accuracy"].to_numpy(),
            "seconds": df["seconds"].to_numpy(),
            "val_accuracy_std": df.get("val_accuracy_std", pd.Series(np.nan, index=df.index)),
            "seconds_std": df.get("time_s_std", pd.Series(np.nan, index=df.index)),
            "repeats": df["repeats"].astype(int).to_numpy(),
            **{c: df[c].to_numpy(dtype=float) for c in _optional(df.columns)},
        },
    )
    table.index = pd.Index(df["depth"].to_numpy(), name="depth")
    return Landscape(name=label, table=table.sort_index())


def from_study(study: optuna.Study) -> Landscape:
    """The landscape a stored study measured (repeats averaged, their spread kept)."""
    records = study_records(study)
    if not records:
        raise UsageError(
            f"study {study.study_name!r} has no COMPLETE trial with val_accuracy and "
            "fit_seconds: run `depth-tuner search` first"
        )
    land = from_records(records, name=f"study:{study.study_name}", objective=study_objective(study))
    return replace(land, space=recorded_space(study), val_examples=study_val_examples(study))


def load_landscape(spec: str, *, storage: str | None = None) -> Landscape:
    """``thesis:5.x``, ``study:NAME`` (with ``storage``), or a path to a CSV file."""
    if spec.startswith("thesis:"):
        return from_thesis(spec)
    if spec.startswith("study:"):
        return from_study(load_stored_study(spec.removeprefix("study:"), storage=storage))
    if spec.endswith(".csv") or Path(spec).is_file():
        if not Path(spec).is_file():
            raise UsageError(f"landscape CSV {spec!r} does not exist")
        return from_csv(spec)
    raise UsageError(
        f"unknown landscape {spec!r}: use thesis:5.1..thesis:5.4, study:NAME or a CSV path"
    )
