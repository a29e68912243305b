"""Figures of a landscape and of a comparison (matplotlib, Agg backend, PNG + SVG).

* ``accuracy_figure`` / ``efficiency_figure``: the thesis' plots against
  depth (the second plots the landscape's objective, efficiency for the
  thesis tables), every depth with its 95 % interval from the noise model
  (``objectives.best``) and the best depth by the objective annotated.
* ``pareto_figure``: accuracy against seconds, the accuracy/time Pareto
  front marked (no other depth is both faster and more accurate), and the
  line of the best efficiency through the origin.
* ``anytime_figure``: the efficiency of each strategy's current choice
  against cumulative training seconds, median and 5-95 % band over seeds.

Every figure takes ``note``: the study's provenance caveat (fake data,
random weights; ``tuner.store.provenance``), printed as a footnote so that a
figure shown without its table.md is still not read as a real result.
Functions return figures; ``save`` writes them. Nothing here opens a window.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from objectives.best import pareto_front as front_depths
from objectives.noise import Z95
from tuner.analysis.landscape import Landscape

__all__ = [
    "accuracy_figure",
    "anytime_figure",
    "efficiency_figure",
    "landscape_figures",
    "new_figure",
    "pareto_figure",
    "pareto_front",
    "save",
]

DEPTH_LABEL = "unfreeze depth k (top backbone layers trained)"
SIZE = (7.0, 4.2)
NOTE_FONTSIZE = 7.5
MIN_RELATIVE_SPAN = 0.05
"""The anytime y-axis spans at least this fraction of the largest value shown."""


def _note_lines(note: str, width_in: float) -> list[str]:
    """``note`` wrapped to the figure's width (DejaVu Sans: ~0.62 em a character, capitals incl.)."""
    return textwrap.wrap(note, width=max(40, int(width_in * 72 / (0.62 * NOTE_FONTSIZE))))


def new_figure(figsize: tuple[float, float], note: str | None) -> tuple[Figure, Figure]:
    """A constrained-layout figure and the (sub)figure to draw in, ``note`` as a footnote below.

    A constrained layout makes no room for ``fig.text``, so the note gets its
    own subfigure strip: it never covers axis labels or a legend below the axes.
    """
    fig = plt.figure(figsize=figsize, layout="constrained")
    if not note:
        return fig, fig
    lines = _note_lines(note, figsize[0])
    strip = (len(lines) * 1.3 * NOTE_FONTSIZE + 6) / 72  # inches
    host, foot = fig.subfigures(2, 1, height_ratios=[figsize[1], strip])
    fig.set_figheight(figsize[1] + strip)  # the plot keeps its size; the note adds to it
    foot.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=NOTE_FONTSIZE,
              color="firebrick", linespacing=1.3)
    return fig, host


