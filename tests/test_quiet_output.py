"""What a user sees: one line per bad input, no TensorFlow start-up noise, results alone on stdout,
nothing left behind by a failed run, a default storage that works from any folder, help for every flag.

The CLI runs as a subprocess here, as a user runs it, with no TF_CPP_MIN_LOG_LEVEL of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest
from conftest import FAST

from tuner.cli.main import COMMANDS, build_parser, main
from tuner.store.fresh import FreshStudy
from tuner.store.storage import STUDIES_ENV, default_storage, open_storage

# Lines TensorFlow's C++ side writes while it loads or probes for a GPU.
NATIVE_MARKERS = ("absl::InitializeLog", "oneDNN", "cuda", "cuInit", "cpu_feature_guard", "I0000", "W0000", "E0000")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return {**env, **extra}


def _cli(args: list[str], cwd, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner.cli.main", *args], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=300)


def _stored_study(storage: str, name: str, *, config: dict | None = None, depths=(3, 11)) -> None:
    """A study as `search` leaves it, written directly (no training)."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr("config", json.dumps(config or {"data": {"name": "x", "source": "fake"}}))
    for depth in depths:
        attrs = {"depth": depth, "val_accuracy": 0.5, "fit_seconds": 10.0 + depth,
                 "steady_seconds": 9.0, "trainable_params": 100}
        study.add_trial(optuna.trial.create_trial(
            params={"depth": depth}, distributions={"depth": optuna.distributions.IntDistribution(0, 154)},
            value=0.5 / (10.0 + depth), user_attrs=attrs))


def _one_error_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("depth-tuner search: error: "), lines[0]
    assert result.stdout == ""
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture
def empty_class_folder(tmp_path):
    root = tmp_path / "data"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
    return root


@pytest.mark.parametrize("case", ["backbone", "overlap", "weights", "no-images", "offline-tfds"])
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, empty_class_folder, case):
    args = {
        "backbone": (["--dataset", "tf_flowers", "--backbone", "VGG99"], "unknown backbone"),
        "overlap": (["--dataset", "cats_vs_dogs", "--val-split", "train[5%:15%]"], "overlap"),
        "weights": (["--dataset", "tf_flowers", "--weights", "/nonexistent.h5"], "--weights"),
        "no-images": (["--dataset", str(empty_class_folder)], "holds no readable images"),
        # The offline check comes after the weights and the backbone are built:
        # the old order had created studies/tf_flowers.db by then.
        "offline-tfds": (["--dataset", "tf_flowers", "--weights", "none", "--image-size", "32",
                          "--data-dir", str(tmp_path / "tfds")], "network is unreachable"),
    }
    extra, needle = args[case]
    result = _cli(["search", *extra], cwd=tmp_path)
    line = _one_error_line(result, needle)
    assert not any(m in line for m in NATIVE_MARKERS)
    assert not (tmp_path / "studies").exists()


@pytest.mark.parametrize("case", ["changed-configuration", "not-sqlite", "unreachable"])
def test_changed_configuration_and_bad_storages_are_one_line(tmp_path, case):
    url = f"sqlite:///{tmp_path}/s.db"
    _stored_study(url, "s")
    before = (tmp_path / "s.db").read_bytes()
    (tmp_path / "broken.db").write_bytes(b"not sqlite" * 20)
    storage, needle = {
        "changed-configuration": (url, "another configuration"),
        "not-sqlite": (f"sqlite:///{tmp_path}/broken.db", "not an SQLite"),
        "unreachable": ("postgresql://nobody@127.0.0.1:9/none", "cannot open storage"),
    }[case]
    result = _cli(["search", "--dataset", "tf_flowers", "--fake-data", *FAST, "--study", "s",
                   "--storage", storage], cwd=tmp_path)
    _one_error_line(result, needle)
    assert (tmp_path / "s.db").read_bytes() == before
    assert (tmp_path / "broken.db").read_bytes() == b"not sqlite" * 20


