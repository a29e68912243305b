"""``report --output`` and ``compare --output`` refuse a folder they cannot write, up front.

Bad input is one line on stderr and exit 2, with nothing written: checked
before the study is read or a replay runs, so no traceback after minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest

from tuner import paths
from tuner.cli.main import main
from tuner.errors import UsageError
from tuner.paths import check_folder


@pytest.fixture
def stored_study(tmp_path) -> str:
    """A stored study to report on; never read, as the output check comes first."""
    storage = f"sqlite:///{tmp_path / 'small.db'}"
    optuna.create_study(study_name="small", storage=storage, direction="maximize")
    return storage


def _no_slow_work(monkeypatch) -> None:
    """Fail the test if a command gets past its output check to the study or the replays."""
    import tuner.analysis.landscape as landscape
    import tuner.api as api
    import tuner.store.storage as storage

    def refuse(*args, **kwargs):
        raise AssertionError("the output folder must be checked before any slow work")

    monkeypatch.setattr(api, "comparison", refuse)
    monkeypatch.setattr(landscape, "load_landscape", refuse)
    monkeypatch.setattr(storage, "load_stored_study", refuse)


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"depth-tuner {command}: error: --output "), err
    return lines[0]


def _commands(storage: str, output: Path) -> dict[str, list[str]]:
    return {
        "report": ["report", "--study", "small", "--storage", storage, "--output", str(output)],
        "compare": ["compare", "--landscape", "thesis:5.1", "--seeds", "2", "--workers", "1",
                    "--output", str(output)],
    }


@pytest.mark.parametrize("command", ["report", "compare"])
def test_output_that_is_a_file(command, stored_study, tmp_path, monkeypatch, capsys):
    target = tmp_path / "afile.txt"
    target.write_text("keep me\n")
    _no_slow_work(monkeypatch)
    assert main(_commands(stored_study, target)[command]) == 2
    line = _error_line(capsys, command)
    assert "is a file" in line and "pass a folder" in line
    assert target.read_text() == "keep me\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt", "small.db"]


@pytest.mark.parametrize("command", ["report", "compare"])
def test_output_under_a_file(command, stored_study, tmp_path, monkeypatch, capsys):
    target = tmp_path / "afile.txt"
    target.write_text("keep me\n")
    _no_slow_work(monkeypatch)
    assert main(_commands(stored_study, target / "sub" / "dir")[command]) == 2
    line = _error_line(capsys, command)
    assert f"{target} is a file, so no folder can be made" in line
    assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt", "small.db"]


@pytest.mark.parametrize("command", ["report", "compare"])
def test_output_in_an_unwritable_folder(command, stored_study, tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # Patched rather than chmod: the tests may run as root, whom chmod does not stop.
    monkeypatch.setattr(paths.os, "access",
                        lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    _no_slow_work(monkeypatch)
    assert main(_commands(stored_study, locked / "out")[command]) == 2
    line = _error_line(capsys, command)
    assert f"{locked} is not writable; pick another folder" in line
    assert list(locked.iterdir()) == []


def test_report_default_output_is_checked(stored_study, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").write_text("")  # out/small would be under this file
    _no_slow_work(monkeypatch)
    assert main(["report", "--study", "small", "--storage", stored_study]) == 2
    assert "is a file, so no folder can be made" in _error_line(capsys, "report")


def test_missing_folders_are_fine_and_not_created(tmp_path):
    target = tmp_path / "new" / "deeper"
    assert check_folder(target, "--output") == str(target)
    assert not (tmp_path / "new").exists()  # the command creates it when it writes
    assert check_folder(tmp_path, "--output") == str(tmp_path)  # an existing folder


def test_broken_link_is_named(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(UsageError, match="is a broken link"):
        check_folder(link, "--output")


def test_compare_writes_into_a_new_folder(tmp_path, capsys):
    out = tmp_path / "new" / "cmp"
    assert main(["compare", "--landscape", "thesis:5.1", "--seeds", "2", "--workers", "1",
                 "--strategies", "narrowing", "--output", str(out)]) == 0
    assert (out / "comparison.csv").is_file() and (out / "anytime.png").is_file()
