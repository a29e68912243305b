"""Where depth-tuner keeps what it can rebuild: the user's cache folder."""

from __future__ import annotations

import os


def cache_home() -> str:
    """depth-tuner's folder in the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "depth-tuner")
