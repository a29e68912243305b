"""One file per handed-over model: the Keras model, with its model card inside the archive.

A ``.keras`` file is a zip archive; Keras reads its own members and ignores
others, so the card (``CARD_MEMBER``, JSON) travels with the model and needs
no second file to keep beside it. ``read_card`` reads it without Keras.

Writes go to a hidden temporary file beside the target, then one
``os.replace``: an interrupted export (Ctrl-C, kill -9, a full disk) never
leaves a half-written model at the target, nor damages the one there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from typing import Any

import keras

from tuner.errors import UsageError, one_line
from tuner.paths import check_file
from tuner.processes import left_by_dead

CARD_MEMBER = "depth_tuner_card.json"
CARD_VERSION = 1


def check_output(path: str) -> str:
    """The absolute output path, refused now (before any training) if it cannot be written."""
    if not os.fspath(path).endswith(".keras"):
        raise UsageError(f"--output {path}: Keras saves whole models as .keras files; end the name with .keras")
    return check_file(path, "--output")


def _partial_name(path: str, pid: int) -> str:
    folder, base = os.path.split(path)
    return os.path.join(folder, f".{base}.partial-{pid}.keras")


def reclaim_partials(path: str) -> list[str]:
    """Temporary files of exports to ``path`` that were killed mid-write."""
    folder, base = os.path.split(path)
    removed = []
    for leftover in left_by_dead(folder, re.escape(f".{base}.partial-") + r"(\d+)\.keras"):
        with contextlib.suppress(OSError):
            os.remove(leftover)
            removed.append(leftover)
    return removed


def write_model(model: keras.Model, card: dict[str, Any], path: str) -> str:
    """Save ``model`` with ``card`` inside to ``path`` atomically; the path written."""
    path = check_output(path)
    partial = _partial_name(path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model.save(partial)
        with zipfile.ZipFile(partial, "a") as archive:
            archive.writestr(CARD_MEMBER, json.dumps({"card_version": CARD_VERSION, **card}, indent=2))
        os.replace(partial, path)
    except OSError as exc:
        raise UsageError(f"could not write {path} ({one_line(exc)}): free space or pick another --output") from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(partial)
    return path


def read_card(path: str) -> dict[str, Any]:
    """The model card of an exported model; a file that is not one is a ``UsageError``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UsageError(f"--model {path}: no such file; pass a .keras file written by depth-tuner export")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise UsageError(f"--model {path} is not a Keras model file (.keras): pass one written by depth-tuner export")
            if CARD_MEMBER not in names:
                raise UsageError(f"--model {path} is a Keras model without a depth-tuner card: "
                                 "pass one written by depth-tuner export")
            return json.loads(archive.read(CARD_MEMBER))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UsageError(f"--model {path} is not a Keras model file ({one_line(exc)}): "
                         "pass a .keras file written by depth-tuner export") from None
