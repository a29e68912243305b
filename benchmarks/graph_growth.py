"""Does a process's memory grow per fit even when everything of the model is released?

Builds a head on one MobileNetV2 (32 px, random weights) eight times, fits it once on 64
images, drops the model and prints resident memory. ``--release`` also truncates the
backbone's node lists, calls ``keras.backend.clear_session(free_memory=True)`` and
``gc.collect()`` after every fit; ``--trim`` returns freed heap to the system
(``malloc_trim``); ``--no-xla`` compiles without XLA; ``--unregister`` runs each fit
inside ``tuner.trials.released.graphs_released``, which unregisters the gradients the
fit's trace registered in TensorFlow's gradient registry. Only that one stops the
growth: the registry's closures hold every traced train step (tensorflow/tensorflow#97697).

    python benchmarks/graph_growth.py               # as trial processes did before session 27
    python benchmarks/graph_growth.py --release     # everything Keras exposes released
    python benchmarks/graph_growth.py --unregister  # as a trial process does now
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="store_true")
    parser.add_argument("--unregister", action="store_true",
                        help="fit inside tuner.trials.released.graphs_released")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after every fit")
    parser.add_argument("--no-xla", dest="jit", action="store_const", const=False, default="auto",
                        help="compile with jit_compile=False (Keras' default is XLA on CPU too)")
    parser.add_argument("--fits", type=int, default=8)
    args = parser.parse_args()
    import keras
    import numpy as np

    from tuner.trials.process import proc_status_mib
    from tuner.trials.released import graphs_released

    bb = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    nodes = {id(layer): (len(layer._inbound_nodes), len(layer._outbound_nodes)) for layer in [bb, *bb.layers]}
    x = np.random.default_rng(0).random((64, 32, 32, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 5, 64)
    before = proc_status_mib("VmRSS")
    for i in range(args.fits):
        inputs = keras.Input((32, 32, 3))
        features = keras.layers.GlobalAveragePooling2D()(bb(inputs, training=False))
        model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(features))
        model.compile("adam", "sparse_categorical_crossentropy", jit_compile=args.jit)
        with graphs_released() if args.unregister else contextlib.nullcontext():
            model.fit(x, y, epochs=1, verbose=0)
        del model, inputs, features
        if args.release:
            for layer in [bb, *bb.layers]:
                a, b = nodes[id(layer)]
                del layer._inbound_nodes[a:], layer._outbound_nodes[b:]
            keras.backend.clear_session(free_memory=True)
        gc.collect()
        if args.trim:
            import ctypes
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        rss = proc_status_mib("VmRSS")
        print(f"fit {i + 1}: {rss:.0f} MiB resident (+{(rss - before) / (i + 1):.0f} MiB per fit)")


if __name__ == "__main__":
    main()
