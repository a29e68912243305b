"""Where the images come from: TFDS by name or preset, a local folder, or fake.

All three end as resized uint8 images, read once and cached before the
search starts, so every trial pays the same per-epoch input cost and the
first trial is not charged for decoding the dataset (batching and the
backbone's preprocessing: ``tuner.data.batches``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from dataclasses import asdict, dataclass
from typing import Any

import tensorflow as tf

from studies.presets import DEFAULT_FAKE_EXAMPLES, PRESETS
from tuner.data.fake import GENERATOR as FAKE_GENERATOR
from tuner.data.fake import fake_images
from tuner.data.tfds_download import load_tfds
from tuner.errors import UsageError, one_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
DEFAULT_TRAIN_SPLIT = "train[:80%]"
DEFAULT_VAL_SPLIT = "train[80%:]"
# Enough generated images for the offline demo to learn in 3+3 epochs at 32 px.


@dataclass(frozen=True)
class DataSpec:
    """What data a study trains on; recorded in the study's configuration."""

    source: str  # "tfds", "folder" or "fake"
    name: str  # TFDS name, folder path, or the dataset the fake data stands in for
    train_split: str | None = None
    val_split: str | None = None
    val_fraction: float | None = None  # folder only
    num_classes: int | None = None
    fake_examples: tuple[int, int] | None = None  # (train, validation), fake only
    fake_images: str | None = None  # which generator (tuner.data.fake.GENERATOR), fake only

    def as_config(self) -> dict[str, Any]:
        d = asdict(self)
        if d["fake_examples"] is not None:
            d["fake_examples"] = list(d["fake_examples"])
        if d["fake_images"] is None:
            del d["fake_images"]  # studies of real data record what they always did
        return d


def resolve_data_spec(
    *,
    dataset: str,
    train_split: str | None = None,
    val_split: str | None = None,
    val_fraction: float = 0.2,
    fake: bool = False,
    fake_examples: tuple[int, int] = DEFAULT_FAKE_EXAMPLES,
    data_dir: str | None = None,
    strict: bool = False,
) -> DataSpec:
    """Turn ``--dataset`` and friends into a checked ``DataSpec`` (``strict``: ``--strict-data``)."""
    if os.path.isdir(dataset):
        if train_split or val_split:
            raise UsageError(
                "--train-split/--val-split apply to TFDS datasets; for a folder "
                "use --val-fraction"
            )
        if not 0 < val_fraction < 1:
            raise UsageError(f"--val-fraction {val_fraction} must be between 0 and 1")
        classes = check_image_folder(dataset, strict=strict)
        path = os.path.abspath(dataset)
        if fake:
            return DataSpec("fake", path, num_classes=len(classes),
                            fake_examples=tuple(fake_examples), fake_images=FAKE_GENERATOR)
        return DataSpec("folder", path, val_fraction=val_fraction,
                        num_classes=len(classes))

    preset = PRESETS.get(dataset)
    tfds_name = preset.tfds_name if preset else dataset
    train_split = train_split or (preset.train_split if preset else DEFAULT_TRAIN_SPLIT)
    val_split = val_split or (preset.val_split if preset else DEFAULT_VAL_SPLIT)
    check_splits_disjoint(train_split, val_split)
    num_classes = preset.num_classes if preset else _tfds_num_classes(tfds_name, data_dir)
    if fake:
        return DataSpec("fake", tfds_name, train_split, val_split, num_classes=num_classes,
                        fake_examples=tuple(fake_examples), fake_images=FAKE_GENERATOR)
    return DataSpec("tfds", tfds_name, train_split, val_split, num_classes=num_classes)


def _tfds_num_classes(name: str, data_dir: str | None) -> int:
    import tensorflow_datasets as tfds

    if name not in tfds.list_builders():
        raise UsageError(
            f"unknown dataset {name!r}: pass a TFDS dataset name, a preset "
            f"({', '.join(PRESETS)}) or an existing folder of class sub-folders"
        )
    info = tfds.builder(name, data_dir=data_dir).info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise UsageError(f"dataset {name!r} has no (image, label) pairs: pick an image-classification dataset")
    label = info.features[keys[1]]
    n = getattr(label, "num_classes", None)
    if not n or n < 2:
        raise UsageError(f"dataset {name!r} has no class label: pick an image-classification dataset")
    return int(n)


def _parse_split(spec: str) -> list:
    import tensorflow_datasets as tfds

    parts = []
    for part in spec.split("+"):
        try:
            ri = tfds.core.ReadInstruction.from_spec(part.strip())
        except (ValueError, NotImplementedError) as exc:
            raise UsageError(
                f"split {spec!r} cannot be parsed ({one_line(exc)}): write it like "
                "'train[:10%]' or 'train[20%:30%]'"
            ) from None
        parts.append(ri)
    return parts


