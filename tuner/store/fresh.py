"""Take back what a run created if it fails before its first trial.

The checks that can fail on input (flags, weights, data) run before any
storage is created; what can still fail between creating the study and its
first trial (the shared head phase, Ctrl-C) must not leave an empty study,
storage file or folder behind either. Only what did not exist before this
run is removed, and a study only while it holds no trial at all (another
worker may already have started one) and no other worker has joined it
(a worker waiting for the creator's head phase would otherwise lose the
study under its feet).
"""

from __future__ import annotations

import contextlib
import os
import shutil

import optuna

from tuner import stored_keys as keys
from tuner.model.protocol import host_name
from tuner.store.storage import storage_file


def _new_paths(path: str) -> list[str]:
    """``path`` and its missing parent folders, outermost first (what creating it would add)."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing[::-1]


class FreshStudy:
    """Remembers which files, folders and study a run is about to create."""

    def __init__(self, *, storage: str, study_name: str, artifacts_dir: str):
        self.study_name = study_name
        self.store: optuna.storages.BaseStorage | None = None
        self.created_study = False
        path = storage_file(storage)
        self.storage_paths = _new_paths(path) if path else []
        self.artifact_paths = _new_paths(artifacts_dir)

    def opened(self, store: optuna.storages.BaseStorage, *, created_study: bool,
               study: optuna.Study | None = None) -> None:
        """Call once the storage is open: whether this run created the study in it.

        A run that loads a study someone else created marks it as joined, so
        that the creator, failing before its first trial, leaves it in place.
        """
        self.store = store
        self.created_study = created_study
        if study is not None and not created_study:
            study.set_user_attr(f"{keys.JOINED_PREFIX}{host_name()}:{os.getpid()}", True)

    def take_back(self) -> bool:
        """Remove what this run created, if the study has no trial yet; True if it did."""
        if self.store is not None and self.created_study:
            study = optuna.load_study(study_name=self.study_name, storage=self.store)
            if study.get_trials(deepcopy=False) or any(k.startswith(keys.JOINED_PREFIX) for k in study.user_attrs):
                return False
            optuna.delete_study(study_name=self.study_name, storage=self.store)
        elif not self.storage_paths:
            return False  # neither the study nor its storage is this run's
        if self.created_study and self.artifact_paths:  # only the deleted study's head phase is in it
            shutil.rmtree(self.artifact_paths[-1], ignore_errors=True)
            _remove(self.artifact_paths[:-1])
        others = optuna.get_all_study_summaries(self.store) if self.store is not None else []
        if not others:  # a worker starting with this one may have put its study in the new file
            _remove(self.storage_paths)
        return True


def _remove(paths: list[str]) -> None:
    """Innermost first: the file, then the folders it needed, if they are empty."""
    for path in reversed(paths):
        with contextlib.suppress(OSError):
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
