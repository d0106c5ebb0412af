"""The tests' toolkit, the helpers that are not fixtures (those are in conftest.py): where the checkout's
files are, the one tiny config, the CLI in process, tiny training runs in process and as a child process,
run directories written by hand, and a guard for sets a test loops over.

Import it one way, `from toolkit import ...`: pytest puts tests/ on sys.path (it holds conftest.py), and
a script run as `python tests/x.py` has it there too. Every path here is absolute, so a test works from
any directory (conftest.py runs each one in a fresh empty one to prove it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from click.testing import CliRunner, Result

from dilbench.cli import cli
from dilbench.config import ConfigError, load_config
from dilbench.report.index_store import INDEX_DIR

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
CONFIGS = REPO / "configs"
EXPERIMENTS = REPO / "experiments"
QUICKSTART = CONFIGS / "quickstart.yaml"
INJECT = TESTS / "faults" / "inject.py"  # runs dilbench with faults injected (see its docstring)
PNG = b"\x89PNG\r\n\x1a\n"  # the first bytes of every PNG file

# The one tiny config: quickstart on 300 bundled MNIST images, 4 channels, 2 deterministic float32 epochs of
# 5 batches (the last holds 44 images). A test that needs another size sets it after these (later --set wins).
TINY = [
    "data.dataset=mnist_bundled", "data.train_subset=300", "data.test_subset=100",
    "model.channels=4", "model.hidden=[16]", "train.batch_size=64", "train.epochs=2",
    "precision=float32", "runtime.deterministic=true", "seed=7",
]

T = TypeVar("T")


def nonempty(items: Iterable[T], what: str = "the set") -> list[T]:
    """`items` as a list, refusing an empty one: a test that loops or is parametrized over files found on disk
    (or any discovered set) must fail, not pass vacuously, when it finds nothing."""
    found = list(items)
    if not found:
        raise AssertionError(f"{what} is empty: nothing to test")
    return found


# ---- the CLI in process ----------------------------------------------------------------------------------
def invoke(*args: object, catch_exceptions: bool = False, **kwargs) -> Result:
    """`dilbench ARGS` in process (each argument as str); Click's result. An exception propagates unless
    `catch_exceptions`, so a crash fails the test with its traceback."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=catch_exceptions, **kwargs)


def sweep(*args: object) -> Result:
    """`dilbench sweep ARGS` in process."""
    return invoke("sweep", *args)


def sets(*overrides: str) -> list[str]:
    """`--set` options for `overrides`, in order."""
    return [arg for item in overrides for arg in ("--set", item)]


# ---- tiny training runs -------------------------------------------------------------------------------------
def train_args(runs: Path, *overrides: str, name: str | None = "tiny", config: Path = QUICKSTART,
               options: Sequence[str] = ()) -> list[str]:
    """`train CONFIG --runs-dir RUNS --name NAME OPTIONS` with TINY and then `overrides` (None: no --name)."""
    named = ["--name", name] if name is not None else []
    return ["train", str(config), "--runs-dir", str(runs), *named, *options, *sets(*TINY, *overrides)]


def run_train(runs: Path, *overrides: str, name: str | None = "tiny", config: Path = QUICKSTART,
              options: Sequence[str] = ()) -> Result:
    """Train the tiny config (with `overrides`, and `options` of `train`) in process; Click's result, whatever
    the exit code."""
    return invoke(*train_args(runs, *overrides, name=name, config=config, options=options))


def train_tiny(runs: Path, *overrides: str, name: str = "tiny", config: Path = QUICKSTART,
               options: Sequence[str] = ()) -> Path:
    """Train the tiny config (with `overrides`) in process, for real, into `runs`; the run directory."""
    result = run_train(runs, *overrides, name=name, config=config, options=options)
    assert result.exit_code == 0, result.output
    return the_run(runs, name)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: ours, with this checkout's dilbench first on PYTHONPATH, and `env`."""
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **(env or {})}


