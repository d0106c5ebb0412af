"""Who is who in a `runtime.distribute: multi_worker` run: from $TF_CONFIG, or from the Slurm step the
process runs in (`srun` sets SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_STEP_NODELIST, ...).

$TF_CONFIG wins when set. Otherwise, inside an srun step, TensorFlow's SlurmClusterResolver builds the
cluster from Slurm's environment: one worker per task, task 0 (SLURM_PROCID 0) the chief, so the same
`srun dilbench train ...` line works on any allocation with no hand-written cluster. TensorFlow is
imported only by `slurm_resolver`, which runs when the strategy is built.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dilbench.errors import UsageError

PORT_BASE, PORT_SPAN, PORTS_PER_JOB = 20000, 40000, 16


def worker_task() -> tuple[str, int]:
    """(task type, index) of this process: $TF_CONFIG's task, else ("worker", SLURM_PROCID) in an srun step."""
    if "TF_CONFIG" in os.environ:
        try:
            task = json.loads(os.environ["TF_CONFIG"])["task"]
            return str(task["type"]), int(task["index"])
        except (KeyError, ValueError, TypeError):
            raise UsageError("$TF_CONFIG has no task {type, index}; see docs/guides/distribution.md, 'Several hosts'") from None
    if in_slurm_step():
        return "worker", int(os.environ["SLURM_PROCID"])
    raise UsageError("runtime.distribute is multi_worker but there is no cluster: start every worker with `srun` inside a "
                     "Slurm job, or set $TF_CONFIG on each host; see docs/guides/distribution.md, 'Several hosts'")


def is_chief_task(task: tuple[str, int]) -> bool:
    """The chief owns the run directory: task `chief`, or worker 0 when the cluster has no chief (Slurm's never has)."""
    if task[0] == "chief":
        return True
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {}) if "TF_CONFIG" in os.environ else {}
    return task == ("worker", 0) and "chief" not in cluster


def in_slurm_step() -> bool:
    """Inside an `srun` step (a batch script alone has no step task count, and one process is no cluster)."""
    return "SLURM_STEP_NUM_TASKS" in os.environ and "SLURM_PROCID" in os.environ


def port_base() -> int:
    """The first port of this job's workers on each node (a worker's is this + its index on the node).

    Derived from the job id, so every task computes the same one with no exchange, and two jobs
    sharing a node do not collide unless their ids are PORT_SPAN / PORTS_PER_JOB = 2,500 apart exactly."""
    job = int(os.environ.get("SLURM_JOB_ID", "0"))
    return PORT_BASE + (job * PORTS_PER_JOB) % PORT_SPAN


def slurm_resolver() -> Any:
    """TensorFlow's SlurmClusterResolver for this srun step, or None when $TF_CONFIG describes the cluster.

    GPUs stay as Slurm bound them: the resolver would otherwise rewrite CUDA_VISIBLE_DEVICES by its own
    count (and its count fails on nodes without nvidia-smi), so we pass a count that only makes its
    task list come out right and report the GPUs this process actually sees."""
    if "TF_CONFIG" in os.environ or not in_slurm_step():
        return None
    import tensorflow as tf

    class SlurmCluster(tf.distribute.cluster_resolver.SlurmClusterResolver):
        def __init__(self) -> None:
            tasks = int(os.environ["SLURM_STEP_NUM_TASKS"])  # an upper bound of the tasks on any node
            super().__init__(port_base=port_base(), gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False)
            self.local_gpus = len(tf.config.list_physical_devices("GPU"))

        def num_accelerators(self, task_type=None, task_id=None, config_proto=None) -> dict[str, int]:
            return {"GPU": self.local_gpus}

    return SlurmCluster()
