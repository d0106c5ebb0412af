"""Start or resume a run: the run directory, meta.json status, log.txt, and what a failure leaves.

TensorFlow is imported only here, inside `_train`, after the run directory exists and says `running`.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from dilbench import __version__
from dilbench.config import Config, dump_config, load_config
from dilbench.data import Dataset, load_data
from dilbench.errors import DilbenchError, UsageError
from dilbench.launch import provenance
from dilbench.runs.extend import amend_run
from dilbench.runs.hooks import Hook, run_hook
from dilbench.runs.rundir import RunDir, utc_now, write_atomic
from dilbench.runs.trash import TRASH
from dilbench.runs.writer import RunLogHandler, RunWriter, explain
from dilbench.tfquiet import import_tensorflow
from dilbench.training.cluster import is_chief_task, worker_task
from dilbench.training.listeners import TrainingListener
from dilbench.typed.validate import to_plain

log = logging.getLogger("dilbench")


class RunPruned(DilbenchError):
    """Raised by a training listener after an epoch whose outputs are written, when a hyperparameter search's
    pruner stops the run's trial (sweep/trial.py): the run ends with status `pruned`, a finished run that is
    never resumed. Not an error of the run (exit code 0)."""

    exit_code = 0


def start_run(config: Config, runs_dir: str | Path, command: list[str], on_end: Hook | None = None,
              listeners: Sequence[TrainingListener] = (), meta: dict[str, Any] | None = None) -> RunDir:
    """Create a new run directory for `config` and train it to the end; then run the `on_end` hook (hooks.py).
    `listeners` listen after the run's own writers (a search's trial reporter), `meta` adds keys to meta.json
    from the start (its `search` block).

    The data is loaded first, so a missing or corrupt data set leaves no run directory behind. A
    multi-worker non-chief worker trains into a temporary directory (TensorFlow needs every worker to
    save checkpoints) that is removed at the end; only the chief's run directory stays.
    """
    data = load_data(config.data, config.seed)
    with _end_hook(on_end if is_chief(config) else None) as trained, \
            _worker_dir(config, runs_dir) as where, RunWriter.create(where, config.name) as writer:
        run = writer.run
        meta = {
            "status": "running", "name": config.name, "seed": config.seed, "created": utc_now(), "started": utc_now(),
            "command": command, "git": _git_state(), "versions": _versions(), "host": platform.node(),
            "python": platform.python_version(), "platform": platform.platform(), "runtime": to_plain(config.runtime),
            "resumes": [], "owner": writer.owner, **(meta or {}),
        }
        try:
            write_atomic(run.config, dump_config(config))
            if is_chief(config):  # a worker's directory is temporary: nothing to record
                meta["provenance"] = provenance.capture(run, data.digest)
            writer.record(**meta)
        except OSError as err:  # no meta.json yet: nothing worth keeping
            writer.close()
            shutil.rmtree(run.path, ignore_errors=True)
            raise (explain(err, run.path, "train again") or err) from err
        trained.append(run)
        _train(writer, config, data, resume_from=None, listeners=listeners)
    return run


@contextlib.contextmanager
def _end_hook(hook: Hook | None):
    """Run `hook` once the block has trained a run (it appends the run to the list it gets) and released it:
    after the final status is recorded and the lock is free, whether training completed or raised."""
    trained: list[RunDir] = []
    try:
        yield trained
    finally:
        if hook and trained:
            _run_end_hook(hook, trained[0])


def _run_end_hook(hook: Hook, run: RunDir) -> None:
    meta = _read_meta(run) if run.meta_file.is_file() else {}
    handler = RunLogHandler(run.log_file, delay=True)  # its output into log.txt too
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        env = {"DILBENCH_RUN_DIR": str(run.path.resolve()), "DILBENCH_RUN_STATUS": str(meta.get("status", "unknown")),
               "DILBENCH_RUN_NAME": str(meta.get("name", run.path.name))}
        run_hook(hook, env, "on-end", log)
    finally:
        log.removeHandler(handler)
        handler.close()


def multi_worker_task(config: Config) -> tuple[str, int] | None:
    """(task type, index) of this process in a multi-worker run ($TF_CONFIG or the Slurm step), else None."""
    if config.runtime.distribute != "multi_worker":
        return None
    return worker_task()


def is_chief(config: Config) -> bool:
    """Whether this process owns the run directory: all but multi-worker workers other than the chief."""
    task = multi_worker_task(config)
    return task is None or is_chief_task(task)


@contextlib.contextmanager
def _worker_dir(config: Config, runs_dir: str | Path):
    """`runs_dir` for the chief; a temporary directory, removed afterwards, for other workers."""
    if is_chief(config):
        yield Path(runs_dir)
        return
    with tempfile.TemporaryDirectory(prefix="dilbench-worker-") as tmp:
        yield Path(tmp)


def resume_run(path: str | Path, command: list[str], restart: bool = False, overrides: Sequence[str] = (),
               on_end: Hook | None = None, listeners: Sequence[TrainingListener] = ()) -> RunDir:
    """Continue an interrupted, failed or crashed run from its latest checkpoint up to the configured
    epochs, after `overrides` extended it or changed its runtime (extend.py); with `restart`, start it
    over, its old records set aside. Refused while another process writes the run, and when its
    checkpoints are gone but metrics.jsonl has epochs (resuming would silently start over)."""
    run = RunDir.open(path)
    if run.path.parent.name == TRASH:  # a trashed run is resumed where it belongs, not inside the trash
        raise UsageError(f"{run.path} is in the trash; put it back first: dilbench trash restore {run.path}")
    config = load_config(run.config)
    if not is_chief(config):  # read the chief's checkpoint, write only to a temporary directory
        if overrides:
            raise DilbenchError(f"{run.path}: a multi-worker run's workers resume it as it is; change it (--set) "
                                "only when resuming it on one process")
        data = load_data(config.data, config.seed)
        with _worker_dir(config, "") as where, RunWriter.create(where, config.name) as writer:
            write_atomic(writer.run.config, dump_config(config))
            writer.record(status="running", resumes=[])
            _train(writer, config, data, resume_from=run, listeners=listeners)
        return run
    with _end_hook(on_end) as trained, RunWriter.claim(run) as writer:
        meta = _read_meta(run)
        amendment = amend_run(str(run.path), overrides) if overrides else None  # under the lock: it rewrites config.yaml
        if amendment and amendment.extension:
            meta = writer.record(extensions=meta.get("extensions", []) + [amendment.extension])
        if amendment and (amendment.extension or amendment.runtime):
            config = load_config(run.config)
        if meta.get("status") == "pruned" and not restart:
            raise DilbenchError(f"{run.path} was pruned by its search after {len(run.read_metrics())} epoch(s): a finished "
                                "trial, not resumed. Start a new run, or --restart it")
        if meta.get("status") == "completed" and len(run.read_metrics()) >= config.train.epochs:  # else extended
            raise DilbenchError(f"{run.path} already completed all {config.train.epochs} epochs; "
                                "extend it with --set train.epochs=N, or start a new run")
        if restart:
            _set_aside_records(writer)
        elif not run.has_checkpoints() and run.read_metrics():
            raise DilbenchError(
                f"{run.path}: no checkpoint left in {run.checkpoints} but metrics.jsonl records {len(run.read_metrics())} "
                f"epoch(s), so resuming would start over and rewrite them. To start over keeping them as "
                f"metrics.jsonl.old-<time>: dilbench train --resume {run.path} --restart"
            )
        data = load_data(config.data, config.seed)
        resume = {"at": utc_now(), "command": command, "runtime": to_plain(config.runtime),
                  **({"runtime_changed": amendment.runtime} if amendment and amendment.runtime else {}),
                  **({"restart": True} if restart else {})}
        resumes = meta.get("resumes", [])
        try:
            earlier = [meta.get("provenance") or {}] + [r.get("provenance") or {} for r in resumes if isinstance(r, dict)]
            resume["provenance"] = provenance.capture(run, data.digest, len(resumes) + 1, earlier)
            writer.record(status="running", owner=writer.owner, resumes=resumes + [resume])
        except OSError as err:
            raise writer.fail(err, f"dilbench train --resume {run.path}") from err
        trained.append(run)
        _train(writer, config, data, resume_from=run, listeners=listeners)
    return run


def _read_meta(run: RunDir) -> dict:
    if not run.meta_file.exists():
        return {}  # killed between writing config.yaml and meta.json: nothing trained yet
    try:
        meta = run.read_meta()
    except (OSError, ValueError) as err:
        raise DilbenchError(f"{run.meta_file} is unreadable ({err}); it cannot be resumed, start a new run") from err
    return meta if isinstance(meta, dict) else {}


def _set_aside_records(writer: RunWriter) -> None:
    """--restart: move metrics.jsonl, checkpoints/ and events/ to `<name>.old-<time>` and start empty."""
    run = writer.run
    try:
        for path in (run.metrics_file, run.checkpoints, run.events):
            if path.exists():
                log.info("kept %s as %s", path.name, run.set_aside(path).name)
        run.checkpoints.mkdir(exist_ok=True)
        run.events.mkdir(exist_ok=True)
    except OSError as err:
        raise writer.fail(err, f"dilbench train --resume {run.path} --restart") from err


def _train(writer: RunWriter, config: Config, data: Dataset, resume_from: RunDir | None,
           listeners: Sequence[TrainingListener] = ()) -> None:
    run = writer.run
    retry = f"dilbench train --resume {resume_from.path if resume_from else run.path}"
    handler = writer.log_handler()
    log.addHandler(handler)
    started = time.time()
    try:
        log.info("%s run %s", "resuming" if resume_from else "starting", run.path)
        def strategy_first():  # the strategy (and any logical CPU split) must precede device use
            from dilbench.training.runtime import make_strategy

            return make_strategy(config.runtime)

        strategy = import_tensorflow(strategy_first)
        from dilbench.report.run_plots import RunPlots
        from dilbench.runs.events import RunEvents
        from dilbench.runs.metrics import MetricsWriter
        from dilbench.training.checkpoints import PeriodicCheckpoint, RunCheckpoints
        from dilbench.training.runtime import devices
        from dilbench.training.trainer import Trainer

        writer.record(devices=devices())
        _record_tensorflow(writer, resumed=resume_from is not None)
        trainer = Trainer(config, data, strategy, where=str(run.path))
        checkpoints = RunCheckpoints(trainer, run)
        trainer.listeners += [MetricsWriter(run), checkpoints, PeriodicCheckpoint(checkpoints, config.runtime.checkpoint_every),
                              RunEvents(run, config), RunPlots(run.plots, config.name), *listeners]
        if resume_from:
            _check_global_batch(trainer.distribute_info, resume_from)
        writer.record(distribute=trainer.distribute_info)
        if resume_from:
            checkpoints.restore(resume_from)
        records = trainer.train(run.read_metrics())
        last = records[-1]
        digest = trainer.weights_digest()
        writer.record(status="completed", error=None, ended=utc_now(), **_totals(records), weights_sha256=digest)
        log.info("final weights sha256 %s", digest)
        log.info("completed in %.0fs: final %s accuracy %.4f -> %s", time.time() - started, last["eval_split"], last["eval_acc"], run.path)
    except RunPruned as err:  # after an epoch whose record and checkpoints are written: a finished run
        records = run.read_metrics()
        try:
            writer.record(status="pruned", error=None, ended=utc_now(), pruned=str(err), **(_totals(records) if records else {}))
        except OSError as again:
            raise writer.fail(again, retry) from again
        log.info("pruned after %d epoch(s): %s", len(records), err)
        raise
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt) or getattr(err, "exit_code", None) == 130:  # a second Ctrl-C, or RunInterrupted
            message = str(err) or "stopped at once by a second Ctrl-C; resume from the last checkpoint"
            try:
                writer.record(status="interrupted", error=message, ended=utc_now())
            except OSError as again:
                raise writer.fail(again, retry) from again
            if str(err):
                log.warning("%s", err)
            raise
        failure = writer.fail(err, retry)
        if failure is err:
            raise
        raise failure from err
    finally:
        log.removeHandler(handler)
        handler.close()


def _totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What meta.json records of a run that ended (completed or pruned): from its epoch records."""
    last = records[-1]
    return {"epochs_done": len(records), "eval_split": last["eval_split"], "final_eval_acc": last["eval_acc"],
            "best_eval_acc": max(r["eval_acc"] for r in records), "train_flops": last["train_flops"],
            "train_seconds": sum(r.get("train_seconds", r["seconds"]) for r in records)}


