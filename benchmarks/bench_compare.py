"""How long `dilbench compare` takes on 200 run directories of 50 epochs each (the issue asks < 2 s).

Writes realistic synthetic runs (config.yaml as the trainer dumps it, meta.json, metrics.jsonl with 8
layer groups, empty events/plots/checkpoints directories) into a temporary directory, then times:
  * in-process (Click's CliRunner, imports already warm): the default table, --group-by, --format json,
    --plot (its first call pays matplotlib's import);
  * a fresh `python -m dilbench compare` process, which is what a user waits for.
Prints the numbers; asserts nothing. Usage: python benchmarks/bench_compare.py [--runs 200] [--epochs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from dilbench.cli import cli

SCHEDULES = ("standard", "unfair_back", "unfair_front")
AUGMENTATION = ("none", "imgaug")
GROUPS = 8


def write_run(root: Path, index: int, epochs: int, rng: random.Random) -> None:
    schedule, augmentation, seed = SCHEDULES[index % 3], AUGMENTATION[(index // 3) % 2], index // 6
    name = f"{schedule}-{augmentation}-s{seed}"
    run = root / f"{name}-20261122-{index:06d}-{index % 65536:04x}"
    for sub in ("events", "plots", "checkpoints"):
        (run / sub).mkdir(parents=True)
    config = {
        "name": name, "seed": seed, "deterministic": False, "precision": "bfloat16",
        "data": {"dataset": "cifar10", "root": None, "train_subset": None, "test_subset": None, "validation": 0.0},
        "model": {"name": "allconv9", "channels": [256, 256, 128, 128, 128, 64, 64, 64, 10], "init_stddev": 0.05},
        "schedule": {"name": schedule},
        "optimizer": {"name": "adam", "lr": 1e-4, "beta1": 0.9, "beta2": 0.9, "epsilon": 1e-8},
        "augmentation": {"mode": augmentation, "flip_lr": True, "affine_p": 0.1, "flip_ud_p": 0.1},
        "train": {"epochs": epochs, "batch_size": 10, "eval": "test", "eval_batch_size": 500},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    meta = {
        "status": "completed", "name": name, "seed": seed, "created": "2026-11-22T07:00:00+00:00",
        "started": "2026-11-22T07:00:00+00:00", "ended": "2026-11-22T09:00:00+00:00",
        "command": ["dilbench", "train", "configs/x.yaml"], "git": {"commit": "0" * 40, "dirty": False, "repo": "/src"},
        "versions": {"dilbench": "0.1.0", "tensorflow": "2.21.0"}, "host": "bench", "devices": ["CPU:0"],
        "error": None, "epochs_done": epochs, "resumes": [],
    }
    records, acc = [], 0.3
    per_epoch = [5000 * (g + 1) if schedule == "unfair_back" else 5000 for g in range(GROUPS)]
    for epoch in range(1, epochs + 1):
        acc = min(0.95, acc + rng.uniform(0.0, 0.03))
        seconds = rng.uniform(100, 130)
        records.append({
            "epoch": epoch, "eval_split": "test", "images_per_s": 50000 / seconds, "seconds": seconds,
            "eval_acc": round(acc - rng.uniform(0, 0.05), 4), "eval_loss": 2.3 * (1 - acc) + rng.uniform(0, 0.1),
            "train_acc": acc, "train_loss": 2.3 * (1 - acc), "updates": per_epoch,
            "updates_total": [u * epoch for u in per_epoch],
        })
    meta.update(final_eval_acc=records[-1]["eval_acc"], best_eval_acc=max(r["eval_acc"] for r in records))
    (run / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (run / "metrics.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def timed(label: str, args: list[str], repeat: int = 3) -> None:
    runner = CliRunner()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = runner.invoke(cli, args, catch_exceptions=False)
        times.append(time.perf_counter() - started)
        if result.exit_code:
            raise SystemExit(f"{label}: exit {result.exit_code}: {result.output}")
    print(f"{label:<44} first {times[0]:6.3f} s   best of {repeat} {min(times):6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        rng = random.Random(0)
        for index in range(options.runs):
            write_run(root, index, options.epochs, rng)
        print(f"{options.runs} runs x {options.epochs} epochs; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
        runs = str(root)
        timed("compare (default table)", ["compare", runs])
        timed("compare --group-by schedule,augmentation", ["compare", runs, "--group-by", "schedule,augmentation"])
        timed("compare --sort -max:eval_acc --top 10", ["compare", runs, "--sort", "-max:eval_acc", "--top", "10"])
        timed("compare --format json", ["compare", runs, "--format", "json"])
        timed("compare --group-by ... --plot", ["compare", runs, "--group-by", "schedule,augmentation", "--plot", f"{tmp}/g.png"])
        timed("compare --plot (200 curves)", ["compare", runs, "--plot", f"{tmp}/r.png"])
        fresh = {
            "fresh process: compare": [],
            "fresh process: compare --group-by": ["--group-by", "schedule,augmentation"],
            "fresh process: compare --group-by --plot": ["--group-by", "schedule,augmentation", "--plot", f"{tmp}/f.png"],
        }
        for label, extra in fresh.items():
            times = []
            for _ in range(3):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "dilbench", "compare", runs, *extra], check=True, capture_output=True)
                times.append(time.perf_counter() - started)
            print(f"{label:<44} best of 3 {min(times):6.3f} s")


if __name__ == "__main__":
    main()
