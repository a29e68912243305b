"""How many weight-holding layers each depth of a backbone trains, kept on disk.

The counts come from building the backbone (``backbones.count_signatures``),
which imports TensorFlow: seconds before ``compare`` on the thesis' tables
could replay anything, for numbers that change only with Keras. They are
kept per Keras version in the user's cache folder; a missing, stale or
unreadable file is rebuilt, and a folder that cannot be written costs only
the rebuild.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from tuner.user_cache import cache_home


def _path() -> str:
    return os.path.join(cache_home(), "signatures.json")


def _read(keras_version: str) -> dict[str, list[int]]:
    """The counts kept for this Keras version; whatever does not look like counts is left out."""
    try:
        with open(_path()) as f:
            kept = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("keras") != keras_version:
        return {}
    backbones = kept.get("backbones")
    if not isinstance(backbones, dict):
        return {}
    return {name: counts for name, counts in backbones.items()
            if isinstance(counts, list) and counts and all(type(n) is int for n in counts)}


def _write(keras_version: str, backbones: dict[str, list[int]]) -> None:
    try:
        os.makedirs(cache_home(), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_home(), prefix=".signatures-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"keras": keras_version, "backbones": backbones}, f)
        os.replace(tmp, _path())  # readers see the old file or the new one, never half of one
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@cache
def depth_signatures(name: str) -> tuple[int, ...]:
    """For each depth 0..n, how many weight-holding layers it trains.

    Two depths with the same number train exactly the same weights."""
    try:
        keras_version = version("keras")
    except PackageNotFoundError:  # Keras without its package metadata: nothing to key them by
        return _built(name)
    kept = _read(keras_version)
    key = name.lower()  # backbone names are matched without case
    if key not in kept:
        kept[key] = list(_built(name))
        _write(keras_version, kept)
    return tuple(kept[key])


def _built(name: str) -> tuple[int, ...]:
    """Build the backbone to count: this imports TensorFlow, so only when needed."""
    from tuner.model.backbones import count_signatures

    return count_signatures(name)


def n_layers(name: str) -> int:
    return len(depth_signatures(name)) - 1
