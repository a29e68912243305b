"""The offline demo learns: generated images, random weights calibrated on them, 32 px.

Without the calibration every trial ended at the same chance-level accuracy
(the frozen backbone's features were degenerate), so the search decided by
seconds alone. Here a short study must end well above chance, and two
depths must end at different accuracies.
"""

from __future__ import annotations

import json

import optuna

from tuner.data.sources import resolve_data_spec
from tuner.model.protocol import RANDOM_WEIGHTS, TrainingProtocol
from tuner.model.space import DepthSpace
from tuner.search.config import SearchConfig
from tuner.search.one_pass import run_search

CLASSES = 5  # tf_flowers: chance is 0.2
DEPTHS = (0, 20)


def test_fake_data_with_random_weights_learns(tmp_path, quiet_reporter):
    space = DepthSpace(0, 20)  # the head phase fills only the cache points up to depth 20
    config = SearchConfig(
        data=resolve_data_spec(dataset="tf_flowers", fake=True, fake_examples=(240, 80)),
        # The README's demo: random weights learn with 10x the pretrained protocol's rates.
        protocol=TrainingProtocol(weights=None, image_size=32, head_lr=1e-3, finetune_lr=1e-4),
        strategy="sweep", space=space,
    )
    storage = f"sqlite:///{tmp_path}/learns.db"
    run_search(config=config, study_name="learns", storage=storage, trials=None,
               reporter=quiet_reporter, in_process=True, cache_dir=str(tmp_path / "cache"),
               depths=DEPTHS)
    study = optuna.load_study(study_name="learns", storage=storage)
    accuracy = {t.user_attrs["depth"]: t.user_attrs["val_accuracy"] for t in study.trials
                if t.state == optuna.trial.TrialState.COMPLETE}
    assert sorted(accuracy) == list(DEPTHS)
    assert min(accuracy.values()) > 2 / CLASSES, accuracy  # at least twice chance
    assert abs(accuracy[DEPTHS[0]] - accuracy[DEPTHS[1]]) >= 0.05, accuracy
    assert json.loads(study.user_attrs["config"])["protocol"]["weights"] == RANDOM_WEIGHTS


def test_calibrated_weights_are_the_same_every_time(tmp_path):
    """Plain and cached trials, workers and resumes all build from the same bytes."""
    import hashlib

    import numpy as np

    from tuner.data.fake import fake_arrays
    from tuner.model.calibration import calibrated_weights

    images, _ = fake_arrays(64, num_classes=CLASSES, image_size=32, seed=0)
    again, _ = fake_arrays(64, num_classes=CLASSES, image_size=32, seed=0)
    np.testing.assert_array_equal(images, again)
    protocol = TrainingProtocol(weights=None, image_size=32)
    import keras

    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    digests = []  # ... even after the process built other models
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        path = calibrated_weights(protocol, images, str(tmp_path / run))
        digests.append(hashlib.sha256(open(path, "rb").read()).hexdigest())
    assert digests[0] == digests[1]


def test_fake_studies_have_their_own_name_and_say_so():
    from tuner.store.provenance import provenance_note
    from tuner.store.storage import default_study_name

    assert default_study_name("tf_flowers") == "tf_flowers"
    assert default_study_name("tf_flowers", fake=True) == "tf_flowers-fake"
    config = SearchConfig(data=resolve_data_spec(dataset="tf_flowers", fake=True),
                          protocol=TrainingProtocol(weights=None)).as_config()
    note = provenance_note(config)
    assert "FAKE" in note and "random backbone weights" in note and "\n" not in note
    real = SearchConfig(data=resolve_data_spec(dataset="tf_flowers")).as_config()
    assert provenance_note(real) is None
    assert "fake_images" not in real["data"]  # real studies record what they always did
