"""Stored keys are named once (``tuner.stored_keys``), and their strings never change.

Why: the Optuna storage is the only record of a study, so a user attribute
key is a file format. Written as literals over many modules they drifted;
this test keeps them from coming back, and keeps the strings older studies
hold (``tests/test_old_study.py`` opens one). It reads the code with ``ast``,
so it needs no TensorFlow.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import pytest

from tuner import stored_keys as keys
from tuner.model.metrics import TrialMetrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
KEYS_MODULE = ROOT / "tuner" / "stored_keys.py"
SOURCES = sorted(p for package in ("tuner", "objectives") for p in (ROOT / package).rglob("*.py")
                 if p != KEYS_MODULE)


def _literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _reads_user_attrs(node: ast.AST) -> bool:
    """``x.user_attrs``: a trial's or a study's stored attributes."""
    return isinstance(node, ast.Attribute) and node.attr == "user_attrs"


def _literal_keys(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a user attribute is written or read by a string literal."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, args = node.func.attr, node.args
            if name in ("set_user_attr", "set_trial_user_attr", "_set_trial_user_attr"):
                key = args[0] if name == "set_user_attr" else (args[-2] if len(args) >= 2 else None)
                if _literal(key):
                    found.append((node.lineno, f"{name}({key.value!r})"))
            elif name == "get" and _reads_user_attrs(node.func.value) and args and _literal(args[0]):
                found.append((node.lineno, f"user_attrs.get({args[0].value!r})"))
            for kw in node.keywords:  # enqueue_trial(..., user_attrs={"key": ...})
                if kw.arg == "user_attrs" and isinstance(kw.value, ast.Dict):
                    found += [(node.lineno, f"user_attrs={{{k.value!r}: ...}}") for k in kw.value.keys if _literal(k)]
        elif isinstance(node, ast.Subscript) and _reads_user_attrs(node.value) and _literal(node.slice):
            found.append((node.lineno, f"user_attrs[{node.slice.value!r}]"))
        elif (isinstance(node, ast.Compare) and _literal(node.left)
              and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)
              and any(map(_reads_user_attrs, node.comparators))):
            found.append((node.lineno, f"{node.left.value!r} in user_attrs"))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_user_attribute_by_literal(path):
    found = _literal_keys(ast.parse(path.read_text(), filename=str(path)))
    assert not found, (f"{path.relative_to(ROOT)} names stored keys by literal "
                       f"({', '.join(f'line {n}: {what}' for n, what in found)}): use tuner.stored_keys")


def test_the_scan_finds_literals():
    code = ('t.set_user_attr("seed", 1)\nx = t.user_attrs["seed"]\ny = t.user_attrs.get("seed")\n'
            'z = "seed" in t.user_attrs\ns.enqueue_trial({}, user_attrs={"confirm": True})\n'
            't.set_user_attr(keys.SEED, 1)\n')
    assert [n for n, _ in _literal_keys(ast.parse(code))] == [1, 2, 3, 4, 5]


# The stored strings, as every release so far wrote them: changing one would orphan old studies.
STORED = {
    "DEPTH": "depth", "CHOSEN_BY": "chosen_by", "MEASURE_AGAIN": "measure_again", "CONFIRM": "confirm",
    "STAGE": "stage", "QUEUED": "queued", "RETRY_OF": "retry_of", "SEED": "seed",
    "WORKER_HOST": "worker_host", "WORKER_PID": "worker_pid", "HEARTBEAT": "heartbeat",
    "CHECKPOINT": "checkpoint", "REUSED_FROM": "reused_from", "PROBED": "probed",
    "PROBE_ERROR": "probe_error", "FAIL_REASON": "fail_reason", "FAIL_TRACEBACK": "fail_traceback",
    "PRICE_LOW": "price_low", "PRICE_HIGH": "price_high", "PRICE": "price", "PRICE_SD": "price_sd",
    "PRICED_BETWEEN": "priced_between", "PHASE2_TRAIN_STEP": "phase2_train_step",
    "PHASE2_TRAIN_TRACE": "phase2_train_trace",
    "RULED_OUT": "ruled_out", "RULED_OUT_BY": "ruled_out_by", "RULING_PRICE": "ruling_price",
    "VALUE_CEILING": "value_ceiling", "BEST_DEPTH": "best_depth", "BEST_VALUE": "best_value",
    "VAL_ACCURACY": "val_accuracy", "FIT_SECONDS": "fit_seconds", "PROTOCOL_SECONDS": "protocol_seconds",
    "STEADY_SECONDS": "steady_seconds", "SEARCH_SECONDS": "search_seconds", "TRIAL_MODE": "trial_mode",
    "TRAINABLE_PARAMS": "trainable_params", "OTHER_LOAD": "other_load", "CORES": "cores",
    "SHARED_SECONDS": "shared_seconds", "PLAIN_BECAUSE": "plain_because",
    "CHECKPOINT_ERROR": "checkpoint_error", "CACHE_POINT": "cache_point",
    "CACHE_WRITTEN_BYTES": "cache_written_bytes", "PROCESS_PREFIX": "process_",
    "DEVICE": "device", "SOFTWARE": "software",
    "TARGET": "target", "STOPPED_AFTER": "stopped_after", "STOPPED": "stopped", "VAL_ACCURACIES": "val_accuracies",
    "CONFIG": "config", "EXAMPLES": "examples", "TOOL_VERSION": "tool_version",
    "HEAD_PHASE": "head_phase", "JOINED_PREFIX": "joined:", "CONFIG_STRATEGY": "sampler", "OLD_RANDOM_WEIGHTS": "none",
}


def test_stored_strings_never_change():
    named = {k: v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    assert named == STORED


def test_metric_keys_are_the_metrics_fields():
    """A trial's metrics are stored under TrialMetrics' field names (``as_attrs``)."""
    fields = {f.name for f in dataclasses.fields(TrialMetrics)}
    metric_keys = {keys.VAL_ACCURACY, keys.FIT_SECONDS, keys.PROTOCOL_SECONDS, keys.STEADY_SECONDS,
                   keys.SEARCH_SECONDS, keys.TRIAL_MODE, keys.TRAINABLE_PARAMS, keys.DEPTH, keys.VAL_ACCURACIES}
    assert metric_keys <= fields


def test_older_studies_read_as_today():
    assert keys.protocol_seconds({"fit_seconds": 12.0}) == 12.0
    assert keys.protocol_seconds({"fit_seconds": 12.0, "protocol_seconds": 10.0}) == 10.0
    assert keys.trial_mode({"val_accuracy": 0.9}) == "plain" and keys.trial_mode({}) is None
    assert keys.came_from_queue({"chosen_by": "sweep"}) and keys.came_from_queue({"retry_of": 3})
    assert not keys.came_from_queue({"depth": 3})
    assert keys.stored_config('{"objective": "accuracy"}') == {"objective": "accuracy", "trial_mode": "plain",
                                                               "stop_early": False}
    assert keys.stored_config({"trial_mode": "cached"}) == {"trial_mode": "cached", "stop_early": False}
    assert keys.stored_config({"trial_mode": "cached", "stop_early": True})["stop_early"] is True
    assert keys.stored_config(None) == {}
