"""Apply an exported model to image files, folders or arrays: one row per image.

Images are decoded as the search's loaders decode them (3 channels: gray
is repeated, alpha dropped) and resized to the model's size before they are
batched, so images of any sizes mix in one batch; the model would resize
them alike itself. Files that cannot be read are reported and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tuner.data.sources import IMAGE_EXTENSIONS, read_image_file, resized_uint8
from tuner.errors import UsageError, one_line
from tuner.export.card import read_card

BATCH = 32


@dataclass
class Skipped:
    path: str
    reason: str


def image_paths(inputs: Iterable[str], on_skip: Callable[[Skipped], None]) -> Iterator[str]:
    """Files as given; folders walked (sorted), keeping files with an image extension.

    Hidden files and other extensions inside a folder are clutter, passed over
    silently; a named file that does not exist is reported."""
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                        yield os.path.join(root, name)
        elif os.path.isfile(item):
            yield item
        else:
            on_skip(Skipped(item, "no such file or folder"))


def read_image(path: str, image_size: int) -> np.ndarray:
    """uint8 RGB at the model's size, as the loaders made it; ``ValueError`` when unreadable."""
    return resized_uint8(read_image_file(path), image_size).numpy()


def check_top(top: int, card: dict) -> None:
    n = len(card["class_names"])
    if not 1 <= top <= n:
        raise UsageError(f"--top {top}: the model knows {n} classes; use 1..{n}")


def _load(model_or_path, top: int):
    import keras

    if isinstance(model_or_path, (str, os.PathLike)):
        card = read_card(model_or_path)
        check_top(top, card)
        try:
            model = keras.saving.load_model(os.fspath(model_or_path))
        except Exception as exc:  # noqa: BLE001 - any failure of Keras' loader means the same
            raise UsageError(f"--model {os.fspath(model_or_path)} cannot be loaded by Keras "
                             f"({one_line(exc)}): export it again") from None
        return model, card
    card = getattr(model_or_path, "depth_tuner_card", None)
    if card is None:
        raise UsageError("pass a path to an exported .keras file, or the model DepthSearch.export returned")
    check_top(top, card)
    return model_or_path, card


def _rows(probs: np.ndarray, names: Sequence[str], top: int) -> list[dict]:
    rows = []
    for p in probs:
        order = np.argsort(-p, kind="stable")[:top]
        row = {}
        for rank, k in enumerate(order, 1):
            suffix = "" if rank == 1 else f"_{rank}"
            row[f"class{suffix}"] = names[k]
            row[f"probability{suffix}"] = float(p[k])
        rows.append(row)
    return rows


def predict(model_or_path, images, *, top: int = 1,
            on_skip: Callable[[Skipped], None] | None = None,
            on_progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Predicted class and probability per image (``top`` classes each, best first).

    ``images``: paths of files or folders, or a uint8 array (N, H, W, 3).
    Unreadable files are passed to ``on_skip`` (default: ignored) and left out."""
    model, card = _load(model_or_path, top)
    names, size = card["class_names"], int(card["image_size"])
    skip = on_skip or (lambda s: None)
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise UsageError(f"images of shape {images.shape}: pass uint8 RGB images as (N, height, width, 3)")
        probs = model.predict(images.astype(np.uint8), batch_size=BATCH, verbose=0)
        return pd.DataFrame([{"index": i, **r} for i, r in enumerate(_rows(probs, names, top))])
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    rows, batch, paths = [], [], []

    def flush():
        probs = model.predict(np.stack(batch), batch_size=BATCH, verbose=0)
        rows.extend({"path": p, **r} for p, r in zip(paths, _rows(probs, names, top)))
        batch.clear()
        paths.clear()
        if on_progress:
            on_progress(len(rows))

    for path in image_paths(images, skip):
        try:
            batch.append(read_image(path, size))
        except ValueError as exc:
            skip(Skipped(path, str(exc)))
            continue
        paths.append(path)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    columns = ["path"] + [c for r in rows[:1] for c in r if c != "path"]
    return pd.DataFrame(rows, columns=columns if rows else ["path", "class", "probability"])
