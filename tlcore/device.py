"""The machine: GPUs, memory growth, mixed precision and the distribution strategy."""
from __future__ import annotations

import json
import os


def describe() -> dict:
    """TensorFlow and Keras versions, GPUs (name, memory, compute capability), mixed precision."""
    import keras
    import tensorflow as tf

    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:
            details = {}
        gpus.append({"name": details.get("device_name", gpu.name),
                     "compute_capability": details.get("compute_capability"),
                     "memory_mb": _gpu_memory_mb(gpu)})
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "gpus": gpus,
            "mixed_precision_available": any(_mp_capable(g["compute_capability"]) for g in gpus)}


def _gpu_memory_mb(gpu) -> int | None:
    """Total memory of a GPU in MiB, from nvidia-smi where it is installed (None if unknown)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        index = int(gpu.name.rsplit(":", 1)[-1])
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                              f"--id={index}"], capture_output=True, text=True, timeout=5)
        return int(out.stdout.strip().splitlines()[0])
    except (ValueError, IndexError, OSError, subprocess.SubprocessError):
        return None


def _mp_capable(cc) -> bool:
    return bool(cc) and tuple(cc) >= (7, 0)


def setup(mixed_precision: str = "auto", xla: bool = False, deterministic: str = "off") -> dict:
    """Prepare TensorFlow for training; call before building any model.

    Turns on GPU memory growth (so the app and a training job can share a card), picks
    mixed precision (auto: on for GPUs of compute capability 7.0 or more) and the strategy:
    MultiWorkerMirroredStrategy from TF_CONFIG, MirroredStrategy for several GPUs (or for
    TLCORE_CPU_REPLICAS logical CPUs, to test that path without a GPU), else the default.
    `deterministic` (auto: on without a GPU) turns on TensorFlow's op determinism, so the same
    seed gives the same run on the same machine and software; on a GPU it costs speed (some
    kernels have slower deterministic versions, a few ops refuse to run), so auto leaves it off there.
    """
    import keras
    import tensorflow as tf

    replicas = int(os.environ.get("TLCORE_CPU_REPLICAS", "0") or 0)
    if replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        except RuntimeError:
            pass
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    info = describe()
    use_det = deterministic == "on" or (deterministic == "auto" and not gpus)
    if use_det:
        tf.config.experimental.enable_op_determinism()
    if mixed_precision not in ("auto", "on", "off"):
        from .errors import OptionError

        raise OptionError("mixed_precision", f"must be auto, on or off. Received: {mixed_precision!r}")
    use_mp = mixed_precision == "on" or (mixed_precision == "auto" and info["mixed_precision_available"])
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mp else "float32")

    if os.environ.get("TF_CONFIG") and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        name = "MultiWorkerMirroredStrategy"
    elif len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        name = "MirroredStrategy"
    elif replicas > 1:
        strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
        name = "MirroredStrategy"
    else:
        strategy = tf.distribute.get_strategy()
        name = "default"
    return {"gpus": len(gpus), "mixed_precision": use_mp, "xla": bool(xla), "strategy": strategy,
            "strategy_name": name, "replicas": strategy.num_replicas_in_sync, "deterministic": use_det}
