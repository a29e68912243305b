"""The default ``--weights imagenet``, offline: the weights Keras cached under ``$KERAS_HOME/models``.

``keras.applications.MobileNetV2(include_top=False, weights="imagenet")`` asks
``keras.utils.get_file`` for ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5``
in ``$KERAS_HOME/models`` and downloads it only if it is not there. Keras has
such files for 96, 128, 160, 192 and 224 px; for any other size it loads the
224 px file (weights without the top do not depend on the input size). The
project hands "imagenet" to Keras as is (``build_backbone``), so 32 px, the
smallest size MobileNetV2 accepts, reads the same file as the README's 224 px
command.

Each test writes that file itself (Keras' legacy HDF5 weights layout, with a
recognisable first convolution) and runs ``depth-tuner`` in a subprocess with
KERAS_HOME in tmp_path and every HTTP(S) fetch sent to a closed local port, so a
download attempt fails loudly instead of quietly reaching the internet.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import run_cli

IMAGE_SIZE = 32
# What Keras 3's MobileNetV2(include_top=False, weights="imagenet") fetches at
# IMAGE_SIZE (not one of 96..224 px: the 224 px file).
NO_TOP_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
FIRST_CONV = "Conv1"  # MobileNetV2's first layer with weights: frozen at every depth tried here
MAX_DEPTH = "10"  # the top 10 of 154 layers: Conv1 stays frozen, so it keeps the file's values
CLOSED = "http://127.0.0.1:9"  # the same closed port conftest probes for the network

FAST_IMAGENET = ["--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16",
                 "--image-size", str(IMAGE_SIZE), "--head-epochs", "1", "--finetune-epochs", "1",
                 "--batch-size", "16", "--trials", "1"]


def offline_env(keras_home, tmp_path) -> dict:
    """KERAS_HOME in tmp_path, a fresh activation cache, and no way out for urllib."""
    return {"KERAS_HOME": str(keras_home), "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
            "http_proxy": CLOSED, "https_proxy": CLOSED, "HTTP_PROXY": CLOSED,
            "HTTPS_PROXY": CLOSED, "no_proxy": "", "NO_PROXY": ""}


def recognisable(shape) -> np.ndarray:
    """Values no initialiser draws: a saw-tooth of hundredths, -0.08..0.08."""
    return (((np.arange(int(np.prod(shape))) % 17) - 8) / 100).reshape(shape).astype("float32")


def write_keras_cache(keras_home) -> tuple[str, dict[str, np.ndarray]]:
    """A no-top MobileNetV2 weights file where get_file looks for it; its arrays by weight path.

    The layout is the one of the files Keras downloads (Keras 2 HDF5 weights:
    ``layer_names`` on the root, ``weight_names`` on each layer's group), which
    ``Model.load_weights`` reads by layer order for a ``.h5`` name.
    """
    import keras

    keras.utils.set_random_seed(1234)
    model = keras.applications.MobileNetV2(include_top=False, weights=None,
                                           input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    kernel = model.get_layer(FIRST_CONV).kernel
    kernel.assign(recognisable(kernel.shape))
    path = os.path.join(keras_home, "models", NO_TOP_FILE)
    os.makedirs(os.path.dirname(path))
    arrays = {}
    with h5py.File(path, "w") as f:
        layers = [layer for layer in model.layers if layer.weights]
        f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras.__version__.encode()
        for layer in layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, w in zip(names, layer.weights):
                group[name] = arrays[w.path] = keras.ops.convert_to_numpy(w)
    keras.backend.clear_session()
    return path, arrays


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def keras_cache(tmp_path_factory):
    home = tmp_path_factory.mktemp("keras-home")
    path, arrays = write_keras_cache(home)
    return home, path, arrays


def assert_no_download(result, keras_home, path, digest):
    out = result.stdout + result.stderr
    assert "Downloading data from" not in out, out  # Keras says so before every fetch
    assert sorted(os.listdir(os.path.join(keras_home, "models"))) == [NO_TOP_FILE]
    assert sha256(path) == digest  # nothing rewrote the cached file


def test_search_with_default_weights_reads_the_keras_cache(keras_cache, tmp_path):
    home, path, arrays = keras_cache
    digest = sha256(path)
    storage = f"sqlite:///{tmp_path}/imagenet.db"
    kept = tmp_path / "checkpoints"
    env = offline_env(home, tmp_path)
    # No --weights flag: the default, as in the README's command.
    result = run_cli(["search", *FAST_IMAGENET, "--max-depth", MAX_DEPTH, "--study", "default-weights",
                      "--storage", storage, "--keep-checkpoints", str(kept)],
                     cwd=tmp_path, env_extra=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_download(result, home, path, digest)

    shown = run_cli(["show", "--study", "default-weights", "--storage", storage, "--format", "json"],
                    cwd=tmp_path, env_extra=env)
    assert shown.returncode == 0, shown.stderr
    study = json.loads(shown.stdout)
    assert study["config"]["protocol"]["weights"] == "imagenet"
    assert "weights_sha256" not in study["config"]["protocol"]  # Keras' own file, not --weights PATH
    trials = [t for t in study["trials"] if t["state"] == "COMPLETE"]
    assert len(trials) == 1 and len(study["trials"]) == 1
    assert 0 <= trials[0]["depth"] <= int(MAX_DEPTH)

    # The trial's trained model holds the file's first convolution, frozen at this depth:
    # the search built its backbone from the cached file, not from random weights.
    (checkpoint,) = kept.iterdir()
    want = arrays[f"{FIRST_CONV}/kernel"]
    found = []
    with h5py.File(checkpoint, "r") as f:
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset)
                     and obj.shape == want.shape and np.array_equal(obj[()], want) else None)
    assert len(found) == 1, f"{FIRST_CONV}'s kernel from {NO_TOP_FILE} is not in {checkpoint.name}"


BUILD = """
import sys, keras, numpy as np
from tuner.model.backbones import build_backbone, get_backbone_spec
model = build_backbone(get_backbone_spec("MobileNetV2"), image_size=int(sys.argv[1]), weights="imagenet")
np.savez(sys.argv[2], **{w.path: keras.ops.convert_to_numpy(w) for w in model.weights})
"""


def test_build_backbone_loads_every_weight_of_the_cached_file(keras_cache, tmp_path):
    """The project's own builder, in a fresh process with KERAS_HOME set: all 260 arrays are the file's."""
    home, path, arrays = keras_cache
    digest = sha256(path)
    out = tmp_path / "built.npz"
    result = subprocess.run([sys.executable, "-c", BUILD, str(IMAGE_SIZE), str(out)], cwd=tmp_path,
                            env=dict(os.environ, **offline_env(home, tmp_path)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_download(result, home, path, digest)
    built = dict(np.load(out))
    assert sorted(built) == sorted(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(built[name], value, err_msg=name)


def test_empty_keras_home_offline_is_one_line_exit_2(tmp_path):
    """No cached weights and no network: exit 2, one line that says what to do, nothing stored."""
    home = tmp_path / "empty-keras-home"
    home.mkdir()
    storage = tmp_path / "never.db"
    result = run_cli(["search", *FAST_IMAGENET, "--weights", "imagenet", "--storage",
                      f"sqlite:///{storage}"], cwd=tmp_path, env_extra=offline_env(home, tmp_path),
                     timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("depth-tuner")]
    assert len(ours) == 1, result.stderr
    (line,) = ours
    assert line.startswith("depth-tuner search: error: could not get ImageNet weights for MobileNetV2")
    assert NO_TOP_FILE in line  # which file it wanted
    assert "connect to the internet once" in line and "--weights none" in line
    assert "--weights PATH" in line
    assert "Downloading data from" in result.stdout + result.stderr  # it tried, and the fetch failed
    assert not storage.exists()  # refused before anything was written
    assert not os.listdir(home / "models")  # no partial file left behind