def _interval(ri) -> tuple[float, float] | None:
    if ri.unit == "%":
        lo = 0.0 if ri.from_ is None else float(ri.from_)
        hi = 100.0 if ri.to is None else float(ri.to)
        lo, hi = (lo + 100 if lo < 0 else lo), (hi + 100 if hi < 0 else hi)
        return lo, hi
    if ri.unit == "abs" and (ri.from_ or 0) >= 0 and (ri.to is None or ri.to >= 0):
        return float(ri.from_ or 0), float("inf") if ri.to is None else float(ri.to)
    return None


def check_splits_disjoint(train_split: str, val_split: str) -> None:
    """Refuse train and validation slices that share examples."""
    for a in _parse_split(train_split):
        for b in _parse_split(val_split):
            if a.split_name != b.split_name:
                continue
            ia, ib = _interval(a), _interval(b)
            if ia is None or ib is None or a.unit != b.unit:
                raise UsageError(
                    f"cannot tell whether --train-split {train_split!r} and --val-split "
                    f"{val_split!r} overlap: slice both in % or both in examples"
                )
            if max(ia[0], ib[0]) < min(ia[1], ib[1]):
                raise UsageError(
                    f"--train-split {train_split!r} and --val-split {val_split!r} overlap: "
                    "validation must not contain training examples; pick disjoint slices"
                )


@dataclass(frozen=True)
class FolderScan:
    """What a folder of class sub-folders holds: its classes, and the files training will pass over."""

    classes: list[str]
    not_images: list[str]  # other extensions (notes.txt, Thumbs.db); hidden files are not counted
    unreadable: list[str]  # image extensions that do not decode

    def skipped_line(self) -> str:
        """One summary line, or "" when nothing was skipped."""
        def names(files: list[str]) -> str:
            return ", ".join(os.path.basename(f) for f in files[:3]) + (", ..." if len(files) > 3 else "")

        parts = []
        if self.not_images:
            n = len(self.not_images)
            parts.append(f"{n} file{' that is not an image' if n == 1 else 's that are not images'} "
                         f"({names(self.not_images)})")
        if self.unreadable:
            n = len(self.unreadable)
            parts.append(f"{n} unreadable image{'s' if n != 1 else ''} ({names(self.unreadable)})")
        return ("skipped " + " and ".join(parts) + "; --strict-data refuses them") if parts else ""


