"""The keys under which depth-tuner stores what it knows on Optuna trials and studies.

Why one module: the Optuna storage is the only record of a search, so these
strings are a file format. Spread over the code as literals they drifted
(one key spelled in seven files); here each is named once, with what it
holds. The strings never change: a study written by an earlier release must
open, show and resume (``tests/test_old_study.py``). What older studies stored
differently is translated on reading, by the shims at the end of this module,
and nowhere else. ``tests/test_stored_keys.py`` keeps literals from coming back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# -- trial user attributes: how the trial came to be ---------------------------
DEPTH = "depth"  # the plain depth trained (log-scale studies' parameter is depth_plus_one)
CHOSEN_BY = "chosen_by"  # who queued the depth: a strategy's name, "confirm", "nearest-unmeasured", ...
MEASURE_AGAIN = "measure_again"  # True: a new reading of a measured depth (a sweep's or confirmation's repeat)
CONFIRM = "confirm"  # True: a confirmation repeat of a depth within noise of the best
STAGE = "stage"  # a narrowing stage, queued by releases before one process per trial
QUEUED = "queued"  # True: the trial came from the study's queue, not from the sampler
RETRY_OF = "retry_of"  # number of the trial this one trains again (its worker died or gave way)
SEED = "seed"  # a repeat's own seed; trials without it trained under the study's seed
WORKER_HOST = "worker_host"  # host of the worker training the trial
WORKER_PID = "worker_pid"  # that worker's process id (a dead one's trial is recovered)
HEARTBEAT = "heartbeat"  # time.time() of the worker's last sign of life
CHECKPOINT = "checkpoint"  # path of the trial's weights file (``--keep-checkpoints``), for export

# -- trial user attributes: a trial that did not train -------------------------
REUSED_FROM = "reused_from"  # number of the measured trial whose weights answered this depth
PROBED = "probed"  # what a probe priced the depth at (a dict of seconds) before it trained or was ruled out
PROBE_ERROR = "probe_error"  # why the probe found no price (the depth then trains)
FAIL_REASON = "fail_reason"  # one line: why the trial failed or gave way
FAIL_TRACEBACK = "fail_traceback"  # the failed trial's traceback, its last 4000 characters

# -- trial user attributes: the price before training (tuner.strategies.cost) ------
PRICE_LOW = "price_low"  # lowest plausible seconds of the depth, from the readings before it
PRICE_HIGH = "price_high"  # highest plausible seconds
PRICE = "price"  # the cost model's estimate of the seconds
PRICE_SD = "price_sd"  # that estimate's standard deviation

# -- trial user attributes: a cached trial priced without its own probe (tuner.strategies.rounds) --
PRICED_BETWEEN = "priced_between"  # {"depths": [a, b], "train_step": s, "train_trace": s}: phase-2 step costs
# interpolated between two read depths whose prices bracket this one closely; the trial skipped its probe
# (None: offered, but the trial measured its seconds: it trained on the images or ran plain)
PHASE2_TRAIN_STEP = "phase2_train_step"  # seconds of one plain phase-2 training step, as probed
PHASE2_TRAIN_TRACE = "phase2_train_trace"  # what tracing that step adds once

# -- trial user attributes: ruled out unseen (tuner.strategies.bound) --------------
RULED_OUT = "ruled_out"  # why the depth cannot win
RULED_OUT_BY = "ruled_out_by"  # the depth from which on depths are priced out
RULING_PRICE = "ruling_price"  # the seconds the depth was ruled out at
VALUE_CEILING = "value_ceiling"  # the best value the depth could reach at that price
BEST_DEPTH = "best_depth"  # the best depth then
BEST_VALUE = "best_value"  # its value

# -- trial user attributes: stopped after an epoch (tuner.strategies.early_stop) ------
TARGET = "target"  # the val_accuracy the depth must reach at its price to come within noise of the best
STOPPED_AFTER = "stopped_after"  # phase-2 epochs the trial ran before it was stopped early
STOPPED = "stopped"  # why: "epoch 1: 0.62, needed 0.81, best possible by epoch 3 ~0.74"

# -- trial user attributes: what the trial measured (tuner.model.metrics.TrialMetrics) --
VAL_ACCURACY = "val_accuracy"  # validation accuracy after phase 2
VAL_ACCURACIES = "val_accuracies"  # phase 2's validation accuracy after each of its epochs
FIT_SECONDS = "fit_seconds"  # wall clock of both ``fit`` phases, validation included
PROTOCOL_SECONDS = "protocol_seconds"  # what the plain protocol costs for the depth: the objectives' seconds
STEADY_SECONDS = "steady_seconds"  # the training time had every epoch run at its phase's steady speed
SEARCH_SECONDS = "search_seconds"  # what the trial really cost the tool, its share of shared work included
TRIAL_MODE = "trial_mode"  # "plain" or "cached"
TRAINABLE_PARAMS = "trainable_params"  # parameters trained in phase 2

# -- trial user attributes: what the trial noted beside its metrics ----------------
OTHER_LOAD = "other_load"  # cores other work kept busy while the trial trained (tuner.load)
CORES = "cores"  # the machine's cores then
SHARED_SECONDS = "shared_seconds"  # the trial's share of the shared head phase
PLAIN_BECAUSE = "plain_because"  # why a cached-mode trial ran plain (the cut's activations too big)
CHECKPOINT_ERROR = "checkpoint_error"  # why the trial's checkpoint could not be kept
CACHE_POINT = "cache_point"  # the depth whose cut's activations the trial read (-1: pooled features)
CACHE_WRITTEN_BYTES = "cache_written_bytes"  # bytes the trial wrote to the activation cache
PROCESS_PREFIX = "process_"  # + "rss_mib" / "peak_rss_mib": the trial process's memory
DEVICE = "device"  # where the trial trained: "GPU: NAME" (" xN" for N visible) or "CPU: MODEL (N cores)"
SOFTWARE = "software"  # "tensorflow X, keras Y" of the process that trained it

# What a queued trial carries that must survive being queued again.
QUEUE_CARRIED = (CHOSEN_BY, MEASURE_AGAIN, STAGE, CONFIRM)

# -- study user attributes -------------------------------------------------------
CONFIG = "config"  # the study's configuration, JSON text (a resume must match it)
EXAMPLES = "examples"  # {"train": n, "validation": n}: images the trials read
TOOL_VERSION = "tool_version"  # the release that created the study
HEAD_PHASE = "head_phase"  # the shared head phase's metrics and artifact id
JOINED_PREFIX = "joined:"  # + "HOST:PID": a worker that loaded a study someone else created

# -- fields of the stored configuration whose stored name is not today's -------------
CONFIG_STRATEGY = "sampler"  # the strategy's name (stored under the name it had when it was a sampler)

# -- values older studies stored ---------------------------------------------------
OLD_RANDOM_WEIGHTS = "none"  # the config's weights for random backbones before the calibration


# -- shims: what older stored studies hold, read as today's ---------------------------
def protocol_seconds(attrs: Mapping[str, Any]) -> float:
    """The objectives' seconds; trials stored before there were two modes only have fit_seconds."""
    value = attrs.get(PROTOCOL_SECONDS)
    return float(attrs[FIT_SECONDS] if value is None else value)


