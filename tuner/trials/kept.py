"""What the long-lived trial process keeps from one request to the next: the images, the built backbone.

Its own module so that the head phase, cached trials and pricing read them
without importing the request handler (``tuner.trials.handler``) that calls them.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from tuner.data.batches import Arrays, dataset_arrays
from tuner.model.backbones import build_backbone, get_backbone_spec, set_depth
from tuner.model.cut import BackboneCuts
from tuner.model.protocol import TrainingProtocol

_images: dict[str, tuple[Arrays, Arrays]] = {}
_backbones: dict[tuple, tuple[keras.Model, BackboneCuts, list[np.ndarray]]] = {}


def images(directory: str) -> tuple[Arrays, Arrays]:
    if directory not in _images:
        from tuner.data.sources import load_saved_images

        _images.clear()
        train, val = load_saved_images(directory)
        _images[directory] = (dataset_arrays(train), dataset_arrays(val))
    return _images[directory]


def backbone(protocol: TrainingProtocol) -> tuple[keras.Model, BackboneCuts]:
    """The protocol's backbone as built, every layer trainable, kept for the process's next request.

    Building MobileNetV2 and loading its weights costs ~0.8 s, a tenth of a
    shallow cached trial at 160 px; the head phase and the cached trials of
    one process build it once and get the built weights back (0.03 s), as
    a trial trains some of them. Their models are new every time and share
    its layers. Plain trials build their own: they pay what a user pays.
    """
    p = protocol
    stamp = None
    if p.weights not in (None, "imagenet") and os.path.exists(p.weights):
        st = os.stat(p.weights)
        stamp = (st.st_mtime_ns, st.st_size)
    key = (p.backbone, p.image_size, p.weights, stamp, p.seed)
    if key not in _backbones:
        _backbones.clear()
        keras.utils.set_random_seed(p.seed)  # random weights (--weights none) as every plain trial draws them
        built = build_backbone(get_backbone_spec(p.backbone), image_size=p.image_size, weights=p.weights)
        _backbones[key] = (built, BackboneCuts(built), built.get_weights())
    model, cuts, weights = _backbones[key]
    model.set_weights(weights)
    set_depth(model, len(model.layers))
    return model, cuts