def _listing(path: str) -> tuple:
    """Names, sizes and times of every file: the scan's cache key (a changed folder is scanned again)."""
    out = []
    for root, _, files in os.walk(path):
        for f in sorted(files):
            st = os.stat(os.path.join(root, f))
            out.append((root, f, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def scan_image_folder(path: str) -> FolderScan:
    """Classes of a folder of class sub-folders, every image decoded once to find the broken ones."""
    return _scan(os.path.abspath(path), _listing(path))


@functools.lru_cache(maxsize=8)
def _scan(path: str, _listing: tuple) -> FolderScan:
    classes = sorted(
        d for d in os.listdir(path)
        if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")
    )
    if len(classes) < 2:
        raise UsageError(
            f"folder {path} has {len(classes)} class sub-folder(s): put the images "
            "of each class in its own sub-folder, at least 2 classes"
        )
    not_images, unreadable = [], []
    for cls in classes:
        folder = os.path.join(path, cls)
        files = sorted(f for f in os.listdir(folder)
                       if not f.startswith(".") and os.path.isfile(os.path.join(folder, f)))
        images = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
        not_images += [os.path.join(folder, f) for f in files if f not in images]
        readable = 0
        for f in images:
            fp = os.path.join(folder, f)
            try:
                read_image_file(fp)
                readable += 1
            except ValueError:
                unreadable.append(fp)
        if not readable:
            raise UsageError(
                f"class folder {folder} holds no readable images ({', '.join(IMAGE_EXTENSIONS)}): "
                "add images or remove the folder"
            )
    return FolderScan(classes, not_images, unreadable)


def check_image_folder(path: str, *, strict: bool = False) -> list[str]:
    """Class names of a folder of class sub-folders; with ``strict``, any file training
    would pass over is refused (the behaviour before clutter was skipped)."""
    scan = scan_image_folder(path)
    if strict and scan.not_images:
        raise UsageError(f"{scan.not_images[0]} is not an image ({', '.join(IMAGE_EXTENSIONS)}): "
                         "remove it from the data folder, or leave out --strict-data to skip such files")
    if strict and scan.unreadable:
        raise UsageError(f"{scan.unreadable[0]} cannot be read as an image: replace or remove it, "
                         "or leave out --strict-data to skip such files")
    return scan.classes


def class_names(spec: DataSpec, num_classes: int, *, data_dir: str | None = None) -> list[str]:
    """The label names in label order: a folder's sub-folders (sorted, as Keras labels them),
    TFDS's names, or ``class_0``... for generated images (and a TFDS set without names)."""
    if spec.source == "folder":
        return check_image_folder(spec.name)
    if spec.source == "tfds":
        import tensorflow_datasets as tfds

        try:
            info = tfds.builder(spec.name, data_dir=data_dir).info
            names = list(info.features[info.supervised_keys[1]].names)
        except Exception:  # noqa: BLE001 - names are a courtesy; indices still work
            names = []
        if len(names) == num_classes:
            return names
    return [f"class_{i}" for i in range(num_classes)]


def _load_folder(spec: DataSpec, image_size: int, seed: int):
    # Keras prints "Using N files for training." to stdout even with
    # verbose=False; stdout carries only results, and the counts are reported.
    with contextlib.redirect_stdout(io.StringIO()):
        train, val = tf.keras.utils.image_dataset_from_directory(
            spec.name, validation_split=spec.val_fraction, subset="both", seed=seed,
            image_size=(image_size, image_size), batch_size=None, label_mode="int",
            shuffle=True, verbose=False,
        )
    # Keras splits the file list before decoding; an unreadable image (the scan
    # has counted it, or --strict-data refused it) is dropped, the split kept.
    return train.ignore_errors(), val.ignore_errors()


def resized_uint8(image, image_size: int):
    """An RGB image (any size, any numeric type) as the trials see it: resized bilinear, rounded to uint8.

    The loaders and ``predict`` both go through here, so an exported model
    is fed exactly what its trials were."""
    image = tf.image.resize(image, (image_size, image_size))
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _to_uint8(image, label, image_size: int):
    if image.shape.rank == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return resized_uint8(image, image_size), label


def read_image_file(path: str):
    """A file decoded as Keras' folder loader decodes it (3 channels: gray repeated, alpha dropped);
    ``ValueError`` saying why when it is not a readable image."""
    try:
        return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, OSError) as exc:
        why = " ".join(str(exc).split("}}")[-1].split())  # TensorFlow's op prefix and suffix dropped
        why = re.sub(r"\s*\[Op:\w+\].*$", "", why).rstrip(". ")
        raise ValueError(f"not a readable image ({why[:120] or type(exc).__name__})") from None


@dataclass
class Datasets:
    """Resized uint8 (image, label) pairs, cached in memory: what every trial trains on."""

    train_images: tf.data.Dataset
    val_images: tf.data.Dataset
    num_classes: int
    train_examples: int
    val_examples: int


def load_images(
    spec: DataSpec, *, image_size: int, seed: int, data_dir: str | None = None
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Resized uint8 (image, label) pairs, cached in memory and already read once."""
    if spec.source == "fake":
        n_train, n_val = spec.fake_examples
        both = fake_images(n_train + n_val, num_classes=spec.num_classes,
                           image_size=image_size, seed=seed)
        train, val = both.take(n_train), both.skip(n_train)
    elif spec.source == "folder":
        train, val = _load_folder(spec, image_size, seed)
    else:
        train, val = load_tfds(spec.name, (spec.train_split, spec.val_split), data_dir)
    resize = lambda x, y: _to_uint8(x, y, image_size)
    return (train.map(resize, num_parallel_calls=tf.data.AUTOTUNE).cache(),
            val.map(resize, num_parallel_calls=tf.data.AUTOTUNE).cache())


def load_datasets(
    spec: DataSpec, *, image_size: int, seed: int, data_dir: str | None = None,
) -> Datasets:
    """The images of both splits, read once and counted; empty slices are refused."""
    train, val = load_images(spec, image_size=image_size, seed=seed, data_dir=data_dir)
    n_train, n_val = _warm_up(train), _warm_up(val)
    if n_train == 0 or n_val == 0:
        raise UsageError(
            f"the {'training' if n_train == 0 else 'validation'} slice of {spec.name!r} "
            "is empty: widen --train-split/--val-split"
        )
    return Datasets(train, val, spec.num_classes, n_train, n_val)


def save_images(datasets: Datasets, directory: str) -> None:
    """Write the resized images once, for trial processes to load quickly."""
    datasets.train_images.save(os.path.join(directory, "train"))
    datasets.val_images.save(os.path.join(directory, "val"))


def load_saved_images(directory: str) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    return (tf.data.Dataset.load(os.path.join(directory, "train")).cache(),
            tf.data.Dataset.load(os.path.join(directory, "val")).cache())


def _warm_up(ds: tf.data.Dataset) -> int:
    """Fill the cache now, outside any timed trial; returns the example count."""
    n = 0
    for _ in ds:
        n += 1
    return n