def trial_mode(attrs: Mapping[str, Any]) -> str | None:
    """A trial's mode; measured trials from before there were two modes ran plain (None: unmeasured)."""
    return attrs.get(TRIAL_MODE, "plain" if attrs.get(VAL_ACCURACY) is not None else None)


def came_from_queue(attrs: Mapping[str, Any]) -> bool:
    """Did the trial come from the study's queue? Trials queued before ``QUEUED`` existed
    are recognised by what every queued trial carried then (``chosen_by`` or ``retry_of``)."""
    return bool(attrs.get(QUEUED)) or CHOSEN_BY in attrs or RETRY_OF in attrs


def stored_config(raw: Any) -> dict[str, Any]:
    """A study's ``config`` attribute as a dict: JSON text (a dict in the earliest studies);
    studies from before there were two modes ran plain, those from before ``jit_compile``
    without XLA, and those from before ``stop_early`` every trial to its end."""
    config = dict(raw) if isinstance(raw, dict) else (json.loads(raw) if raw else {})
    if config:
        config.setdefault("trial_mode", "plain")
        config.setdefault("stop_early", False)  # before trials could be stopped after an epoch
        if isinstance(config.get("protocol"), dict):  # before XLA was a protocol choice: Keras' CPU default
            config["protocol"] = {"jit_compile": False, **config["protocol"]}
    return config
