"""A trial gives back what its fits traced, so the long-lived trial process stays flat.

TensorFlow's gradient registry keeps every traced train step alive
(``tuner.trials.released``); these tests check that a fit inside
``graphs_released`` leaves no traced graph behind, and that without it one is
(the premise: if a TensorFlow release fixes the leak, the second test says so).
"""

from __future__ import annotations

import gc

import keras
import numpy as np

from tuner.trials.released import graphs_released


def _graphs() -> int:
    gc.collect()
    return sum(type(o).__name__ == "FuncGraph" for o in gc.get_objects())


def _fit_once() -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    model.fit(np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32"), epochs=1, verbose=0)


def test_a_released_fit_leaves_no_traced_graph_alive():
    _fit_once()  # Keras' own once-per-process graphs, if any, are made here
    before = _graphs()
    with graphs_released():
        _fit_once()
    assert _graphs() == before


def test_without_release_tensorflow_keeps_the_graph():
    before = _graphs()
    _fit_once()
    assert _graphs() > before, "TensorFlow no longer keeps traced train steps: tuner.trials.released can go"