def _integer_depths(ax) -> None:
    """Depths are whole layers: ticks at 1.5 layers would suggest depths that cannot exist."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _measured(land: Landscape) -> pd.DataFrame:
    return land.frame().query("repeats > 0")


def _intervals(land: Landscape) -> pd.DataFrame:
    """Per measured depth: 95 % half-widths of mean accuracy and of the objective's value.

    From the landscape's noise model (``objectives.best.answer``): every depth
    gets a bar, a depth measured once from the pooled or default noise.
    """
    ans = land.answer()
    d = ans.depths
    acc_sd = ans.noise.accuracy_sds(d["val_accuracy"].to_numpy()) / np.sqrt(d["repeats"].clip(lower=1))
    return pd.DataFrame({"val_accuracy": Z95 * acc_sd, "value": Z95 * d["sd"]}, index=d.index)


def _annotate_best(ax, x: float, y: float, text: str) -> None:
    """Label the best point, pointing away from the nearer vertical edge of the data."""
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    below = y > (lo + hi) / 2
    ax.annotate(
        text,
        xy=(x, y),
        xytext=(30, -30 if below else 30),
        textcoords="offset points",
        arrowprops={"arrowstyle": "->", "color": "0.3"},
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.6", "alpha": 0.9},
        fontsize=9,
        va="top" if below else "bottom",
    )


def _depth_plot(land: Landscape, column: str, ylabel: str, title: str, note: str | None) -> Figure:
    df = _measured(land)
    fig, host = new_figure(SIZE, note)
    ax = host.subplots()
    yerr = _intervals(land).loc[df["depth"], column].to_numpy()
    ax.errorbar(df["depth"], df[column], yerr=yerr, marker="o", ms=4, lw=1.2, capsize=3,
                label=f"{land.name} (mean, 95 % interval)")
    best = land.best_depth
    row = df.set_index("depth").loc[best]
    ax.plot([best], [row[column]], marker="*", ms=14, color="C3", ls="none",
            label=f"best by {land.objective}: depth {best}")
    _annotate_best(ax, best, row[column], f"depth {best}: {row[column]:.4g}")
    ax.set_xlabel(DEPTH_LABEL)
    _integer_depths(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def accuracy_figure(land: Landscape, *, note: str | None = None) -> Figure:
    """Mean accuracy against depth with 95 % intervals, the best depth by the objective starred."""
    return _depth_plot(land, "val_accuracy", "validation accuracy",
                       f"Accuracy vs depth: {land.name}", note)


def efficiency_figure(land: Landscape, *, note: str | None = None) -> Figure:
    """The objective's value against depth (efficiency for thesis tables), the best depth starred."""
    spec = land.objective_spec
    fig = _depth_plot(land, "value", spec.label, f"{spec.name.capitalize()} vs depth: {land.name}",
                      note)
    if spec.name.endswith("efficiency"):
        fig.axes[0].ticklabel_format(axis="y", style="sci", scilimits=(-3, -3))
    return fig


