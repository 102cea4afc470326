"""How many trials a search runs at once when not told (`--max-concurrent`), and why.

The default is the smaller of what the cores allow (slots // slots per trial: on this machine
a trial trains with every core and the machine queue runs one training at a time, so one; on a
cluster one trial per GPU, else per CPU) and what the memory allows (free memory // a trial's
estimated memory), and at least 1. The estimate is rough on purpose: a TensorFlow training
process (`TRIAL_BASE_BYTES`), 16 bytes per parameter (weights, gradients, two optimizer slots)
and the activations of a batch. The search records the choice with its numbers and reason.
"""
from __future__ import annotations

import os

TRIAL_BASE_BYTES = 1536 * 2 ** 20
BYTES_PER_PARAMETER = 16
ACTIVATION_BYTES_PER_PIXEL = 4 * 3 * 64  # float32 RGB input, times the layers' activations kept for backprop
GIB = 2 ** 30


def free_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (Linux); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def trial_memory_bytes(options: dict) -> int:
    """A rough estimate of one trial's memory from its options (see the module doc)."""
    params = 0
    size = int(options.get("input_size") or 224)
    try:
        if options.get("backbone") and not options.get("backbone_file"):
            from ..backbones.tablestore import known_facts

            facts = known_facts(options["backbone"], size)
            if facts is not None:
                params = sum(int(row.params) for row in facts.table)
    except Exception:  # an estimate: unknown parameters count as none
        params = 0
    batch = int(options.get("batch_size") or 32)
    return TRIAL_BASE_BYTES + BYTES_PER_PARAMETER * params + batch * size * size * ACTIVATION_BYTES_PER_PIXEL


def choose(explicit: int | None, slots: int, slots_per_trial: int, slot_name: str,
           free_bytes: int | None, trial_bytes: int) -> dict:
    """{"max_concurrent", "chosen_by", "reason", and the numbers}: `explicit` if given, else the
    smaller of slots // slots_per_trial and free_bytes // trial_bytes, at least 1."""
    numbers = {"slots": slots, "slot": slot_name, "slots_per_trial": slots_per_trial,
               "free_memory_bytes": free_bytes, "trial_memory_bytes": trial_bytes}
    if explicit:
        return {"max_concurrent": int(explicit), "chosen_by": "max_concurrent",
                "reason": f"--max-concurrent {int(explicit)} given", **numbers}
    by_slots = max(1, slots // max(1, slots_per_trial))
    by_memory = None if not free_bytes else max(1, free_bytes // max(1, trial_bytes))
    n = by_slots if by_memory is None else min(by_slots, by_memory)
    per = "all" if slots_per_trial >= slots else str(slots_per_trial)
    reason = f"{by_slots} by {slot_name}s ({slots} {slot_name}s, {per} per trial)"
    if by_memory is None:
        reason += "; free memory unknown"
    else:
        reason += (f", {by_memory} by memory ({free_bytes / GIB:.1f} GiB free, about "
                   f"{trial_bytes / GIB:.1f} GiB per trial)")
    return {"max_concurrent": n, "chosen_by": "default", "reason": f"{n}: the smaller of {reason}", **numbers}


def local(explicit: int | None, options: dict) -> dict:
    """The choice on this machine: each trial trains with every core (one training at a time)."""
    cores = os.cpu_count() or 1
    return choose(explicit, cores, cores, "core", free_memory_bytes(), trial_memory_bytes(options))


def cluster(explicit: int | None, options: dict, resources: dict) -> dict:
    """The choice on a Ray cluster (`ray.cluster_resources()`): one trial per GPU, else per CPU,
    and the cluster's memory."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    memory = int(resources.get("memory", 0)) or None
    slots, name = (gpus, "GPU") if gpus else (cpus, "CPU")
    return choose(explicit, slots, 1, name, memory, trial_memory_bytes(options))
