"""tf.distribute, proved without a GPU: MirroredStrategy over two logical CPU devices equals one device
with the same global batch, and two MultiWorkerMirroredStrategy workers on localhost agree.

Each run is a separate `python -m dilbench train` process, because the host CPU can only be split into
logical devices before TensorFlow initialises it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toolkit import REPO, TESTS, spawn_train, train_tiny_process

SMALL = [  # on top of the toolkit's TINY
    "data.train_subset=96", "data.test_subset=50", "train.batch_size=16", "train.epochs=1", "seed=3", "runtime.deterministic=false",
]
pytestmark = pytest.mark.slow


def only_run(runs: Path) -> Path:
    (path,) = [p for p in runs.iterdir() if p.is_dir()]
    return path


def weights(run: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "latest"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("weights/")}


@pytest.mark.parametrize("schedule", ["standard", "unfair_back", "unfair_front"])
def test_mirrored_on_two_cpus_equals_one_device(tmp_path, schedule):
    one = train_tiny_process(tmp_path / "one", *SMALL, f"schedule={schedule}")
    assert one.returncode == 0, one.stderr
    two = train_tiny_process(tmp_path / "two", *SMALL, f"schedule={schedule}", "runtime.distribute=mirrored",
                             "runtime.devices=[CPU:0, CPU:1]")
    assert two.returncode == 0, two.stderr
    one, two = only_run(tmp_path / "one"), only_run(tmp_path / "two")
    meta = json.loads((two / "meta.json").read_text())
    assert meta["distribute"] == {"strategy": "mirrored", "replicas": 2, "global_batch_size": 16, "per_replica_batch_size": 8.0}
    single, mirrored = weights(one), weights(two)
    assert single.keys() == mirrored.keys() and len(single) == 20  # 8 convs + 2 dense, kernel and bias each
    for key in single:
        np.testing.assert_allclose(mirrored[key], single[key], rtol=1e-4, atol=1e-5, err_msg=key)
    records = [json.loads((p / "metrics.jsonl").read_text()) for p in (one, two)]
    per_batch = {"standard": [1] * 8, "unfair_back": list(range(1, 9)), "unfair_front": list(range(8, 0, -1))}[schedule]
    assert records[0]["updates"] == records[1]["updates"] == [6 * n for n in per_batch]  # 96 images / 16 = 6 steps
    assert abs(records[0]["train_loss"] - records[1]["train_loss"]) < 1e-4


@pytest.mark.parametrize("schedule", ["standard", "unfair_back", "unfair_front"])
def test_replicas_with_batch_norm_make_the_updates_of_one_device(schedule):
    """ResNet v2 depth 11 (3 groups of one bottleneck unit, 10 BN layers), SGD lr 0.01, 3 batches of 16
    random CIFAR-shaped images, each batch started from the same weights on one device and on 2 replicas
    of 8 images (tests/replica_check.py says why). Synchronized BN normalises over all 16 images, so the
    loss of the batch's first forward pass agrees within 1e-5 and every weight and BN moving statistic
    after the batch within rtol 1e-4, atol 1e-5 (float32). Measured: losses at most 2.4e-7 apart,
    variables at most half the tolerance, while the batch moved every kernel by 4e-5 to 5e-4.
    Unsynchronized BN (each replica normalises its own 8 images) misses by far: losses 3e-3 to 4e-3
    apart, moving statistics 460-700x the tolerance."""
    result = subprocess.run([sys.executable, str(TESTS / "replica_check.py"), schedule], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["replicas"] == 2 and report["synchronized"] == [True] * 10
    assert report["synchronized_one_device"] == [False] * 10 and report["synchronized_allcnn"] == [True] * 8
    per_batch = {"standard": [1, 1, 1], "unfair_back": [1, 2, 3], "unfair_front": [3, 2, 1]}[schedule]
    assert report["updates"] == [[3 * n for n in per_batch]] * 2
    for batch in report["batches"]:
        single, mirrored = batch["loss"]
        assert abs(single - mirrored) < 1e-5
        moving = [v for v in batch["variables"] if "moving_" in v["name"]]
        assert len(moving) == 2 * 10 and all(v["change"] > 1e-2 for v in moving)  # the batch moved them
        for v in batch["variables"]:
            assert v["diff"] <= 1e-5 + 1e-4 * v["value"], v
        kernels = [v for v in batch["variables"] if v["name"].endswith("kernel")]
        assert len(kernels) == 14 and all(v["change"] > 1e-5 for v in kernels)  # 13 convs and the logits: all updated


def test_a_mirrored_run_killed_mid_run_resumes_on_one_device(tmp_path):
    """The runtime is not the experiment: a run started on two replicas, killed (-9) in epoch 2, resumes on one
    device from its epoch-1 checkpoint and completes; it ends where a run trained on one device throughout does,
    at the rounding level (no batch norm here: rounding is not amplified), and meta.json names both segments'
    runtimes. A per-replica batch that would change the global batch on other devices is refused."""
    mirrored = ["train.epochs=2", "runtime.distribute=mirrored", "runtime.devices=[CPU:0, CPU:1]"]
    killed = train_tiny_process(tmp_path / "two", *SMALL, *mirrored, inject=["kill@step=2.3"])
    assert killed.returncode == -9, killed.stderr
    run = only_run(tmp_path / "two")
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    resumed = subprocess.run([sys.executable, "-m", "dilbench", "train", "--resume", str(run), "--set", "runtime.distribute=none",
                              "--set", "runtime.devices=[]"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = train_tiny_process(tmp_path / "one", *SMALL, "train.epochs=2")
    assert straight.returncode == 0, straight.stderr
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["epochs_done"] == 2
    assert meta["runtime"]["distribute"] == "mirrored" and meta["runtime"]["devices"] == ["CPU:0", "CPU:1"]
    (segment,) = meta["resumes"]
    assert segment["runtime"]["distribute"] == "none" and segment["runtime"]["devices"] == []
    assert meta["distribute"]["replicas"] == 1 and meta["distribute"]["global_batch_size"] == 16
    single, resumed_weights = weights(only_run(tmp_path / "one")), weights(run)
    assert single.keys() == resumed_weights.keys()
    for key in single:
        np.testing.assert_allclose(resumed_weights[key], single[key], rtol=0, atol=1e-5, err_msg=key)
    records = [[json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()] for p in (run, only_run(tmp_path / "one"))]
    assert [r["updates_total"] for r in records[0]] == [r["updates_total"] for r in records[1]]
    for a, b in zip(*records):
        assert abs(a["eval_loss"] - b["eval_loss"]) < 1e-5 and a["eval_acc"] == b["eval_acc"]

    done = train_tiny_process(tmp_path / "per_replica", *SMALL, "train.batch_size=8", "train.batch_size_is=per_replica",
                              "train.lr_schedule=constant", *mirrored[1:])
    assert done.returncode == 0, done.stderr
    per_replica = only_run(tmp_path / "per_replica")
    refused = subprocess.run([sys.executable, "-m", "dilbench", "train", "--resume", str(per_replica), "--set", "train.epochs=2",
                              "--set", "runtime.distribute=none", "--set", "runtime.devices=[]"],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert (f"Error: {per_replica} trained with a global batch of 16, but on 1 replica(s) it would be 8 "
            "(train.batch_size_is: per_replica); resume it on 2 replica(s)") in refused.stderr


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_on_localhost(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = [
        spawn_train(tmp_path / "runs", *SMALL, "runtime.distribute=multi_worker", "schedule=unfair_back",
                    env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err
            outputs.append(err)
    finally:
        for worker in workers:
            worker.kill()
    run = only_run(tmp_path / "runs")  # the chief's; the other worker's temporary directory is gone
    assert {p.name for p in run.iterdir()} == {"config.yaml", "meta.json", "metrics.jsonl", "events", "plots", "checkpoints", "log.txt",
                                              ".lock"}
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed"
    assert meta["distribute"] == {"strategy": "multi_worker", "replicas": 2, "global_batch_size": 16, "per_replica_batch_size": 8.0}
    digests = [line.rsplit(" ", 1)[1] for err in outputs for line in err.splitlines() if "final weights sha256" in line]
    assert digests == [meta["weights_sha256"]] * 2
    assert json.loads((run / "metrics.jsonl").read_text())["updates"] == [6 * n for n in range(1, 9)]
