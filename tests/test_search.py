"""A real search on mock TFDS data: stored, consistent, shown, protected."""

from __future__ import annotations

import io
import json

import optuna
import pytest
import tensorflow_datasets as tfds
from conftest import FAST
from optuna.trial import TrialState

from objectives import OBJECTIVES
from tuner.cli.main import main
from tuner.cli.show import print_study
from tuner.data.sources import resolve_data_spec
from tuner.model.metrics import METRIC_FIELDS
from tuner.model.protocol import TrainingProtocol
from tuner.model.space import DepthSpace
from tuner.search.config import SearchConfig
from tuner.search.one_pass import run_search


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Three trials of tf_flowers (mock TFDS data), 32 px, random weights."""
    root = tmp_path_factory.mktemp("search")
    storage = f"sqlite:///{root}/flowers.db"
    config = SearchConfig(
        data=resolve_data_spec(dataset="tf_flowers"),
        protocol=TrainingProtocol(weights=None, image_size=32, head_epochs=1, finetune_epochs=1,
                          batch_size=16),
        space=DepthSpace(0, 154, "log"),
    )
    from tuner.progress import Reporter

    with tfds.testing.mock_data(num_examples=24):
        outcome = run_search(config=config, study_name="flowers", storage=storage, trials=3,
                             reporter=Reporter(quiet=True))
    return outcome, storage, config, root


def test_three_complete_trials_with_consistent_efficiency(searched):
    outcome, storage, config, _ = searched
    assert outcome.measured == 3 and not outcome.interrupted
    study = optuna.load_study(study_name="flowers", storage=storage)
    trained = [t for t in study.trials if "reused_from" not in t.user_attrs]
    assert [t.state for t in trained] == [TrialState.COMPLETE] * 3
    assert len({t.user_attrs["depth"] for t in trained}) == 3
    for t in trained:
        assert set(METRIC_FIELDS) <= set(t.user_attrs)
        assert t.user_attrs["other_load"] >= 0 and t.user_attrs["cores"] >= 1  # how busy the machine was
        assert t.value == pytest.approx(OBJECTIVES["efficiency"](t.user_attrs))
        assert t.value == pytest.approx(t.user_attrs["val_accuracy"] / t.user_attrs["protocol_seconds"])
        assert t.user_attrs["trial_mode"] == "cached"  # the default
        assert len(t.user_attrs["epoch_seconds"]) == 1  # phase 2 ran; phase 1 is the study's
        assert len(t.user_attrs["losses"]) == 2  # ... yet both phases' losses are on the trial
        assert t.user_attrs["protocol_seconds"] > t.user_attrs["fit_seconds"]
    stored = json.loads(study.user_attrs["config"])
    assert stored == json.loads(json.dumps(config.as_config()))
    assert stored["data"]["source"] == "tfds" and stored["data"]["train_split"] == "train[:80%]"


def test_same_total_again_does_nothing(searched, capsys):
    outcome, storage, config, _ = searched
    again = run_search(config=config, study_name="flowers", storage=storage, trials=3)
    assert again.measured == 3 and again.stop_reason == "already complete"


def test_resume_with_changed_configuration_is_refused(searched, capsys, monkeypatch):
    _, storage, _, root = searched
    monkeypatch.chdir(root)
    before = len(optuna.load_study(study_name="flowers", storage=storage).trials)
    args = ["search", "--dataset", "tf_flowers", "--study", "flowers", "--storage", storage,
            "--trials", "4", *FAST, "--head-epochs", "2"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "protocol.head_epochs: 1 -> 2" in err and "protocol.batch_size" not in err
    assert len(optuna.load_study(study_name="flowers", storage=storage).trials) == before


def test_fewer_trials_than_measured_is_refused(searched, capsys):
    _, storage, _, _ = searched
    args = ["search", "--dataset", "tf_flowers", "--study", "flowers", "--storage", storage,
            "--trials", "2", *FAST]
    assert main(args) == 2
    assert "already has 3 measured trials: pass --trials 3 or more" in capsys.readouterr().err


def test_show_formats(searched):
    _, storage, _, _ = searched
    out = io.StringIO()
    print_study(study="flowers", storage=storage, fmt="table", out=out)
    text = out.getvalue()
    assert "best depth:" in text and "efficiency" in text and text.count("COMPLETE") == 3
    # the validation size is recorded, and a handful of images widens every interval
    n_val = optuna.load_study(study_name="flowers", storage=storage).user_attrs["examples"]["validation"]
    # so few images that their binomial sd is the accuracy sd used, and the line says so
    assert n_val > 0 and f"(the binomial sd of {n_val} validation images at " in text
    out = io.StringIO()
    print_study(study="flowers", storage=storage, fmt="csv", out=out)
    lines = out.getvalue().strip().splitlines()
    assert lines[0].startswith("number,depth,state,mode,val_accuracy,protocol_seconds,search_seconds") and len(lines) == 4
    out = io.StringIO()
    print_study(study="flowers", storage=storage, fmt="json", out=out)
    data = json.loads(out.getvalue())
    assert len(data["trials"]) == 3
    best = max(data["trials"], key=lambda r: r["value"])
    assert data["best"]["depth"] == best["depth"]


def test_show_unknown_study_is_one_line(searched, capsys):
    _, storage, _, _ = searched
    assert main(["show", "--study", "nope", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert "no study 'nope'" in err and "flowers" in err and "Traceback" not in err
