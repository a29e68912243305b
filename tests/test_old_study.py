"""A study stored by an earlier release opens, shows and resumes unchanged.

``tests/data/release_ccfabe5.db`` was written by main at ccfabe5 (before the
cost model, the typed trial request and the strategy modules) with

    depth-tuner search --dataset tf_flowers --fake-data --fake-examples 32,16 --weights none \\
        --image-size 32 --head-epochs 1 --finetune-epochs 1 --batch-size 16 --trial-mode plain \\
        --trials 2 --study old --storage sqlite:///release_ccfabe5.db

Its trials carry that release's attributes (no ``price`` estimate, no
``phase2_samples``); the test works on a copy, so the file stays as written.
"""

from __future__ import annotations

import json
import shutil

import optuna
from conftest import FAST, run_cli
from optuna.trial import TrialState

from tuner import stored_keys as keys

STORED = "tests/data/release_ccfabe5.db"


def _copy(tmp_path) -> str:
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    shutil.copy(root / STORED, tmp_path / "old.db")
    return f"sqlite:///{tmp_path / 'old.db'}"


def test_an_old_study_shows_as_it_was_stored(tmp_path):
    storage = _copy(tmp_path)
    before = optuna.load_study(study_name="old", storage=storage)
    stored = {t.number: (t.state, t.user_attrs.get("depth"), t.user_attrs.get("val_accuracy"))
              for t in before.trials}
    shown = run_cli(["show", "--study", "old", "--storage", storage, "--format", "json", "--all"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    table = json.loads(shown.stdout)
    measured = [t for t in table["trials"] if t["state"] == "COMPLETE" and t["trained"]]
    assert len(measured) == 2
    for row in measured:
        state, depth, acc = stored[row["number"]]
        assert (row["depth"], row["val_accuracy"]) == (depth, acc)
        assert row["price"] is None  # that release gave no estimate: shown as missing, not invented
    assert table["best_depth"] in {depth for _, depth, _ in stored.values()}
    text = run_cli(["show", "--study", "old", "--storage", storage, "--all"], cwd=tmp_path)
    assert text.returncode == 0 and "best depth" in text.stdout, text.stderr


def test_an_old_study_resumes_with_its_recorded_configuration(tmp_path):
    storage = _copy(tmp_path)
    args = ["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "32,16", *FAST,
            "--trial-mode", "plain", "--study", "old", "--storage", storage, "--trials", "3", "--quiet"]
    done = run_cli(args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="old", storage=storage)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs]
    assert len(trained) == 3
    old, new = trained[:2], trained[2]
    assert all("price" not in t.user_attrs for t in old) and "price_low" in new.user_attrs
    # Resumed, it names its objective for Optuna's tools (it was "Objective 0" before), and the
    # new trial records its device while the old ones stay as they were.
    assert study.metric_names == ["efficiency"]
    assert keys.DEVICE in new.user_attrs and all(keys.DEVICE not in t.user_attrs for t in old)
