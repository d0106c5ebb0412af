"""A real (tiny) training run read back by the tools people use: TensorBoard's own event reader,
`dilbench show` and `dilbench compare`, all agreeing with metrics.jsonl and meta.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dilbench.cli import cli

TINY = [
    "data.dataset=mnist_bundled", "data.train_subset=300", "data.test_subset=100", "model.channels=4",
    "model.hidden=[16]", "train.batch_size=64", "train.epochs=2", "precision=float32", "seed=7",
]
GROUPS = 8  # 7 dilated layers + the final 1x1
STEPS = 5  # ceil(300 / 64)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    args = ["train", "dilbench/configs/quickstart.yaml", "--runs-dir", str(runs), "--name", "tiny"]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (path,) = runs.glob("tiny-*")
    return path


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_events_open_in_tensorboard(run):
    """TensorBoard's own reader (the one behind its dashboards) finds scalars and histograms by plugin."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(run / "events"), size_guidance={"tensors": 0})
    events.Reload()
    updates = {f"updates/group{g}" for g in range(1, GROUPS + 1)}
    assert set(events.PluginTagToContent("scalars")) >= {"train/loss", "train/acc", "test/loss", "test/acc"} | updates
    assert set(events.PluginTagToContent("histograms")) == {f"weights/group{g}" for g in range(1, GROUPS + 1)}

    records = metrics(run)
    for tag, key in (("test/acc", "test_acc"), ("train/loss", "train_loss"), ("updates/group3", None)):
        points = events.Tensors(tag)
        assert [p.step for p in points] == [1, 2]
        expected = [r[key] for r in records] if key else [STEPS, STEPS]
        assert [float(tensor_util.make_ndarray(p.tensor_proto)) for p in points] == pytest.approx(expected, rel=1e-6)
    histogram = tensor_util.make_ndarray(events.Tensors("weights/group1")[-1].tensor_proto)
    assert histogram.ndim == 2 and histogram.shape[1] == 3 and np.sum(histogram[:, 2]) > 0  # buckets: left, right, count


def test_show_of_a_real_run(run):
    result = CliRunner().invoke(cli, ["show", str(run)], catch_exceptions=False)
    assert result.exit_code == 0
    text = result.stdout
    last = metrics(run)[-1]
    assert "status  completed (2/2 epochs)\n" in text
    assert f"  final              2    {last['test_acc']:.4f}    " in text
    assert f"updates per group (epoch 2 / total)\n  group1-{GROUPS}  {STEPS} / {2 * STEPS}\n" in text
    for plot in ("curves.png", "weights_after.png", "weights_before.png"):
        assert f"  plots        {run / 'plots' / plot}\n" in text
    (event_file,) = (run / "events").iterdir()
    assert f"  events       {event_file}\n" in text and f"tensorboard --logdir {run / 'events'}\n" in text


def test_compare_agrees_with_meta(run):
    result = CliRunner().invoke(cli, ["compare", str(run.parent), "--format", "json"], catch_exceptions=False)
    (record,) = json.loads(result.stdout)
    meta = json.loads((run / "meta.json").read_text())
    assert record["status"] == meta["status"] == "completed"
    assert record["epochs"] == meta["epochs_done"] == 2
    assert record["final_test_acc"] == meta["final_test_acc"] and record["best_test_acc"] == meta["best_test_acc"]
    assert record["model"] == "context_module" and record["schedule"] == "standard" and record["seed"] == 7