def spawn_train(runs: Path, *overrides: str, name: str | None = "tiny", env: Mapping[str, str] | None = None,
                inject: Sequence[str] | None = None) -> subprocess.Popen:
    """`python -m dilbench train ...` of the tiny config as a child process (text stdout and stderr piped), or with
    `inject` the specs for tests/faults/inject.py, through it; the caller waits for it."""
    runner = ["-m", "dilbench"] if inject is None else [str(INJECT), *inject, "--"]
    return subprocess.Popen([sys.executable, *runner, *train_args(runs, *overrides, name=name)], cwd=REPO,
                            env=child_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def train_tiny_process(runs: Path, *overrides: str, name: str | None = "tiny", env: Mapping[str, str] | None = None,
                       inject: Sequence[str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Like spawn_train(), waiting for the child (at most `timeout` seconds): its exit code, stdout and stderr."""
    process = spawn_train(runs, *overrides, name=name, env=env, inject=inject)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def tiny_profile(*overrides: str) -> dict:
    """TINY and then `overrides` as an experiment's profile (dotted keys to values), without the seed: a
    profile goes on top of the grid, whose seeds it would otherwise replace."""
    profile = {}
    for item in (*TINY, *overrides):
        key, _, value = item.partition("=")
        profile[key] = yaml.safe_load(value)
    del profile["seed"]
    return profile


def the_run(runs: Path, name: str = "tiny") -> Path:
    """The one run directory named `name` in `runs`."""
    (path,) = runs.glob(f"{name}-*")
    return path


def meta(run: Path) -> dict:
    return json.loads((run / "meta.json").read_text())


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---- configs and run directories written by hand --------------------------------------------------------------
def write(tmp_path: Path, text: str) -> Path:
    """`text` (dedented) as the config file c.yaml in `tmp_path`."""
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, overrides=()) -> str:
    """The ConfigError message of loading `path`; a config error always exits with code 2."""
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert info.value.exit_code == 2
    return str(info.value)


def config(name: str, schedule: str, seed: int, lr: float) -> dict:
    """A run's config.yaml as data, for run directories written by hand."""
    return {
        "name": name, "seed": seed, "deterministic": False, "precision": "float32",
        "data": {"dataset": "mnist_bundled", "root": None},
        "model": {"name": "context_module", "channels": 16, "hidden": [64]},
        "schedule": {"name": schedule}, "optimizer": {"name": "adam", "lr": lr},
        "augmentation": {"mode": "none"}, "train": {"epochs": 3, "batch_size": 64},
    }


EPOCH_SECONDS = 10.0  # every epoch of epoch_records()


def epoch_records(eval_acc: list[float], train_acc: list[float], images_per_s: list[float], updates: list[int]) -> list[dict]:
    """metrics.jsonl's records of a run written by hand, an epoch an accuracy (losses 1 - accuracy)."""
    return [
        {"epoch": e, "train_loss": 1 - tr, "train_acc": tr, "eval_loss": 1 - te, "eval_acc": te, "eval_split": "test",
         "seconds": EPOCH_SECONDS, "images_per_s": ips, "updates": updates, "updates_total": [u * e for u in updates]}
        for e, (te, tr, ips) in enumerate(zip(eval_acc, train_acc, images_per_s), start=1)
    ]


def write_run(root: Path, dirname: str, cfg: dict | None, meta: dict | None, records: list[dict] | None) -> Path:
    """A run directory as the trainer leaves it (None: that file is missing)."""
    path = root / dirname
    for sub in ("events", "plots", "checkpoints"):
        (path / sub).mkdir(parents=True)
    if cfg is not None:
        (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if meta is not None:
        (path / "meta.json").write_text(json.dumps(meta, indent=2))
    if records is not None:
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# Run directories aged (mtimes an hour back): the index never keeps a file changed within RACY_NS, so a test
# that writes and reads within a second would otherwise only ever exercise the files.
HOUR = 3600


def age(root: Path, seconds: float = HOUR) -> None:
    """`root` and every file and directory under it (but the index) last changed `seconds` ago."""
    when = time.time() - seconds
    for path in [root, *root.rglob("*")]:
        if INDEX_DIR not in path.parts:
            os.utime(path, (when, when))


def age_file(path: Path) -> None:
    """One file (and its directory) last changed an hour ago."""
    when = time.time() - HOUR
    for each in (path, path.parent):
        os.utime(each, (when, when))


def make_runs(root: Path, count: int = 6) -> Path:
    for i in range(count):
        schedule = ("standard", "unfair_back")[i % 2]
        accs = [0.5 + 0.01 * i, 0.6 + 0.01 * i, 0.55 + 0.02 * i]
        records = epoch_records(accs, [0.6, 0.7, 0.8], [100.0 + i, 200.0, 300.0], [5, 5 + i])
        for epoch, record in enumerate(records, start=1):
            record.update(train_flops=1e9 * epoch * (i + 1), train_seconds=8.0, eval_seconds=2.0)
        meta = {"status": "completed", "name": f"r{i}", "seed": i, "host": "lab1", "git": {"commit": "abc", "dirty": i == 3}}
        write_run(root, f"r{i}-20260101-000000-{i:04x}", config(f"r{i}", schedule, i % 3, (1e-3, 1e-4)[i % 2]), meta, records)
    age(root)
    return root


# ---- experiment files, fake trainers and studies of the sweep and search tests --------------------------------
def two_cases(name: str) -> str:
    """The head of an experiment file: `name`, the quickstart as its base, the cases a (standard) and c (unfair_back)
    over the seeds 0 and 1; its profiles and other sections follow it."""
    return (f"name: {name}\nbase: {QUICKSTART}\ncases:\n  a: {{schedule: standard}}\n  c: {{schedule: unfair_back}}\n"
            "grid:\n  seed: [0, 1]\n")


# The profile of the Done-when search of issue 22: tiny MNIST, 3 epochs of 10 batches of 32.
SEARCH_PROFILE = ("{data.dataset: mnist_bundled, data.train_subset: 320, data.test_subset: 160, model.channels: 2, "
                  "model.hidden: [8], train.batch_size: 32, train.epochs: 3, precision: float32}")


def tiny_search(name: str = "tiny_search") -> str:
    """The Done-when search of issue 22 as an experiment file (test_search.py runs it for real, faults/test_search_kill.py
    kills it, test_slurm.py submits it): 2 cases, TPE with 4 trials each, the median pruner, 2 confirmation seeds."""
    return two_cases(name) + f"""\
profiles:
  tiny: {SEARCH_PROFILE}
claims:
  - {{higher: c, lower: a, says: "unfair_back beats standard"}}
search:
  method: tpe
  trials: 4
  space:
    optimizer.lr: {{log_uniform: [1.0e-4, 3.0e-2]}}
  metric: final_eval_acc
  pruner: {{median: {{startup_trials: 1, warmup_epochs: 1}}}}
  seeds: [100, 101]
  startup_trials: 2
"""


# The start of a fake trainer (test_sweep.py, test_search.py: a script the sweep runs instead of `dilbench train`),
# after its imports (json, os, secrets, sys, datetime, timezone and yaml): `train CONFIG --runs-dir D ...` makes the run
# directory NAME-STAMP-HEX in D with CONFIG as its config.yaml, `train --resume RUN` takes RUN; then it has `args`,
# `run`, `config`, `name`, `meta_file` and `meta` (what meta.json holds, or a new one).
FAKE_TRAINER_START = r'''
args = sys.argv[1:]
if args[1] == "--resume":
    run = args[2]
else:
    source = open(args[1]).read()
    name = yaml.safe_load(source)["name"]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run = os.path.join(args[args.index("--runs-dir") + 1], f"{name}-{stamp}-{secrets.token_hex(2)}")
    os.makedirs(run)
    open(os.path.join(run, "config.yaml"), "w").write(source)
config = yaml.safe_load(open(os.path.join(run, "config.yaml")))
name = config["name"]
meta_file = os.path.join(run, "meta.json")
meta = json.load(open(meta_file)) if os.path.exists(meta_file) else {"created": "2026-01-01T00:00:00+00:00", "host": "fakehost"}
'''

EXPERIMENT = f"""\
name: demo
base: {QUICKSTART}
cases:
  a: {{schedule: standard}}
  c: {{schedule: unfair_back, optimizer.lr: 3.0e-4}}
grid:
  seed: [0, 1]
profiles:
  quick: {{train.epochs: 2, model.channels: 4}}
  full: {{}}
published:
  a: {{final_eval_acc: 0.777, note: "after 10 epochs"}}
  c: {{final_eval_acc: 0.83}}
claims:
  - {{higher: c, lower: a, says: "unfair_back beats standard"}}
  - {{higher: a, lower: c, says: "standard beats unfair_back"}}
"""

# The fake trainer: `train CONFIG --runs-dir D` or `train --resume RUN`, like `python -m dilbench`.
# eval_acc = 0.5, +0.1 for unfair_back, +0.01 per seed. FAKE_FAIL names runs that fail; FAKE_SLEEP
# makes each run wait (a Ctrl-C then interrupts it); FAKE_TRACE collects start/end lines.
FAKE_TRAINER = r'''
import json, os, secrets, signal, sys, time
from datetime import datetime, timezone
import yaml
''' + FAKE_TRAINER_START + r'''

def write(status, **more):
    meta.update(status=status, **more)
    json.dump(meta, open(meta_file, "w"))

def trace(what):
    if os.environ.get("FAKE_TRACE"):
        with open(os.environ["FAKE_TRACE"], "a") as f:
            f.write(f"{what} {name} {time.monotonic()}\n")

def interrupted(signum, frame):
    write("interrupted", error="interrupted at epoch 1; checkpoint saved")
    trace("interrupted")
    sys.exit(130)

signal.signal(signal.SIGINT, interrupted)
write("running", resumes=meta.get("resumes", []) + ([1] if args[1] == "--resume" else []))
trace("start")
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
if name in os.environ.get("FAKE_FAIL", "").split(","):
    write("failed", error="NaN loss at epoch 1, step 3")
    print("Error: NaN loss at epoch 1, step 3", file=sys.stderr)
    sys.exit(1)
acc = 0.5 + 0.1 * (config["schedule"]["name"] == "unfair_back") + 0.01 * config["seed"]
flops = 150.0 if config["schedule"]["name"] == "unfair_back" else 100.0  # per epoch
records = [{"epoch": e, "train_loss": 1.0, "train_acc": acc, "eval_loss": 1.0, "eval_acc": acc - 0.1 / e,
            "eval_split": "test", "seconds": 2.0, "images_per_s": 100.0, "train_flops": e * flops} for e in (1, 2)]
for record in records:  # FAKE_PEAK: {run name: peak_rss_bytes}
    record.update({"peak_rss_bytes": peak} if (peak := json.loads(os.environ.get("FAKE_PEAK", "{}")).get(name)) else {})
if (data := json.loads(os.environ.get("FAKE_DATA", "{}")).get(name)):  # {run name: data sha256}
    meta["provenance"] = {"data": {"sha256": data}, "source": {"commit": "c0ffee" * 7, "dirty": False}}
open(os.path.join(run, "metrics.jsonl"), "w").write("".join(json.dumps(r) + "\n" for r in records))
write("completed", ended="2026-01-01T00:05:00+00:00", final_eval_acc=records[-1]["eval_acc"], error=None)
trace("end")
print(run)
'''



def squeeze(markdown: str) -> str:
    """Markdown tables with each cell's padding removed (`|  a |` -> `| a |`), to assert on cells."""
    return "\n".join(re.sub(r" *\| *", " | ", line).strip() if line.startswith("|") else line for line in markdown.splitlines()) + "\n"


def study_trials(runs_dir: Path, group: str) -> list[dict]:
    """The trials of a group's study as its journal file in `runs_dir` holds them (number, state, params, value),
    read with Optuna; none while there is no journal."""
    import optuna

    from dilbench.sweep.study import storage

    path = runs_dir / ".sweep" / f"study-{group}.log"
    if not path.exists():
        return []
    (summary,) = optuna.get_all_study_summaries(storage(path))
    study = optuna.load_study(study_name=summary.study_name, storage=storage(path))
    return [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value} for t in study.trials]
