"""Where training runs: the worker off the GPU, the trial process on it, every trial's device recorded.

There is no GPU here, so what a CPU can show is shown: the worker's own
TensorFlow is asked what it sees after hiding, the trial process (a real
child) reports the environment it got, and ``--gpu N`` reaches it.
"""

from __future__ import annotations

import json
import os
import sys

import optuna
import pytest
from conftest import FAST, run_cli

from tuner import devices
from tuner import stored_keys as keys


@pytest.fixture
def clean_gpu_env(monkeypatch):
    """The test's own CUDA_VISIBLE_DEVICES, restored afterwards with everything hide_gpus sets."""
    monkeypatch.setenv(devices.VISIBLE, "2,3")
    monkeypatch.delenv(devices.ORIGINAL_ENV, raising=False)
    monkeypatch.delenv(devices.GROWTH, raising=False)
    return monkeypatch


def test_the_worker_hides_every_gpu_and_its_trial_process_gets_them_back(clean_gpu_env, tmp_path):
    import tensorflow as tf

    from tuner.model.protocol import TrainingProtocol
    from tuner.model.space import DepthSpace
    from tuner.trials.process import TrialProcess
    from tuner.trials.request import TrialContext, TrialRequest

    assert devices.hide_gpus() == []  # asked of this process's TensorFlow, not assumed
    assert tf.config.get_visible_devices("GPU") == []
    assert os.environ[devices.VISIBLE] == "-1"
    env = devices.trial_environment()
    assert env[devices.VISIBLE] == "2,3" and env[devices.GROWTH] == "true"
    assert devices.trial_environment(1)[devices.VISIBLE] == "1"
    devices.hide_gpus()  # a second search in the same process keeps the original
    assert devices.trial_environment()[devices.VISIBLE] == "2,3"

    context = TrialContext(protocol=TrainingProtocol(weights=None, image_size=32), num_classes=2,
                           space=DepthSpace(0, 10), images_dir=str(tmp_path))
    for gpu, visible in ((None, "2,3"), (3, "3")):
        child = TrialProcess(gpu=gpu)
        try:
            info = child.request(TrialRequest.device(context))["device"]
        finally:
            child.close()
        assert info["visible_devices"] == visible and info["memory_growth"] == "true"
        assert info["gpus"] == 0 and info["device"].startswith("CPU: ")
        assert info["line"].startswith(f"training on the CPU ({os.cpu_count()} cores): no GPU visible")
        assert "tensorflow" in info["software"] and "keras" in info["software"]


def test_an_unset_cuda_variable_stays_unset_for_the_trial_process(clean_gpu_env):
    clean_gpu_env.delenv(devices.VISIBLE)
    devices.hide_gpus()
    assert devices.VISIBLE not in devices.trial_environment()


def test_a_user_choice_of_memory_growth_is_kept(clean_gpu_env):
    clean_gpu_env.setenv(devices.GROWTH, "false")
    assert devices.trial_environment()[devices.GROWTH] == "false"


