"""tf.distribute, proved without a GPU: MirroredStrategy over two logical CPU devices equals one device
with the same global batch, and two MultiWorkerMirroredStrategy workers on localhost agree.

Each run is a separate `python -m dilbench train` process, because the host CPU can only be split into
logical devices before TensorFlow initialises it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toolkit import CONFIGS, EXPERIMENTS, REPO, TESTS, child_env, spawn_train, train_tiny_process

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
    """The quickstart's context module (no batch norm), Adam with cosine decay, 2 epochs of 3 batches of 16, through
    `dilbench train`: every weight within 1e-5 of one device's and each epoch's metrics as one device's (losses
    within 1e-5, accuracy and update counts equal). Measured: weights at most 2.4e-7 apart, losses 3e-7; one device
    with only the order of each batch's images reversed lands up to 4e-6 from itself (tests/replica_runs.py)."""
    two_epochs = ["data.train_subset=48", "data.test_subset=200", "train.epochs=2"]
    one = train_tiny_process(tmp_path / "one", *SMALL, f"schedule={schedule}", *two_epochs)
    assert one.returncode == 0, one.stderr
    two = train_tiny_process(tmp_path / "two", *SMALL, f"schedule={schedule}", *two_epochs, "runtime.distribute=mirrored",
                             "runtime.devices=[CPU:0, CPU:1]")
    assert two.returncode == 0, two.stderr
    one, two = only_run(tmp_path / "one"), only_run(tmp_path / "two")
    meta = json.loads((two / "meta.json").read_text())
    assert meta["distribute"] == {"strategy": "mirrored", "replicas": 2, "global_batch_size": 16, "per_replica_batch_size": 8.0}
    single, mirrored = weights(one), weights(two)
    assert single.keys() == mirrored.keys() and len(single) == 20  # 8 convs + 2 dense, kernel and bias each
    for key in single:
        assert np.abs(mirrored[key] - single[key]).max() <= 1e-5, key
    records = [[json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()] for p in (one, two)]
    per_batch = {"standard": [1] * 8, "unfair_back": list(range(1, 9)), "unfair_front": list(range(8, 0, -1))}[schedule]
    assert [r["updates"] for r in records[0]] == [[3 * n for n in per_batch]] * 2  # 48 images / 16 = 3 steps an epoch
    assert_same_metrics(records[1], records[0])


def assert_same_metrics(records: list[dict], reference: list[dict], losses: float = 1e-5) -> None:
    """Each epoch's update counts and accuracies equal, and its losses within `losses` (relative, or absolute below 1)."""
    assert len(records) == len(reference)
    for record, expected in zip(records, reference):
        assert record["updates"] == expected["updates"] and record["eval_acc"] == expected["eval_acc"], (record, expected)
        assert record["train_acc"] == expected["train_acc"], (record, expected)
        for key in ("train_loss", "eval_loss"):
            assert abs(record[key] - expected[key]) <= losses * max(1.0, abs(expected[key])), (key, record, expected)


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


# ---- whole runs with batch norm: ResNet v2 on CIFAR-10 through the Trainer (tests/replica_runs.py) ----------------------
#
# Float32 training of a ReLU network with batch norm is only reproducible to the rounding of its sums over the
# batch, and the rounding grows: a pre-activation within rounding of 0 lands on either side of the ReLU's kink and
# flips its gradient, and with batch norm (every channel's gradient a small difference of sums over the batch) a
# handful of flips among millions of activations moves the gradient by about 1%. With Keras's BatchNormalization
# (float32 batch moments, by one formula on one device and another synchronized) the issue's 2-step ResNet v2 run
# (below) ends 2.4e-4 from one device on 2 replicas, and one device alone, given each batch's images in reverse
# order, 3.2e-4 from itself. dilbench's BatchNormalization (models/layers.py) takes the moments from float64 sums,
# bit-equal whatever the order or split, and the same runs end 1.2e-7 apart both ways (an ulp): the batch moments
# were what the kinks amplified in that run. The gradients' own float32 sums (a kernel's gradient summed over each
# replica's images, then across replicas) still differ by an ulp, which a later step's kinks can amplify in other
# runs: with softplus for ReLU (no kink; nothing else changes) whole runs of every schedule agree at the rounding
# level, which the schedule tests check; the issue's run is checked with ReLU, against 1e-5 as the issue asks.

