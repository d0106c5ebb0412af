"""Start or resume a run: the run directory, meta.json status, log.txt, and what a failure leaves.

TensorFlow is imported only here, inside `_train`, after the run directory exists and says `running`.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

from dilbench import __version__
from dilbench.config import Config, dump_config, load_config
from dilbench.data import Dataset, load_dataset
from dilbench.errors import DilbenchError
from dilbench.runs.rundir import RunDir, utc_now, write_atomic
from dilbench.tfquiet import import_tensorflow
from dilbench.training.cluster import is_chief_task, worker_task

log = logging.getLogger("dilbench")


def start_run(config: Config, runs_dir: str | Path, command: list[str], debug: bool = False) -> RunDir:
    """Create a new run directory for `config` and train it to the end.

    The data is loaded first, so a missing or corrupt data set leaves no run directory behind. A
    multi-worker non-chief worker trains into a temporary directory (TensorFlow needs every worker to
    save checkpoints) that is removed at the end; only the chief's run directory stays.
    """
    data = load_config_data(config)
    with _worker_dir(config, runs_dir) as where:
        run = RunDir.create(where, config.name)
        write_atomic(run.config, dump_config(config))
        run.write_meta({
            "status": "running", "name": config.name, "seed": config.seed, "created": utc_now(), "started": utc_now(),
            "command": command, "git": _git_state(), "versions": _versions(), "host": platform.node(),
            "python": platform.python_version(), "platform": platform.platform(), "resumes": [],
        })
        _train(run, config, data, resume_from=None, debug=debug)
    return run


def multi_worker_task(config: Config) -> tuple[str, int] | None:
    """(task type, index) of this process in a multi-worker run ($TF_CONFIG or the Slurm step), else None."""
    if config.train.distribute != "multi_worker":
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


def load_config_data(config: Config) -> Dataset:
    c = config.data
    return load_dataset(c.dataset, c.root, train_subset=c.train_subset, test_subset=c.test_subset,
                        validation=c.validation, seed=config.seed)


def resume_run(path: str | Path, command: list[str], debug: bool = False) -> RunDir:
    """Continue an interrupted or failed run from its latest checkpoint up to the configured epochs."""
    run = RunDir.open(path)
    config = load_config(run.config)
    meta = run.read_meta()
    if meta.get("status") == "completed" and len(run.read_metrics()) >= config.train.epochs:  # else extended
        raise DilbenchError(f"{run.path} already completed all {config.train.epochs} epochs; "
                            "extend it with --set train.epochs=N, or start a new run")
    data = load_config_data(config)
    if not is_chief(config):  # read the chief's checkpoint, write only to a temporary directory
        with _worker_dir(config, "") as where:
            worker_run = RunDir.create(where, config.name)
            write_atomic(worker_run.config, dump_config(config))
            worker_run.write_meta({"status": "running", "resumes": []})
            _train(worker_run, config, data, resume_from=run, debug=debug)
        return run
    run.update_meta(status="running", resumes=meta.get("resumes", []) + [{"at": utc_now(), "command": command}])
    _train(run, config, data, resume_from=run, debug=debug)
    return run


def _train(run: RunDir, config: Config, data: Dataset, resume_from: RunDir | None, debug: bool) -> None:
    handler = logging.FileHandler(run.log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    started = time.time()
    try:
        log.info("%s run %s", "resuming" if resume_from else "starting", run.path)
        def strategy_first():  # the strategy (and any logical CPU split) must precede device use
            from dilbench.training.runtime import make_strategy

            return make_strategy(config.train)

        strategy = import_tensorflow(debug, strategy_first)
        from dilbench.training.runtime import devices
        from dilbench.training.trainer import RunInterrupted, Trainer

        run.update_meta(devices=devices())
        trainer = Trainer(config, run, data, strategy)
        if resume_from:
            trainer.restore(resume_from.checkpoints / "latest")
        records = trainer.train()
    except RunInterrupted as err:
        run.update_meta(status="interrupted", error=str(err), ended=utc_now())
        log.warning("%s", err)
        raise
    except KeyboardInterrupt:
        run.update_meta(status="interrupted", error="stopped at once by a second Ctrl-C; resume from the last checkpoint", ended=utc_now())
        raise
    except BaseException as err:
        message = str(err) if isinstance(err, DilbenchError) else f"{type(err).__name__}: {err}"
        run.update_meta(status="failed", error=message, ended=utc_now())
        log.error("run failed: %s", message)
        raise
    else:
        last = records[-1]
        digest = trainer.weights_digest()
        run.update_meta(
            status="completed", error=None, ended=utc_now(), epochs_done=len(records),
            final_test_acc=last["test_acc"], best_test_acc=max(r["test_acc"] for r in records), weights_sha256=digest,
            train_flops=last["train_flops"], train_seconds=sum(r.get("train_seconds", r["seconds"]) for r in records),
        )
        log.info("final weights sha256 %s", digest)
        log.info("completed in %.0fs: final %s accuracy %.4f -> %s", time.time() - started, last["eval_split"], last["test_acc"], run.path)
    finally:
        log.removeHandler(handler)
        handler.close()


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


