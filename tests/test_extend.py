"""Extending a run: `dilbench train --resume RUN --set train.epochs=N` ends bit-equal to training N epochs
directly, records the extension, and refuses every change that would rewrite the run's past."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from toolkit import QUICKSTART, TINY, invoke, sets, train_tiny

from dilbench.config import dump_config, load_config, loader
from dilbench.training.resources import RESOURCE_KEYS

SMALL = ["data.train_subset=128", "data.test_subset=50", "seed=3", "train.lr_schedule=constant"]  # on top of TINY


def resume(run: Path, *overrides: str):
    return invoke("train", "--resume", run, *sets(*overrides), catch_exceptions=True)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_extending_a_run_equals_training_it_that_long(tmp_path):
    direct = train_tiny(tmp_path / "direct", *SMALL, "train.epochs=2")
    extended = train_tiny(tmp_path / "extended", *SMALL, "train.epochs=1")
    first_digest = read(extended / "meta.json")["weights_sha256"]

    result = resume(extended, "train.epochs=2")
    assert result.exit_code == 0, result.output
    meta, direct_meta = read(extended / "meta.json"), read(direct / "meta.json")
    assert meta["weights_sha256"] == direct_meta["weights_sha256"] != first_digest
    assert meta["status"] == "completed" and meta["epochs_done"] == 2
    assert meta["final_eval_acc"] == direct_meta["final_eval_acc"]
    (extension,) = meta["extensions"]
    assert extension["epochs_done"] == 1 and extension["train.epochs"] == {"from": 1, "to": 2}
    assert len(meta["resumes"]) == 1
    assert (extended / "config.yaml").read_text() == (direct / "config.yaml").read_text()  # reproduces the whole run

    def without_timing(run: Path) -> list[dict]:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if not k.endswith("seconds") and k not in ("images_per_s", *RESOURCE_KEYS)}
                for row in rows]

    assert without_timing(extended) == without_timing(direct)

    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    root = EventAccumulator(str(extended / "events"))
    root.Reload()  # one file of run information, rewritten with the new train.epochs
    assert len(list((extended / "events").glob("events.out.tfevents.*"))) == 1
    start = metadata.parse_session_start_info_plugin_data(
        root.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["train.epochs"].number_value == 2

    again = resume(extended)
    assert again.exit_code == 1 and "already completed all 2 epochs; extend it with --set train.epochs=N" in again.output


@pytest.fixture
def finished(tmp_path) -> Path:
    """A completed two-epoch run directory as the Trainer leaves it, without training (the checks come first)."""
    run = tmp_path / "tiny-20260101-000000-abcd"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(load_config(QUICKSTART, [*TINY, *SMALL, "train.epochs=2"])))
    (run / "meta.json").write_text(json.dumps({"status": "completed", "epochs_done": 2}))
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    return run


def refused(run: Path, *overrides: str) -> str:
    records = lambda: {p.name: p.read_text() for p in run.iterdir() if p.name != ".lock"}  # the lock: taken to check
    before = records()
    result = resume(run, *overrides)
    assert result.exit_code == 2, result.output
    assert records() == before  # nothing written
    return result.output


def test_only_train_epochs_and_the_runtime_may_change(finished):
    assert refused(finished, "optimizer.lr=0.1") == (
        f"Error: --set optimizer.lr: cannot change when resuming {finished}, it would change the epochs already "
        f"trained; only train.epochs and runtime.* can. Start a new run: dilbench train {finished / 'config.yaml'} "
        "--set optimizer.lr=...\n"
    )
    assert "--set precision: cannot change" in refused(finished, "runtime.eval_batch_size=10", "precision=bfloat16")
    assert "--set train: cannot change" in refused(finished, "train={epochs: 3}")
    assert "--set runtime.distribute=multi_worker: " in refused(finished, "runtime.distribute=multi_worker")


def test_an_extension_must_add_epochs(finished):
    assert refused(finished, "train.epochs=1") == (
        f"Error: --set train.epochs=1: {finished} has already trained 2 epochs; give more than 2\n"
    )
    assert refused(finished, "train.epochs=0") == "Error: --set train.epochs: must be > 0, got 0\n"


@pytest.mark.parametrize("edit, what", [
    (("lr_schedule: constant", "lr_schedule: cosine"),
     "train.lr_schedule: cosine, whose learning rate decays over all 2 epochs"),
    (("freezeout: null", "freezeout: {t0: 0.5}"), "schedule.freezeout, whose groups freeze at fractions of all 2 epochs"),
])
def test_a_run_whose_past_depends_on_its_length_cannot_be_extended(finished, edit, what):
    """A cosine learning rate or freezeout spreads over all epochs: more epochs would change the ones done."""
    (finished / "config.yaml").write_text((finished / "config.yaml").read_text().replace(*edit))
    assert refused(finished, "train.epochs=4") == (
        f"Error: {finished} uses {what}: extending it would change the past. "
        "Train a new run with --set train.epochs=4 instead\n"
    )


def test_a_running_run_cannot_be_extended(finished):
    (finished / "meta.json").write_text(json.dumps({"status": "running"}))
    assert "says it is running" in refused(finished, "train.epochs=4")


def test_resume_may_change_the_runtime_and_records_each_segment(tmp_path, monkeypatch, caplog):
    """A run resumes with other runtime settings (here evaluation batches, op determinism off): config.yaml then holds
    the new runtime and meta.json the runtime of every segment; the experiment stays as it was."""
    run = train_tiny(tmp_path / "runs", *SMALL, "train.epochs=1")
    before = load_config(run / "config.yaml")
    monkeypatch.setattr(loader, "_noted", set())  # notes are said once a process: this test must see its own
    result = resume(run, "train.epochs=2", "runtime.eval_batch_size=7", "train.xla=false")  # an old-form key, noted
    assert result.exit_code == 0, result.output
    assert "note: --set train.xla is now runtime.xla (how a run executes, not what it computes; --resume may change it)" in [
        record.getMessage() for record in caplog.records]
    after = load_config(run / "config.yaml")
    assert after.runtime.eval_batch_size == 7 and after.train.epochs == 2
    assert replace(after, train=before.train).experiment() == before.experiment()  # nothing else of the experiment changed
    meta = read(run / "meta.json")
    assert meta["status"] == "completed" and meta["epochs_done"] == 2
    assert meta["runtime"]["eval_batch_size"] == 500
    (segment,) = meta["resumes"]
    assert segment["runtime"]["eval_batch_size"] == 7 and segment["runtime_changed"] == {"eval_batch_size": {"from": 500, "to": 7}}
