"""The request to the trial process and the options of a search: named, frozen, one wire form.

Why: the worker and its trial process are two programs that agree on a
request only through its JSON line; a request that does not survive that
line unchanged, or a kind the process does not know, must fail at the
boundary with a message rather than deep inside a trial.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tuner.errors import UsageError
from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace
from tuner.search.options import SearchOptions
from tuner.trials.process import make_request
from tuner.trials.request import TrialContext, TrialRequest

CONTEXT = TrialContext(protocol=TrainingProtocol(weights=None, image_size=32), num_classes=5,
                       space=DepthSpace(0, 154), images_dir="/tmp/images", mode="cached",
                       cache_dir="/tmp/cache", cache_size_bytes=2.0**30, images_sha256="ab" * 32)
PHASE1 = {"val_accuracy": 0.5, "protocol_seconds": 12.5, "cached_points": [3, 7]}


def _through_the_pipe(request: TrialRequest) -> TrialRequest:
    return TrialRequest.from_wire(json.loads(json.dumps(request.to_wire())))


@pytest.mark.parametrize("request_", [
    TrialRequest.head(CONTEXT, "/tmp/head.npz"),
    TrialRequest.probe(CONTEXT.after_head_phase("/tmp/head.npz", PHASE1), 40),
    TrialRequest.trial(CONTEXT.after_head_phase("/tmp/head.npz", PHASE1), 40,
                       checkpoint="/tmp/keep/trial_3.weights.h5", seed=7),
    TrialRequest.trial(dataclasses.replace(CONTEXT, mode="plain"), 0),
], ids=["head", "probe", "cached-trial", "plain-trial"])
def test_a_request_survives_its_round_trip(request_):
    assert _through_the_pipe(request_) == request_


def test_an_unknown_kind_is_refused_with_its_name():
    wire = {**TrialRequest.head(CONTEXT, "/tmp/head.npz").to_wire(), "kind": "train"}
    with pytest.raises(ValueError, match=r"unknown trial request kind 'train': expected one of trial, head, probe, device"):
        TrialRequest.from_wire(wire)
    with pytest.raises(ValueError, match="unknown trial request kind 'price'"):
        TrialRequest("price", CONTEXT, depth=3)  # the older name of probe


def test_what_a_kind_needs_and_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="a 'trial' request needs head_path, phase1"):
        TrialRequest.trial(CONTEXT, 4)  # cached, but no head phase yet
    with pytest.raises(ValueError, match="a 'probe' request needs phase1"):
        TrialRequest.probe(CONTEXT, 4)
    wire = {**TrialRequest.head(CONTEXT, "/tmp/head.npz").to_wire(), "head_outt": "/tmp/x.npz"}
    with pytest.raises(ValueError, match="fields not known: head_outt"):
        TrialRequest.from_wire(wire)


def test_a_hand_built_request_is_read_as_the_search_builds_it():
    """benchmarks/cached_trials.py builds wire dicts by ``make_request``: the process reads them alike."""
    base = make_request(protocol=CONTEXT.protocol, num_classes=5, space=CONTEXT.space,
                        images_dir="/tmp/images", cache_dir="/tmp/cache", cache_size_bytes=2.0**30,
                        images_sha256="ab" * 32, kind="trial")
    read = TrialRequest.from_wire({**base, "mode": "plain", "depth": 12})
    assert read == TrialRequest.trial(dataclasses.replace(CONTEXT, mode="plain"), 12)


def test_search_options_check_their_numbers_once():
    options = SearchOptions(study_name="s", storage="sqlite:///s.db", trials=13, confirm=None)
    assert options.checked("tpe").confirm == 2  # DEFAULT_CONFIRM, a quarter of what is left at most
    with pytest.raises(UsageError, match="--cache-size 0: give a positive number of GiB"):
        dataclasses.replace(options, cache_size=0).checked("tpe")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.trials = 3  # type: ignore[misc]
