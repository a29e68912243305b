"""Activations at cache points, on disk, shared by every trial and worker of a machine.

An entry is keyed by everything that decides its activations (the images
themselves by content hash, image size, backbone, weights, cache point), so
a key never names stale data. Entries are written into a temporary folder
and renamed into place: a worker killed while filling one leaves only a
temporary folder, which the next run removes, never a half-written entry.
The cache is kept under its size cap by removing the least recently used
entries; an entry's last use is its folder's modification time, which every
read refreshes. ``entries`` and ``clear`` are what ``depth-tuner cache``
lists and removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from tuner.processes import pid_alive
from tuner.user_cache import cache_home

DEFAULT_CACHE_GIB = 8.0


def default_cache_dir() -> str:
    return os.path.join(cache_home(), "prefix")


def cache_key(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


@dataclass
class Entry:
    train: np.ndarray
    val: np.ndarray
    meta: dict


@dataclass(frozen=True)
class EntryInfo:
    """One committed entry as ``depth-tuner cache`` lists it; None where its meta does not say.

    Entries written before the meta named backbone, image size and depth
    still list, with those fields None.
    """

    key: str
    bytes: int
    last_used: float  # the folder's mtime: what reads refresh and eviction sorts by
    backbone: str | None = None
    image_size: int | None = None
    weights: str | None = None
    point: str | None = None  # the layer whose output is cached, or "pooled"
    depth: int | None = None  # the cut that layer's output crosses
    train_images: int | None = None
    val_images: int | None = None

    @property
    def images(self) -> int | None:
        if self.train_images is None or self.val_images is None:
            return None
        return self.train_images + self.val_images


@dataclass(frozen=True)
class TempFolder:
    """A ``.tmp-PID-...`` folder: an entry being filled, or what a killed worker left."""

    name: str
    bytes: int
    pid: int | None
    alive: bool  # its worker still runs: the folder is in use


@dataclass
class Cleared:
    """What ``PrefixCache.clear`` removed, and what it kept because a worker is using it."""

    removed: list[EntryInfo] = field(default_factory=list)
    reclaimed: list[TempFolder] = field(default_factory=list)
    in_use: list[EntryInfo] = field(default_factory=list)  # a worker holds their fill lock
    filling: list[TempFolder] = field(default_factory=list)  # their worker still runs

    @property
    def freed_bytes(self) -> int:
        return sum(e.bytes for e in self.removed) + sum(t.bytes for t in self.reclaimed)


def _folder_bytes(path: str) -> int:
    """Bytes of the files in ``path``; 0 if another worker removed it meanwhile."""
    try:
        with os.scandir(path) as it:
            return sum(e.stat().st_size for e in it if e.is_file())
    except FileNotFoundError:
        return 0


def _rows(path: str) -> int | None:
    """Rows (images) of an ``.npy`` file, from its header alone."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            major, _ = fmt.read_magic(f)
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape = read_header(f)[0]
        return int(shape[0])
    except (OSError, ValueError, IndexError):
        return None


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value) -> str | None:
    return value if isinstance(value, str) else None


