"""The shared head phase's result, kept with the study so every worker and resume starts from it.

The head weights are an Optuna artifact (the public way to keep files with a
study); their id and the phase-1 metrics are a study user attribute written
only after the upload, so a worker killed mid-phase leaves nothing that
could be read as a finished head. A lock file beside the artifacts makes
workers that start together compute it once: the others wait and read it.
With several machines the artifacts folder must be on storage they share.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact

from tuner import stored_keys as keys


def default_artifacts_dir(storage: str, study_name: str) -> str:
    """Beside the study's file: ``studies/NAME.db`` -> ``studies/NAME-artifacts``."""
    for prefix in ("sqlite:///", "journal:", ""):
        path = storage.removeprefix(prefix)
        if storage.startswith(prefix) and path.endswith((".db", ".log", ".sqlite", ".sqlite3")):
            return os.path.splitext(path)[0] + "-artifacts"
    return os.path.join("studies", f"{study_name}-artifacts")


def stored_head(study: optuna.Study) -> dict | None:
    return study.user_attrs.get(keys.HEAD_PHASE)


def ensure_head_phase(study: optuna.Study, *, artifacts_dir: str, destination: str,
                      compute: Callable[[str], dict], wait_note: Callable[[], None]) -> tuple[dict, bool]:
    """Phase-1 metrics and the head file at ``destination``; computed here only if no worker has.

    ``compute(path)`` writes the head to ``path`` and returns its metrics.
    Returns (metrics, whether this call computed it).
    """
    os.makedirs(artifacts_dir, exist_ok=True)
    store = FileSystemArtifactStore(artifacts_dir)
    with open(os.path.join(artifacts_dir, f".{study.study_name}.head.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            wait_note()
            fcntl.flock(lock, fcntl.LOCK_EX)
        head = stored_head(study)  # read from the storage now: another worker may have written it
        if head is not None:
            download_artifact(artifact_store=store, file_path=destination, artifact_id=head["artifact_id"])
            return head, False
        metrics = compute(destination)
        artifact_id = upload_artifact(artifact_store=store, file_path=destination, study_or_trial=study)
        head = {**metrics, "artifact_id": artifact_id}
        study.set_user_attr(keys.HEAD_PHASE, head)
        return head, True
