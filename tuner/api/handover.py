"""The exported model, in Python: its predictions and its card (``depth-tuner predict``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import pandas as pd

__all__ = ["model_card", "predict"]


def predict(model: str | os.PathLike | keras.Model, images: Any, *, top: int = 1) -> pd.DataFrame:
    """Classes of ``images`` by an exported model: one row per image (``depth-tuner predict``).

    ``model``: a path written by ``export`` or the model ``DepthSearch.export``
    returned. ``images``: image files and folders, or a uint8 array (N, H, W, 3).
    Columns ``path`` (or ``index``), ``class``, ``probability`` (then ``class_2``,
    ``probability_2``... for ``top`` > 1). Unreadable files are left out with a warning.
    """
    import warnings

    from tuner.export.predict import predict as run

    def skipped(s) -> None:
        warnings.warn(f"skipped {s.path}: {s.reason}", stacklevel=3)

    return run(model, images, top=top, on_skip=skipped)


def model_card(path: str | os.PathLike) -> dict[str, Any]:
    """The model card inside a file ``export`` wrote: depth, evidence, classes, protocol."""
    from tuner.export.card import read_card

    return read_card(path)
