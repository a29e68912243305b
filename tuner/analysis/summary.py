"""Tables read from a stored study (the CLI prints them; code gets DataFrames)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from objectives import OBJECTIVES, get_objective
from objectives.best import Answer
from tuner import stored_keys as keys
from tuner.analysis.landscape import from_records
from tuner.load import is_busy
from tuner.store.records import study_objective, study_records
from tuner.store.study import recorded_space, study_val_examples
from tuner.store.trials import stopped_trials, trial_depth
from tuner.stored_keys import protocol_seconds, trial_mode

COLUMNS = ["number", "depth", "state", "mode", "val_accuracy", "protocol_seconds", "search_seconds",
           "fit_seconds", "steady_seconds", "efficiency", "value", "price_low", "price_high",
           "price", "price_sd", "price_miss", "trainable_params", "trained", "note"]


def trials_frame(study: optuna.Study, *, include_all: bool = False) -> pd.DataFrame:
    """One row per trial; by default only measured (trained and finished) trials.

    ``include_all`` adds failed and running trials, the suggestions that
    were answered from an equivalent, already measured depth, and those ruled
    out unseen (PRUNED, ``tuner.strategies.bound``). ``price_low`` /
    ``price_high``: the seconds a depth was priced at before it trained (or
    was ruled out), from the readings before it; ``price`` ± ``price_sd``: the
    cost model's estimate then (``tuner.strategies.cost``); ``price_miss``: what
    the trial measured in the objective's seconds against that estimate (+0.1:
    10 % dearer than priced).
    """
    space = recorded_space(study)
    objective = get_objective(study_objective(study))
    rows = []
    for t in study.get_trials(deepcopy=False):
        reused = keys.REUSED_FROM in t.user_attrs
        if t.state == TrialState.WAITING or (not include_all and (t.state != TrialState.COMPLETE or reused)):
            continue
        rows.append(_row(t, space, objective, multi=len(study.directions) > 1))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(t, space, objective, *, multi: bool) -> dict:
    """One trial as ``trials_frame`` shows it; a pareto study's value is its ranking value."""
    a = t.user_attrs
    reused = keys.REUSED_FROM in a
    try:
        depth = trial_depth(t, space)
    except (KeyError, ValueError):
        depth = None
    acc = a.get(keys.VAL_ACCURACY)
    sec = protocol_seconds(a) if keys.FIT_SECONDS in a else None
    measured = acc is not None and bool(sec)
    return {
        "number": t.number,
        "depth": depth,
        "state": t.state.name,
        "mode": trial_mode(a),
        "val_accuracy": acc,
        "protocol_seconds": sec,
        "search_seconds": a.get(keys.SEARCH_SECONDS),
        "fit_seconds": a.get(keys.FIT_SECONDS),
        "steady_seconds": a.get(keys.STEADY_SECONDS),
        "efficiency": OBJECTIVES["efficiency"](a) if measured else np.nan,
        "value": (objective.values(acc, sec).item() if multi and measured else
                  None if multi else t.values[0] if t.values else None),
        "price_low": a.get(keys.PRICE_LOW),
        "price_high": a.get(keys.PRICE_HIGH),
        "price": a.get(keys.PRICE),
        "price_sd": a.get(keys.PRICE_SD),
        "price_miss": _price_miss(objective, a) if measured and not reused and keys.STOPPED not in a else None,
        "trainable_params": a.get(keys.TRAINABLE_PARAMS),
        "trained": acc is not None and not reused,
        "note": _note(a),
    }


def _note(a) -> str:
    """Why a trial did not train as asked, or how it came to be; "" for a plain training."""
    if keys.REUSED_FROM in a:
        return f"same weights as #{a[keys.REUSED_FROM]}, not trained again"
    if keys.STOPPED in a:
        return f"stopped early: {a[keys.STOPPED]}"
    if keys.RULED_OUT in a and keys.RULED_OUT_BY not in a:  # its weights were stopped early before
        return f"not trained again: {a[keys.RULED_OUT]}"
    if keys.RULED_OUT in a:
        return f"ruled out unseen: {a[keys.RULED_OUT]}"
    if keys.FAIL_REASON in a:
        return a[keys.FAIL_REASON]
    if keys.RETRY_OF in a:
        return f"retrains #{a[keys.RETRY_OF]}"
    if keys.PLAIN_BECAUSE in a:
        return "ran plain: the cut's activations exceed the cache size"
    if a.get(keys.PRICED_BETWEEN):
        low, high = a[keys.PRICED_BETWEEN]["depths"]
        return f"priced between depths {low} and {high}, not probed"
    return ""


