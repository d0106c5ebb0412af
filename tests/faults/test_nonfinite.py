"""Weights that turn NaN while the loss stays finite (the last step of an epoch; an optimizer slot):
the run fails naming the epoch, records no garbage epoch, saves nothing non-finite, plots nothing broken."""

from __future__ import annotations

import numpy as np
import pytest
from faultlib import RISING, STEPS, checkpoint_progress, one_line_error, partial_files, train
from toolkit import meta, metrics, the_run


@pytest.mark.parametrize("action, what", [("nan", "model/"), ("nanslot", "group8/")])
def test_non_finite_weights_fail_the_run_at_the_epoch_end(tmp_path, action, what):
    result = train(tmp_path, specs=(RISING, f"{action}@step=2.{STEPS}"))  # after the last step of epoch 2: its loss was finite
    assert result.returncode == 1
    run = the_run(tmp_path)
    line = one_line_error(result)
    assert line.startswith("Error: weights became non-finite during epoch 2 (") and what in line
    assert line.endswith(f"while the loss stayed finite; lower optimizer.lr; epochs 1-1 are kept in {run}")
    assert meta(run)["status"] == "failed" and meta(run)["error"] == line.removeprefix("Error: ")
    assert [r["epoch"] for r in metrics(run)] == [1]
    assert partial_files(run) == []
    import tensorflow as tf

    for which in ("latest", "best"):
        assert checkpoint_progress(run / "checkpoints" / which)["epoch"] == 1
        reader = tf.train.load_checkpoint(str(run / "checkpoints" / which))
        for key, dtype in reader.get_variable_to_dtype_map().items():
            if dtype.is_floating:
                assert np.all(np.isfinite(reader.get_tensor(key))), key
