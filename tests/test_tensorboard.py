"""`dilbench tensorboard` on a sweep of two real (tiny) runs, read back over TensorBoard's HTTP API: train
and eval as sibling runs with the same tags and metrics.jsonl's values, histograms named by layer group,
and the HParams dashboard's experiment and session groups comparing the two runs."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from toolkit import REPO, child_env, invoke, metrics, train_tiny

LRS = {"lr_low": 1e-4, "lr_high": 3e-3}
DEADLINE = 120  # seconds for TensorBoard to start and load both runs


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("sweep")
    for seed, (name, lr) in enumerate(LRS.items()):
        train_tiny(runs, "train.lr_schedule=constant", "runtime.deterministic=false", f"optimizer.lr={lr}", f"seed={seed}",
                   name=name)
    return runs


class Board:
    """A `dilbench tensorboard` process and its URL."""

    def __init__(self, runs: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dilbench", "tensorboard", str(runs), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=REPO,
        )
        self.deadline = time.monotonic() + DEADLINE
        ready, _, _ = select.select([self.process.stdout], [], [], DEADLINE)
        assert ready, "no URL printed in time"
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def get(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def wait_until(self, ready) -> None:
        """Poll until `ready()` holds; between polls, wait on the process (which also notices it dying)."""
        while not ready():
            assert time.monotonic() < self.deadline, "TensorBoard did not load the runs in time"
            try:
                code = self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"dilbench tensorboard exited with {code}: {self.process.stderr.read()}")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return code, self.process.stderr.read()


def test_tensorboard_serves_a_sweep(sweep):
    runs = {path.name.split("-")[0]: path for path in sweep.iterdir()}
    assert set(runs) == set(LRS)
    board = Board(sweep)
    try:
        expected = {f"{path.name}/events/{kind}" for path in runs.values() for kind in ("train", "eval")}

        def loaded() -> bool:
            """Everything asserted below is there: both epochs of every scalar and histogram, both sessions."""
            tags, histograms = board.get("/data/plugin/scalars/tags"), board.get("/data/plugin/histograms/tags")
            if not expected <= set(tags) or not all("epoch_accuracy" in tags[run] for run in expected):
                return False
            last_steps = [board.get(f"/data/plugin/scalars/scalars?run={run}&tag={tag}")[-1][1]
                          for run in expected for tag in tags[run]]
            last_steps += [board.get(f"/data/plugin/histograms/histograms?run={run}&tag={tag}")[-1][1]
                           for run, run_tags in histograms.items() for tag in run_tags]
            groups = board.get("/data/plugin/hparams/session_groups", {"experimentName": "", "sliceSize": 100,
                                                                        "allowedStatuses": ["STATUS_UNKNOWN"]})
            return len(histograms) == 2 and set(last_steps) == {2} and len(groups.get("sessionGroups", [])) == 2

        board.wait_until(loaded)
        tags = board.get("/data/plugin/scalars/tags")
        for path in runs.values():
            records = metrics(path)
            train, evaluation = f"{path.name}/events/train", f"{path.name}/events/eval"
            assert set(tags[evaluation]) == {"epoch_loss", "epoch_accuracy"}  # the same tags: one chart each
            assert {"epoch_loss", "epoch_accuracy", "images_per_s", "updates/layer1_d1"} <= set(tags[train])
            for run, tag, key in ((evaluation, "epoch_accuracy", "eval_acc"), (evaluation, "epoch_loss", "eval_loss"),
                                  (train, "epoch_accuracy", "train_acc"), (train, "epoch_loss", "train_loss")):
                points = board.get(f"/data/plugin/scalars/scalars?run={run}&tag={tag}")
                assert [step for _, step, _ in points] == [1, 2]
                assert [value for _, _, value in points] == pytest.approx([r[key] for r in records], rel=1e-6)

            histograms = board.get("/data/plugin/histograms/tags")[train]
            assert set(histograms) == {f"weights/{g}" for g in ("layer1_d1", "layer2_d1", "layer3_d2", "layer4_d4", "layer5_d8",
                                                                 "layer6_d16", "layer7_d1", "layer8_1x1", "head")}
            series = board.get(f"/data/plugin/histograms/histograms?run={train}&tag=weights/layer1_d1")
            assert [step for _, step, _ in series] == [1, 2]
            assert sum(count for _, _, count in series[-1][2]) == pytest.approx(3 * 3 * 1 * 4 + 4)  # kernel + bias

        experiment = board.get("/data/plugin/hparams/experiment", {"experimentName": ""})
        infos = {info["name"]: info for info in experiment["hparamInfos"]}
        assert infos["optimizer.lr"]["differs"] and infos["seed"]["differs"] and not infos.get("model.channels", {}).get("differs")
        assert infos["optimizer.lr"]["domainInterval"] == {"minValue": LRS["lr_low"], "maxValue": LRS["lr_high"]}
        assert {info["name"] for info in experiment["hparamInfos"][:3]} == {"name", "optimizer.lr", "seed"}  # differing first
        metric_names = [(m["name"]["group"], m["name"]["tag"]) for m in experiment["metricInfos"]]
        assert metric_names[:4] == [("eval", "epoch_accuracy"), ("train", "epoch_accuracy"), ("eval", "epoch_loss"),
                                    ("train", "epoch_loss")]  # the five columns the dashboard shows first

        groups = board.get("/data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 100,
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [{"hparam": "optimizer.lr", "order": "ORDER_ASC"}, {"metric": {"group": "eval", "tag": "epoch_accuracy"}}],
        })["sessionGroups"]
        assert [g["hparams"]["optimizer.lr"] for g in groups] == [LRS["lr_low"], LRS["lr_high"]]
        for group, name in zip(groups, ("lr_low", "lr_high")):
            assert group["name"] == runs[name].name
            (session,) = group["sessions"]
            assert session["name"] == f"{runs[name].name}/events"
            values = {(m["name"]["group"], m["name"]["tag"]): m for m in group["metricValues"]}
            final = metrics(runs[name])[-1]
            assert values[("eval", "epoch_accuracy")]["value"] == pytest.approx(final["eval_acc"], rel=1e-6)
            assert values[("eval", "epoch_accuracy")]["trainingStep"] == 2
            assert values[("train", "epoch_loss")]["value"] == pytest.approx(final["train_loss"], rel=1e-6)
    finally:
        code, stderr = board.stop()
    assert code == 0 and "TensorBoard stopped" in stderr


def test_tensorboard_refuses_a_missing_directory(tmp_path):
    result = invoke("tensorboard", tmp_path / "nope", catch_exceptions=True)
    assert result.exit_code == 2
    assert result.output == f"Error: {tmp_path / 'nope'}: no such directory; pass run directories or directories of runs (e.g. runs/)\n"


def test_several_directories_get_unique_short_names(tmp_path):
    from dilbench.report.tensorboard_server import logdir_flags

    first, second, other = tmp_path / "a" / "runs" / "quick", tmp_path / "b" / "runs" / "quick", tmp_path / "c" / "full"
    for path in (first, second, other):
        path.mkdir(parents=True)
    assert logdir_flags([first, first]) == ["--logdir", str(first)]
    assert logdir_flags([first, second, other]) == [
        "--logdir_spec", f"a/runs/quick:{first},b/runs/quick:{second},full:{other}"]


# ---- weight histograms --------------------------------------------------------------------------------
def test_weight_histogram_buckets_are_tensorboards():
    """`histogram_buckets` counts by bincount what `tf.summary.histogram` counts by a one-hot matrix (0.2-0.5 s
    an epoch for quickstart's 803,000 head weights): the same [30, 3] rows, edges and counts, bit for bit."""
    import numpy as np
    from tensorboard.plugins.histogram.summary_v2 import _buckets

    from dilbench.runs.events import histogram_buckets

    rng = np.random.default_rng(0)
    for values in (rng.normal(0, 0.02, 803_530).astype(np.float32), rng.uniform(-1, 1, 1000), np.float32([3, -1]),
                   np.full(7, 1.5, np.float32), np.zeros(0, np.float32), rng.normal(size=(3, 3, 4, 5)).astype(np.float32)):
        assert np.array_equal(histogram_buckets(values), _buckets(values).numpy())

    buckets = histogram_buckets(np.arange(31, dtype=np.float32))  # 0..30: buckets of width 1, 30 in the last
    assert buckets.shape == (30, 3) and buckets.dtype == np.float64
    assert buckets[:, 2].tolist() == [1.0] * 29 + [2.0]
    assert buckets[:, 0].tolist() == list(range(30)) and buckets[:, 1].tolist() == list(range(1, 31))
    single = histogram_buckets(np.full(7, 1.5, np.float32))
    assert single[:, 2].tolist() == [0.0] * 29 + [7.0] and set(single[:, :2].ravel()) == {1.5}
