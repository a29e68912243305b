"""The Python API: a depth search and a strategy comparison in a few lines.

``DepthSearch`` stores its options as given (scikit-learn style) and checks
them when it runs, through the same path as ``depth-tuner search``: the CLI
only parses flags into a ``DepthSearch``. Heavy imports (TensorFlow, Optuna)
wait until they are needed, so ``import tuner`` stays cheap. One module per
job: the search (``search``), replays of strategies (``replays``), the
exported model (``handover``).
"""

from __future__ import annotations

from tuner.quiet import quiet_tensorflow

# TensorFlow's native start-up lines (oneDNN, CUDA) stay off a script's stderr, as the CLI's
# do; installed now, before anything of the API can import TensorFlow (tuner.quiet:
# DEPTH_TUNER_VERBOSE=1 keeps them). A process that imported TensorFlow first is left alone.
quiet_tensorflow()

from tuner.api.handover import model_card, predict  # noqa: E402
from tuner.api.replays import compare, comparison  # noqa: E402
from tuner.api.search import DepthSearch, ResolvedSearch  # noqa: E402

__all__ = ["DepthSearch", "ResolvedSearch", "compare", "comparison", "model_card", "predict"]
