"""Synthetic run directories for benchmarks, written fast: text from templates and precomputed epoch
records (about 0.1 ms a run), so writing is what takes the time (about 1 ms a run on a VM's ext4; one
process, since parallel file creation there is slower than serial).

Each run is what the trainer leaves that `dilbench compare` reads: config.yaml as dump_config writes
it (block sections, flat lists in flow style), meta.json (status completed, owner, git, versions) and
metrics.jsonl with every key a real run records (8 layer groups). events/, plots/ and checkpoints/
are left out: compare never opens them, and at 100,000 runs they would be 300,000 more inodes.

    python benchmarks/synthetic_runs.py DIR --runs 10000 [--epochs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

SCHEDULES = ("standard", "unfair_back", "unfair_front")
AUGMENTATION = ("none", "paired")
GROUPS = 8
CHUNK = 500

CONFIG = """name: {name}
seed: {seed}
precision: bfloat16
data:
  dataset: cifar10
  root: null
  train_subset: null
  test_subset: null
  validation: 0.0
model:
  name: allconv9
  width: 1.0
  channels: [256, 256, 128, 128, 128, 64, 64, 64, 10]
schedule:
  name: {schedule}
  substeps: null
  freezeout: null
optimizer:
  name: adam
  lr: {lr}
  beta1: 0.9
  beta2: 0.9
  epsilon: 1.0e-08
  group_lr: null
augmentation:
  mode: {augmentation}
  random_order: false
  ops: []
train:
  epochs: {epochs}
  batch_size: 10
  eval: test
  lr_schedule: constant
  batch_size_is: global
runtime:
  distribute: none
  devices: []
  xla: false
  eval_batch_size: 500
  deterministic: false
  checkpoint_every: 15min
