"""The Python API: the README's example runs as written, and it checks input as the CLI does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import tuner
from tuner.cli.main import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_api_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_example_runs_resumes_and_compares(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_readme_api_example(), "README.md", "exec"), namespace)
    search, study, table = namespace["search"], namespace["study"], namespace["table"]
    frame = search.trials_dataframe()
    assert (frame["val_accuracy"] > 0.4).all()  # learns: 5 classes, chance 0.2
    assert "FAKE" in search.note
    assert len(frame) == 2 and frame.equals(search.trials_dataframe())
    assert search.best_depth in set(frame["depth"]) and search.best_value == pytest.approx(frame["value"].max())
    shown = json.loads(subprocess.run([sys.executable, "-m", "tuner.cli.main", "show", "--format", "json",
                                       "--study", search.study.study_name, "--storage", search.storage],
                                      capture_output=True, text=True, check=True).stdout)
    assert (search.best_depth, search.best_value, list(search.interval), search.within_noise) == (
        shown["best_depth"], shown["best_value"], shown["best_interval"], shown["within_noise"])
    assert study.study_name == search.study.study_name and len(study.trials) == len(search.study.trials)
    assert (tmp_path / "demo.db").exists()
    before = len(search.study.trials)
    search.run(trials=2)  # a total: the study has it already
    assert len(search.study.trials) == before
    with pytest.warns(DeprecationWarning, match="run\\(trials=...\\)"):
        search.run(n_trials=2)  # the older name still works
    assert len(search.study.trials) == before
    assert isinstance(table, pd.DataFrame) and list(table["strategy"]) == ["narrowing", "tpe:log"]


def _cli_error(capsys, args: list[str]) -> str:
    assert main(["search", "--trials", "1", "--weights", "none", "--image-size", "32", *args]) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("kwargs, flags, needle", [
    (dict(backbone="VGG99"), ["--backbone", "VGG99"], "unknown backbone 'VGG99'"),
    (dict(weights="nonexistent.h5"), ["--weights", "nonexistent.h5"], "--weights 'nonexistent.h5'"),
    (dict(dataset="cats_vs_dogs", val_split="train[5%:15%]"),
     ["--dataset", "cats_vs_dogs", "--val-split", "train[5%:15%]"], "overlap"),
    (dict(max_depth=200), ["--max-depth", "200"], "exceeds the 154 layers of MobileNetV2"),
    (dict(backbone="ResNet50", max_depth=180), ["--backbone", "ResNet50", "--max-depth", "180"],
     "exceeds the 175 layers of ResNet50"),
    (dict(image_size=16), ["--image-size", "16"], "too small for MobileNetV2"),
    (dict(fake_examples=(0, 3)), None, "--fake-examples"),
])
def test_bad_options_raise_the_clis_message(tmp_path, monkeypatch, capsys, kwargs, flags, needle):
    monkeypatch.chdir(tmp_path)
    options = dict(dataset="tf_flowers", fake_data=True, weights="none", image_size=32,
                   storage=f"sqlite:///{tmp_path}/s.db")
    options.update(kwargs)
    if "dataset" in kwargs:
        options["fake_data"] = False
    search = tuner.DepthSearch(**options)  # stores, checks nothing
    with pytest.raises(tuner.UsageError) as exc:
        search.run(trials=1)
    message = str(exc.value)
    assert needle in message and "\n" not in message
    assert not list(tmp_path.iterdir())  # nothing written
    if flags is not None:
        dataset = [] if "--dataset" in flags else ["--dataset", "tf_flowers", "--fake-data"]
        cli = _cli_error(capsys, [*dataset, "--storage", f"sqlite:///{tmp_path}/s.db", *flags])
        assert cli == f"depth-tuner search: error: {message}"


def test_depth_range_follows_the_backbone():
    from tuner.data.sources import resolve_data_spec
    from tuner.model.protocol import TrainingProtocol
    from tuner.model.signatures import n_layers
    from tuner.search.config import SearchConfig

    resolved = tuner.DepthSearch(dataset="tf_flowers", backbone="ResNet50", weights=None).resolve()
    assert resolved.config.space.high == n_layers("ResNet50") == 175
    assert resolved.study_name == "tf_flowers" and resolved.storage.endswith("tf_flowers.db")
    config = SearchConfig(data=resolve_data_spec(dataset="tf_flowers"),
                          protocol=TrainingProtocol(backbone="ResNet50", weights=None))
    assert config.space.high == 175  # no longer MobileNetV2's 154


def test_sampler_is_the_older_name_of_strategy():
    """``strategy`` names what picks the depths; ``sampler=`` still works, with a warning."""
    assert tuner.DepthSearch(dataset="tf_flowers", strategy="random").resolve().config.strategy == "random"
    with pytest.warns(DeprecationWarning, match="strategy="):
        search = tuner.DepthSearch(dataset="tf_flowers", sampler="random")
    assert search.resolve().config.strategy == "random"
    with pytest.warns(DeprecationWarning):  # a copy keeps the options as given
        assert tuner.DepthSearch(**search.get_params()).resolve().config.strategy == "random"
    with pytest.warns(DeprecationWarning), pytest.raises(tuner.UsageError, match="disagree"):
        tuner.DepthSearch(dataset="tf_flowers", strategy="grid", sampler="random").resolve()


def test_options_and_defaults_are_the_clis():
    from tuner.cli.search import CLI_ONLY, api_options

    parser = build_parser()
    args = parser.parse_args(["search", "--dataset", "x"])
    options = tuner.DepthSearch.option_names()
    cli = {name for name in vars(args) if not name.startswith("_")} - CLI_ONLY
    assert cli <= set(options), cli - set(options)
    search = tuner.DepthSearch(dataset="x")
    for name in cli - {"dataset"}:
        assert search.get_params()[name] == getattr(args, name), name
    assert search.progress is False  # quiet by default, unlike the CLI


@pytest.mark.parametrize("command", [
    ["search"], ["sweep", "--depths", "0,5"], ["narrow"], ["live-compare", "--budget-seconds", "10"]])
def test_every_training_flag_reaches_an_api_option_or_is_cli_only(command):
    from tuner.cli.search import api_options

    args = build_parser().parse_args([*command, "--dataset", "x"])
    options = api_options(args)  # raises on a flag that would be dropped
    assert set(options) <= set(tuner.DepthSearch.option_names())
    args.cache_gigabytes = 4.0  # a flag added under a name the API does not know
    with pytest.raises(RuntimeError, match="cache_gigabytes"):
        api_options(args)


def test_import_tuner_stays_cheap():
    code = ("import sys, tuner; tuner.DepthSearch(dataset='tf_flowers'); "
            "print(any(m in sys.modules for m in ('tensorflow', 'keras', 'optuna')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compare_and_comparison_share_one_signature():
    import inspect

    from tuner.api import comparison

    full, short = inspect.signature(comparison), inspect.signature(tuner.compare)
    assert list(short.parameters.values()) == list(full.parameters.values())
    assert short.return_annotation == "pd.DataFrame"


def test_compare_takes_the_clis_strategy_names():
    table = tuner.compare(landscape="thesis:5.1", strategies="narrowing,random:linear", seeds=2,
                          trials=5, workers=1)
    assert list(table["strategy"]) == ["narrowing", "random:linear"]
    with pytest.raises(tuner.UsageError, match="unknown strategy 'hyperband'"):
        tuner.compare(landscape="thesis:5.1", strategies=["hyperband"], seeds=2, workers=1)


def test_older_names_still_work_and_say_their_new_name():
    with pytest.warns(DeprecationWarning, match="trials="):
        old = tuner.compare(landscape="thesis:5.1", strategies="random:linear", seeds=2, budget=5, workers=1)
    new = tuner.compare(landscape="thesis:5.1", strategies="random:linear", seeds=2, trials=5, workers=1)
    assert old.equals(new)
    with pytest.warns(DeprecationWarning, match="probe="):
        tuner.compare(landscape="thesis:5.1", strategies="random:linear", seeds=1, trials=2, workers=1,
                      probe_prices=True)
    import tuner.model.protocol as protocol

    with pytest.warns(DeprecationWarning, match="TrainingProtocol"):
        assert protocol.Protocol is protocol.TrainingProtocol


def test_a_script_is_quiet_and_compares_after_a_search_without_a_main_guard(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import tuner\n"
        "s = tuner.DepthSearch('tf_flowers', fake_data=True, fake_examples=(16, 8), weights='none',\n"
        "                      image_size=32, head_epochs=1, finetune_epochs=1, storage='sqlite:///q.db')\n"
        "assert s.best_depth is None and s.best_value is None\n"
        "s.run(trials=1)\n"
        "print(tuner.compare(landscape='thesis:5.1', strategies=['tpe'], seeds=2).shape)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DEPTH_TUNER_VERBOSE")}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr.strip() == "", out.stderr[-3000:]  # no oneDNN / CUDA / absl lines, no progress
    assert out.stdout.strip().startswith("(1, ")  # one strategy, one row


def test_a_numpy_array_is_not_a_dataset(tmp_path):
    import numpy as np

    with pytest.raises(tuner.UsageError, match="arrays are not read"):
        tuner.DepthSearch(np.zeros((4, 32, 32, 3), np.uint8), storage=f"sqlite:///{tmp_path}/x.db").run(1)


def test_a_users_studies_folder_never_shadows_the_tools_packages(tmp_path):
    # Where a search ran, ./studies holds STUDY.db; the current folder comes first on sys.path.
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "mine.db").write_bytes(b"")
    (tmp_path / "objectives").mkdir()
    code = ("import tuner, studies; "
            "print(tuner.compare(landscape='thesis:5.1', strategies=['tpe'], seeds=2).shape[0], "
            "studies.__file__ is not None)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "True"]
