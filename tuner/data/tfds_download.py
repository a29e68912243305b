"""A TFDS dataset from disk, or downloaded and prepared once: the one path that needs the network.

Probed before downloading, so that an offline machine fails in seconds with
what to do instead of retrying downloads for minutes; a download that fails
is one line, and TFDS's progress goes to stderr (stdout carries results).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

import tensorflow as tf

from tuner.errors import UsageError, one_line

# Reachable when TFDS could download. HOST:PORT in DEPTH_TUNER_NETWORK_PROBE
# replaces it (tests point it at a closed port, or at their own stand-in).
NETWORK_PROBE = "storage.googleapis.com:443"


def _network_reachable(timeout: float = 3.0) -> bool:
    host, _, port = os.environ.get("DEPTH_TUNER_NETWORK_PROBE", NETWORK_PROBE).rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def load_tfds(name: str, splits: tuple[str, str], data_dir: str | None) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """TFDS dataset ``name``'s (train, validation) ``splits`` from ``data_dir``, downloaded and prepared
    there first if it is not yet."""
    import tensorflow_datasets as tfds

    kwargs = dict(split=list(splits), as_supervised=True,
                  data_dir=data_dir, shuffle_files=False)
    try:
        train, val = tfds.load(name, download=False, **kwargs)
        return train, val
    except (AssertionError, tfds.core.DatasetNotFoundError, FileNotFoundError):
        pass  # not on disk yet
    except ValueError as exc:
        raise UsageError(f"dataset {name!r}: {one_line(exc)}") from None
    where = data_dir or "~/tensorflow_datasets"
    if not _network_reachable():
        raise UsageError(
            f"dataset {name!r} is not in {where} and the network is unreachable: "
            "download it on a connected machine and pass --data-dir, or use "
            "--fake-data or a local folder (--dataset PATH)"
        )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # TFDS prints its progress; stdout is for results
            train, val = tfds.load(name, download=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a failed download or preparation is one line, not a traceback
        raise UsageError(
            f"dataset {name!r} could not be downloaded and prepared in {where} "
            f"({type(exc).__name__}: {one_line(exc)}): fix that and run again, or download it "
            "on another machine and pass --data-dir, or use --fake-data or a local folder (--dataset PATH)"
        ) from None
    return train, val
