"""Progress lines on a long search: the time left, from what its trials cost so far."""

from tuner.progress import time_left


def test_time_left_is_the_median_trial_times_the_trials_to_run():
    assert time_left([], 5) == ""  # nothing measured yet: no guess
    assert time_left([10.0, 30.0, 1000.0], 0) == ""
    assert time_left([10.0, 20.0, 600.0], 3) == "; about 60 s left"  # one slow trial does not dominate
    assert time_left([100.0, 120.0], 13) == "; about 24 min left"