RESNET = str(EXPERIMENTS / "resnet_v2_cifar" / "base.yaml")
SHARED_DATA = REPO.parent / "shared" / "data"
# ResNet v2 depth 11 (3 groups of one bottleneck unit, 10 BN layers), SGD with momentum and cosine decay, BN
# momentum 0.9 so the moving statistics follow the run's batches: 2 epochs of 3 batches of 16 CIFAR-10 images.
# SGD, not the base config's Adam: the biases on the residual stream (root, shortcut and conv3 biases) have a zero
# gradient up to rounding (every batch norm downstream cancels a constant shift), and Adam's m/sqrt(v) turns that
# rounding noise into steps of the full learning rate in either direction (5e-4 apart after 6 steps, on one
# device reordered alike). Adam's slots and per-group counts are checked on the quickstart above.
RESNET_RUN = ["precision=float32", "runtime.deterministic=true", "model.depth=11", "model.bn_momentum=0.9",
              "optimizer={name: sgd, lr: 0.05, momentum: 0.9}", "train.batch_size=16", "data.train_subset=48",
              "data.test_subset=200", "train.epochs=2"]
# The issue's run: the base config (depth 20), SGD 0.01 constant, batches of 20 of 40 images, 1 epoch = 2 steps.
ISSUE_RUN = ["precision=float32", "runtime.deterministic=true", "optimizer={name: sgd, lr: 0.01}", "train.lr_schedule=constant",
             "train.batch_size=20", "data.train_subset=40", "data.test_subset=1000", "train.epochs=1"]


def replica_runs(spec: dict) -> dict:
    data = os.environ.get("DILBENCH_DATA") or str(SHARED_DATA)
    if not (Path(data) / "cifar10").is_dir():
        pytest.skip(f"CIFAR-10 not found under {data} (set DILBENCH_DATA)")
    result = subprocess.run([sys.executable, str(TESTS / "replica_runs.py"), json.dumps(spec)], cwd=REPO, capture_output=True,
                            text=True, timeout=900, env=child_env({"DILBENCH_DATA": data}))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def resnet_runs() -> dict:
    """Each schedule trained on one device and on 2 replicas with softplus for ReLU; standard also with its batch
    norms unsynchronized. About 150 s (one process)."""
    return replica_runs({schedule: {"config": RESNET, "set": [*RESNET_RUN, f"schedule={schedule}"], "smooth": True,
                                    "runs": ["one", "mirrored", *(["unsynchronized"] if schedule == "standard" else [])]}
                         for schedule in ("standard", "unfair_back", "unfair_front")})


@pytest.mark.parametrize("schedule", ["standard", "unfair_back", "unfair_front"])
def test_whole_runs_with_batch_norm_agree_with_one_device(resnet_runs, schedule):
    """6 steps of every schedule: the replicas hold the same state (bit-equal copies of every variable), every
    trainable weight ends within 1e-5 of one device's, every BN moving statistic within 5e-5 x max(1, |value|), and
    each epoch's metrics are one device's (losses within 1e-5 relative, accuracies and update counts equal).
    Measured: weights at most 1.4e-6 apart (the run moved them by up to 0.14), moving statistics 7.6e-6 relative (a
    moving variance of 2.6, 2.0e-5 apart; one device reordered: 1.8e-5), losses 3e-6. The moving statistics'
    bound still catches a Bessel-corrected variance (1/(n-1) relative: 1e-3 on the 8x8 layers)."""
    runs = resnet_runs[schedule]
    one, mirrored = runs["one"], runs["mirrored"]
    assert one["replica_spread"] == 0 and mirrored["replica_spread"] == 0
    per_batch = {"standard": [1, 1, 1], "unfair_back": [1, 2, 3], "unfair_front": [3, 2, 1]}[schedule]
    assert [r["updates"] for r in one["records"]] == [[3 * n for n in per_batch]] * 2
    assert_same_metrics(mirrored["records"], one["records"])
    variables = mirrored["variables"]
    moving = [v for v in variables if "moving_" in v["name"]]
    assert len(variables) == 62 and len(moving) == 2 * 10 and all(v["change"] > 0.1 for v in moving)
    for v in variables:
        assert v["diff"] <= (5e-5 * max(1.0, v["value"]) if v in moving else 1e-5), v


def test_replicas_that_diverge_fail_the_run(resnet_runs):
    """Unsynchronized batch norm updates each replica's copy of the moving statistics with its own slice's: the
    Trainer's check of the replicas' state fails the run at the first epoch's end, naming the variable."""
    error = resnet_runs["standard"]["unsynchronized"]["error"]
    assert error.startswith("the replicas' copies of ") and "moving_" in error and "differ after epoch 1" in error


