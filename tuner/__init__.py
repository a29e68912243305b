"""depth-tuner: how many top backbone layers to unfreeze, measured and searched.

Flow, one sub-package per stage (nothing imports a later one): data -> model
-> trials -> objectives -> store -> strategies -> search -> analysis -> api
-> cli. README's "How it fits together" names each module's job.

The Python API (``tuner.DepthSearch``, ``tuner.compare``, ``tuner.predict``) is imported on
first use, so ``import tuner`` does not start TensorFlow.
"""

from tuner.errors import DepthTunerError, TrialError, UsageError

__version__ = "0.1.0"

__all__ = ["DepthSearch", "DepthTunerError", "TrialError", "UsageError", "__version__", "compare",
           "model_card", "predict"]

_LAZY = {name: "tuner.api" for name in ("DepthSearch", "compare", "model_card", "predict")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
