"""The thesis' manual coarse-to-fine narrowing, as a deterministic rule.

The rule (a pure function of the measured ``{depth: efficiency}``):

1. **Stage 1**: the coarse grid 0, 10, 30, 60, 100 (clipped to ``low..high``).
2. **Stage 2**: ``b1`` = best stage-1 depth. Its neighbours ``L < b1 < R`` are
   the adjacent stage-1 depths; at an edge the window stops at ``b1`` itself
   when ``b1`` is ``low``/``high``, and reaches ``low``/``high`` (included)
   when ``b1`` is the outermost grid depth but not the edge of the range.
   Stage 2 is ``b1 +- 5j`` strictly inside ``(L, R)`` (plus that edge). On the
   thesis' tables with ``b1 = 10`` this is 5, 10, 15, 20, 25 exactly.
3. **Stage 3**: ``b2`` = best depth measured in stages 1 and 2; stage 3 is
   ``b2 - 2 .. b2 + 2`` clipped to the range.

After stage 3 the plan is complete (``next_stage`` returns ``[]``). Depths
already measured are never asked again, so a stage may add fewer depths
than it names (stage 2 reuses ``b1``). "Best" means the highest measured
efficiency; **ties go to the shallower depth** (cheaper to train, and every
efficient depth found so far is shallow). Within a stage depths are asked
nearest-to-the-centre first (ties: shallower first), so a budget that cuts a
stage short keeps the most promising ones.

Stage sizes follow the measurements: 5 + 4 + 4 = 13 trainings when the
stage-1 best is 10 (the thesis' case), 8 when it is 0 (stage 2 = {5}), and
12 or 18 new stage-2 depths when it is 60 or 100 (up to 27 in all). With a
fixed plan (``thesis_plan``, the thesis'
exact grids, ``tuner.strategies.registry.ThesisGrids``) the stages are trained as given.

``high`` has no default: the range is the backbone's (``tuner.model.signatures.n_layers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "RADIUS",
    "STAGE1",
    "STEP",
    "THESIS_STAGE3",
    "next_stage",
    "plan",
    "thesis_plan",
]

STAGE1: tuple[int, ...] = (0, 10, 30, 60, 100)
STEP = 5
RADIUS = 2

THESIS_STAGE3: dict[str, tuple[int, ...]] = {
    "cats_vs_dogs": (3, 4, 5, 6, 7),  # Tables 5.1 and 5.3
    "tf_flowers": (18, 19, 20, 21, 22),  # Tables 5.2 and 5.4
}
"""The thesis' hand-picked third stage, by the dataset it was chosen for."""


def _best(measured: Mapping[int, float], among: Sequence[int]) -> int:
    """Highest efficiency among the measured ``among``; ties to the shallower depth."""
    candidates = sorted(d for d in among if d in measured)
    return max(candidates, key=lambda d: (measured[d], -d))


def _by_distance(depths: set[int], centre: int | None) -> list[int]:
    if centre is None:
        return sorted(depths)
    return sorted(depths, key=lambda d: (abs(d - centre), d))


def _stage1(low: int, high: int, grid: Sequence[int]) -> list[int]:
    return sorted({min(max(g, low), high) for g in grid})


def _stage2(
    measured: Mapping[int, float], s1: list[int], low: int, high: int, step: int
) -> tuple[int, set[int]]:
    b1 = _best(measured, s1)
    i = s1.index(b1)
    left = s1[i - 1] if i > 0 else None
    right = s1[i + 1] if i + 1 < len(s1) else None
    depths = {b1}
    j = 1
    while True:
        added = False
        for d in (b1 - j * step, b1 + j * step):
            inside_left = d > left if left is not None else d >= low
            inside_right = d < right if right is not None else d <= high
            if inside_left and inside_right:
                depths.add(d)
                added = True
        if not added:
            break
        j += 1
    # An open edge (no grid depth beyond b1) reaches the edge of the range itself.
    if left is None and b1 > low:
        depths.add(low)
    if right is None and b1 < high:
        depths.add(high)
    return b1, depths


def _stages(
    measured: Mapping[int, float], low: int, high: int, grid: Sequence[int], step: int, radius: int
) -> list[tuple[int | None, set[int]]]:
    """(centre, depths) of every stage the measurements already determine, in order."""
    s1 = _stage1(low, high, grid)
    stages: list[tuple[int | None, set[int]]] = [(None, set(s1))]  # stage 1: ascending
    if any(d not in measured for d in s1):
        return stages
    b1, s2 = _stage2(measured, s1, low, high, step)
    stages.append((b1, s2))
    if any(d not in measured for d in s2):
        return stages
    b2 = _best(measured, sorted(set(s1) | s2))
    stages.append((b2, set(range(max(low, b2 - radius), min(high, b2 + radius) + 1))))
    return stages


def next_stage(
    measured: Mapping[int, float],
    *,
    low: int = 0,
    high: int,
    grid: Sequence[int] = STAGE1,
    step: int = STEP,
    radius: int = RADIUS,
) -> list[int]:
    """Depths still to measure in the first unfinished stage; ``[]`` when the plan is done."""
    if low > high:
        raise ValueError(f"empty depth range {low}..{high}")
    for centre, depths in _stages(measured, low, high, grid, step, radius):
        todo = {d for d in depths if d not in measured}
        if todo:
            return _by_distance(todo, centre)
    return []


def plan(
    efficiency: Mapping[int, float],
    *,
    low: int = 0,
    high: int,
    grid: Sequence[int] = STAGE1,
    step: int = STEP,
    radius: int = RADIUS,
) -> list[list[int]]:
    """The whole plan the rule follows on a known (noise-free) landscape, stage by stage.

    ``efficiency`` must cover every depth the rule asks for (e.g. an
    interpolated landscape); a missing depth raises KeyError naming it.
    """
    measured: dict[int, float] = {}
    stages = []
    while stage := next_stage(measured, low=low, high=high, grid=grid, step=step, radius=radius):
        for d in stage:
            measured[d] = efficiency[d]
        stages.append(stage)
    return stages


def thesis_plan(stage3: Sequence[int]) -> list[list[int]]:
    """The exact depths the thesis trained: 0,10,30,60,100 / 5..25 / ``stage3`` (13 depths)."""
    return [list(STAGE1), [5, 10, 15, 20, 25], list(stage3)]