def pareto_front(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows no other row beats on both time (lower) and accuracy (higher), by time
    (``objectives.best.pareto_front`` decides)."""
    table = frame.set_index("depth").rename(columns={"time_s": "seconds"})
    return frame.set_index("depth", drop=False).loc[front_depths(table)]


def pareto_figure(land: Landscape, *, note: str | None = None) -> Figure:
    """Accuracy against seconds, the Pareto front stepped, the best efficiency as a line.

    The legend sits below the axes: the front runs up-right or up-left and
    dominated depths can lie anywhere, so every corner inside covers points
    on some study, and four long entries fill a corner."""
    df = _measured(land)
    front = pareto_front(df)
    fig, host = new_figure(SIZE, note)
    ax = host.subplots()
    ax.scatter(df["time_s"], df["val_accuracy"], s=22, color="C0", label="measured depth", zorder=3)
    for d, t, a in zip(df["depth"], df["time_s"], df["val_accuracy"]):
        ax.annotate(str(d), (t, a), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.step(front["time_s"], front["val_accuracy"], where="post", color="C2", lw=1.5,
            label="Pareto front (faster or more accurate than all others)")
    ax.scatter(front["time_s"], front["val_accuracy"], s=60, facecolors="none",
               edgecolors="C2", zorder=4)
    best = land.best_depth
    row = df.set_index("depth").loc[best]
    t = np.linspace(0.9 * df["time_s"].min(), 1.05 * df["time_s"].max(), 10)
    ax.plot(t, land.best_efficiency * t, ls="--", color="C3", lw=1,
            label=f"efficiency of depth {best} ({land.best_efficiency:.3g} /s)")
    ax.plot([row["time_s"]], [row["val_accuracy"]], marker="*", ms=14, color="C3", ls="none",
            label=f"best by {land.objective}: depth {best}")
    lo, hi = df["val_accuracy"].min(), df["val_accuracy"].max()
    pad = 0.15 * (hi - lo + 1e-3)
    ax.set_ylim(lo - pad, min(1.0 + pad / 3, hi + pad))  # the efficiency line must not set it
    ax.set_xlabel("training time (s, both fit phases)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"Accuracy vs time: {land.name}")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    host.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8)
    return fig


def anytime_figure(
    curves: pd.DataFrame,
    *,
    best_value: float | None,
    title: str,
    ylabel: str = "mean efficiency of current choice (val_accuracy / s)",
    noise: float | None = None,
    note: str | None = None,
) -> Figure:
    """One panel per strategy: its median and 5-95 % band, the others' medians in grey.

    Overlaid bands of five strategies blur into one; small multiples with a
    shared scale keep each band readable and every median comparable.
    ``noise``: the 95 % half-width of one depth's value; the y-axis is never
    shorter than the values ± it (see ``_keep_span``). A single panel gets
    no title of its own: ``title`` already names it.
    """
    groups = list(curves.groupby("strategy", sort=False))
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, host = new_figure((4.0 * ncols + 0.6, 3.0 * nrows + 0.8), note)
    axes = host.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    for i, (label, sub) in enumerate(groups):
        ax = axes.flat[i]
        for other, osub in groups:
            if other != label:
                ax.plot(osub["seconds"], osub["median"], color="0.75", lw=0.9,
                        drawstyle="steps-post", label="other strategies (median)")
        banded = not np.allclose(sub["p05"].fillna(0), sub["p95"].fillna(0))
        if banded:
            ax.fill_between(sub["seconds"], sub["p05"], sub["p95"], color=f"C{i}", alpha=0.25,
                            step="post", lw=0, label="5-95 % over seeds")
        ax.plot(sub["seconds"], sub["median"], color=f"C{i}", lw=1.8, drawstyle="steps-post",
                label="median over seeds" if banded else label)
        if best_value is not None:
            ax.axhline(best_value, color="k", ls="--", lw=1,
                       label=f"best depth ({best_value:.3g})")
        if len(groups) > 1:
            ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax in axes.flat[max(0, len(groups) - ncols):len(groups)]:
        ax.xaxis.set_tick_params(labelbottom=True)  # lowest visible panel of each column
    handles, labels = axes.flat[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes.flat[0].legend(unique.values(), unique.keys(), loc="lower right", fontsize=7)
    host.supxlabel("cumulative training time (s)", fontsize=10)
    host.supylabel(ylabel, fontsize=10)
    host.suptitle(title, fontsize=11)
    shown = [curves[c] for c in ("median", "p05", "p95")]
    values = np.concatenate([c.to_numpy(float) for c in shown]
                            + [np.array([best_value if best_value is not None else np.nan])])
    _keep_span(axes.flat[0], values, noise)  # the axes share y: one call sets them all
    if np.nanmax(np.abs(values)) < 0.05:  # efficiencies: 7.6 (x 1e-3), not 0.0076
        axes.flat[0].ticklabel_format(axis="y", style="sci", scilimits=(-3, -3))
    return fig


def _keep_span(ax, values: np.ndarray, noise: float | None) -> None:
    """Widen (never narrow) the y-axis to the values ± ``noise`` and to MIN_RELATIVE_SPAN of them.

    Autoscaling stretches any change to the full height: a best-so-far that
    moves by less than its own 95 % interval would look like a cliff. With
    the interval in the span, a step inside the noise looks as small as it is.
    """
    v = values[np.isfinite(values)]
    if not v.size:
        return
    lo, hi = float(v.min()), float(v.max())
    pad = noise if noise is not None and np.isfinite(noise) and noise > 0 else 0.0
    half = max((hi - lo) / 2 + pad, MIN_RELATIVE_SPAN * max(abs(lo), abs(hi)) / 2)
    mid = (lo + hi) / 2
    low, high = ax.get_ylim()
    low, high = min(low, mid - half), max(high, mid + half)
    if lo >= 0:  # accuracies and efficiencies: no negative values to make room for
        low = max(low, 0.0)
    ax.set_ylim(low, high)


def landscape_figures(land: Landscape, *, note: str | None = None) -> dict[str, Figure]:
    """The three landscape figures by file stem, each with ``note`` as its footnote."""
    return {
        "accuracy_vs_depth": accuracy_figure(land, note=note),
        "efficiency_vs_depth": efficiency_figure(land, note=note),
        "accuracy_time_pareto": pareto_figure(land, note=note),
    }


def save(
    fig: Figure, *, out_dir: str | Path, stem: str, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` into ``out_dir`` and close the figure."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        # No timestamp in SVGs, so regenerated figures only differ when the data does.
        meta = {"Date": None} if fmt == "svg" else None
        fig.savefig(path, dpi=120 if fmt == "png" else None, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths
