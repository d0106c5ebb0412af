"""Process-wide setup for a run: seeds, op determinism, mixed precision policy, device facts."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import tensorflow as tf

from dilbench.config.schema import RuntimeConfig
from dilbench.training.cluster import slurm_resolver

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def seed_everything(seed: int, deterministic: bool) -> None:
    """One seed for Python, NumPy and TensorFlow; `deterministic` turns on TF op determinism."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_strategy(runtime: RuntimeConfig) -> tf.distribute.Strategy:
    """The tf.distribute strategy `runtime.distribute` asks for; call before anything touches a device."""
    names = [d.upper() for d in runtime.devices]
    cpus = [int(d.split(":")[1]) for d in names if d.startswith("CPU:")]
    if cpus and max(cpus) > 0:  # several CPU "devices": split the host CPU into logical devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * (max(cpus) + 1))
    if runtime.distribute == "mirrored":
        return tf.distribute.MirroredStrategy([f"/{d}" for d in names] or None)
    if runtime.distribute == "multi_worker":  # the cluster: $TF_CONFIG, else the Slurm step (checked by the launcher)
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=slurm_resolver())
    if names:  # distribute: none with one named device (the config allows no more)
        return tf.distribute.OneDeviceStrategy(f"/{names[0]}")
    return tf.distribute.get_strategy()


def devices() -> list[str]:
    """What TensorFlow will compute on: every GPU when there is one, else the CPU."""
    return [f"{d.device_type}:{d.name.split(':')[-1]}" for d in tf.config.list_logical_devices()]


def tensorflow_build() -> dict[str, Any]:
    """TensorFlow's version and build: CUDA and cuDNN versions where it was built with them (for meta.json)."""
    build: dict[str, Any] = {"version": tf.__version__, "git_version": tf.version.GIT_VERSION}
    try:
        info = dict(tf.sysconfig.get_build_info())
    except Exception:  # noqa: BLE001 - a build without the info module: version only
        info = {}
    build.update({key: value for key, value in sorted(info.items()) if isinstance(value, (str, int, float, bool))})
    return build


def gpu_names() -> list[dict[str, Any]]:
    """Each GPU TensorFlow sees: its device, name and compute capability (empty on a CPU)."""
    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - details are a nicety
            details = {}
        entry: dict[str, Any] = {"device": gpu.name, "name": str(details.get("device_name", "unknown"))}
        if details.get("compute_capability"):
            entry["compute_capability"] = ".".join(map(str, details["compute_capability"]))
        found.append(entry)
    return found
