"""Confirmation repeats: when to re-measure, and which depth.

Why: a search that ends on its single best reading is often ending on luck
(a depth that happened to train fast once). ``--confirm N`` keeps the last
N trainings of the budget for re-measuring the leading candidates with new
seeds, until the leader is separated from its runner-up by the answer's own
within-noise test (``objectives.best.answer``, ``objectives.noise``) or the N
are spent. The rule is a pure function of the readings so far, so the live
search (``tuner.search.oracle``) and the replay (``tuner.analysis.replay``) share it, and a
resumed or parallel search recomputes the same decision from the study.

* **When.** A training is a confirmation only while the budget left is no
  more than the confirmations left (``in_confirm_phase``): exploration
  first, confirmations last. Once the leader is separated the remaining
  trainings go back to the sampler; if a later reading makes the leader
  uncertain again, confirmations resume while any are left.
* **Which.** Of the leader and its runner-up (the best-valued depth within
  noise of it), the one read under fewer seeds (ties: the leader). A lucky
  leader then regresses towards its mean, or a runner-up catches up.
* **Seed.** A confirmation trains with its own seed, ``base seed + trial
  number`` (unique in a study, reproducible), stored on the trial as user
  attribute ``seed`` (``confirmation_seed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from objectives import Objective
from objectives.best import answer
from objectives.noise import pool

__all__ = ["DEFAULT_CONFIRM", "confirmation_seed", "in_confirm_phase", "next_confirmation"]

DEFAULT_CONFIRM = 2
"""``search --confirm``'s default; the replays behind it are in benchmarks/RESULTS.md."""

def in_confirm_phase(*, trials: float, trained: int, confirm: int, confirmed: int) -> bool:
    """Is the next training one of the last ``confirm`` of the budget still unspent?

    ``trials`` may be ``math.inf`` (no count of trials): never."""
    left = confirm - confirmed
    return left > 0 and trials - trained <= left


def next_confirmation(records: Iterable[Mapping[str, object]], objective: Objective) -> int | None:
    """The depth to measure again (``{depth, val_accuracy, seconds[, seed]}`` readings),
    or None when the leader is separated from every other depth (or nothing to compare)."""
    records = list(records)
    if not records:
        return None
    table = pool(records)
    if len(table) < 2:
        return None
    result = answer(table, objective)
    if not result.within_noise:
        return None
    values = result.depths.loc[result.within_noise, "value"]
    runner_up = int(values.idxmax() if objective.direction == "maximize" else values.idxmin())
    leader = result.best_depth
    seeds = table["seeds"]
    return runner_up if seeds.loc[runner_up] < seeds.loc[leader] else leader


def confirmation_seed(base_seed: int, trial_number: int) -> int:
    """The seed a confirmation trains with: new for every trial of the study, reproducible."""
    return int(base_seed) + int(trial_number)
