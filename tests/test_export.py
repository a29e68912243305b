"""The model a user came for: ``export`` trains the chosen depth again, ``predict`` applies it.

What users rely on: the exported file loads with Keras alone, takes raw
images, reproduces the study's own trial at the same depth, carries its
evidence, never touches the study, and is never left half-written.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import run_cli

PROTOCOL = ["--image-size", "32", "--head-epochs", "2", "--finetune-epochs", "1", "--batch-size", "16",
            "--head-lr", "1e-3", "--finetune-lr", "1e-4"]


def _image_folder(root, *, n: int = 90, size: int = 40) -> str:
    """A folder of class sub-folders of PNGs (larger than the study's 32 px, so export must resize)."""
    import tensorflow as tf

    from tuner.data.fake import fake_arrays

    x, y = fake_arrays(n, num_classes=3, image_size=size, seed=5)
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / f"kind_{'abc'[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img_{i:03d}.png").write_bytes(tf.io.encode_png(image).numpy())
    return str(root)


def _study_trials(cwd, study: str) -> list[dict]:
    out = run_cli(["show", "--study", study, "--format", "json", "--all"], cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["trials"]


@pytest.fixture(scope="module")
def folder_study(tmp_path_factory, calibrated_weights):
    """A plain-mode search on a folder of images, its checkpoints kept."""
    root = tmp_path_factory.mktemp("folder-study")
    data = _image_folder(root / "images")
    out = run_cli(["search", "--dataset", data, "--weights", calibrated_weights, *PROTOCOL,
                   "--trials", "2", "--trial-mode", "plain", "--study", "imgs",
                   "--keep-checkpoints", str(root / "ckpt")], cwd=root)
    assert out.returncode == 0, out.stderr
    return root, data


@pytest.fixture(scope="module")
def fake_cached_study(tmp_path_factory, calibrated_weights):
    root = tmp_path_factory.mktemp("fake-study")
    out = run_cli(["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "96,48",
                   "--weights", calibrated_weights, *PROTOCOL, "--trials", "2", "--study", "fk"], cwd=root)
    assert out.returncode == 0, out.stderr
    return root


def test_export_of_a_cached_trials_depth_reproduces_its_val_accuracy(fake_cached_study):
    root = fake_cached_study
    trial = _study_trials(root, "fk")[0]
    assert trial["mode"] == "cached"
    before = (root / "studies" / "fk.db").read_bytes()
    out = run_cli(["export", "--study", "fk", "--output", "m.keras", "--depth", str(trial["depth"])], cwd=root)
    assert out.returncode == 0, out.stderr
    card = json.loads(out.stdout)
    assert card["training"]["trained"] is True
    # The same training, exactly: against the stored reading (show's JSON keeps 10 digits).
    import optuna

    stored = optuna.load_study(study_name="fk", storage=f"sqlite:///{root / 'studies' / 'fk.db'}")
    assert card["training"]["fit_val_accuracy"] == stored.trials[trial["number"]].user_attrs["val_accuracy"]
    assert abs(card["val_accuracy"] - trial["val_accuracy"]) <= 1 / 48  # the saved model, stock layers
    assert card["depth"] == trial["depth"] and card["chosen_by"] == "--depth"
    assert card["class_names"] == [f"class_{i}" for i in range(5)]
    for field in ("study", "objective", "best_depth", "best_interval", "within_noise", "protocol",
                  "data", "weights", "backbone", "tool", "export_seconds", "image_size"):
        assert field in card, field
    assert "FAKE" in card["provenance"]
    assert (root / "studies" / "fk.db").read_bytes() == before  # export only reads the study
    assert not [p for p in os.listdir(root) if ".partial-" in p]


def test_export_reuses_a_kept_checkpoint_and_the_model_predicts_without_tuner(folder_study):
    root, data = folder_study
    trial = _study_trials(root, "imgs")[0]
    out = run_cli(["export", "--study", "imgs", "--output", "imgs.keras", "--depth", str(trial["depth"])],
                  cwd=root)
    assert out.returncode == 0, out.stderr
    assert "reused the kept checkpoint" in out.stderr
    card = json.loads(out.stdout)
    assert card["training"]["trained"] is False
    assert card["class_names"] == ["kind_a", "kind_b", "kind_c"]
    # A fresh process that imports only Keras: the validation files, raw, through the file.
    script = textwrap.dedent(f"""
        import sys, numpy as np, keras, tensorflow as tf
        model = keras.saving.load_model("imgs.keras")
        val = keras.utils.image_dataset_from_directory({data!r}, validation_split=0.2, subset="validation",
                                                       seed=0, batch_size=None, labels="inferred")
        classes = ["kind_a", "kind_b", "kind_c"]
        hits = []
        for path in val.file_paths:  # the validation files (the dataset itself reshuffles)
            label = classes.index(path.split("/")[-2])
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            assert abs(model.predict(image[None].numpy(), verbose=0).sum() - 1) < 1e-4  # raw, any size
            # Resized and rounded as the search's loader (and depth-tuner predict) does:
            # the calibrated random backbone of tests turns half a grey level into other answers.
            image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, (32, 32))), 0, 255), tf.uint8)
            probs = model.predict(image[None].numpy(), verbose=0)[0]
            hits.append(int(np.argmax(probs)) == int(label))
        assert "tuner" not in sys.modules, "loading needed depth-tuner"
        print(np.mean(hits))
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert abs(float(run.stdout.split()[-1]) - card["val_accuracy"]) <= 0.01


def test_predict_writes_csv_and_skips_clutter_with_one_line_each(folder_study):
    root, data = folder_study
    if not (root / "imgs.keras").exists():
        assert run_cli(["export", "--study", "imgs", "--output", "imgs.keras"], cwd=root).returncode == 0
    folder = root / "mixed"
    folder.mkdir(exist_ok=True)
    for name in sorted(os.listdir(os.path.join(data, "kind_a")))[:3]:
        (folder / name).write_bytes((root / "images" / "kind_a" / name).read_bytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is no jpeg")
    out = run_cli(["predict", "--model", "imgs.keras", str(folder), "--top", "2"], cwd=root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "path,class,probability,class_2,probability_2"
    assert len(lines) == 4  # three images; notes.txt is clutter, broken.jpg is reported
    assert all(row.split(",")[1] in ("kind_a", "kind_b", "kind_c") for row in lines[1:])
    skipped = [line for line in out.stderr.splitlines() if line.startswith("depth-tuner predict: skipped")]
    assert len(skipped) == 1 and "broken.jpg" in skipped[0]


def test_predict_on_the_validation_files_gives_the_cards_val_accuracy(folder_study):
    import keras
    import pandas as pd

    root, data = folder_study
    out = run_cli(["export", "--study", "imgs", "--output", "best.keras"], cwd=root)
    assert out.returncode == 0, out.stderr
    card = json.loads(out.stdout)
    out = run_cli(["predict", "--model", "best.keras", data], cwd=root)
    assert out.returncode == 0, out.stderr
    rows = pd.read_csv(io.StringIO(out.stdout)).set_index("path")
    assert len(rows) == 90
    val = keras.utils.image_dataset_from_directory(data, validation_split=0.2, subset="validation", seed=0,
                                                   batch_size=None, verbose=False)
    truth = {p: os.path.basename(os.path.dirname(p)) for p in val.file_paths}
    hits = [rows.loc[p, "class"] == c for p, c in truth.items()]
    assert abs(np.mean(hits) - card["val_accuracy"]) <= 0.01


@pytest.mark.parametrize("args, words", [
    (["--model", "nope.keras", "x.png"], "no such file"),
    (["--model", "notes.txt", "x.png"], "not a Keras model"),
    (["--model", "plain.keras", "x.png"], "without a depth-tuner card"),
    (["--model", "imgs.keras", "notes.txt"], "no image could be predicted"),
    (["--model", "imgs.keras", "--top", "9", "mixed"], "--top 9"),
])
def test_predict_bad_input_is_one_line_and_exit_2(folder_study, args, words, monkeypatch, capsys):
    from tuner.cli.main import main

    root, _ = folder_study
    monkeypatch.chdir(root)
    if not (root / "imgs.keras").exists():
        assert run_cli(["export", "--study", "imgs", "--output", "imgs.keras"], cwd=root).returncode == 0
    (root / "notes.txt").write_text("hello")
    (root / "mixed").mkdir(exist_ok=True)
    if not (root / "plain.keras").exists():
        import keras

        keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(root / "plain.keras")
    capsys.readouterr()
    assert main(["predict", *args]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("depth-tuner") and "error:" in line]
    assert len(errors) == 1 and words in errors[0], err


@pytest.mark.parametrize("args, words", [
    (["--study", "nosuch", "--output", "m.keras"], "no study"),
    (["--study", "fk", "--output", "m.txt"], "end the name with .keras"),
    (["--study", "fk", "--output", "studies/fk.db/m.keras"], "is a file, so"),
    (["--study", "fk", "--output", "m.keras", "--depth", "999"], "outside 0..154"),
    (["--study", "fk", "--output", "m.keras", "--depth", "3", "--choose", "cheapest"], "give one"),
])
def test_export_bad_input_is_one_line_and_exit_2_and_leaves_the_study(fake_cached_study, args, words,
                                                                      monkeypatch, capsys):
    from tuner.cli.main import main

    root = fake_cached_study
    monkeypatch.chdir(root)
    before = (root / "studies" / "fk.db").read_bytes()
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("depth-tuner export: error:") and len(err.strip().splitlines()) == 1, err
    assert words in err
    assert (root / "studies" / "fk.db").read_bytes() == before


def test_an_interrupted_write_leaves_the_old_model_and_no_partial_file(tmp_path, monkeypatch):
    import keras

    from tuner.export.card import read_card, reclaim_partials, write_model

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    target = tmp_path / "m.keras"
    write_model(model, {"depth": 1}, str(target))
    old = target.read_bytes()

    def stopped(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_model(model, {"depth": 2}, str(target))
    assert target.read_bytes() == old and read_card(target)["depth"] == 1
    assert os.listdir(tmp_path) == ["m.keras"]
    # kill -9 leaves the partial file: the next export to that path removes it.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".m.keras.partial-{dead.pid}.keras"
    leftover.write_bytes(b"PK")
    assert reclaim_partials(str(target)) == [str(leftover)]


def test_api_export_returns_the_model_and_predict_reads_arrays(tmp_path, monkeypatch, calibrated_weights):
    import tuner
    from tuner.data.fake import fake_arrays

    monkeypatch.chdir(tmp_path)
    search = tuner.DepthSearch("tf_flowers", fake_data=True, fake_examples=(64, 32), weights=calibrated_weights,
                               image_size=32, batch_size=16, head_epochs=1, finetune_epochs=1, head_lr=1e-3,
                               max_depth=20, trial_mode="plain", study="api")
    search.run(trials=1)
    model = search.export(tmp_path / "api.keras")
    card = model.depth_tuner_card
    assert card["depth"] == search.best_depth == tuner.model_card(tmp_path / "api.keras")["depth"]
    trial = search.trials_dataframe().iloc[0]
    assert trial["mode"] == "plain" and card["training"]["fit_val_accuracy"] == trial["val_accuracy"]
    x, _ = fake_arrays(4, num_classes=5, image_size=50, seed=1)
    frame = tuner.predict(model, x, top=3)
    assert list(frame.columns) == ["index", "class", "probability", "class_2", "probability_2",
                                   "class_3", "probability_3"]
    assert (frame["probability"] >= frame["probability_2"]).all()
    same = tuner.predict(tmp_path / "api.keras", x, top=3)
    assert np.allclose(same["probability"], frame["probability"], atol=1e-5)


def test_export_keeps_the_studys_protocol_and_changes_only_what_is_asked():
    from tuner.errors import UsageError
    from tuner.export.train import ExportOptions, recorded_protocol
    from tuner.model.protocol import RANDOM_WEIGHTS, TrainingProtocol

    protocol = TrainingProtocol(weights=None, image_size=48, finetune_epochs=3, seed=4)
    config = {"protocol": protocol.as_config()}
    assert config["protocol"]["weights"] == RANDOM_WEIGHTS
    p = recorded_protocol(config, ExportOptions(finetune_epochs=9))
    assert (p.weights, p.image_size, p.seed, p.head_epochs, p.finetune_epochs) == (None, 48, 4, 3, 9)
    gone = {"protocol": {**config["protocol"], "weights": "/nonexistent/w.weights.h5"}}
    with pytest.raises(UsageError, match="is gone"):
        recorded_protocol(gone, ExportOptions())
    with pytest.raises(UsageError, match="--choose"):
        ExportOptions(choose="fastest")


@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50", "EfficientNetB0", "MobileNetV3Small"])
def test_the_exported_preprocessing_is_the_backbones_own(name):
    import keras

    from tuner.export.serving import preprocessing_layer
    from tuner.model.backbones import get_backbone_spec

    spec = get_backbone_spec(name)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype(np.float32)
    layer = preprocessing_layer(spec)
    got = pixels if layer is None else np.asarray(layer(pixels))
    assert np.allclose(got, np.asarray(spec.preprocess(pixels.copy())), atol=1e-3)
    assert layer is None or type(layer).__module__.startswith("keras")  # a stock layer: loads anywhere
    keras.backend.clear_session()


def test_a_two_class_model_gives_one_probability_per_class(tmp_path):
    import keras

    from tuner.export.card import write_model
    from tuner.export.serving import serving_model
    from tuner.model.backbones import build_backbone, get_backbone_spec
    from tuner.model.hypermodel import Head, plain_model

    spec = get_backbone_spec("MobileNetV2")
    trained = plain_model(build_backbone(spec, image_size=32, weights=None),
                          Head(num_classes=2, dropout=0.2, seed=0), 32, "two")
    model = serving_model(trained, spec, image_size=32)
    x = np.random.default_rng(1).integers(0, 255, (3, 45, 37, 3)).astype(np.uint8)
    probs = np.asarray(model.predict(x, verbose=0))
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    path = write_model(model, {"class_names": ["cat", "dog"], "image_size": 32}, str(tmp_path / "two.keras"))
    assert np.allclose(keras.saving.load_model(path).predict(x, verbose=0), probs, atol=1e-5)


def test_a_study_without_a_measured_trial_is_refused(tmp_path):
    import optuna

    from tuner.errors import UsageError
    from tuner.export.train import export_study

    storage = f"sqlite:///{tmp_path / 'e.db'}"
    optuna.create_study(study_name="empty", storage=storage)
    with pytest.raises(UsageError, match="has no measured trial"):
        export_study("empty", storage=storage, output=str(tmp_path / "m.keras"))
    assert not (tmp_path / "m.keras").exists()