class PendingEntry:
    """Arrays being filled in a temporary folder; ``commit`` makes them an entry."""

    def __init__(self, cache: PrefixCache, key: str, shapes: dict[str, tuple[int, ...]], meta: dict):
        self.cache, self.key, self.meta = cache, key, meta
        self.tmp = os.path.join(cache.root, f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.makedirs(self.tmp)
        self.arrays = {
            split: np.lib.format.open_memmap(os.path.join(self.tmp, f"{split}.npy"), mode="w+",
                                             dtype=np.float32, shape=shape)
            for split, shape in shapes.items()
        }

    def commit(self) -> None:
        for a in self.arrays.values():
            a.flush()
        with open(os.path.join(self.tmp, "meta.json"), "w") as f:
            json.dump(self.meta, f)
        final = os.path.join(self.cache.root, self.key)
        try:
            os.rename(self.tmp, final)
        except OSError:  # another worker committed the same entry first
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.cache.evict()

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class PrefixCache:
    def __init__(self, root: str, cache_size_bytes: float, *, create: bool = True):
        """``create=False`` for looking only: a missing folder then lists as empty, and stays missing."""
        self.root = root
        self.cache_size_bytes = cache_size_bytes  # the cap on what it holds (--cache-size)
        if create:
            os.makedirs(root, exist_ok=True)

    def get(self, key: str) -> Entry | None:
        path = os.path.join(self.root, key)
        try:
            with open(os.path.join(path, "meta.json")) as f:
                meta = json.load(f)
            train = np.load(os.path.join(path, "train.npy"), mmap_mode="r")
            val = np.load(os.path.join(path, "val.npy"), mmap_mode="r")
        except (OSError, ValueError):
            return None
        os.utime(path)  # recently used
        return Entry(train, val, meta)

    def fits(self, nbytes: float) -> bool:
        return nbytes <= self.cache_size_bytes

    def pending(self, key: str, shapes: dict[str, tuple[int, ...]], meta: dict) -> PendingEntry:
        return PendingEntry(self, key, shapes, meta)

    @contextlib.contextmanager
    def filling(self, key: str) -> Iterator[None]:
        """Hold while computing ``key``, so two workers never compute it both."""
        f = self._entry_lock(key, wait=True)
        try:
            yield
        finally:
            f.close()  # releases the lock

    def _lock_path(self, key: str) -> str:
        return os.path.join(self.root, f".{key}.lock")

    def _entry_lock(self, key: str, *, wait: bool) -> IO | None:
        """The fill lock of ``key``, held; None if another worker holds it and ``wait`` is False.

        ``clear`` removes lock files while holding them, so a lock is only
        good if its file is still the one at the path; otherwise take the new one.
        """
        path = self._lock_path(key)
        while True:
            f = open(path, "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                return None
            except BaseException:
                f.close()
                raise
            try:
                if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                    return f
            except FileNotFoundError:
                pass
            f.close()

    def _listing(self) -> list[str]:
        try:
            return os.listdir(self.root)
        except FileNotFoundError:  # nothing cached yet
            return []

    def _committed(self) -> list[tuple[str, float, int]]:
        """(key, last use, bytes) of every committed entry; what eviction sorts."""
        out = []
        for name in self._listing():
            path = os.path.join(self.root, name)
            if name.startswith(".") or not os.path.isdir(path):
                continue
            try:
                last_used = os.path.getmtime(path)
            except FileNotFoundError:  # evicted by another worker meanwhile
                continue
            out.append((name, last_used, _folder_bytes(path)))
        return out

    def entries(self) -> list[EntryInfo]:
        """Every committed entry with what its meta says, most recently used first."""
        out = [self._describe(key, last_used, size) for key, last_used, size in self._committed()]
        return sorted(out, key=lambda e: e.last_used, reverse=True)

    def _describe(self, key: str, last_used: float, size: int) -> EntryInfo:
        path = os.path.join(self.root, key)
        try:
            with open(os.path.join(path, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        train, val = meta.get("train_images"), meta.get("val_images")
        return EntryInfo(
            key=key, bytes=size, last_used=last_used,
            backbone=_str_or_none(meta.get("backbone")), image_size=_int_or_none(meta.get("image_size")),
            weights=_str_or_none(meta.get("weights")), point=_str_or_none(meta.get("point")),
            depth=_int_or_none(meta.get("depth")),
            # entries from before the meta counted them: their arrays' headers do
            train_images=_int_or_none(train) if train is not None else _rows(os.path.join(path, "train.npy")),
            val_images=_int_or_none(val) if val is not None else _rows(os.path.join(path, "val.npy")),
        )

    def temporaries(self) -> list[TempFolder]:
        """The ``.tmp-PID-...`` folders: entries being filled, or left by killed workers."""
        out = []
        for name in self._listing():
            if not name.startswith(".tmp-"):
                continue
            try:
                pid = int(name.split("-")[1])
            except (IndexError, ValueError):
                pid = None
            # a name without a pid is not ours to judge: treat it as in use
            alive = True if pid is None else pid_alive(pid)
            out.append(TempFolder(name, _folder_bytes(os.path.join(self.root, name)), pid, alive))
        return out

    def size_bytes(self) -> int:
        return sum(size for _, _, size in self._committed())

    def evict(self) -> None:
        """Remove the least recently used entries until the cache is within its cap."""
        entries = sorted(self._committed(), key=lambda e: e[1])
        total = sum(size for _, _, size in entries)
        for key, _, size in entries:
            if total <= self.cache_size_bytes:
                break
            shutil.rmtree(os.path.join(self.root, key), ignore_errors=True)
            total -= size

    def reclaim(self) -> list[str]:
        """Remove what workers killed mid-fill left behind; returns the removed folders."""
        return [t.name for t in self._reclaim()]

    def _reclaim(self) -> list[TempFolder]:
        removed = []
        for t in self.temporaries():
            if not t.alive:
                shutil.rmtree(os.path.join(self.root, t.name), ignore_errors=True)
                removed.append(t)
        return removed

    def clear(self, older_than_seconds: float | None = None) -> Cleared:
        """Remove every entry (or those unused for ``older_than_seconds``) and killed workers' leftovers.

        An entry whose fill lock a worker holds is being filled or handed
        out right now: it is kept. A trial that already reads an entry keeps
        reading it after its removal (its files stay open until it lets go).
        """
        cutoff = None if older_than_seconds is None else time.time() - older_than_seconds
        done = Cleared()
        for info in self.entries():
            if cutoff is not None and info.last_used > cutoff:
                continue
            lock = self._entry_lock(info.key, wait=False)
            if lock is None:
                done.in_use.append(info)
                continue
            try:
                if self._remove_entry(info.key, cutoff):
                    done.removed.append(info)
            finally:
                lock.close()
        done.reclaimed = self._reclaim()
        done.filling = [t for t in self.temporaries() if t.alive]
        self._remove_orphan_locks()
        return done

    def _remove_entry(self, key: str, cutoff: float | None) -> bool:
        """Remove ``key`` and its lock file (its lock held); False if it was used since it was listed."""
        path = os.path.join(self.root, key)
        try:
            if cutoff is not None and os.path.getmtime(path) > cutoff:
                return False
        except FileNotFoundError:  # evicted by another worker meanwhile
            return False
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._lock_path(key))
        return True

    def _remove_orphan_locks(self) -> None:
        """Lock files of entries that are gone (evicted), unless a worker holds them."""
        for name in self._listing():
            if not (name.startswith(".") and name.endswith(".lock")) or name.startswith(".tmp-"):
                continue
            key = name[1:-len(".lock")]
            if os.path.isdir(os.path.join(self.root, key)):
                continue
            lock = self._entry_lock(key, wait=False)
            if lock is None:
                continue
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self._lock_path(key))
            finally:
                lock.close()