def _check_global_batch(distribute: dict, run: RunDir) -> None:
    """A resume on other devices must train on the same global batches (with `batch_size_is: per_replica` the
    global batch is the per-replica batch times the replicas): else the run's past and future would differ."""
    before = (_read_meta(run).get("distribute") or {}).get("global_batch_size")
    if before is not None and before != distribute["global_batch_size"]:
        raise DilbenchError(
            f"{run.path} trained with a global batch of {before}, but on {distribute['replicas']} replica(s) it would be "
            f"{distribute['global_batch_size']} (train.batch_size_is: per_replica); resume it on "
            f"{before // max(1, distribute['global_batch_size'] // distribute['replicas'])} replica(s)")


def _record_tensorflow(writer: RunWriter, resumed: bool) -> None:
    """TensorFlow's build and the GPUs, into the provenance of this segment (once TensorFlow is loaded)."""
    from dilbench.training.runtime import gpu_names, tensorflow_build

    meta = writer.run.read_meta()
    segment = (meta.get("resumes") or [{}])[-1] if resumed else meta
    if not isinstance(segment, dict) or not isinstance(segment.get("provenance"), dict):
        return  # a multi-worker worker's temporary directory, or a run from before provenance
    segment["provenance"].update(tensorflow=tensorflow_build(), gpus=gpu_names())
    writer.record(**({"resumes": meta["resumes"]} if resumed else {"provenance": meta["provenance"]}))


def _versions() -> dict[str, str]:
    versions = {"dilbench": __version__}
    for package in ("tensorflow", "keras", "numpy", "imgaug"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def _git_state() -> dict[str, object] | None:
    """Commit and dirty flag of the checkout dilbench runs from (else the current directory)."""
    for where in (Path(__file__).resolve().parents[2], Path.cwd()):
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
            if commit.returncode:
                continue
            status = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=5
            )
            return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()), "repo": str(where)}
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


