"""Child process of tests/test_distribute.py: whole short runs through the Trainer, one device against 2 replicas.

    python tests/replica_runs.py SPEC    # SPEC: JSON {case: {"config", "set", "runs", "smooth", "keras_bn"}}; prints one JSON object

Splits the CPU into 2 logical devices (possible only before TensorFlow touches a device, hence a process
of its own), then for each case loads its data and trains its config from scratch once per entry of
`runs`, each a Trainer of its own built as `dilbench train` builds it (no listeners: nothing is written;
the weights are bit-equal to those of `dilbench train` processes):

- `one`: the default strategy, one device;
- `mirrored`: MirroredStrategy over CPU:0 and CPU:1, each replica fed its slices of the global batches;
- `reordered`: one device again, with the images of every batch in reverse order: the arithmetic of
  `one` (batch means, batch-norm statistics and gradients are sums over the batch) summed in another
  order, so how far `one` moves when only its rounding changes: the yardstick for `mirrored`;
- `unsynchronized`: `mirrored` with every batch norm unsynchronized (each replica normalises its own
  slice and updates the moving statistics with its slice's): what the test must catch.

With `smooth`, every ReLU layer computes softplus instead (test_distribute.py says why). With `keras_bn`, the
models are built with Keras's own BatchNormalization instead of dilbench's (float32 batch moments, by one
formula on one device and another synchronized: test_distribute.py says what that does), the control that
shows what dilbench's changes. Reports per case and run: the per-epoch metrics, or the error that stopped the
run; for every run but `one`, per model variable (weights and batch-norm moving statistics), the largest
difference from `one`'s final value, the largest value and the largest change training made; and the largest
difference between the per-replica copies of any variable (weights, moving statistics, optimizer slots and
counters).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf

METRICS = ("train_loss", "train_acc", "eval_loss", "eval_acc", "updates")


def main(spec: dict) -> dict:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from dilbench.config import load_config
    from dilbench.data import load_data
    from dilbench.models import layers
    from dilbench.training.finite import state_variables
    from dilbench.training.trainer import RunFailed, Trainer

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    relu, ours = keras.layers.ReLU.call, layers.BatchNormalization
    report: dict = {}
    for case, job in spec.items():
        config = load_config(job["config"], job["set"])
        data = load_data(config.data, config.seed)
        # the step and evaluation are traced during training, so the patch holds from here to the case's end
        keras.layers.ReLU.call = (lambda self, inputs: tf.nn.softplus(inputs)) if job.get("smooth") else relu
        # batch_norm() looks the class up when a model is built, which each Trainer does
        layers.BatchNormalization = keras.layers.BatchNormalization if job.get("keras_bn") else ours  # type: ignore[misc]
        reference: list[np.ndarray] = []
        report[case] = {}
        for run in job["runs"]:
            trainer = Trainer(config, data, None if run in ("one", "reordered") else mirrored)
            if run == "reordered":
                batches = trainer._epoch_batches
                trainer._epoch_batches = lambda *args, batches=batches: (
                    (tf.reverse(x, [0]), tf.reverse(y, [0])) for x, y in batches(*args))
            if run == "unsynchronized":
                for layer in trainer.model._flatten_layers():
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.synchronized = False
            variables = trainer.model.variables
            start = [v.numpy() for v in variables]
            try:
                records = trainer.train()
            except RunFailed as err:
                report[case][run] = {"error": str(err)}
                continue
            final = [v.numpy() for v in variables]
            result = {"records": [{k: r[k] for k in METRICS} for r in records],
                      "replica_spread": replica_spread(state_variables(trainer.model, trainer.optimizers))}
            if run == "one":
                reference = final
            else:
                result["variables"] = [
                    {"name": v.path, "diff": float(np.abs(a - b).max()), "value": float(np.abs(b).max()),
                     "change": float(np.abs(b - s).max())}
                    for v, a, b, s in zip(variables, final, reference, start)
                ]
            report[case][run] = result
    keras.layers.ReLU.call, layers.BatchNormalization = relu, ours  # type: ignore[misc]
    return report


def replica_spread(named: list) -> float:
    """The largest difference between the per-replica copies of any of the variables (0 on one device)."""
    spread = 0.0
    for _, variable in named:
        copies = [np.asarray(c.numpy(), np.float64) for c in getattr(variable, "values", (variable,))]
        spread = max(spread, *(float(np.abs(c - copies[0]).max()) for c in copies))
    return spread


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
