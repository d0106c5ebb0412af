"""Child process of tests/test_distribute.py: ResNet v2 with batch norm, one device against 2 replicas.

    python tests/replica_check.py SCHEDULE    # prints one JSON object

Splits the CPU into 2 logical devices (possible only before TensorFlow touches a device, hence a process
of its own) and builds the training step of the same config twice, the way the Trainer does: on the
default strategy (one device) and on MirroredStrategy over both devices. For each of BATCHES random
batches (CIFAR-shaped images), both start from the one-device model's variables, train on the batch
(the mirrored step on the per-replica slices `distribute_batches` makes) and report the loss of the
batch's first forward pass, and per model variable: the largest difference between the two results,
the largest value and the largest change the batch made. Starting every batch from the same weights
checks what one batch does; left to run on, rounding differences of any reordered sum grow through the
updates (measured: 10-50x over 3 batches), one device's own as much as the replicas': a pre-activation
within rounding of 0 flips its ReLU's gradient, and with batch norm a few flips move a batch's gradient
by about 1%. tests/replica_runs.py checks whole runs (with softplus for ReLU, and against one device with
each batch reversed).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf
from toolkit import QUICKSTART

BATCHES, BATCH_SIZE, SHAPE = 3, 16, (32, 32, 3)
CONFIG = [
    "model={name: resnet_v2, variant: cifar, depth: 11, bn_momentum: 0.5}", "optimizer={name: sgd, lr: 0.01}",
    "precision=float32", "train.lr_schedule=constant", "seed=3",
]


def main(schedule: str) -> dict:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dilbench.config import load_config
    from dilbench.models import build_model
    from dilbench.models.allcnn import AllCnnCConfig
    from dilbench.training.distributed import distribute_batches
    from dilbench.training.step import TrainingStep

    config = load_config(QUICKSTART, [*CONFIG, f"schedule={schedule}"])
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one = TrainingStep.build(config, SHAPE, 10)
    two = TrainingStep.build(config, SHAPE, 10, mirrored)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(BATCHES):
        x = rng.integers(0, 256, (BATCH_SIZE, *SHAPE), dtype=np.uint8)
        y = rng.integers(0, 10, BATCH_SIZE).astype(np.int64)
        for mine, reference in zip(two.model.variables, one.model.variables):
            mine.assign(reference)
        start = [v.numpy() for v in one.model.variables]
        loss_one = float(one.train(tf.constant(x), tf.constant(y))[0])
        (slices,) = distribute_batches(mirrored, tf.data.Dataset.from_tensors((x, y)))
        loss_two = float(two.train(*slices)[0])
        batches.append({
            "loss": [loss_one, loss_two],
            "variables": [
                {"name": a.path, "diff": float(np.abs(a.numpy() - b.numpy()).max()), "value": float(np.abs(a.numpy()).max()),
                 "change": float(np.abs(a.numpy() - s).max())}
                for a, b, s in zip(one.model.variables, two.model.variables, start)
            ],
        })
    with mirrored.scope():
        allcnn = build_model(AllCnnCConfig(width=0.1, batch_norm=True), SHAPE, 10, "float32", 0)
    return {
        "replicas": mirrored.num_replicas_in_sync,
        "synchronized": [layer.synchronized for layer in _batch_norms(two.model)],
        "synchronized_one_device": [layer.synchronized for layer in _batch_norms(one.model)],
        "synchronized_allcnn": [layer.synchronized for layer in _batch_norms(allcnn)],
        "updates": [[int(o.updates.numpy()) for o in step.optimizers] for step in (one, two)],
        "batches": batches,
    }


def _batch_norms(model) -> list:
    import keras

    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
