"""depth-tuner: how many top backbone layers to unfreeze, measured and searched.

Flow, one sub-package per stage (nothing imports a later one): data -> model
-> trials -> objectives -> store -> strategies -> search -> analysis -> api
-> cli. README's "How it fits together" names each module's job.

The Python API (``tuner.DepthSearch``, ``tuner.compare``, ``tuner.predict``) is imported on
first use, so ``import tuner`` does not start TensorFlow.
"""

import importlib.util
import os
import sys


def _own_siblings(names: tuple[str, ...] = ("studies", "objectives")) -> None:
    """Import the tool's other top-level packages from beside this one, never from the user's folder.

    A notebook or ``python -c`` puts the current folder first on ``sys.path``,
    and a search leaves ``./studies/STUDY.db`` there: with an editable install
    (whose finder runs after the path scan) that folder became the namespace
    package ``studies`` and hid the thesis tables. The tool's packages sit
    beside ``tuner`` however it is installed (site-packages, or the source
    tree of an editable install), so they are loaded from there by path.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in names:
        init = os.path.join(root, name, "__init__.py")
        loaded = sys.modules.get(name)
        if not os.path.isfile(init) or (
                loaded is not None and getattr(loaded, "__file__", None)
                and os.path.samefile(loaded.__file__, init)):
            continue
        spec = importlib.util.spec_from_file_location(name, init,
                                                      submodule_search_locations=[os.path.dirname(init)])
        module = importlib.util.module_from_spec(spec)
        for sub in [m for m in sys.modules if m.startswith(name + ".")]:
            del sys.modules[sub]  # parts of the shadowing folder
        sys.modules[name] = module
        spec.loader.exec_module(module)


_own_siblings()

from tuner.errors import DepthTunerError, SearchStopped, TrialError, UsageError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["DepthSearch", "DepthTunerError", "SearchStopped", "TrialError", "UsageError", "__version__", "compare",
           "model_card", "predict"]

_LAZY = {name: "tuner.api" for name in ("DepthSearch", "compare", "model_card", "predict")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
