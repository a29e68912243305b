"""Shared fixtures: everything offline, tiny images, random or test-written weights."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# A closed local port: the "is the network there?" probe fails at once, so no
# test can start a real download even on a connected machine.
os.environ["DEPTH_TUNER_NETWORK_PROBE"] = "127.0.0.1:9"
# Default storages go to each test's own folder, never a user's study folder.
os.environ.pop("DEPTH_TUNER_STUDIES", None)
# Cached activations and layer counts go to this session's folder, never the
# user's ~/.cache; set before collection, as some test modules count layers.
_CACHE_HOME = tempfile.TemporaryDirectory(prefix="depth-tuner-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME.name

import optuna
import pytest

optuna.logging.set_verbosity(optuna.logging.WARNING)

# The fast protocol every training test uses: 32 px, random weights, 1+1 epochs.
FAST = ["--weights", "none", "--image-size", "32", "--head-epochs", "1",
        "--finetune-epochs", "1", "--batch-size", "16"]


def run_cli(args: list[str], *, cwd, timeout: float = 600, env_extra: dict | None = None):
    """Run ``depth-tuner`` in a fresh process, as a user would."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli.main", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def calibrated_weights(tmp_path_factory) -> str:
    """MobileNetV2 weights (32 px) with calibrated BatchNormalization: features that learn."""
    from tuner.data.batches import dataset_arrays
    from tuner.data.sources import fake_images
    from tuner.model.calibration import write_calibrated_weights
    from tuner.model.protocol import TrainingProtocol

    path = str(tmp_path_factory.mktemp("weights") / "mobilenetv2_32.weights.h5")
    images = dataset_arrays(fake_images(64, num_classes=5, image_size=32, seed=3)).x
    return write_calibrated_weights(TrainingProtocol(weights=None, image_size=32, seed=1), images, path,
                                    batch_size=None)


@pytest.fixture
def quiet_reporter():
    from tuner.progress import Reporter

    return Reporter(quiet=True)