@pytest.fixture(scope="module")
def issue_runs() -> dict:
    """The issue's 2-step run with ReLU: one device, 2 replicas and one device with each batch reversed; and one
    device and 2 replicas with Keras's BatchNormalization instead of dilbench's. About 200 s (one process)."""
    return replica_runs({"relu": {"config": RESNET, "set": ISSUE_RUN, "runs": ["one", "mirrored", "reordered"]},
                         "keras_bn": {"config": RESNET, "set": ISSUE_RUN, "runs": ["one", "mirrored"], "keras_bn": True}})


def issue_gap(runs: dict, run: str) -> list[float]:
    """How far `run` ends from one device: the largest difference of any variable, then of the training and eval loss."""
    one, other = runs["one"]["records"][0], runs[run]["records"][0]
    return [max(v["diff"] for v in runs[run]["variables"]), *(abs(other[key] - one[key]) for key in ("train_loss", "eval_loss"))]


def test_issue_run_on_two_replicas_agrees_with_one_device_within_1e_5(issue_runs):
    """The issue's run (ResNet v2 depth 20, ReLU, SGD 0.01, 2 steps of 20 images): every variable of the 110 (weights
    and moving statistics) ends within 1e-5 of one device's, and so does one device given each batch reversed; the
    losses within 1e-5, accuracy and update counts equal, the replicas' copies equal. Measured: 1.2e-7 both ways
    (an ulp of a moving variance of 1.02; weights 6e-8), training losses 1.2e-7 apart, eval losses equal."""
    runs = issue_runs["relu"]
    assert runs["mirrored"]["replica_spread"] == 0
    assert runs["one"]["records"][0]["updates"] == [2, 2, 2]
    for run in ("mirrored", "reordered"):
        assert len(runs[run]["variables"]) == 110
        assert_same_metrics(runs[run]["records"], runs["one"]["records"])
        for v in runs[run]["variables"]:
            assert v["diff"] <= 1e-5, (run, v)


def test_issue_run_with_keras_batch_norm_misses_1e_5(issue_runs):
    """The control: the same run with Keras's BatchNormalization (float32 moments) ends far beyond 1e-5 on 2
    replicas (measured 2.4e-4 in the weights, eval losses 4.6e-3 apart), so the test above tests the layer."""
    gap = issue_gap(issue_runs["keras_bn"], "mirrored")
    assert gap[0] > 3e-5 and gap[2] > 1e-4, gap
    assert issue_runs["keras_bn"]["mirrored"]["replica_spread"] == 0


ALLCNN_RUN = ["precision=float32", "runtime.deterministic=true", "model.width=0.1", "model.batch_norm=true",
              "augmentation={mode: none, ops: []}", "schedule=unfair_back", "train.batch_size=16", "data.train_subset=48",
              "data.test_subset=200", "train.epochs=2"]


def test_whole_run_with_relu_batch_norm_and_dropout_agrees_with_one_device():
    """All-CNN-C at width 0.1 with batch norm, ReLU and dropout (0.2 on the input, 0.5 after the stride-2 layers),
    SGD with momentum and cosine decay, unfair_back, 2 epochs of 3 batches of 16: on 2 replicas every variable
    ends within 1e-6 of one device's and the metrics are one device's (losses within 1e-6): the replicas drop what
    one device drops (dilbench's Dropout) and normalise with its moments (its BatchNormalization). Measured:
    weights 1.2e-7, moving statistics 2.4e-7 apart, training losses 8e-8, eval losses equal; with Keras's
    BatchNormalization 2.9e-4 (the control). About 9 minutes on 2 loaded cores, 2 runs in one process."""
    runs = replica_runs({"allcnn": {"config": str(CONFIGS / "allcnn_c.yaml"), "set": ALLCNN_RUN, "runs": ["one", "mirrored"]}})["allcnn"]
    one, mirrored = runs["one"], runs["mirrored"]
    assert mirrored["replica_spread"] == 0
    assert [r["updates"] for r in one["records"]] == [[3 * n for n in range(1, 10)]] * 2  # 9 groups, unfair_back
    assert_same_metrics(mirrored["records"], one["records"], losses=1e-6)
    assert len(mirrored["variables"]) == 45 and all(v["change"] > 1e-3 for v in mirrored["variables"] if "moving_" not in v["name"])
    for v in mirrored["variables"]:
        assert v["diff"] <= 1e-6, v


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