def _oom_child(tmp_path) -> list[str]:
    """A stand-in trial process that answers every request with the out-of-memory error."""
    script = tmp_path / "oom_child.py"
    script.write_text(
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    print(json.dumps(dict(event='error', message='out of memory on GPU: X at 224 px, batch size 32',"
        " out_of_memory=True, rss_mib=1.0)), flush=True)\n")
    return [sys.executable, str(script)]


def test_an_out_of_memory_error_replaces_the_trial_process(tmp_path, monkeypatch):
    from tuner.errors import OutOfMemory
    from tuner.trials import process

    monkeypatch.setattr(process, "CHILD_COMMAND", _oom_child(tmp_path))
    child = process.TrialProcess()
    request = {"kind": "trial"}  # the stand-in reads nothing
    for started in (1, 2):
        with pytest.raises(OutOfMemory, match="224 px, batch size 32"):
            child.request(request)
        assert child.started == started and child.proc is None  # the next request starts afresh
    child.close()


def test_out_of_memory_in_a_trial_is_one_line_naming_image_and_batch_size(monkeypatch, tmp_path):
    import tensorflow as tf

    from tuner.errors import OutOfMemory
    from tuner.model.protocol import TrainingProtocol
    from tuner.model.space import DepthSpace
    from tuner.trials import handler
    from tuner.trials.request import TrialContext, TrialRequest

    def exhausted(request, emit):
        try:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[32,112,112,96]")
        except tf.errors.ResourceExhaustedError as exc:
            raise RuntimeError("Graph execution error") from exc  # as Keras wraps it

    monkeypatch.setattr(handler, "_serve", exhausted)
    context = TrialContext(protocol=TrainingProtocol(weights=None, image_size=64, batch_size=16),
                           num_classes=2,
                           space=DepthSpace(0, 10), images_dir=str(tmp_path))
    with pytest.raises(OutOfMemory) as caught:
        handler.handle(TrialRequest.trial(context, 3), lambda **_: None)
    message = str(caught.value)
    assert "\n" not in message and "at 64 px, batch size 16" in message and "--batch-size" in message

    monkeypatch.setattr(handler, "_serve", lambda request, emit: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # any other error stays what it was
        handler.handle(TrialRequest.trial(context, 3), lambda **_: None)


def test_xla_compiles_a_short_last_batch_once_more_per_phase():
    from tuner.trials.accounting import SHORT_SHAPE_COMPILE, StepCosts

    costs = StepCosts(train_step=0.1, train_trace=5.0, val_step=0.05, val_trace=2.0)
    shape = dict(epochs=3, val_examples=50, batch_size=32)
    plain = costs.phase_seconds(train_examples=100, **shape)
    assert costs.phase_seconds(train_examples=100, jit_compile=True, **shape) == pytest.approx(
        plain + SHORT_SHAPE_COMPILE * (5 + 2))
    even = costs.phase_seconds(train_examples=96, val_examples=64, epochs=3, batch_size=32)
    assert costs.phase_seconds(train_examples=96, val_examples=64, epochs=3, batch_size=32,
                               jit_compile=True) == pytest.approx(even)  # no short batch, no compile
    assert costs.phase_seconds(train_examples=100, jit_compile=True, traced=False, **shape) == \
        pytest.approx(costs.phase_seconds(train_examples=100, traced=False, **shape))


def test_the_cost_model_prices_from_this_devices_readings():
    from tuner.strategies.cost import cost_readings

    records = [{"depth": 0, "seconds": 10.0, "device": "CPU: A (2 cores)"},
               {"depth": 5, "seconds": 1.0, "device": "GPU: B"},
               {"depth": 9, "seconds": 12.0}]  # from before devices were recorded
    prices = [{"depth": 20, "seconds": 2.0, "device": "GPU: B"}]
    here = cost_readings(records, prices, device="CPU: A (2 cores)")
    assert [r["depth"] for r in here] == [0, 9]
    assert [r["depth"] for r in cost_readings(records, prices, device="GPU: B")] == [5, 9, 20]
    assert len(cost_readings(records, prices)) == 4  # a replay: every reading


def test_trials_record_their_device_and_a_study_on_two_devices_is_flagged(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    common = ["--study", "dev", "--storage", storage]
    r = run_cli(["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "64,32", *FAST,
                 "--trials", "1", *common], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"training on the CPU ({os.cpu_count()} cores): no GPU visible" in r.stderr
    study = optuna.load_study(study_name="dev", storage=storage)
    (trial,) = study.trials
    assert trial.user_attrs[keys.DEVICE].startswith("CPU: ") and "cores)" in trial.user_attrs[keys.DEVICE]
    assert trial.user_attrs[keys.SOFTWARE].startswith("tensorflow ")
    config = json.loads(study.user_attrs[keys.CONFIG])
    assert config["protocol"]["jit_compile"] is False  # recorded, like every protocol choice

    shown = run_cli(["show", *common], cwd=tmp_path)
    assert shown.returncode == 0 and "devices" not in shown.stdout

    elsewhere = optuna.trial.create_trial(
        params=trial.params, distributions=trial.distributions, value=trial.value,
        user_attrs={**trial.user_attrs, keys.DEVICE: "GPU: NVIDIA A100-SXM4-40GB"})
    study.add_trial(elsewhere)
    shown = run_cli(["show", *common], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "note: the trials trained on 2 devices" in shown.stdout
    assert "GPU: NVIDIA A100-SXM4-40GB (1)" in shown.stdout
    as_json = run_cli(["show", *common, "--format", "json"], cwd=tmp_path)
    assert json.loads(as_json.stdout)["devices_note"].startswith("note: the trials trained on 2 devices")

    # XLA is part of the protocol: resuming with it on is refused like any protocol change.
    r = run_cli(["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "64,32", *FAST,
                 "--trials", "3", "--jit-compile", *common], cwd=tmp_path)
    assert r.returncode == 2 and "protocol.jit_compile: False -> True" in r.stderr
    assert len(optuna.load_study(study_name="dev", storage=storage).trials) == 2


def test_gpu_reaches_the_trial_process_and_a_missing_one_is_a_usage_error(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    r = run_cli(["search", "--dataset", "tf_flowers", "--fake-data", "--fake-examples", "64,32", *FAST,
                 "--trials", "1", "--gpu", "3", "--study", "g", "--storage", storage], cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "--gpu 3: the trial process sees no GPU 3" in line and "CUDA_VISIBLE_DEVICES='3'" not in line
    assert "training on the CPU" in line
    with pytest.raises(KeyError):  # the study was taken back: nothing measured, nothing left
        optuna.load_study(study_name="g", storage=storage)

    r = run_cli(["search", "--dataset", "tf_flowers", "--fake-data", *FAST, "--gpu", "-1",
                 "--study", "g", "--storage", storage], cwd=tmp_path)
    assert r.returncode == 2 and "--gpu -1" in r.stderr and "Traceback" not in r.stderr
