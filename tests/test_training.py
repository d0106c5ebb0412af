"""End-to-end training on the bundled MNIST sample: the run-directory contract, resume, failures."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from toolkit import QUICKSTART, TINY, invoke, run_train, the_run

from dilbench.config import load_config
from dilbench.training import progress

STEPS_PER_EPOCH = math.ceil(300 / 64)  # 5, the last batch holds 44 images


def checkpoint_values(path: Path) -> dict[str, np.ndarray]:
    """Model weights and optimizer state of a run's latest checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path / "checkpoints" / "latest"))
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith(("weights/", "optimizers/"))]
    return {k: reader.get_tensor(k) for k in keys}


PLANTED = {"GITHUB_TOKEN": "ghp-planted-s3cr3t", "TF_API_KEY": "tf-planted-s3cr3t", "OMP_PASSWORD": "omp-planted-s3cr3t",
           "TF_NUM_INTEROP_THREADS": "2"}


@pytest.fixture(scope="module")
def completed(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    saved = {name: os.environ.get(name) for name in PLANTED}
    os.environ.update(PLANTED)  # secrets in the environment of a real run: none may reach its files
    proof = runs.parent / f"{runs.name}-hook.txt"  # the --on-end hook: its environment, and a tag it adds to the ended run
    hook = f'env | grep ^DILBENCH_RUN_ | sort > {proof}; {sys.executable} -m dilbench tag "$DILBENCH_RUN_DIR" +hooked -q'
    try:
        result = run_train(runs, options=("--on-end", hook))
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.update({name: value})
    assert result.exit_code == 0, result.output
    return the_run(runs)


def test_run_directory_contract(completed):
    names = {p.name for p in completed.iterdir()}
    patch = json.loads((completed / "meta.json").read_text())["provenance"]["source"].get("patch")  # from a dirty checkout
    assert names == {"config.yaml", "meta.json", "metrics.jsonl", "events", "plots", "checkpoints", "log.txt", ".lock",
                     "tags.json", ".annotations.lock", *([patch] if patch else [])}  # tags: from the --on-end hook
    assert completed.name.startswith("tiny-") and len(completed.name.split("-")[-1]) == 4
    for plot in ("curves.png", "weights_before.png", "weights_after.png"):
        assert (completed / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in (completed / "checkpoints").iterdir()} == {"latest", "best"}
    assert "completed in" in (completed / "log.txt").read_text()


def test_meta(completed):
    meta = json.loads((completed / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["error"] is None
    assert meta["seed"] == 7 and meta["epochs_done"] == 2
    assert set(meta["versions"]) >= {"dilbench", "tensorflow", "numpy"}
    assert meta["devices"] and meta["host"]
    # the command line as Click parsed it, also in process (pytest's own argv is not the command's)
    assert meta["command"][:5] == ["dilbench", "train", str(QUICKSTART), "--runs-dir", meta["command"][4]]
    assert meta["command"][5:8] == ["--name", "tiny", "--on-end"] and meta["command"][8].startswith("env | grep ^DILBENCH_RUN_ ")
    assert meta["command"][9] == "--set" and meta["command"][-1] == TINY[-1]
    assert "commit" in meta["git"] and isinstance(meta["git"]["dirty"], bool)


def test_meta_records_provenance_and_no_secret(completed):
    from importlib import metadata

    meta = json.loads((completed / "meta.json").read_text())
    found = meta["provenance"]
    source = found["source"]
    assert source["commit"] == meta["git"]["commit"] and source["dirty"] == meta["git"]["dirty"]
    assert found["packages"]["tensorflow"] == metadata.version("tensorflow") == found["tensorflow"]["version"]
    assert found["machine"]["cpu"] and found["machine"]["cpu_count"] >= 1 and found["gpus"] == []
    assert found["env"]["TF_NUM_INTEROP_THREADS"] == "2" and found["capture_seconds"] < 10
    assert found["data"]["dataset"] == "mnist_bundled" and len(found["data"]["sha256"]) == 64
    text = "".join(p.read_text(errors="replace") for p in completed.rglob("*")
                   if p.is_file() and p.suffix in (".json", ".txt", ".jsonl", ".yaml"))
    assert "s3cr3t" not in text


def test_the_on_end_hook_ran_with_the_run_in_its_environment_once_the_run_was_released(completed):
    proof = completed.parent.parent / f"{completed.parent.name}-hook.txt"
    assert proof.read_text().splitlines() == [f"DILBENCH_RUN_DIR={completed.resolve()}", "DILBENCH_RUN_NAME=tiny",
                                              "DILBENCH_RUN_STATUS=completed"]
    assert json.loads((completed / "tags.json").read_text())["tags"] == ["hooked"]  # it could annotate the run
    assert json.loads((completed / "meta.json").read_text())["status"] == "completed"


def test_metrics_records_exact_update_counts(completed):
    records = [json.loads(line) for line in (completed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert set(record) == {"epoch", "train_loss", "train_acc", "eval_loss", "eval_acc", "eval_split",
                               "seconds", "train_seconds", "eval_seconds", "images_per_s", "updates", "updates_total", "train_flops",
                               "peak_rss_bytes", "cpu_seconds", "cpu_util"}  # no GPU here: no gpu_peak_bytes
        assert 100 * 2**20 < record["peak_rss_bytes"] < 64 * 2**30 and record["cpu_seconds"] > 0 and 0 < record["cpu_util"] <= 1.5
        assert record["seconds"] == record["train_seconds"] + record["eval_seconds"]
        assert record["train_seconds"] > 0 and record["eval_seconds"] > 0
        assert record["images_per_s"] == 300 / record["train_seconds"]  # throughput of the batches alone
        assert record["updates"] == [STEPS_PER_EPOCH] * 8  # 7 dilated layers + the final 1x1
        assert 0 <= record["eval_acc"] <= 1 and record["eval_acc"] * 100 == round(record["eval_acc"] * 100)
    assert records[1]["updates_total"] == [2 * STEPS_PER_EPOCH] * 8


def test_pipeline_runs_without_tfdata_autotuning():
    """Autotuning's thread made every iterator teardown wait up to seconds (batches.py): keep it off."""
    from dilbench.training.batches import epoch_batches, epoch_order

    x, y = np.zeros((10, 4, 4, 1), np.uint8), np.zeros(10, np.int64)
    assert epoch_batches(x, y, epoch_order(0, 0, 10), 4).options().autotune.enabled is False


def test_saved_config_reproduces_the_run(completed, tmp_path):
    config = load_config(completed / "config.yaml")
    assert config.name == "tiny" and config.model.channels == 4 and config.runtime.deterministic
    rerun = invoke("train", completed / "config.yaml", "--runs-dir", tmp_path)
    assert rerun.exit_code == 0, rerun.output
    again = the_run(tmp_path)
    first = checkpoint_values(completed)
    second = checkpoint_values(again)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_interrupt_then_resume_is_bit_equal(completed, tmp_path, monkeypatch):
    """SIGINT in the middle of epoch 2: checkpoint, status `interrupted`; --resume ends where a straight run does."""
    original = progress.Progress.update
    calls = []

    def update_then_interrupt(self, **stats):
        original(self, **stats)
        calls.append(self.description)
        if len(calls) == STEPS_PER_EPOCH + 2:  # epoch 2, step 2
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(progress.Progress, "update", update_then_interrupt)
    result = run_train(tmp_path)
    assert result.exit_code == 130
    assert "interrupted at epoch 2, step 2; checkpoint saved" in result.output
    path = the_run(tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    assert len((path / "metrics.jsonl").read_text().splitlines()) == 1  # epoch 1 kept

    monkeypatch.setattr(progress.Progress, "update", original)
    resumed = invoke("train", "--resume", path)
    assert resumed.exit_code == 0, resumed.output
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumes"]) == 1
    resumed = meta["resumes"][0]["provenance"]  # each segment records what it ran on
    assert resumed["data"] == meta["provenance"]["data"] and resumed["tensorflow"] == meta["provenance"]["tensorflow"]
    assert resumed["source"]["commit"] == meta["provenance"]["source"]["commit"] and resumed["packages"]
    if resumed["source"].get("patch"):  # the same dirty tree: named, not copied again
        assert resumed["source"]["patch"] == "source.patch" and not list(path.glob("source-resume*.patch"))

    straight, resumed_values = checkpoint_values(completed), checkpoint_values(path)
    assert straight.keys() == resumed_values.keys()
    assert all(np.array_equal(straight[k], resumed_values[k]) for k in straight)
    metrics = lambda p: [{k: r[k] for k in ("train_loss", "train_acc", "eval_loss", "eval_acc", "updates", "train_flops")}
                         for r in map(json.loads, (p / "metrics.jsonl").read_text().splitlines())]
    assert metrics(path) == metrics(completed)


def test_resume_of_completed_run_is_refused(completed):
    result = invoke("train", "--resume", completed, catch_exceptions=True)
    assert result.exit_code == 1 and "already completed all 2 epochs" in result.output


def test_nan_loss_fails_the_run_and_keeps_finished_epochs(tmp_path, monkeypatch):
    """A loss that turns NaN in epoch 2 marks the run failed, names epoch and step, keeps epoch 1."""
    import tensorflow as tf

    from dilbench.schedules import engine

    calls = tf.Variable(0)
    real = engine.cross_entropy

    def poisoned(labels, logits):
        calls.assign_add(1)
        nan = tf.constant(float("nan"))
        return tf.where(calls > STEPS_PER_EPOCH + 1, nan, real(labels, logits))

    monkeypatch.setattr(engine, "cross_entropy", poisoned)
    result = run_train(tmp_path)
    assert result.exit_code == 1
    assert "loss became nan at epoch 2, step 2; lower optimizer.lr; epochs 1-1 are kept" in result.output
    path = the_run(tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "failed" and "epoch 2, step 2" in meta["error"]
    assert [json.loads(line)["epoch"] for line in (path / "metrics.jsonl").read_text().splitlines()] == [1]
    assert (path / "checkpoints" / "latest" / "checkpoint").exists()


def test_a_listener_prunes_the_run_after_an_epoch(tmp_path):
    """A search's pruner (sweep/trial.py) stops a run from a listener: it ends `pruned` with that epoch's record,
    checkpoints and totals, compare and show say so, and it is finished: a resume is refused, a sweep skips it."""
    from dilbench.config.loader import Override
    from dilbench.launch import RunPruned, start_run
    from dilbench.training.listeners import TrainingListener

    class PruneAfterFirst(TrainingListener):
        def epoch_ended(self, trainer, records):
            raise RunPruned(f"pruned after epoch {len(records)}")

    config = load_config(QUICKSTART, [Override.parse(item) for item in TINY])
    with pytest.raises(RunPruned):
        start_run(config, tmp_path, ["test"], listeners=[PruneAfterFirst()], meta={"search": {"trial": 3, "role": "tune"}})
    run = the_run(tmp_path, "quickstart")
    meta = json.loads((run / "meta.json").read_text())
    assert (meta["status"], meta["pruned"], meta["epochs_done"], meta["search"]) == (
        "pruned", "pruned after epoch 1", 1, {"trial": 3, "role": "tune"})
    assert meta["final_eval_acc"] == meta["best_eval_acc"] and meta["train_flops"] > 0 and meta["error"] is None
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1 and (run / "checkpoints" / "latest").is_dir()
    listed = invoke("compare", run, "--columns", "run,status,epochs", "--format", "json")
    assert json.loads(listed.output)[0]["status"] == "pruned"
    assert "status  pruned (1/2 epochs)" in invoke("show", run).output
    refused = invoke("train", "--resume", run)
    assert refused.exit_code == 1 and "was pruned by its search after 1 epoch(s): a finished trial, not resumed" in refused.output


def test_never_overwrites_a_run(tmp_path):
    from dilbench.runs.rundir import RunDir

    paths = {RunDir.create(tmp_path, "same").path for _ in range(20)}
    assert len(paths) == 20


def test_saved_config_is_yaml_of_the_resolved_config(completed):
    saved = yaml.safe_load((completed / "config.yaml").read_text())
    assert saved["data"]["train_subset"] == 300 and saved["schedule"] == {"name": "standard", "substeps": None, "freezeout": None}


def model_flops() -> list[int]:
    """Forward FLOPs per example of each group of the TINY model (8 groups), from the model summary."""
    from dilbench.models.summary import group_flops

    return group_flops(load_config(QUICKSTART, TINY).model, (28, 28, 1))


def test_training_flops_and_totals(completed):
    """standard: forward F + weight gradients F + input gradients of groups 2..8, per image."""
    flops = model_flops()
    per_image = 2 * sum(flops) + sum(flops[1:])
    records = [json.loads(line) for line in (completed / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_flops"] for r in records] == [300 * per_image, 600 * per_image]
    meta = json.loads((completed / "meta.json").read_text())
    assert meta["train_flops"] == 600 * per_image
    assert meta["train_seconds"] == sum(r["train_seconds"] for r in records) > 0


def test_a_yaml_schedule_trains_with_exact_updates_and_flops(tmp_path):
    config = tmp_path / "custom.yaml"
    config.write_text(yaml.safe_dump(yaml.safe_load(QUICKSTART.read_text())
                                     | {"schedule": {"substeps": [[-1], [-2, -1], "all"]}}))
    result = run_train(tmp_path, name="custom", config=config)
    assert result.exit_code == 0, result.output
    path = the_run(tmp_path, "custom")
    assert load_config(path / "config.yaml").schedule.name == "custom"
    records = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["updates"] == [STEPS_PER_EPOCH] * 6 + [2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH]
    f = model_flops()
    # first pass; sub-step 1 from it (weight gradient of group 8); sub-step 2 from group 7's cached input
    # (forward 7-8, weight gradients 7-8, input gradient 8); sub-step 3 `all` from the images (all cached)
    per_image = sum(f) + f[7] + (f[6] + f[7]) * 2 + f[7] + 2 * sum(f) + sum(f[1:])
    assert [r["train_flops"] for r in records] == [300 * per_image, 600 * per_image]


def test_freezeout_freezes_groups_at_their_points(tmp_path):
    """t0 0.5, linear: group i freezes at t_i = 0.5 + 0.5 (i-1)/7, group 8 never. 2 epochs of 5 batches:
    batch b (0-based over the run) is at t = b/10, so group i is updated on the batches with b/10 < t_i."""
    result = run_train(tmp_path, "schedule.freezeout={t0: 0.5, spacing: linear}", "train.lr_schedule=constant", name="fo")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (the_run(tmp_path, "fo") / "metrics.jsonl").read_text().splitlines()]
    points = [0.5 + 0.5 * i / 7 for i in range(7)] + [1.0]
    assert records[1]["updates_total"] == [sum(1 for b in range(10) if b / 10 < t) for t in points] == [5, 6, 7, 8, 8, 9, 10, 10]
    f = model_flops()
    images = [64, 64, 64, 64, 44] * 2
    frozen = [sum(1 for t in points if b / 10 >= t) for b in range(10)]
    cost = [sum(f) + sum(f[k:]) + sum(f[k + 1:]) for k in frozen]  # forward, weight grads k.., input grads k+1..
    assert records[1]["train_flops"] == sum(c * n for c, n in zip(cost, images))


def test_replica_check_names_a_variable_whose_copies_differ():
    import tensorflow as tf

    from dilbench.training.distributed import ReplicaCheck

    class Copies:  # what ReplicaCheck reads of a distributed variable: its per-replica copies
        def __init__(self, *values):
            self.values = tuple(tf.Variable(v) for v in values)

    same, differ = Copies([1.0, 2.0], [1.0, 2.0]), Copies([1.0, 2.0], [1.0, 2.5])
    assert ReplicaCheck([("plain", tf.Variable(1.0))])._agree is None  # one replica: nothing to compare
    assert ReplicaCheck([("plain", tf.Variable(1.0)), ("same", same)]).differing() is None
    check = ReplicaCheck([("same", same), ("differ", differ)])
    assert check.differing() == "differ"
    differ.values[1].assign([1.0, 2.0])
    assert check.differing() is None
