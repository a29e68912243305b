"""One line saying when a study's numbers are not what its dataset name suggests.

A study on generated images, or with random backbone weights, is a demo or
a smoke run: its accuracies say nothing about the named dataset or about
fine-tuning pretrained features. ``show`` and ``report`` print this line
under their tables so that such a study is never read as a real result.
"""

from __future__ import annotations

from typing import Any

from tuner import stored_keys as keys
from tuner.model.protocol import RANDOM_WEIGHTS


def provenance_note(config: dict[str, Any]) -> str | None:
    """The warning line for a recorded configuration, or None for real data and weights."""
    parts = []
    data = config.get("data", {})
    if data.get("source") == "fake":
        parts.append(f"FAKE generated images standing in for {data.get('name')}")
    weights = config.get("protocol", {}).get("weights")
    if weights == RANDOM_WEIGHTS:
        parts.append("random backbone weights (BatchNormalization calibrated on the training images)")
    elif weights == keys.OLD_RANDOM_WEIGHTS:  # studies from before the calibration
        parts.append("random backbone weights (BatchNormalization statistics untrained)")
    if not parts:
        return None
    return "note: " + "; ".join(parts) + ": a demo, not a measurement of pretrained fine-tuning"
