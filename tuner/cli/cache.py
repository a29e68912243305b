"""List or clear the cached activations of cached trials.

Cached trials keep the activations of the backbone's frozen part on disk
(default ~/.cache/depth-tuner/prefix), one entry per dataset, backbone,
image size and cache point; a search trims them to its --cache-size, least
recently used first. This command shows what is there and how much space
it takes, and removes it: everything, or what was not used for some days.
An entry a running worker is filling right now is kept.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from datetime import datetime

EPILOG = """examples:
  depth-tuner cache                                 # entries, their sizes and last use; the total
  depth-tuner cache --older-than 7                  # only those unused for a week (what --clear would remove)
  depth-tuner cache --clear --older-than 7          # remove those
  depth-tuner cache --clear                         # remove every entry
  depth-tuner cache --format json > cache.json
  depth-tuner cache --cache-dir /scratch/prefix     # a folder given to search --cache-dir
"""

CSV_FIELDS = ["key", "bytes", "last_used", "backbone", "image_size", "weights", "point", "depth",
              "images", "train_images", "val_images"]
COLUMNS = ["size", "last_used", "backbone", "image_size", "point", "depth", "images", "key"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", metavar="DIR",
                   help="the cache folder, as given to search --cache-dir (default: ~/.cache/depth-tuner/prefix)")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"],
                   help="table for reading, csv or json for scripts")
    p.add_argument("--clear", action="store_true",
                   help="remove the entries (all, or those of --older-than) and what killed workers left behind")
    p.add_argument("--older-than", type=float, metavar="DAYS",
                   help="only entries not used for DAYS days (fractions allowed); "
                        "without --clear, lists what --clear would remove")


def run(args: argparse.Namespace) -> int:
    from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB, PrefixCache

    root = _cache_dir(args.cache_dir)
    older = _older_than_seconds(args.older_than)
    cache = PrefixCache(root, DEFAULT_CACHE_GIB * 2**30, create=False)
    if args.clear:
        print_cleared(cache, cache.clear(older_than_seconds=older), fmt=args.format)
    else:
        print_listing(cache, older_than_seconds=older, fmt=args.format)
    return 0


def _cache_dir(given: str | None) -> str:
    from tuner.errors import UsageError
    from tuner.trials.prefix_cache import default_cache_dir

    root = os.path.expanduser(given) if given else default_cache_dir()
    if os.path.exists(root) and not os.path.isdir(root):
        raise UsageError(f"--cache-dir {root} is a file, not a folder: give the folder of cached "
                         f"activations (default {default_cache_dir()})")
    return root


def _older_than_seconds(days: float | None) -> float | None:
    from tuner.errors import UsageError

    if days is None:
        return None
    if not days >= 0:  # also NaN
        raise UsageError(f"--older-than must be 0 or more days (got {days:g})")
    return days * 86400.0


# ---------------------------------------------------------------- listing

def print_listing(cache, *, older_than_seconds: float | None = None, fmt: str = "table", out=None) -> None:
    """Every entry (or those unused for ``older_than_seconds``), then the total and the cap."""
    out = out or sys.stdout
    every = cache.entries()
    shown = _unused_for(every, older_than_seconds)
    temps = cache.temporaries()
    if fmt == "csv":
        _write_csv(shown, out)
    elif fmt == "json":
        json.dump(_listing_json(cache, shown, temps), out, indent=2)
        out.write("\n")
    else:
        if shown:
            _write_table(shown, out)
        print(_total_line(cache, shown, every, older_than_seconds), file=out)
        if temps:
            print(_temporaries_line(temps), file=out)


def _unused_for(entries: list, seconds: float | None) -> list:
    if seconds is None:
        return entries
    cutoff = time.time() - seconds
    return [e for e in entries if e.last_used <= cutoff]


def _total_line(cache, shown: list, every: list, older_than_seconds: float | None) -> str:
    from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB

    cap = f"cap {DEFAULT_CACHE_GIB:g} GiB by default (search --cache-size)"
    total = size_text(sum(e.bytes for e in shown))
    if older_than_seconds is not None:
        return (f"{_count(len(shown), 'entry')} of {len(every)} unused for {older_than_seconds / 86400:g} days, "
                f"{total}, in {cache.root}; {cap}")
    if not every:
        return f"no cached activations in {cache.root}; {cap}"
    return f"{_count(len(every), 'entry')}, {total}, in {cache.root}; {cap}"


def _temporaries_line(temps: list) -> str:
    stale = [t for t in temps if not t.alive]
    parts = []
    if stale:
        parts.append(f"{len(stale)} left by stopped workers ({size_text(sum(t.bytes for t in stale))}; "
                     "--clear removes them)")
    if len(stale) < len(temps):
        filling = len(temps) - len(stale)
        parts.append(f"{filling} being filled by {'a running worker' if filling == 1 else 'running workers'}")
    return f"also {_count(len(temps), 'temporary folder')}: " + ", ".join(parts)


def _listing_json(cache, entries: list, temps: list) -> dict:
    from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB

    return {"folder": cache.root, "total_bytes": sum(e.bytes for e in entries),
            "default_cap_gib": DEFAULT_CACHE_GIB, "entries": [_entry_json(e) for e in entries],
            "temporary": [_temp_json(t) for t in temps]}


# ---------------------------------------------------------------- clearing

def print_cleared(cache, done, *, fmt: str = "table", out=None) -> None:
    """What ``clear`` removed and freed, and what it kept because a worker uses it."""
    out = out or sys.stdout
    if fmt == "csv":
        _write_csv(done.removed, out)
        return
    if fmt == "json":
        json.dump({"folder": cache.root, "freed_bytes": done.freed_bytes,
                   "removed": [_entry_json(e) for e in done.removed],
                   "removed_temporary": [_temp_json(t) for t in done.reclaimed],
                   "kept_in_use": [_entry_json(e) for e in done.in_use],
                   "kept_filling": [_temp_json(t) for t in done.filling]}, out, indent=2)
        out.write("\n")
        return
    if done.removed:
        print("removed:", file=out)
        _write_table(done.removed, out)
    for t in done.reclaimed:
        print(f"removed {t.name}, {size_text(t.bytes)}: left by a stopped worker (pid {t.pid})", file=out)
    for e in done.in_use:
        print(f"kept {e.key}: a running worker is filling it right now (clear again when it is done)", file=out)
    for t in done.filling:
        print(f"kept {t.name}: being filled by a running worker (pid {t.pid})", file=out)
    print(_freed_line(cache, done), file=out)


def _freed_line(cache, done) -> str:
    if not done.removed and not done.reclaimed:
        return f"nothing removed in {cache.root}"
    what = [_count(len(done.removed), "entry")]
    if done.reclaimed:
        what.append(_count(len(done.reclaimed), "temporary folder"))
    left = cache.entries()
    return (f"freed {size_text(done.freed_bytes)} ({', '.join(what)}) in {cache.root}; "
            f"{_count(len(left), 'entry')} left, {size_text(sum(e.bytes for e in left))}")


# ---------------------------------------------------------------- rows

def size_text(nbytes: float) -> str:
    """GiB from 1 GiB on, else MiB (KiB for the very small)."""
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.2f} GiB"
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.1f} MiB"
    return f"{math.ceil(nbytes / 2**10)} KiB"


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _when(t: float, *, iso: bool) -> str:
    local = datetime.fromtimestamp(t).astimezone()
    return local.isoformat(timespec="seconds") if iso else local.strftime("%Y-%m-%d %H:%M")


def _table_row(e) -> list[str]:
    def text(v) -> str:
        return "-" if v is None else str(v)

    return [size_text(e.bytes), _when(e.last_used, iso=False), text(e.backbone),
            text(e.image_size), text(e.point), text(e.depth), text(e.images), e.key]


def _write_table(entries: list, out) -> None:
    rows = [[c.replace("_", " ") for c in COLUMNS]] + [_table_row(e) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    right = {0, 3, 5, 6}  # numbers
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells).rstrip(), file=out)


def _entry_json(e) -> dict:
    return {"key": e.key, "bytes": e.bytes, "last_used": _when(e.last_used, iso=True),
            "backbone": e.backbone, "image_size": e.image_size, "weights": e.weights,
            "point": e.point, "depth": e.depth, "images": e.images,
            "train_images": e.train_images, "val_images": e.val_images}


def _temp_json(t) -> dict:
    return {"name": t.name, "bytes": t.bytes, "pid": t.pid, "worker_running": t.alive}


def _write_csv(entries: list, out) -> None:
    w = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for e in entries:
        w.writerow({k: "" if v is None else v for k, v in _entry_json(e).items()})
