"""Cached trials: same training as the plain protocol, shared head phase, cache safety, accounting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import FAST, run_cli

# Loss agreement of plain and cached trials at the same seed: the same
# weights see the same batches, so only float summation order differs.
LOSS_RTOL = 1e-3


@pytest.fixture(scope="module")
def setup(tmp_path_factory, calibrated_weights):
    from tuner.data.batches import Arrays, dataset_arrays
    from tuner.data.sources import fake_images
    from tuner.model.protocol import TrainingProtocol
    from tuner.model.space import DepthSpace
    from tuner.trials.activations import CacheKeys, sha256_of
    from tuner.trials.head_phase import run_head_phase
    from tuner.trials.prefix_cache import PrefixCache

    protocol = TrainingProtocol(weights=calibrated_weights, image_size=32, batch_size=16, head_epochs=2,
                        finetune_epochs=2, head_lr=1e-3, finetune_lr=1e-4)
    both = dataset_arrays(fake_images(96, num_classes=5, image_size=32, seed=0))
    train, val = Arrays(both.x[:64], both.y[:64]), Arrays(both.x[64:], both.y[64:])
    cache = PrefixCache(str(tmp_path_factory.mktemp("cache")), 2**30)
    keys = CacheKeys(sha256_of(train.x, val.x), protocol)
    head = run_head_phase(protocol=protocol, num_classes=5, space=DepthSpace(0, 154), train=train,
                          val=val, cache=cache, keys=keys)
    return dict(protocol=protocol, train=train, val=val, cache=cache, keys=keys, head=head)


def test_cache_points_are_mobilenetv2_block_boundaries():
    import keras

    from tuner.model.cut import BackboneCuts

    cuts = BackboneCuts(keras.applications.MobileNetV2(include_top=False, weights=None,
                                                       input_shape=(32, 32, 3)))
    boundaries = [3, 11, 20, 29, 38, 47, 56, 64, 73, 82, 91, 100, 109, 118, 127, 136, 145]
    assert set(boundaries) <= set(cuts.cache_points)
    assert len(cuts.crossing(15)) == 2  # inside residual block 15: its input crosses too
    assert cuts.cache_point_for(15).depth == 20
    assert cuts.cache_point_for(5).depth == 11
    assert cuts.cache_point_for(0) is None  # the head alone, on pooled features
    assert cuts.cache_point_for(154).layer == "images"


@pytest.mark.parametrize("depth", [0, 15, 154])
def test_cached_trial_trains_like_the_plain_protocol(setup, depth):
    import keras_tuner as kt

    from tuner.model.hypermodel import DepthHyperModel
    from tuner.model.space import DepthSpace
    from tuner.trials.cached import run_cached_trial

    s = setup
    hm = DepthHyperModel(protocol=s["protocol"], num_classes=5, space=DepthSpace(0, 154))
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values["depth"] = depth
    plain = hm.run_protocol(hp, hm.build(hp), train=s["train"], validation=s["val"])
    cached = run_cached_trial(protocol=s["protocol"], num_classes=5, depth=depth, train=s["train"],
                              val=s["val"], head_state=s["head"].state, phase1=s["head"].metrics,
                              cache=s["cache"], keys=s["keys"])
    assert cached.trial_mode == "cached" and plain.trial_mode == "plain"
    assert len(plain.losses) == len(cached.losses) == 4  # 2 head + 2 fine-tuning epochs
    np.testing.assert_allclose(cached.losses, plain.losses, rtol=LOSS_RTOL)
    assert cached.val_loss == pytest.approx(plain.val_loss, rel=LOSS_RTOL)
    assert cached.val_accuracy == pytest.approx(plain.val_accuracy, abs=1e-6)
    assert cached.trainable_params == plain.trainable_params
    # The features are not degenerate: training lowers the loss.
    assert plain.losses[-1] < plain.losses[0]
    # Accounted seconds are the plain protocol's parts: both phases, tracing included.
    assert cached.protocol_seconds > cached.steady_seconds > 0


def test_a_confirmation_seed_trains_phase_2_alike_in_both_modes(setup):
    """A confirmation repeat's own seed orders phase 2's batches in plain and cached trials alike."""
    import keras_tuner as kt

    from tuner.model.hypermodel import DepthHyperModel
    from tuner.model.space import DepthSpace
    from tuner.trials.cached import run_cached_trial

    s = setup
    hm = DepthHyperModel(protocol=s["protocol"], num_classes=5, space=DepthSpace(0, 154))
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values["depth"] = 15
    plain = hm.run_protocol(hp, hm.build(hp), train=s["train"], validation=s["val"], phase2_seed=7)
    cached = run_cached_trial(protocol=s["protocol"], num_classes=5, depth=15, train=s["train"],
                              val=s["val"], head_state=s["head"].state, phase1=s["head"].metrics,
                              cache=s["cache"], keys=s["keys"], phase2_seed=7)
    base = run_cached_trial(protocol=s["protocol"], num_classes=5, depth=15, train=s["train"],
                            val=s["val"], head_state=s["head"].state, phase1=s["head"].metrics,
                            cache=s["cache"], keys=s["keys"])
    np.testing.assert_allclose(cached.losses, plain.losses, rtol=LOSS_RTOL)
    assert cached.losses[:2] == base.losses[:2]  # phase 1 is the study's
    assert cached.losses[2:] != base.losses[2:]  # phase 2 saw other batches


def test_a_trial_after_a_deeper_one_trains_as_the_first_did(setup):
    """The trial process keeps its backbone between trials; what one trial trained never leaks into the next."""
    from tuner.trials.cached import run_cached_trial

    s = setup

    def trial(depth):
        return run_cached_trial(protocol=s["protocol"], num_classes=5, depth=depth, train=s["train"],
                                val=s["val"], head_state=s["head"].state, phase1=s["head"].metrics,
                                cache=s["cache"], keys=s["keys"])

    first = trial(15)
    deeper = trial(40)  # trains every layer depth 15 trains, and more
    again = trial(15)
    assert deeper.losses[2:] != first.losses[2:]
    np.testing.assert_allclose(again.losses, first.losses, rtol=1e-6)
    assert again.val_loss == pytest.approx(first.val_loss, rel=1e-6)
    assert again.trainable_params == first.trainable_params


def test_a_probe_prices_a_depth_as_its_cached_trial_does_and_leaves_training_untouched(setup):
    """The price a search probes before training (tuner.trials.probing) is the cached trial's own
    accounting, by the same formula, and the probe's steps never reach the next trial's weights."""
    from tuner.trials.cached import run_cached_trial
    from tuner.trials.probing import probe_seconds

    s = setup
    phase1 = s["head"].metrics

    def trial(depth):
        return run_cached_trial(protocol=s["protocol"], num_classes=5, depth=depth, train=s["train"],
                                val=s["val"], head_state=s["head"].state, phase1=phase1,
                                cache=s["cache"], keys=s["keys"])

    before = trial(15)
    price = probe_seconds(protocol=s["protocol"], num_classes=5, depth=40, train=s["train"], val=s["val"],
                        phase1=phase1)
    after = trial(15)
    np.testing.assert_allclose(after.losses, before.losses, rtol=1e-6)
    assert price["protocol_seconds"] > price["steady_seconds"] > float(phase1["steady_seconds"])
    p = s["protocol"]
    per_epoch = (len(s["train"]) * price["phase2_train_step"] + len(s["val"]) * price["phase2_val_step"]) / 16
    assert price["steady_seconds"] == pytest.approx(float(phase1["steady_seconds"]) + p.finetune_epochs * per_epoch)
    at_zero = probe_seconds(protocol=p, num_classes=5, depth=0, train=s["train"], val=s["val"], phase1=phase1)
    assert at_zero["phase2_train_step"] == float(phase1["phase1_train_step"])  # phase 1's graph again


def test_a_trial_priced_between_its_neighbours_skips_its_probe_and_trains_the_same(setup):
    """Given step costs the search interpolated (tuner.strategies.rounds), a cached trial prices
    itself by them, unprobed, and trains exactly what a probed one trains."""
    from tuner.trials.accounting import StepCosts
    from tuner.trials.cached import run_cached_trial
    from tuner.trials.probing import phase2_seconds

    s = setup
    phase1 = s["head"].metrics

    def trial(**given):
        return run_cached_trial(protocol=s["protocol"], num_classes=5, depth=15, train=s["train"],
                                val=s["val"], head_state=s["head"].state, phase1=phase1,
                                cache=s["cache"], keys=s["keys"], **given)

    probed = trial()
    between = {"depths": [11, 20], "train_step": 0.25, "train_trace": 1.5}
    priced = trial(priced_between=between)
    np.testing.assert_allclose(priced.losses, probed.losses, rtol=1e-6)
    assert priced.val_accuracy == probed.val_accuracy
    assert priced.extra["priced_between"] == between
    assert priced.extra["phase2_train_step"] == 0.25 and priced.extra["phase2_train_trace"] == 1.5
    assert "phase2_samples" not in priced.extra and "phase2_samples" in probed.extra  # nothing timed
    assert "priced_between" not in probed.extra
    costs = StepCosts(0.25, 1.5, float(phase1["phase1_val_step"]), float(phase1["phase1_val_trace"]))
    expected, _ = phase2_seconds(costs, protocol=s["protocol"], train=s["train"], val=s["val"])
    assert priced.protocol_seconds == pytest.approx(float(phase1["protocol_seconds"]) + expected)


def test_head_phase_fills_the_cache_in_its_pass(setup):
    filled = setup["head"].metrics["cached_points"]
    assert {3, 11, 20, 29} <= set(filled) and filled == sorted(filled)
    assert setup["cache"].size_bytes() > 0


def test_a_half_written_cache_entry_is_never_used(tmp_path):
    from tuner.trials.prefix_cache import PrefixCache

    cache = PrefixCache(str(tmp_path), 2**20)
    pending = cache.pending("k1", {"train": (4, 2), "val": (2, 2)}, {"point": "x"})
    pending.arrays["train"][:] = 1.0
    assert cache.get("k1") is None  # not committed: invisible
    # a worker killed mid-fill: its temporary folder carries a dead pid
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    os.rename(pending.tmp, os.path.join(str(tmp_path), f".tmp-{dead.pid}-deadbeef"))
    assert cache.reclaim() == [f".tmp-{dead.pid}-deadbeef"]
    assert os.listdir(tmp_path) == []


def test_the_cache_stays_within_its_cap(tmp_path):
    from tuner.trials.prefix_cache import PrefixCache

    cache = PrefixCache(str(tmp_path), 3 * 4096)
    for i in range(5):
        p = cache.pending(f"k{i}", {"train": (1000,), "val": (24,)}, {})
        p.commit()
        time.sleep(0.01)
    assert cache.size_bytes() <= 3 * 4096
    assert cache.get("k4") is not None and cache.get("k0") is None  # least recently used went first


def test_trial_process_is_replaced_when_its_memory_grows(tmp_path, monkeypatch):
    from tuner.trials import process as trial_process

    fake = tmp_path / "child.py"
    fake.write_text(
        "import json, sys\n"
        "for i, line in enumerate(sys.stdin):\n"
        "    print(json.dumps({'event': 'result', 'rss_mib': 100 + 1000 * i, 'n': i}), flush=True)\n"
    )
    monkeypatch.setattr(trial_process, "CHILD_COMMAND", [sys.executable, str(fake)])
    tp = trial_process.TrialProcess(max_growth_mib=1500)
    answers = [tp.request({})["n"] for _ in range(5)]
    tp.close()
    # grows by 1000 MiB per request: replaced after its third (+2000 MiB), so
    # one child served requests 0, 1, 2 and the next one started afresh
    assert answers == [0, 1, 2, 0, 1]
    assert tp.started == 2


def _search(tmp_path, *extra, study="c", trials=2, env=None, **kw):
    return run_cli(["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "48,16",
                    *FAST, "--study", study, "--trials", str(trials), "--seed", "3", *extra],
                   cwd=tmp_path, env_extra=env, **kw)


def test_cached_search_stores_both_seconds_and_a_head(tmp_path):
    r = _search(tmp_path, "--depth-scale", "linear", trials=1)
    assert r.returncode == 0, r.stderr
    assert "shared head phase computed" in r.stderr
    csv = run_cli(["show", "--study", "c", "--format", "csv"], cwd=tmp_path)
    header = csv.stdout.splitlines()[0].split(",")
    assert {"protocol_seconds", "search_seconds", "mode"} <= set(header)
    assert csv.stdout.count(",cached,") == 1
    assert len(os.listdir(tmp_path / "studies" / "c-artifacts")) >= 1
    # resuming reads the stored head instead of computing it again
    r = _search(tmp_path, "--depth-scale", "linear", trials=2)
    assert r.returncode == 0, r.stderr
    assert "shared head phase loaded" in r.stderr and "computed" not in r.stderr


def test_a_cut_that_does_not_fit_runs_plain_and_says_so(tmp_path):
    r = _search(tmp_path, "--cache-size", "0.00001", "--min-depth", "11", "--max-depth", "11",
                trials=1)
    assert r.returncode == 0, r.stderr
    assert "this trial runs plain" in r.stderr
    rows = json.loads(run_cli(["show", "--study", "c", "--format", "json"], cwd=tmp_path).stdout)
    assert rows["trials"][0]["mode"] == "plain"


@pytest.mark.parametrize("flags, words", [
    (["--trial-mode", "fast"], "--trial-mode"),
    (["--cache-size", "0"], "--cache-size"),
])
def test_bad_cache_flags(tmp_path, flags, words):
    r = _search(tmp_path, *flags)
    assert r.returncode == 2 and words in r.stderr
    assert not (tmp_path / "studies" / "c.db").exists()


def test_kill_during_the_head_phase_then_resume(tmp_path):
    """SIGKILL while the head phase fills the cache: the rerun completes, nothing half-written stays."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"), TMPDIR=str(tmp_path / "tmp"))
    os.makedirs(env["TMPDIR"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli.main", "search", "--dataset", "tf_flowers", "--fake-data",
         "--fake-examples", "48,16", *FAST, "--study", "k", "--trials", "2"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "shared head phase:" in line:
            break
    time.sleep(2.0)  # inside the head phase's pass or training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = os.listdir(env["TMPDIR"])
    assert any(name.startswith("depth-tuner-") for name in leftovers)  # what a kill leaves
    r = run_cli(["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "48,16",
                 *FAST, "--study", "k", "--trials", "2"], cwd=tmp_path, env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "left behind by a stopped worker" in r.stderr
    assert "shared head phase computed" in r.stderr
    assert not [n for n in os.listdir(env["TMPDIR"]) if n.startswith("depth-tuner-")]
    cache_root = tmp_path / "xdg" / "depth-tuner" / "prefix"
    assert not [n for n in os.listdir(cache_root) if n.startswith(".tmp-")]
    show = run_cli(["show", "--study", "k", "--format", "json"], cwd=tmp_path)
    assert len(json.loads(show.stdout)["trials"]) == 2


def test_two_workers_share_one_head_phase(tmp_path):
    args = [sys.executable, "-m", "tuner.cli.main", "search", "--dataset", "tf_flowers", "--fake-data",
            "--fake-examples", "48,16", *FAST, "--study", "w", "--trials", "3",
            "--storage", str(tmp_path / "w.log")]
    procs = [subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    said = "\n".join(errs)
    assert said.count("shared head phase computed") == 1
    assert said.count("shared head phase loaded") == 1
    artifacts = [n for n in os.listdir(tmp_path / "w-artifacts") if not n.startswith(".")]
    assert len(artifacts) == 1


def test_kill_while_a_depth_is_priced_by_a_probe_then_resume(tmp_path):
    """SIGKILL while the worker probes a deep depth's price: the rerun recovers that trial at once
    (it was claimed with the dead worker's pid), trains its depth, and leaves nothing RUNNING."""
    args = ["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "48,16", *FAST,
            "--study", "p", "--trials", "2", "--min-depth", "110"]  # every depth past two thirds: probed
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli.main", *args], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "trial 1/2 depth" in line and "val_accuracy" in line:
            break
    time.sleep(3.0)  # the probe of trial 2's depth takes about 10 s here
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    storage = f"sqlite:///{tmp_path / 'studies' / 'p.db'}"
    killed = optuna.load_study(study_name="p", storage=storage)
    assert [t.state for t in killed.trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    mid = killed.trials[1].user_attrs
    assert "worker_pid" in mid and "probed" not in mid and "val_accuracy" not in mid  # killed mid-probe
    r = run_cli(args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="p", storage=storage)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and states.count(TrialState.COMPLETE) == 2
    dead = study.trials[1]
    assert dead.state == TrialState.FAIL and "worker" in dead.user_attrs.get("fail_reason", "")
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == 1]
    assert retried and retried[0].params == dead.params and retried[0].state == TrialState.COMPLETE
