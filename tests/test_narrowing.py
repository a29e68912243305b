"""The thesis' narrowing rule: stages from measurements, ties, edges, the strategies built on it."""

from __future__ import annotations

import pytest

from tuner.analysis.landscape import from_thesis
from tuner.analysis.replay import replay
from tuner.model.signatures import n_layers
from tuner.strategies.narrowing import STAGE1, next_stage, plan, thesis_plan

H = n_layers("MobileNetV2")  # the thesis' backbone: its layers are the range


def _flat(stages):
    return [d for s in stages for d in s]


def test_table_5_1_reaches_3_to_7():
    eff = from_thesis("5.1").efficiency.to_dict()  # only the 13 measured depths
    stages = plan(eff, high=H)
    assert stages[0] == list(STAGE1)
    assert sorted(stages[1]) == [5, 15, 20, 25]  # the thesis' 5..25, 10 already measured
    assert sorted(stages[2]) == [3, 4, 6, 7]  # 3..7, 5 already measured
    assert len(_flat(stages)) == 13 == len(set(_flat(stages)))


def test_other_thesis_tables_follow_the_rule_not_the_hand():
    # On Table 5.2 the stage-2 best is 10, so the rule goes to 8..12; the thesis chose 18..22.
    full = from_thesis("5.2").interpolated(low=0, high=H)
    stages = plan(full.efficiency.to_dict(), high=H)
    assert sorted(stages[2]) == [8, 9, 11, 12]
    # Table 5.4: the stage-1 best is 30, so stage 2 spans 10..60 in steps of 5.
    full = from_thesis("5.4").interpolated(low=0, high=H)
    stages = plan(full.efficiency.to_dict(), high=H)
    assert sorted(stages[1]) == [15, 20, 25, 35, 40, 45, 50, 55]


def test_best_at_low_edge_stays_small():
    eff = {d: -d for d in range(H + 1)}
    assert plan(eff, high=H) == [[0, 10, 30, 60, 100], [5], [1, 2]]


def test_best_at_high_edge_reaches_the_end_of_the_range():
    eff = {d: d for d in range(H + 1)}
    stages = plan(eff, high=H)
    assert sorted(stages[1]) == [d for d in range(65, H + 1, 5) if d != 100] + [H]
    assert sorted(stages[2]) == [H - 2, H - 1]


def test_grid_clipped_to_a_smaller_range():
    eff = {d: -abs(d - 45) for d in range(51)}
    stages = plan(eff, low=0, high=50)
    assert stages[0] == [0, 10, 30, 50]  # 60 and 100 clip to 50
    assert sorted(stages[1]) == [35, 40, 45]  # b1 = 50 = high: nothing above it
    assert sorted(stages[2]) == [43, 44, 46, 47]


def test_open_edge_of_a_custom_grid_reaches_the_range_end():
    eff = {d: -abs(d - 49) for d in range(51)}
    stages = plan(eff, low=0, high=50, grid=(0, 10, 30))
    assert sorted(stages[1]) == [15, 20, 25, 35, 40, 45, 50]  # b1 = 30, window (10, 50]
    assert sorted(stages[2]) == [48, 49]  # b2 = 50, clipped at the range end


def test_ties_go_to_the_shallower_depth():
    eff = {d: 1.0 for d in range(H + 1)}
    stages = plan(eff, high=H)
    assert stages[1] == [5]  # b1 = 0
    assert stages[2] == [1, 2]  # b2 = 0


def test_stage_is_asked_nearest_to_its_centre_first():
    eff = {d: -abs(d - 12) for d in range(H + 1)}
    stages = plan(eff, high=H)
    assert stages[1] == [5, 15, 20, 25]  # around b1 = 10: distance 5, 5, 10, 15
    assert stages[2] == [9, 11, 8, 12]  # around b2 = 10


def test_next_stage_is_a_pure_function_of_the_measurements():
    assert next_stage({}, high=H) == list(STAGE1)
    assert next_stage({0: 1.0, 30: 2.0}, high=H) == [10, 60, 100]
    measured = {0: 1.0, 10: 3.0, 30: 2.0, 60: 1.0, 100: 0.5}
    assert next_stage(measured, high=H) == [5, 15, 20, 25]
    measured.update({5: 1.0, 15: 4.0, 20: 1.0, 25: 1.0})
    assert next_stage(measured, high=H) == [14, 16, 13, 17]
    measured.update({13: 0.0, 14: 0.0, 16: 5.0, 17: 0.0})
    assert next_stage(measured, high=H) == []  # three stages, even though 16 beat 15
    with pytest.raises(ValueError):
        next_stage({}, low=5, high=4)


def test_narrowing_strategy_follows_the_plan():
    land = from_thesis("5.1").interpolated(low=0, high=H)
    run = replay(landscape=land, strategy="narrowing", seed=0, noise_scale=0, trials=100)
    assert run["depth"].tolist() == _flat(plan(land.values.to_dict(), high=H))  # then it stops


def test_thesis_grids_train_the_13_depths_in_the_thesis_order():
    land = from_thesis("5.2").interpolated(low=0, high=H)
    run = replay(landscape=land, strategy="thesis-grids", seed=0, trials=100)
    assert run["depth"].tolist() == [0, 10, 30, 60, 100, 5, 15, 20, 25, 18, 19, 21, 22]
    assert _flat(thesis_plan((18, 19, 20, 21, 22)))[:5] == list(STAGE1)
