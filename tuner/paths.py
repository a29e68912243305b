"""Folders and files the user names, checked before any slow work.

A path under an existing file, a file where a folder is wanted, or a folder
that cannot be written would otherwise fail deep inside a run with an
``OSError`` traceback, after the data has loaded. Checked up front they are
one line naming the flag and what to change.
"""

from __future__ import annotations

import os

from tuner.errors import UsageError


def _nearest_existing(path: str) -> str:
    """The path or its closest ancestor that exists (a broken link counts: mkdir fails on it)."""
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _kind(path: str) -> str:
    return "broken link" if os.path.islink(path) and not os.path.exists(path) else "file"


def check_folder(path: str | os.PathLike, flag: str) -> str:
    """The absolute folder ``path``: existing, or creatable (nothing is created here)."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        if existing == path:
            raise UsageError(f"{flag} {path} is a {_kind(path)}, not a folder: pass a folder "
                             "(a missing folder is created)")
        raise UsageError(f"{flag} {path}: {existing} is a {_kind(existing)}, so no folder can be made "
                         "under it; pick another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {existing} is not writable; pick another folder")
    return path


def check_file(path: str | os.PathLike, flag: str) -> str:
    """The absolute file ``path``: not a folder, its folder existing or creatable."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder: give a file name")
    existing = _nearest_existing(os.path.dirname(path))
    if not os.path.isdir(existing):
        raise UsageError(f"{flag} {path}: {existing} is a {_kind(existing)}, so {path} cannot be made; "
                         "pick another path")
    check_folder(os.path.dirname(path), flag)
    return path
