"""The thesis' data slices by name (``--dataset NAME``).

A preset fixes the TFDS dataset and its train/validation slices; explicit
``--train-split`` / ``--val-split`` still override it.
"""

from __future__ import annotations

from dataclasses import dataclass

# --fake-data's image counts (train, validation): enough for the offline demo to learn.
DEFAULT_FAKE_EXAMPLES = (480, 160)


@dataclass(frozen=True)
class Preset:
    tfds_name: str
    train_split: str
    val_split: str
    num_classes: int
    note: str


PRESETS: dict[str, Preset] = {
    "cats_vs_dogs": Preset(
        "cats_vs_dogs", "train[:10%]", "train[20%:30%]", 2,
        "thesis 5.3 / Table 5.1: 10 % train, 20-30 % validation",
    ),
    "cats_vs_dogs_big": Preset(
        "cats_vs_dogs", "train[:20%]", "train[20%:40%]", 2,
        "thesis 5.5.1 / Table 5.3: 20 % train, 20-40 % validation",
    ),
    "tf_flowers": Preset(
        "tf_flowers", "train[:80%]", "train[80%:]", 5,
        "thesis 5.4 / Tables 5.2, 5.4: 80 % train, 20 % validation",
    ),
}
