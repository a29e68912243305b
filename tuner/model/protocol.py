"""The training protocol: everything besides the depth that decides a trial's numbers."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tuner.errors import UsageError

# Defaults of the TensorFlow transfer-learning guide: dropout 0.2, Adam at
# 1e-4 for the head, ten times lower while fine-tuning.
DEFAULT_HEAD_LR = 1e-4
DEFAULT_FINETUNE_LR = 1e-5
# How a study records --weights none: random weights, BatchNormalization
# statistics calibrated on the training images (tuner.model.calibration).
RANDOM_WEIGHTS = "none (BatchNormalization calibrated on training images)"
DEFAULT_BACKBONE = "MobileNetV2"  # the thesis' backbone


@dataclass(frozen=True)
class TrainingProtocol:
    backbone: str = DEFAULT_BACKBONE
    weights: str | None = "imagenet"  # "imagenet", None (random) or a file path
    image_size: int = 224
    batch_size: int = 32
    head_epochs: int = 3
    finetune_epochs: int = 3
    head_lr: float = DEFAULT_HEAD_LR
    finetune_lr: float = DEFAULT_FINETUNE_LR
    dropout: float = 0.2
    seed: int = 0
    # XLA, a choice of the protocol rather than of the machine: Keras' "auto"
    # turns it on only where a GPU is visible, so the same command would time
    # another protocol on a GPU (an XLA compile per depth and per batch shape).
    jit_compile: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.image_size >= 1, "--image-size must be a positive number of pixels"),
            (1 <= self.batch_size <= 4096, "--batch-size must be between 1 and 4096"),
            (1 <= self.head_epochs <= 1000, "--head-epochs must be between 1 and 1000"),
            (1 <= self.finetune_epochs <= 1000, "--finetune-epochs must be between 1 and 1000 (depth only acts in phase 2)"),
            (0 < self.head_lr < 1, "--head-lr must be between 0 and 1"),
            (0 < self.finetune_lr < 1, "--finetune-lr must be between 0 and 1"),
            (0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    def as_config(self) -> dict[str, Any]:
        d = asdict(self)
        if self.weights not in (None, "imagenet"):
            d["weights_sha256"] = file_sha256(self.weights)
        d["weights"] = RANDOM_WEIGHTS if self.weights is None else self.weights
        return d


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def host_name() -> str:
    return os.uname().nodename


def cached_on_images(depth: int, n_layers: int) -> bool:
    """Does a cached trial at ``depth`` train phase 2 on the images, as a plain one does?

    Deep cuts (beyond two thirds of the layers) save little forward work but
    pay a probe that traces a large backward graph: at 64 px, depths 115 and
    134 cost 1.2x the plain trial (benchmarks/RESULTS.md). Such a trial
    trains on the images and measures its phase 2; phase 1 is still saved.
    It then costs about what a plain trial costs, which is why a search
    prices such a depth by a short probe before training it."""
    return depth * 3 > n_layers * 2


def probed_where_cached_on_images(probe: Callable[[int], dict], n_layers: int) -> Callable[[int], dict | None]:
    """A search's prober (live or replayed): ``probe`` a depth only where its cached trial would
    train on the images (``cached_on_images``) and so cost about a plain one; a shallower cached
    trial prices itself for little more than the probe (None: no probe)."""
    def price(depth: int) -> dict | None:
        return probe(depth) if cached_on_images(depth, n_layers) else None

    return price


def __getattr__(name: str) -> Any:
    # ``Protocol`` was this class's name until it was seen to shadow ``typing.Protocol``.
    if name == "Protocol":
        warnings.warn("tuner.model.protocol.Protocol is now TrainingProtocol", DeprecationWarning, stacklevel=2)
        return TrainingProtocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
