"""Where studies live and how their storage opens: default names and folders, URLs checked
before any slow work, SQLite, journal files and PostgreSQL; reading a study never creates one."""

from __future__ import annotations

import os
import random
import re
import time
import warnings

import optuna

from tuner.errors import UsageError, one_line

# Folder of the default storage (``FOLDER/STUDY.db``): ``studies`` in the
# current folder, or this environment variable's folder from anywhere.
STUDIES_ENV = "DEPTH_TUNER_STUDIES"


def studies_dir() -> str:
    """Where default storages live: $DEPTH_TUNER_STUDIES, else ./studies."""
    return os.path.expanduser(os.environ.get(STUDIES_ENV) or "studies")


def default_study_name(dataset: str, *, fake: bool = False) -> str:
    """The dataset's name; generated images get their own (``NAME-fake``) so that
    an offline demo never claims the real job's study."""
    base = os.path.basename(os.path.normpath(dataset)) if os.path.isdir(dataset) else dataset
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", base) or "study"
    return f"{name}-fake" if fake else name


def check_study_name(name: str) -> str:
    """A study name is a name: it becomes ``STUDY.db`` and ``STUDY.artifacts`` in the studies
    folder, so a separator or a leading dot would put them elsewhere (``../x``) or hide them."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or name != name.strip():
        raise UsageError(f"--study {name!r} is not a plain name: no '/', no leading '.' or spaces "
                         "(use --storage URL to keep a study elsewhere)")
    return name


def default_storage(study_name: str) -> str:
    """``sqlite:///FOLDER/STUDY.db`` in ``studies_dir()`` (an absolute folder gives four slashes)."""
    return f"sqlite:///{os.path.join(studies_dir(), check_study_name(study_name) + '.db')}"


def check_storage_location(url: str) -> None:
    """A storage file's folder must exist or be creatable: refused before the data loads."""
    from tuner.paths import check_file

    path = storage_file(url)
    if path is not None:
        check_file(path, "--storage")


def storage_file(url: str) -> str | None:
    """The file behind a SQLite or journal storage URL, None for a server (or in-memory) storage."""
    if url.startswith("journal:") or url.endswith(".log"):
        return url.removeprefix("journal:")
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?", 1)[0]
        return path if path and path != ":memory:" else None
    return None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna storage for a URL, or a journal file for a path ending in .log.

    SQLite locks under several writers; a journal file (``journal:PATH`` or
    ``PATH.log``) is Optuna's answer for several workers on one machine.
    """
    path = storage_file(url)
    try:
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if url.startswith("journal:") or url.endswith(".log"):
            backend = optuna.storages.journal.JournalFileBackend(path)
            return optuna.storages.JournalStorage(backend)
        if path is not None:
            if os.path.exists(path) and not _looks_like_sqlite(path):
                raise UsageError(
                    f"{path} is not an SQLite database (damaged or another file): "
                    "move it away or pass another --storage"
                )
        return _rdb_storage(url)
    except UsageError:
        raise
    except ImportError as exc:
        raise UsageError(
            f"cannot open storage {url!r} ({one_line(exc)}): for PostgreSQL "
            "pip install 'depth-tuner[postgres]', or pass another --storage"
        ) from None
    except Exception as exc:
        raise UsageError(
            f"cannot open storage {url!r} ({one_line(exc)}): pass a valid --storage "
            "(sqlite:///PATH.db, postgresql://..., or PATH.log for a journal file)"
        ) from None


def _rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """RDBStorage, retried: workers starting together race to create the tables."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except ImportError:
            raise
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))
    raise AssertionError("unreachable")


def _looks_like_sqlite(path: str) -> bool:
    if os.path.getsize(path) == 0:
        return True
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def load_stored_study(name: str, *, storage: str | None) -> optuna.Study:
    """Load a study to read it: a missing file, storage or study is a one-line UsageError.

    A storage file that does not exist is refused first, so reading never
    creates an empty study file.
    """
    check_study_name(name)
    url = storage or default_storage(name)
    path = storage_file(url)
    if path is not None and not os.path.isfile(path):
        hint = "" if storage else f" or set {STUDIES_ENV} to the folder that holds it"
        raise UsageError(f"no study storage at {url}: pass --storage URL{hint}, or run `search` first")
    store = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = [x.study_name for x in optuna.get_all_study_summaries(store)]
        raise UsageError(
            f"no study {name!r} in {url}"
            + (f": pick one of {', '.join(names)}" if names else ": run depth-tuner search first")
        ) from None
