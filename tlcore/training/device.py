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


WORKER_TIMEOUT_SECONDS = float(os.environ.get("TLCORE_WORKER_TIMEOUT", "60"))


def cluster() -> dict | None:
    """This process's place in a multi-worker cluster from TF_CONFIG (no TensorFlow needed):
    {workers, index, task, chief}; None on one machine. The chief is the task of type "chief",
    or worker 0 when the cluster names no chief; only the chief writes the run store."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except ValueError:
        from ..core.errors import TLCoreError

        raise TLCoreError("TF_CONFIG is not valid JSON; see the README's 'More than one machine'.") from None
    spec, task = cfg.get("cluster") or {}, cfg.get("task") or {}
    if not spec:
        return None
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    workers = sum(len(spec.get(k) or []) for k in ("chief", "worker"))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not spec.get("chief"))
    return {"workers": workers, "index": index, "task": kind, "chief": chief}


def _patch_keras_for_multi_worker() -> None:
    """Keras 3's fit under MultiWorkerMirroredStrategy fails on two upstream bugs
    (keras-team/keras#20585): the symbolic build reduces a per-replica *input* batch across
    workers, and metrics are averaged with `reduce(MEAN, axis=0)` on scalars. Take the local
    batch for the build, and average scalar metrics over replicas (axis=None). Only applied
    when a multi-worker strategy is made."""
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tft

    if getattr(tft, "_tlcore_patched", False):
        return
    original_reduce = tft.reduce_per_replica
    original_build = tft.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction):
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and reduction in ("auto", "mean"):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and iterator is not None:
            for _, _, it in iterator:
                batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, next(it))
                with strategy.scope():
                    self._symbolic_build(data_batch=batch)
                return None
        return original_build(self, iterator, data_batch)

    tft.reduce_per_replica = reduce_per_replica
    tft.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tft._tlcore_patched = True


_ANY_WORKER: dict = {}


def any_worker(strategy, flag: bool) -> bool:
    """True if `flag` is true on any worker: every worker must call this at the same point
    (one all-reduce of a number, traced once per strategy)."""
    import tensorflow as tf

    fn = _ANY_WORKER.get(id(strategy))
    if fn is None:
        @tf.function
        def fn(x):
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(tf.identity, args=(x,)), axis=None)

        _ANY_WORKER[id(strategy)] = fn
    return bool(fn(tf.constant(1.0 if flag else 0.0)).numpy() > 0)


def per_worker(strategy, make, class_weight: dict | None = None):
    """A dataset each worker builds for itself: `make(shard)` with shard = (workers, this
    worker's index), which reads only this worker's rows (`data.mapped.index_dataset`), each
    batch already this worker's share of the global one. Nothing is sharded or rebatched after
    it (tf.distribute's auto-sharding would have every worker read every image and keep a part).
    `class_weight` ({class: weight}) becomes a third element, sample weights, since Keras cannot
    map a distributed dataset itself."""
    import tensorflow as tf

    def build(context):
        ds = make((context.num_input_pipelines, context.input_pipeline_id))
        if class_weight:
            table = tf.constant([class_weight.get(i, 1.0) for i in range(max(class_weight) + 1)], tf.float32)

            def weigh(x, t):
                cls = tf.argmax(t, axis=-1) if t.shape.rank == 2 and t.shape[-1] > 1 else \
                    tf.reshape(tf.cast(t, tf.int64), [-1])
                return x, t, tf.gather(table, cls)

            ds = ds.map(weigh)
        return ds

    return strategy.distribute_datasets_from_function(build)


def worker_failure(exc: BaseException) -> str | None:
    """The reason a multi-worker run gives when TensorFlow's collectives fail (None otherwise)."""
    import re

    if not type(exc).__module__.startswith("tensorflow"):
        return None
    text = str(exc)
    task = re.search(r"/job:(\w+)/replica:\d+/task:(\d+)", text)
    who = f"{task.group(1)} {task.group(2)}" if task else "a worker"
    why = ("stopped sending heartbeats (it crashed or was killed)" if "heartbeat" in text
           else f"gave no answer within {WORKER_TIMEOUT_SECONDS:g} s (TLCORE_WORKER_TIMEOUT)")
    return f"The cluster failed: {who} {why}. Start every worker again with the same command."


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
    from ..recipe.config import AUTO_ON_OFF

    if mixed_precision not in AUTO_ON_OFF:
        from ..core.errors import OptionError

        raise OptionError("mixed_precision", f"must be one of {', '.join(AUTO_ON_OFF)}. Received: {mixed_precision!r}")
    use_mp = mixed_precision == "on" or (mixed_precision == "auto" and info["mixed_precision_available"])
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mp else "float32")

    if cluster():
        # a collective that waits longer than this for a worker fails the run (a dead worker)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=WORKER_TIMEOUT_SECONDS))
        _patch_keras_for_multi_worker()
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
