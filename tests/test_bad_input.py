"""Bad input: one line that says what to change, exit code 2, no traceback, no study."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from conftest import FAST

from tuner.cli.main import main
from tuner.model.backbones import build_backbone, get_backbone_spec


def _fails(capsys, args, *needles):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own refusal (a flag's type), also exit code 2
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in err
    # Exactly one line: nothing (not even progress) comes before it.
    assert len(err.splitlines()) == 1 and ": error: " in err, err
    assert captured.out == ""
    for needle in needles:
        assert needle in err, err
    return err


def _search(tmp_path, *extra):
    return ["search", "--storage", f"sqlite:///{tmp_path}/s.db", "--trials", "1", *FAST, *extra]


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            img = rng.integers(0, 255, size=(40, 40, 3), dtype=np.uint8)
            keras.utils.save_img(str(root / cls / f"{i}.png"), img)
    return root


@pytest.mark.parametrize("args, needles", [
    (["--dataset", "tf_flowers", "--backbone", "VGG99"], ["unknown backbone 'VGG99'", "MobileNetV2"]),
    (["--dataset", "no_such_dataset_xyz"], ["unknown dataset 'no_such_dataset_xyz'"]),
    (["--dataset", "tf_flowers", "--train-split", "train[:10%"], ["cannot be parsed", "train[:10%]"]),
    (["--dataset", "cats_vs_dogs", "--val-split", "train[5%:15%]"], ["overlap"]),
    (["--dataset", "tf_flowers", "--max-depth", "200"], ["exceeds the 154 layers"]),
    (["--dataset", "tf_flowers", "--min-depth", "20", "--max-depth", "10"], ["depth range 20..10"]),
    (["--dataset", "tf_flowers", "--finetune-epochs", "0"], ["--finetune-epochs"]),
    (["--dataset", "tf_flowers", "--image-size", "16"], ["too small for MobileNetV2"]),
    (["--dataset", "tf_flowers", "--weights", "missing.weights.h5"], ["--weights 'missing.weights.h5'"]),
    (["--dataset", "tf_flowers", "--head-lr", "5"], ["--head-lr"]),
])
def test_bad_search_flags(tmp_path, capsys, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    _fails(capsys, _search(tmp_path, *args), *needles)
    assert not os.path.exists(tmp_path / "studies")


def test_argparse_errors_are_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--dataset", "tf_flowers", "--trials", "many"])
    assert exc.value.code == 2
    assert "'many' is not a whole number" in capsys.readouterr().err


def test_unreachable_storage(tmp_path, capsys):
    args = ["search", "--dataset", "tf_flowers", "--fake-data", *FAST,
            "--storage", "postgresql://nobody@127.0.0.1:9/none"]
    _fails(capsys, args, "cannot open storage", "--storage")


def test_corrupted_storage_file(tmp_path, capsys):
    (tmp_path / "broken.db").write_bytes(b"this is not sqlite" * 10)
    args = _search(tmp_path, "--dataset", "tf_flowers", "--fake-data")
    args[args.index("--storage") + 1] = f"sqlite:///{tmp_path}/broken.db"
    _fails(capsys, args, "is not an SQLite database")


def test_deleted_storage_file(tmp_path, capsys):
    import optuna

    path = tmp_path / "gone.db"
    optuna.create_study(study_name="gone", storage=f"sqlite:///{path}")
    path.unlink()
    for command in ("show", "report"):
        _fails(capsys, [command, "--study", "gone", "--storage", f"sqlite:///{path}"],
               "no study storage at", "--storage")
    assert not path.exists()  # reading never creates an empty study file


def test_offline_tfds_fails_fast(tmp_path, capsys):
    # DEPTH_TUNER_NETWORK_PROBE points at a closed port (conftest).
    _fails(capsys, _search(tmp_path, "--dataset", "tf_flowers", "--data-dir", str(tmp_path / "tfds")),
           "network is unreachable", "--data-dir", "--fake-data")


def test_weights_file_must_fit_the_backbone(tmp_path, capsys):
    other = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "effnet.weights.h5"
    other.save_weights(str(path))
    _fails(capsys, _search(tmp_path, "--dataset", "tf_flowers", "--fake-data", "--weights", str(path)),
           "does not fit MobileNetV2")


def test_weights_file_is_loaded(tmp_path):
    spec = get_backbone_spec("MobileNetV2")
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "mine.weights.h5"
    source.save_weights(str(path))
    loaded = build_backbone(spec, image_size=32, weights=str(path))
    for a, b in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.parametrize("setup, needles", [
    ({"cat": 2}, ["1 class sub-folder(s)"]),
    ({"cat": 2, "dog": 0}, ["holds no readable images"]),
    ({"cat": 2, "dog": 2, "notes.txt@dog": 1, "--strict-data": 1}, ["is not an image", "--strict-data"]),
    ({"cat": 2, "dog": 2, "broken.png@dog": 1, "--strict-data": 1}, ["cannot be read as an image"]),
    ({"cat": 2, "dog": 0, "broken.png@dog": 1}, ["holds no readable images"]),
])
def test_bad_image_folders(tmp_path, capsys, setup, needles):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    flags = [key for key in setup if key.startswith("--")]
    for key, count in setup.items():
        if key in flags:
            continue
        name, _, cls = key.partition("@")
        if cls:  # a single bad file in a class folder
            (root / cls / name).write_bytes(b"not an image at all")
            continue
        (root / name).mkdir(parents=True)
        for i in range(count):
            keras.utils.save_img(str(root / name / f"{i}.png"),
                                 rng.integers(0, 255, (36, 36, 3), dtype=np.uint8))
    _fails(capsys, _search(tmp_path, "--dataset", str(root), *flags), *needles)


def test_local_folder_search_runs(tmp_path, image_folder, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--dataset", str(image_folder), "--val-fraction", "0.34", *FAST,
                 "--trials", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "study images" in out and "best depth:" in out
    assert "Using" not in out  # Keras' file counts are not results
    assert (tmp_path / "studies" / "images.db").exists()


def test_a_folder_with_clutter_trains_and_says_what_it_skipped(tmp_path, image_folder, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (image_folder / "dog" / "notes.txt").write_text("where these came from")
    (image_folder / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (image_folder / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert main(["search", "--dataset", str(image_folder), "--val-fraction", "0.34", *FAST,
                 "--trials", "1"]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "skipped" in x)
    assert ("skipped 1 file that is not an image (notes.txt) and 1 unreadable image (broken.jpg)"
            in line), line
    assert ".DS_Store" not in err


@pytest.mark.parametrize("flags, needle", [
    (["--study", "../escape"], "is not a plain name"),
    (["--study", "a/b"], "is not a plain name"),
    (["--study", ".hidden"], "is not a plain name"),
    (["--cache-dir", "afile.txt"], "--cache-dir"),
    (["--artifacts-dir", "afile.txt/sub"], "is a file, so no folder can be made"),
    (["--keep-checkpoints", "afile.txt"], "--keep-checkpoints"),
    (["--storage", "sqlite:///afile.txt/x.db"], "is a file, so"),
])
def test_paths_and_study_names_are_checked_before_anything_is_written(tmp_path, capsys, monkeypatch,
                                                                      flags, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile.txt").write_text("a file, not a folder")
    args = ["search", "--dataset", "tf_flowers", "--fake-data", "--trials", "1", *FAST, *flags]
    _fails(capsys, args, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt"]
    if flags[0] == "--study":  # every command that names a study
        _fails(capsys, ["show", "--study", flags[1]], needle)
