"""Give back the graphs TensorFlow's gradient registry keeps alive after a trial.

Why: every trace of a Keras train step under the default distribution
strategy passes through ``ReplicaContext.all_reduce``, a ``tf.custom_gradient``
in graph mode. It registers its gradient function under a fresh name
(``CustomGradient-N``) in TensorFlow's process-wide gradient registry and never
removes it (tensorflow/tensorflow#97697, #27492), and that function's closure
holds the whole traced train step: its FuncGraph, its 600+ optimizer
functions, every gradient tensor. A MobileNetV2 fit thus kept about 170 MiB
for good, which is what made a long-lived trial process grow by about 100 MiB
per trial (benchmarks/RESULTS.md, "Memory of the long-lived trial process").

A registered gradient is read only while a graph is being differentiated,
that is while a train step is traced; once a trial has ended its models, and
their traced functions, are dropped, so the names it registered can go.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

PREFIX = "CustomGradient-"


def _registry() -> dict | None:
    """TensorFlow's gradient registry, or None where this TensorFlow keeps it elsewhere."""
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry  # no public way to unregister a gradient
    except (ImportError, AttributeError):
        return None
    return registry if isinstance(registry, dict) else None


@contextlib.contextmanager
def graphs_released() -> Iterator[None]:
    """Within: train as usual. After: the gradients registered meanwhile are unregistered."""
    registry = _registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in [n for n in registry if n.startswith(PREFIX) and n not in before]:
                del registry[name]
        gc.collect()