def _price_miss(objective, attrs) -> float | None:
    """Measured seconds (the objective's) against the price the trial was given, or None."""
    try:
        return objective.seconds(attrs) / float(attrs[keys.PRICE]) - 1
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def ruled_out_line(study: optuna.Study) -> str:
    """One line on the depths ruled out unseen (PRUNED), or "" when there are none."""
    space = recorded_space(study)
    pruned = [t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
              if keys.RULED_OUT_BY in t.user_attrs]
    if not pruned:
        return ""
    depths = sorted({trial_depth(t, space) for t in pruned})
    by = min(int(t.user_attrs[keys.RULED_OUT_BY]) for t in pruned)
    best = pruned[-1].user_attrs.get(keys.BEST_DEPTH)
    return (f"{len(pruned)} suggestion{'s' if len(pruned) != 1 else ''} ruled out unseen, depths "
            f"{', '.join(map(str, depths))}: priced from depth {by} on, even accuracy 1 could not "
            f"beat depth {best} (show --all lists them)")


def stopped_line(study: optuna.Study) -> str:
    """One line on the trials stopped after an epoch (PRUNED, ``tuner.strategies.early_stop``)."""
    stopped = stopped_trials(study)
    if not stopped:
        return ""
    space = recorded_space(study)
    depths = ", ".join(str(trial_depth(t, space)) for t in stopped)
    epochs = sorted({int(t.user_attrs.get(keys.STOPPED_AFTER, 0)) for t in stopped})
    seconds = sum(float(t.user_attrs.get(keys.SEARCH_SECONDS) or 0.0) for t in stopped)
    return (f"{len(stopped)} trial{'s' if len(stopped) != 1 else ''} stopped early (depths {depths}), after "
            f"epoch {', '.join(map(str, epochs))} of phase 2: the accuracy its depth needed at its price was "
            f"out of reach; {seconds:.0f} s spent on them, counted in --trials, not in the answer "
            "(show --all lists why)")


def _readings(study: optuna.Study) -> list:
    """The measured trials that trained (not answered from another), as the notes count them."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if keys.REUSED_FROM not in t.user_attrs and keys.VAL_ACCURACY in t.user_attrs]


def busy_line(study: optuna.Study) -> str:
    """One line on measured trials that trained while other work held the cores, or ""."""
    space = recorded_space(study)
    done = _readings(study)
    busy = [t for t in done if is_busy(t.user_attrs)]
    if not busy:
        return ""
    loads = [float(t.user_attrs[keys.OTHER_LOAD]) for t in busy]
    depths = ", ".join(str(trial_depth(t, space)) for t in busy)
    return (f"note: {len(busy)} of {len(done)} readings trained while other work kept "
            f"{min(loads):.1f}-{max(loads):.1f} of {busy[0].user_attrs[keys.CORES]} cores busy "
            f"(depth{'s' if len(busy) > 1 else ''} {depths}): "
            "their seconds run high; measure them again on a quiet machine (search --confirm repeats)")


def devices_line(study: optuna.Study) -> str:
    """One line when the study's trials trained on more than one device, or "": their seconds
    are different machines' and do not compare (the cost model prices each worker's device
    from its own readings)."""
    counts = Counter(t.user_attrs[keys.DEVICE] for t in _readings(study) if t.user_attrs.get(keys.DEVICE))
    if len(counts) < 2:
        return ""
    where = "; ".join(f"{device} ({n})" for device, n in counts.most_common())
    return (f"note: the trials trained on {len(counts)} devices ({where}): their seconds, and so "
            "their values, come from different machines; compare the answer within one device")


def study_answer(study: optuna.Study) -> Answer | None:
    """The study's best depth by its recorded objective, pooled per depth, with its uncertainty.

    The same ranking ``report``, ``compare`` and ``live-compare`` use
    (``objectives.best``); None before any measured trial.
    """
    records = study_records(study)
    if not records:
        return None
    land = from_records(records, name=study.study_name, objective=study_objective(study))
    return replace(land, val_examples=study_val_examples(study)).answer()


def best_trial_row(frame: pd.DataFrame, *, depth: int | None = None) -> pd.Series | None:
    """The measured trial with the highest stored value (at ``depth``, if given).

    Which depth is best is ``study_answer``'s decision; this picks a trial of it.
    """
    done = frame[(frame["state"] == "COMPLETE") & frame["value"].notna() & frame["trained"]]
    if depth is not None:
        done = done[done["depth"] == depth]
    if done.empty:
        return None
    return done.loc[done["value"].idxmax()]
