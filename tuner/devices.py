"""Which process may use the GPU, how it takes its memory, and where a trial trained.

TensorFlow maps nearly all of a GPU's memory in the first process that
touches it, and does not fall back when the next one runs out. The worker
uses TensorFlow before any trial (the weights check, loading images,
BatchNormalization calibration), so when trials run in their own process
the worker hides every GPU from itself before its first operation, and only
the trial process, which trains, sees them, growing its memory as it needs
it. ``--gpu N`` gives a worker and its trial process one GPU of several.
"""

from __future__ import annotations

import os
from typing import Any

VISIBLE = "CUDA_VISIBLE_DEVICES"
GROWTH = "TF_FORCE_GPU_ALLOW_GROWTH"  # TensorFlow's switch for memory growth in every GPU of a process
# What CUDA_VISIBLE_DEVICES was before the worker hid the GPUs: the trial process gets it back.
ORIGINAL_ENV = "DEPTH_TUNER_VISIBLE_GPUS"
_UNSET = "(unset)"


def _original_visible() -> str | None:
    saved = os.environ.get(ORIGINAL_ENV)
    if saved is None:
        return os.environ.get(VISIBLE)
    return None if saved == _UNSET else saved


def hide_gpus() -> list:
    """Hide every GPU from this process's TensorFlow (the worker); the GPUs it still sees.

    Call before TensorFlow's first operation. The environment keeps CUDA
    from initialising here at all; ``set_visible_devices`` covers a
    TensorFlow already imported. An empty answer is checked, not assumed:
    a process that touched the GPU before (a notebook that trained) still
    sees it, and the caller says so."""
    if ORIGINAL_ENV not in os.environ:
        os.environ[ORIGINAL_ENV] = os.environ.get(VISIBLE, _UNSET)
    os.environ[VISIBLE] = "-1"
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # this process's devices were initialised already
        pass
    return tf.config.get_visible_devices("GPU")


def trial_environment(gpu: int | None = None) -> dict[str, str]:
    """The environment of a trial process: the GPUs the worker hid from itself (or ``gpu`` alone),
    with memory growth unless the user chose otherwise."""
    env = dict(os.environ)
    visible = str(gpu) if gpu is not None else _original_visible()
    if visible is None:
        env.pop(VISIBLE, None)
    else:
        env[VISIBLE] = visible
    env.setdefault(GROWTH, "true")
    return env


def train_here(gpu: int | None = None) -> None:
    """``--in-process``: this process trains; ``gpu`` alone is visible, memory grows as needed."""
    if gpu is not None:
        os.environ[VISIBLE] = str(gpu)
    import tensorflow as tf

    for device in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:  # initialised already: TensorFlow keeps what it took
            pass


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def _nvidia_driver_present() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def describe_training_device() -> dict[str, Any]:
    """Where this process trains (Keras uses the first visible GPU, else the CPU), in the words
    stored on every trial; and what the start-up line says about it."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    visible = os.environ.get(VISIBLE)
    info: dict[str, Any] = {
        "software": f"tensorflow {tf.__version__}, keras {keras.__version__}",
        "gpus": len(gpus), "visible_devices": visible, "memory_growth": os.environ.get(GROWTH),
    }
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") or gpus[0].name
        info["device"] = f"GPU: {name}" + (f" x{len(gpus)}" if len(gpus) > 1 else "")
        line = f"training on GPU 0: {name}"
        if visible:
            line += f" (CUDA_VISIBLE_DEVICES={visible})"
        if len(gpus) > 1:
            line += f"; {len(gpus)} GPUs visible, trials use the first: one worker per GPU with --gpu N"
    else:
        cores = os.cpu_count() or 1
        info["device"] = f"CPU: {cpu_model()} ({cores} cores)"
        line = f"training on the CPU ({cores} cores): no GPU visible"
        if visible is not None and visible.strip() in ("", "-1"):
            line += f" (CUDA_VISIBLE_DEVICES={visible!r} hides them)"
        elif tf.test.is_built_with_cuda() and _nvidia_driver_present():
            line += (" although an NVIDIA driver is installed: TensorFlow could not load its CUDA "
                     "libraries (DEPTH_TUNER_VERBOSE=1 shows why; pip install 'tensorflow[and-cuda]')")
    info["line"] = line
    return info
