"""Option types and help texts shared by the commands (each command module imports this, none
imports another command's module for them)."""

from __future__ import annotations

import argparse


STORAGE_HELP = ("Optuna storage URL, or PATH.log for a journal file (default: sqlite:///studies/STUDY.db, "
                "in $DEPTH_TUNER_STUDIES instead of ./studies when set)")


def count(text: str) -> int:
    """A whole number of 0 or more (a depth, a number of repeats where 0 means none), as argparse's ``type``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def positive_int(text: str) -> int:
    """A whole number of 1 or more (pixels, images, epochs, trials), as argparse's ``type``."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value