def test_verbose_keeps_tensorflow_lines_before_the_one_error(tmp_path):
    result = _cli(["--verbose", "search", "--dataset", "tf_flowers", "--backbone", "VGG99"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("depth-tuner search: error: unknown backbone")
    # Also accepted after the command.
    assert build_parser().parse_args(["show", "--study", "x", "--verbose"]).verbose


@pytest.mark.parametrize("replay", [False, True])
def test_native_stderr_is_captured_and_replayed_only_when_asked(tmp_path, replay):
    code = ("import os, sys; from tuner.quiet import native_stderr_captured\n"
            f"with native_stderr_captured(replay={replay}):\n"
            "    os.write(2, b'native line\\n')\n"
            "print('after', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.stderr.splitlines() == (["native line"] if replay else []) + ["after"]


def test_show_into_a_closed_pipe_exits_0(tmp_path):
    (tmp_path / "studies").mkdir()
    _stored_study(f"sqlite:///{tmp_path}/studies/s.db", "s", depths=range(40))
    read, write = os.pipe()
    os.close(read)  # like `| head -1` that has already exited
    try:
        proc = subprocess.run([sys.executable, "-m", "tuner.cli.main", "show", "--study", "s"],
                              cwd=tmp_path, env=_env(), stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_default_storage_follows_the_environment_from_any_folder(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "my-studies"
    monkeypatch.setenv(STUDIES_ENV, str(folder))
    assert default_storage("s") == f"sqlite:///{folder}/s.db"
    _stored_study(open_storage(default_storage("s")), "s")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["show", "--study", "s"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("study s:") and "best depth: 3" in out
    monkeypatch.delenv(STUDIES_ENV)
    assert main(["show", "--study", "s"]) == 2
    assert STUDIES_ENV in capsys.readouterr().err


def test_failure_before_the_first_trial_takes_back_the_new_study(tmp_path, monkeypatch):
    import tuner.search.one_pass

    def no_trial(study, **kwargs):
        assert os.path.exists(tmp_path / "studies" / "fake.db")  # created only now, after the data
        raise RuntimeError("the head phase broke")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tuner.search.one_pass, "_search", no_trial)
    with pytest.raises(RuntimeError, match="head phase broke"):
        main(["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "8,4", *FAST,
              "--study", "fake", "--quiet"])
    assert not (tmp_path / "studies").exists()


def test_taking_back_never_touches_what_existed(tmp_path):
    shared = f"sqlite:///{tmp_path}/shared.db"
    _stored_study(shared, "old")
    store = open_storage(shared)
    # A new study in an existing storage: the study goes, the file and the old study stay.
    fresh = FreshStudy(storage=shared, study_name="new", artifacts_dir=str(tmp_path / "new-artifacts"))
    optuna.create_study(study_name="new", storage=store)
    fresh.opened(store, created_study=True)
    (tmp_path / "new-artifacts").mkdir()
    assert fresh.take_back()
    assert [s.study_name for s in optuna.get_all_study_summaries(store)] == ["old"]
    assert os.path.exists(tmp_path / "shared.db") and not os.path.exists(tmp_path / "new-artifacts")
    # A study this run did not create is never removed, even without trials.
    optuna.create_study(study_name="empty", storage=store)
    fresh = FreshStudy(storage=shared, study_name="empty", artifacts_dir=str(tmp_path / "a"))
    fresh.opened(store, created_study=False)
    assert not fresh.take_back()
    assert len(optuna.get_all_study_summaries(store)) == 2
    # A new study that already has a trial (another worker's) stays.
    url = f"sqlite:///{tmp_path}/new/dir/n.db"
    fresh = FreshStudy(storage=url, study_name="n", artifacts_dir=str(tmp_path / "new/dir/n-artifacts"))
    store = open_storage(url)
    optuna.create_study(study_name="n", storage=store).ask()
    fresh.opened(store, created_study=True)
    assert not fresh.take_back() and os.path.exists(tmp_path / "new/dir/n.db")
    # Without it, the file and the folders this run made go too.
    optuna.delete_study(study_name="n", storage=store)
    optuna.create_study(study_name="n", storage=store)
    assert fresh.take_back() and not os.path.exists(tmp_path / "new")


def test_a_creator_failing_before_its_first_trial_leaves_a_joined_study(tmp_path):
    """Worker B loaded the study and waits for A's head phase; A fails: the study stays for B."""
    url = f"sqlite:///{tmp_path}/s.db"
    creator = FreshStudy(storage=url, study_name="s", artifacts_dir=str(tmp_path / "s-artifacts"))
    store = open_storage(url)
    optuna.create_study(study_name="s", storage=store)
    creator.opened(store, created_study=True)
    joiner = FreshStudy(storage=url, study_name="s", artifacts_dir=str(tmp_path / "s-artifacts"))
    joiner.opened(store, created_study=False, study=optuna.load_study(study_name="s", storage=store))
    assert not creator.take_back()
    assert [s.study_name for s in optuna.get_all_study_summaries(store)] == ["s"]
    assert os.path.exists(tmp_path / "s.db")


def test_every_option_has_help_a_default_and_its_own_examples():
    import argparse

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == set(COMMANDS)
    for name, sub in commands.choices.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            shown = formatter._get_help_string(action)
            assert action.help, f"{name} {action.option_strings[0]} has no help"
            if action.default is not None and action.default is not False and action.default != argparse.SUPPRESS:
                assert "default" in shown, f"{name} {action.option_strings[0]} hides its default"
        examples = sub.format_help().split("examples:", 1)
        assert len(examples) == 2 and f"depth-tuner {name} " in examples[1], f"{name} --help: no own example"
    search_help = " ".join(commands.choices["search"].format_help().split())
    for shown in ("(default: 32)", "(default: 0.0001)", "(default: tpe)", "(default: 0)", STUDIES_ENV):
        assert shown in search_help, shown
