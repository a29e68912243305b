"""Activations at cache points, on disk, shared by every trial and worker of a machine.

An entry is keyed by everything that decides its activations (the images
themselves by content hash, image size, backbone, weights, cache point), so
a key never names stale data. Entries are written into a temporary folder
and renamed into place: a worker killed while filling one leaves only a
temporary folder, which the next run removes, never a half-written entry.
The cache is kept under its size cap by removing the least recently used
entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

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
    def __init__(self, root: str, cap_bytes: float):
        self.root = root
        self.cap_bytes = cap_bytes
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
        return nbytes <= self.cap_bytes

    def pending(self, key: str, shapes: dict[str, tuple[int, ...]], meta: dict) -> PendingEntry:
        return PendingEntry(self, key, shapes, meta)

    @contextlib.contextmanager
    def filling(self, key: str) -> Iterator[None]:
        """Hold while computing ``key``, so two workers never compute it both."""
        with open(os.path.join(self.root, f".{key}.lock"), "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def entries(self) -> list[tuple[str, float, int]]:
        """(key, last use, bytes) of every committed entry."""
        out = []
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if name.startswith(".") or not os.path.isdir(path):
                continue
            size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
            out.append((name, os.path.getmtime(path), size))
        return out

    def size_bytes(self) -> int:
        return sum(size for _, _, size in self.entries())

    def evict(self) -> None:
        """Remove the least recently used entries until the cache is within its cap."""
        entries = sorted(self.entries(), key=lambda e: e[1])
        total = sum(size for _, _, size in entries)
        for key, _, size in entries:
            if total <= self.cap_bytes:
                break
            shutil.rmtree(os.path.join(self.root, key), ignore_errors=True)
            total -= size

    def reclaim(self) -> list[str]:
        """Remove what workers killed mid-fill left behind; returns the removed folders."""
        removed = []
        for name in os.listdir(self.root):
            if not name.startswith(".tmp-"):
                continue
            try:
                pid = int(name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if not pid_alive(pid):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
                removed.append(name)
        return removed
