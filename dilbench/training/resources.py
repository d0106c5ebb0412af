"""What a run costs the machine, per epoch: peak memory and CPU utilisation (and GPU memory where there is one).

Sampled twice an epoch (its start and its end), never per step, so it costs nothing measurable: a few
system calls. The keys it adds to each epoch record (metrics.jsonl):

    peak_rss_bytes   the process's peak resident memory so far (this segment: a resumed run is a new process),
                     the kernel's own high-water mark (getrusage's ru_maxrss), so a spike between samples counts
    cpu_seconds      CPU time (user + system, every thread) the process spent in the epoch
    cpu_util         cpu_seconds / wall seconds / the CPUs this process may run on: 1.0 keeps them all busy
    gpu_peak_bytes   with GPUs: the largest of their peak allocated memory so far (TensorFlow's allocator)

The Trainer calls `epoch_started` and `epoch_ended`; nothing else here knows about training, so the sampler
can move to wherever per-batch listeners end up.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import psutil

RESOURCE_KEYS = ("peak_rss_bytes", "cpu_seconds", "cpu_util", "gpu_peak_bytes")  # what depends on the machine's load


def peak_rss_bytes(process: psutil.Process) -> int:
    """The process's peak resident set size: the kernel's high-water mark where it keeps one, else the current RSS."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return int(process.memory_info().rss)


def usable_cpus(process: psutil.Process) -> int:
    try:
        return max(1, len(process.cpu_affinity() or []))
    except (AttributeError, psutil.Error):
        return os.cpu_count() or 1


class ResourceSampler:
    def __init__(self, gpus: list[str] | None = None):
        """`gpus`: TensorFlow device names whose memory to read (GPU:0, ...); none on a CPU."""
        self.process = psutil.Process()
        self.cpus = usable_cpus(self.process)
        self.gpus = list(gpus or [])
        self.started: tuple[float, float] | None = None

    def _cpu_time(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def epoch_started(self) -> None:
        self.started = (time.perf_counter(), self._cpu_time())

    def epoch_ended(self) -> dict[str, Any]:
        """The epoch's figures (see the module); after `epoch_started`, else only the peaks."""
        figures: dict[str, Any] = {"peak_rss_bytes": peak_rss_bytes(self.process)}
        if self.started is not None:
            wall, cpu = time.perf_counter() - self.started[0], self._cpu_time() - self.started[1]
            figures["cpu_seconds"] = round(cpu, 3)
            figures["cpu_util"] = round(cpu / wall / self.cpus, 4) if wall > 0 else None
        peaks = [peak for peak in map(_gpu_peak, self.gpus) if peak is not None]
        if peaks:
            figures["gpu_peak_bytes"] = max(peaks)
        return figures


def _gpu_peak(device: str) -> int | None:
    import tensorflow as tf

    try:
        return int(tf.config.experimental.get_memory_info(device)["peak"])
    except (ValueError, KeyError, RuntimeError):
        return None
