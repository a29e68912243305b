"""depth-tuner cache: lists the prefix cache's entries and clears them, without touching what workers use."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time

import pytest

from tuner.cli.cache import size_text
from tuner.cli.main import main
from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB, PrefixCache

DAY = 86400.0
NEW_META = {"point": "block_3_add", "depth": 27, "backbone": "MobileNetV2", "image_size": 96,
            "weights": "imagenet", "train_images": 40, "val_images": 8, "shape": [12, 12, 24]}


def _entry(cache: PrefixCache, key: str, meta: dict, *, train: int = 40, val: int = 8,
           days_ago: float = 0.0) -> None:
    """A committed entry as activations.compute writes one, last used ``days_ago``."""
    p = cache.pending(key, {"train": (train, 6, 6, 4), "val": (val, 6, 6, 4)}, meta)
    p.arrays["train"][:] = 1.0
    p.commit()
    t = time.time() - days_ago * DAY
    os.utime(os.path.join(cache.root, key), (t, t))


@pytest.fixture
def cache(tmp_path) -> PrefixCache:
    """Three entries: new meta used today, new meta unused for 10 days, old meta (point only) for 30."""
    c = PrefixCache(str(tmp_path / "prefix"), 2**30)
    _entry(c, "aaaa1111", NEW_META)
    _entry(c, "bbbb2222", {**NEW_META, "point": "block_6_add", "depth": 54}, days_ago=10)
    _entry(c, "cccc3333", {"point": "pooled", "shape": [1280]}, train=20, val=5, days_ago=30)
    return c


def _cache(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["cache", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _keys(cache: PrefixCache) -> set[str]:
    return {e.key for e in cache.entries()}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lists_every_entry_with_what_its_meta_says_and_the_total(cache, capsys):
    code, out, err = _cache(capsys, "--cache-dir", cache.root)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["size", "last", "used", "backbone", "image", "size", "point", "depth",
                                "images", "key"]
    rows = {line.split()[-1]: line for line in lines[1:4]}
    assert set(rows) == {"aaaa1111", "bbbb2222", "cccc3333"}
    assert lines[1].endswith("aaaa1111")  # most recently used first
    assert rows["aaaa1111"].split()[4:9] == ["MobileNetV2", "96", "block_3_add", "27", "48"]
    # an entry from before the meta named backbone and depth: "-", its images from the arrays
    assert rows["cccc3333"].split()[4:9] == ["-", "-", "pooled", "-", "25"]
    assert time.strftime("%Y-%m-%d") in rows["aaaa1111"]
    total = sum(e.bytes for e in cache.entries())
    assert lines[4] == (f"3 entries, {size_text(total)}, in {cache.root}; "
                        f"cap {DEFAULT_CACHE_GIB:g} GiB by default (search --cache-size)")
    assert len(lines) == 5


def test_csv_and_json_carry_the_same_entries(cache, capsys):
    _, out, _ = _cache(capsys, "--cache-dir", cache.root, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["key"] for r in rows] == ["aaaa1111", "bbbb2222", "cccc3333"]
    assert rows[0]["backbone"] == "MobileNetV2" and rows[0]["depth"] == "27" and rows[0]["images"] == "48"
    assert rows[2]["backbone"] == "" and rows[2]["train_images"] == "20"

    _, out, _ = _cache(capsys, "--cache-dir", cache.root, "--format", "json")
    doc = json.loads(out)
    assert doc["folder"] == cache.root and doc["default_cap_gib"] == DEFAULT_CACHE_GIB
    assert doc["total_bytes"] == sum(int(r["bytes"]) for r in rows) == cache.size_bytes()
    by_key = {e["key"]: e for e in doc["entries"]}
    assert by_key["bbbb2222"]["point"] == "block_6_add" and by_key["bbbb2222"]["image_size"] == 96
    assert by_key["cccc3333"]["backbone"] is None and by_key["cccc3333"]["images"] == 25
    assert doc["temporary"] == []


def test_older_than_lists_and_clears_only_what_was_not_used_for_that_long(cache, capsys):
    code, out, _ = _cache(capsys, "--cache-dir", cache.root, "--older-than", "7")
    assert code == 0
    assert "aaaa1111" not in out and "bbbb2222" in out and "cccc3333" in out
    assert "2 entries of 3 unused for 7 days" in out
    assert _keys(cache) == {"aaaa1111", "bbbb2222", "cccc3333"}  # listing removes nothing

    freed = sum(e.bytes for e in cache.entries() if e.key != "aaaa1111")
    code, out, _ = _cache(capsys, "--cache-dir", cache.root, "--clear", "--older-than", "7")
    assert code == 0
    assert _keys(cache) == {"aaaa1111"}
    assert out.splitlines()[0] == "removed:"
    assert "bbbb2222" in out and "cccc3333" in out
    assert out.splitlines()[-1] == (f"freed {size_text(freed)} (2 entries) in {cache.root}; "
                                    f"1 entry left, {size_text(cache.size_bytes())}")


def test_a_read_counts_as_a_use(cache, capsys):
    assert cache.get("cccc3333") is not None  # what the LRU reads: the folder's mtime, refreshed
    _cache(capsys, "--cache-dir", cache.root, "--clear", "--older-than", "7")
    assert _keys(cache) == {"aaaa1111", "cccc3333"}


def test_clear_removes_everything_but_what_running_workers_use(cache, capsys):
    root = cache.root
    stale = f".tmp-{_dead_pid()}-deadbeef"
    os.rename(cache.pending("dddd4444", {"train": (10, 4)}, {}).tmp, os.path.join(root, stale))
    live = cache.pending("eeee5555", {"train": (10, 4)}, {})  # this process: still filling
    # a lock file of an entry evicted long ago
    with cache.filling("ffff6666"):
        pass
    expected = (sum(e.bytes for e in cache.entries() if e.key != "cccc3333")
                + sum(t.bytes for t in cache.temporaries() if not t.alive))
    with cache.filling("cccc3333"):  # a worker computing this key right now
        code, out, _ = _cache(capsys, "--cache-dir", root, "--clear", "--format", "json")
    assert code == 0
    done = json.loads(out)
    assert {e["key"] for e in done["removed"]} == {"aaaa1111", "bbbb2222"}
    assert [t["name"] for t in done["removed_temporary"]] == [stale]
    assert [e["key"] for e in done["kept_in_use"]] == ["cccc3333"]
    assert [t["name"] for t in done["kept_filling"]] == [os.path.basename(live.tmp)]
    assert done["freed_bytes"] == expected
    assert sorted(os.listdir(root)) == sorted(["cccc3333", ".cccc3333.lock", os.path.basename(live.tmp)])

    live.discard()
    code, out, _ = _cache(capsys, "--cache-dir", root, "--clear")
    assert code == 0
    assert "removed:" in out and "cccc3333" in out and out.splitlines()[-1].startswith("freed ")
    assert os.listdir(root) == []
    code, out, _ = _cache(capsys, "--cache-dir", root, "--clear")
    assert out == f"nothing removed in {root}\n"


def test_a_worker_still_fills_after_a_clear_removed_its_lock_file(cache, capsys):
    _cache(capsys, "--cache-dir", cache.root, "--clear")
    with cache.filling("aaaa1111"):
        assert PrefixCache(cache.root, 2**30)._entry_lock("aaaa1111", wait=False) is None  # held: excludes
    lock = cache._entry_lock("aaaa1111", wait=False)
    assert lock is not None
    lock.close()


def test_table_names_temporary_folders(cache, capsys):
    stale = f".tmp-{_dead_pid()}-deadbeef"
    os.rename(cache.pending("dddd4444", {"train": (10, 4)}, {}).tmp, os.path.join(cache.root, stale))
    _, out, _ = _cache(capsys, "--cache-dir", cache.root)
    assert out.splitlines()[-1].startswith("also 1 temporary folder: 1 left by stopped workers (")
    assert "--clear removes them" in out


def test_a_missing_cache_folder_lists_as_empty_and_stays_missing(tmp_path, capsys):
    missing = tmp_path / "never-filled"
    code, out, err = _cache(capsys, "--cache-dir", str(missing))
    assert code == 0 and err == ""
    assert out.startswith(f"no cached activations in {missing}; cap ")
    code, out, _ = _cache(capsys, "--cache-dir", str(missing), "--format", "json")
    assert json.loads(out)["entries"] == []
    code, out, _ = _cache(capsys, "--cache-dir", str(missing), "--clear")
    assert code == 0 and out == f"nothing removed in {missing}\n"
    assert not missing.exists()


def test_the_default_folder_is_the_one_searches_use(capsys):
    from tuner.trials.prefix_cache import default_cache_dir

    code, out, _ = _cache(capsys, "--format", "json")
    assert code == 0 and json.loads(out)["folder"] == default_cache_dir()
    assert default_cache_dir().startswith(os.environ["XDG_CACHE_HOME"])  # conftest: never the user's


@pytest.mark.parametrize("args, message", [
    (["--cache-dir", "{file}"], "is a file, not a folder"),
    (["--older-than", "-1"], "--older-than must be 0 or more days"),
    (["--clear", "--older-than", "-0.5"], "--older-than must be 0 or more days"),
    (["--clear", "--cache-dir", "{file}"], "is a file, not a folder"),
])
def test_bad_flags_are_one_line_and_exit_2(cache, tmp_path, capsys, args, message):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a cache")
    args = [a.format(file=a_file) for a in args]
    if "--cache-dir" not in args:
        args += ["--cache-dir", cache.root]
    code, out, err = _cache(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("depth-tuner cache: error: ") and message in err
    assert len(cache.entries()) == 3 and a_file.read_text() == "not a cache"


def test_entries_written_by_a_search_name_backbone_size_and_depth():
    from tuner.model.cut import CachePoint
    from tuner.model.protocol import TrainingProtocol
    from tuner.trials.activations import CacheKeys

    keys = CacheKeys("0" * 64, TrainingProtocol(weights=None, image_size=32, backbone="MobileNetV2"))
    meta = keys.meta(CachePoint(depth=11, layer="block_2_add", shape=(8, 8, 24)), train_images=48, val_images=16)
    assert meta == {"point": "block_2_add", "depth": 11, "backbone": "MobileNetV2", "image_size": 32,
                    "weights": "none", "train_images": 48, "val_images": 16}
    assert keys.meta(None, train_images=1, val_images=1)["point"] == "pooled"


def test_sizes_read_in_mib_and_gib():
    assert size_text(4.9 * 2**30) == "4.90 GiB"
    assert size_text(2**30) == "1.00 GiB"
    assert size_text(350.26 * 2**20) == "350.3 MiB"
    assert size_text(1536) == "2 KiB"