"""

META = """{{
  "best_eval_acc": {best},
  "command": ["dilbench", "train", "configs/{schedule}.yaml", "--set", "seed={seed}"],
  "created": "2026-11-22T07:00:00+00:00",
  "devices": ["CPU:0"],
  "ended": "2026-11-22T09:00:00+00:00",
  "epochs_done": {epochs},
  "error": null,
  "eval_split": "test",
  "final_eval_acc": {final},
  "git": {{"commit": "9b825dc38165c29fa34f907472bc95b116cf94b9", "dirty": false, "repo": "/src/dilbench"}},
  "host": "bench",
  "name": "{name}",
  "owner": {{"boot_id": "61cc09e2-1085-4e48-a7ca-6df6ad334100", "host": "bench", "pid": {pid}, "start_ticks": 1538591}},
  "python": "3.11.7",
  "resumes": [],
  "seed": {seed},
  "started": "2026-11-22T07:00:00+00:00",
  "status": "completed",
  "train_flops": {flops!r},
  "versions": {{"dilbench": "0.1.0", "keras": "3.15.1", "numpy": "2.4.6", "tensorflow": "2.21.0"}}
}}
"""

RECORD = ('{{"epoch": {epoch}, "eval_acc": {eval_acc!r}, "eval_loss": {eval_loss!r}, "eval_seconds": {eval_seconds!r}, '
          '"eval_split": "test", "images_per_s": {ips!r}, "seconds": {seconds!r}, "train_acc": {train_acc!r}, '
          '"train_flops": {flops!r}, "train_loss": {train_loss!r}, "train_seconds": {train_seconds!r}, '
          '"updates": {updates}, "updates_total": {updates_total}}}\n')


VARIANTS = 64  # learning curves per schedule; a run follows one, with its own noise picked per epoch
NOISE = 16
_RECORDS: dict[tuple[str, int], list[list[list[tuple[float, str]]]]] = {}


def _records(schedule: str, epochs: int) -> list[list[list[tuple[float, str]]]]:
    """[curve][epoch] -> NOISE (eval_acc, JSON line) variants of that epoch on that curve: made once per process."""
    key = (schedule, epochs)
    if key not in _RECORDS:
        rng = random.Random(schedule)
        per_epoch = [5000 * (g + 1) if schedule == "unfair_back" else 5000 for g in range(GROUPS)]
        flops_per_epoch = 1.5e12 * (4.5 if schedule == "unfair_back" else 1.0)
        curves = []
        for curve in range(VARIANTS):
            rate, ceiling = 0.02 + 0.1 * curve / VARIANTS, 0.8 + 0.15 * rng.random()
            table = []
            for epoch in range(1, epochs + 1):
                variants = []
                for _ in range(NOISE):
                    acc = ceiling - (ceiling - 0.1) * (1 - rate) ** epoch + rng.uniform(-0.005, 0.005)
                    eval_acc = round(acc - rng.uniform(0.02, 0.05), 4)
                    train_seconds, eval_seconds = rng.uniform(100, 130), rng.uniform(5, 8)
                    variants.append((eval_acc, RECORD.format(
                        epoch=epoch, eval_acc=eval_acc, eval_loss=2.3 * (1 - acc) + rng.uniform(0, 0.05), eval_seconds=eval_seconds,
                        ips=50000 / train_seconds, seconds=train_seconds + eval_seconds, train_acc=acc, flops=flops_per_epoch * epoch,
                        train_loss=2.3 * (1 - acc), train_seconds=train_seconds, updates=json.dumps(per_epoch),
                        updates_total=json.dumps([u * epoch for u in per_epoch]))))
                table.append(variants)
            curves.append(table)
        _RECORDS[key] = curves
    return _RECORDS[key]


def run_files(index: int, epochs: int) -> tuple[str, dict[str, str]]:
    """The directory name and file texts of run number `index` (deterministic in it)."""
    rng = random.Random(index)
    schedule, augmentation, seed = SCHEDULES[index % 3], AUGMENTATION[(index // 3) % 2], index // 6
    name = f"{schedule}-{augmentation}-s{seed}"
    curve = _records(schedule, epochs)[rng.randrange(VARIANTS)]
    picked = [variants[rng.randrange(NOISE)] for variants in curve]
    accuracies = [acc for acc, _ in picked]
    flops = 1.5e12 * (4.5 if schedule == "unfair_back" else 1.0) * epochs
    files = {
        "config.yaml": CONFIG.format(name=name, seed=seed, schedule=schedule, augmentation=augmentation,
                                     lr=(0.0001, 0.000316, 0.001)[index % 7 % 3], epochs=epochs),
        "meta.json": META.format(name=name, seed=seed, schedule=schedule, epochs=epochs, best=max(accuracies, default="null"),
                                 final=accuracies[-1] if epochs else "null", flops=flops, pid=1000 + index % 30000),
        "metrics.jsonl": "".join(line for _, line in picked),
    }
    return f"{name}-20261122-{index // 60 % 1000000:06d}-{index % 65536:04x}", files


def _write_chunk(job: tuple[str, int, int, int]) -> int:
    root, start, stop, epochs = job
    for index in range(start, stop):
        dirname, files = run_files(index, epochs)
        run = f"{root}/{dirname}"
        os.mkdir(run)
        for name, text in files.items():
            fd = os.open(f"{run}/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, text.encode())
            os.close(fd)
    return stop - start


def write_runs(root: Path, runs: int, epochs: int = 50, start: int = 0, processes: int | None = None) -> float:
    """Write runs number start..start+runs-1 under `root`; returns the seconds it took."""
    began = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(str(root), i, min(i + CHUNK, start + runs), epochs) for i in range(start, start + runs, CHUNK)]
    with ProcessPoolExecutor(processes or 1) as pool:  # more processes are slower: they contend for the file system
        assert sum(pool.map(_write_chunk, jobs)) == runs
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    options = parser.parse_args()
    seconds = write_runs(options.root, options.runs, options.epochs)
    print(f"wrote {options.runs} runs x {options.epochs} epochs under {options.root} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
