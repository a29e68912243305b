"""The README's Python API example, as written, in a regular (non-editable) install.

Why: a user's folder where a search has run holds ``studies/STUDY.db`` (a
``studies/`` without ``__init__.py``), and the current folder comes first on
``sys.path``: it once shadowed the tool's own ``studies`` package and its
thesis tables (issue 22). ``tests/test_api.py`` checks that with the editable
install this suite runs from; here the repository is built into a wheel and
installed into a folder of its own, as ``pip install depth-tuner`` would, so
package data (``studies/thesis/*.csv``) must really be in the wheel. Building
and installing take about 2 s (no network: ``--no-build-isolation --no-index``);
the example itself trains two tiny trials, as README says (about 40 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_api import _readme_api_example

ROOT = Path(__file__).resolve().parents[1]


def _pip(*args: str, cwd: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "-q"],
                         cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def _regular_install(tmp_path: Path) -> Path:
    """The repository as a wheel, installed into ``tmp_path/site``; returns that folder.

    Built from a copy, so that setuptools' build/ and egg-info never land in the work tree."""
    src, wheels, site = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".*_cache", "tests", "benchmarks", "*.db"))
    _pip("wheel", "--no-build-isolation", "-w", str(wheels), str(src), cwd=tmp_path)
    (wheel,) = wheels.glob("depth_tuner-*.whl")
    _pip("install", "--no-compile", "--target", str(site), str(wheel), cwd=tmp_path)
    assert (site / "studies" / "thesis" / "table_5_1_cats_vs_dogs_small.csv").is_file()  # package data
    return site


def test_readme_api_example_runs_in_a_regular_install_where_studies_live(tmp_path):
    site = _regular_install(tmp_path)
    work = tmp_path / "work"  # where an earlier search ran: ./studies/STUDY.db, no __init__.py
    (work / "studies").mkdir(parents=True)
    (work / "studies" / "tf_flowers.db").write_bytes(b"")
    check = ("import studies, tuner, os\n"
             "print('FROM', os.path.dirname(tuner.__file__), os.path.dirname(studies.__file__))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEPTH_TUNER_STUDIES")}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", _readme_api_example() + check], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("FROM "))
    assert line.split()[1:] == [str(site / "tuner"), str(site / "studies")]  # the install, not the folder
    assert "p_final_best" in out.stdout and "narrowing" in out.stdout  # compare read the thesis table
    assert (work / "demo.db").is_file()
