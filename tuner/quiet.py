"""Keep TensorFlow's native start-up lines off the terminal unless asked for.

While its shared libraries load, TensorFlow's C++ side writes straight to
file descriptor 2 before absl logging is initialised ("All log messages
before absl::InitializeLog()", oneDNN, CUDA drivers): no environment
variable silences those lines. So the first ``import tensorflow`` runs with
fd 2 pointed at a temporary file, which is replayed only when verbose (or
when the import fails). What TensorFlow logs afterwards obeys
``TF_CPP_MIN_LOG_LEVEL`` (3 by default here: on a machine without a GPU even
the device probe logs an ERROR line, "failed call to cuInit"). Numerics are
untouched: ``TF_ENABLE_ONEDNN_OPTS`` is left alone. The libraries' Python
loggers (TFDS logs through absl, "WARNING:absl:...") are kept to errors.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

VERBOSE_ENV = "DEPTH_TUNER_VERBOSE"  # inherited by trial processes
LIBRARY_LOGGERS = ("absl", "tensorflow", "keras", "keras_tuner")


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def quiet_tensorflow(*, verbose: bool | None = None) -> None:
    """Call before TensorFlow is imported (CLI entry point, trial process).

    ``verbose`` (default: from ``DEPTH_TUNER_VERBOSE``) keeps every native line.
    A log level the user set in ``TF_CPP_MIN_LOG_LEVEL`` is respected.
    """
    if verbose is None:
        verbose = is_verbose()
    os.environ[VERBOSE_ENV] = "1" if verbose else ""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)
    if "tensorflow" in sys.modules:
        return
    hooks = [f for f in sys.meta_path if isinstance(f, _QuietImport)]
    for hook in hooks:  # installed by an earlier call in this process
        hook.verbose = verbose
    if not hooks:
        sys.meta_path.insert(0, _QuietImport(verbose))


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with a loader that captures fd 2 while it runs."""

    def __init__(self, verbose: bool):
        self.verbose = verbose

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # only the first import, and no recursion below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self.verbose)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, verbose: bool):
        self.loader = loader
        self.verbose = verbose

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        # The module keeps TensorFlow's own loader (resources, reloads).
        module.__loader__ = module.__spec__.loader = self.loader
        with native_stderr_captured(replay=self.verbose):
            self.loader.exec_module(module)


@contextlib.contextmanager
def native_stderr_captured(*, replay: bool) -> Iterator[None]:
    """Point fd 2 at a temporary file; replay it afterwards if ``replay`` or on an exception."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to keep quiet
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if replay or failed:
                captured.seek(0)
                with contextlib.suppress(OSError):
                    os.write(2, captured.read())
