"""Helpers of the fault-injection tests: run dilbench children with faults injected, read what they left.
They build on the tests' toolkit (tests/toolkit.py): its tiny config, made smaller here, and its paths."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import toolkit
from toolkit import INJECT, REPO, child_env, metrics

EPOCHS = 3
STEPS = 4  # 128 images / batch 32
SMALLER = [  # on top of the toolkit's TINY (deterministic float32 on the bundled MNIST)
    "data.train_subset=128", "data.test_subset=64", "model.channels=2", "model.hidden=[8]",
    "train.batch_size=32", f"train.epochs={EPOCHS}", "seed=3",
]
RISING = "acc=0.5,0.6,0.7"  # every epoch improves: saves go best, latest per epoch (2 per epoch)


def _command(args: tuple[str, ...], specs: tuple[str, ...], env: dict[str, str] | None, user: int | None):
    command = [sys.executable, str(INJECT), *specs, "--", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    environment = child_env({"TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    return command, environment


def dilbench(*args: str, specs: tuple[str, ...] = (), env: dict[str, str] | None = None,
             user: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`dilbench ARGS` in a child process with the faults `specs` injected (as `user`, if given)."""
    command, environment = _command(args, specs, env, user)
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=environment)


def spawn(*args: str, specs: tuple[str, ...] = (), env: dict[str, str] | None = None, user: int | None = None) -> subprocess.Popen:
    """Like dilbench(), but running on: the caller waits for it (stdout and stderr go to pipes)."""
    command, environment = _command(args, specs, env, user)
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def train_args(runs: Path, *extra: str) -> list[str]:
    """`train` of the smaller tiny config into `runs`, with `extra` overrides."""
    return toolkit.train_args(runs, *SMALLER, *extra)


def train(runs: Path, *extra: str, specs: tuple[str, ...] = (), **kwargs) -> subprocess.CompletedProcess:
    return dilbench(*train_args(runs, *extra), specs=specs, **kwargs)


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 240) -> None:
    """Block until `path` exists (a child announces it reached a fault point); fail if the child ends first."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the child ended (exit code {process.returncode}) before {path.name}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no {path} after {seconds}s")
        time.sleep(0.05)


def resume(run: Path, *extra: str, specs: tuple[str, ...] = (), **kwargs) -> subprocess.CompletedProcess:
    return dilbench("train", "--resume", str(run), *extra, specs=specs, **kwargs)


def training_records(run: Path) -> list[dict]:
    """metrics.jsonl without what depends on the clock."""
    from dilbench.training.resources import RESOURCE_KEYS

    return [{k: v for k, v in r.items() if not k.endswith("seconds") and k not in ("images_per_s", *RESOURCE_KEYS)}
            for r in metrics(run)]


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The `Error: ...` line of a failed command; asserts there is exactly one and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def partial_files(run: Path) -> list[str]:
    """What killed or failed writes leave: our temp files and TensorFlow's checkpoint temp dirs."""
    found = [p for p in run.rglob("*") if (p.name.startswith(".") and ".tmp" in p.name)
             or p.name.endswith("_temp") or ".tempstate" in p.name]
    return sorted(str(p.relative_to(run)) for p in found)


def checkpoint_progress(directory: Path) -> dict[str, float]:
    """epoch, step and best_acc saved in the newest checkpoint of checkpoints/<latest|best>."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(directory))
    return {key: reader.get_tensor(f"progress/{key}/.ATTRIBUTES/VARIABLE_VALUE").item() for key in ("epoch", "step", "best_acc")}


def remount(point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(point)], check=True, capture_output=True)
