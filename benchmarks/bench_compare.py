"""How long `dilbench compare` takes on 200 to 100,000 synthetic runs of 50 epochs, with its summary index
cold (none yet: every run's files read, the index written) and warm, each call a fresh process.

For each size (the runs of a size include those of the smaller ones: the directory grows) it times:
  * generating the runs (benchmarks/synthetic_runs.py);
  * `compare RUNS` with the index deleted first (cold), then warm: the default table, `--group-by`,
    `--sort -max:eval_acc --top 10`, `--format json` and `--plot` (best of --repeat processes, up to --repeat-up-to runs; once above);
  * a warm call after one run gained an epoch, with the files it parsed (from `--debug`);
  * the same table with DILBENCH_INDEX=off, and with the code of --baseline (a checkout before the
    index, e.g. the main worktree), up to --baseline-up-to runs.
Each number is wall seconds; in brackets the process's CPU seconds (user + system), which the other
jobs on a shared machine do not inflate. Prints a Markdown table; asserts nothing.

    python benchmarks/bench_compare.py [--sizes 200,2000,10000,100000] [--root DIR] [--baseline ../main]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from synthetic_runs import write_runs

REPO = Path(__file__).resolve().parents[1]
WARM = {
    "default table": [],
    "--group-by schedule,augmentation": ["--group-by", "schedule,augmentation"],
    "--sort -max:eval_acc --top 10": ["--sort", "-max:eval_acc", "--top", "10"],
    "--format json": ["--format", "json"],
}


def run(runs: Path, args: list[str], env: dict[str, str] | None = None, code: Path = REPO) -> tuple[float, float, str]:
    """One fresh `python -m dilbench compare RUNS ARGS`: (wall seconds, CPU seconds, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dilbench", "compare", str(runs), *args], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(code), **(env or {})}, cwd=code)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"compare {' '.join(args)}: exit {result.returncode}: {result.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result.stderr


def best(runs: Path, args: list[str], repeat: int, **kwargs) -> tuple[float, float]:
    times = [run(runs, args, **kwargs)[:2] for _ in range(repeat)]
    return min(times)


def cell(measured: tuple[float, float] | None) -> str:
    return "–" if measured is None else f"{measured[0]:.2f} ({measured[1]:.2f})"


def one_more_epoch(runs: Path) -> str:
    """Append an epoch to one run's metrics.jsonl as the trainer writes it (temp file + rename); its name."""
    run_dir = sorted(p for p in runs.iterdir() if not p.name.startswith("."))[len(list(runs.iterdir())) // 2]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records.append({**records[-1], "epoch": records[-1]["epoch"] + 1})
    temp = run_dir / ".metrics.jsonl.bench.tmp"
    temp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    temp.replace(run_dir / "metrics.jsonl")
    old = time.time() - 60  # older than the index's 2 s racy window, so the warm call can keep it
    os.utime(run_dir / "metrics.jsonl", (old, old))
    return run_dir.name


def machine() -> str:
    cpu = re.search(r"Model name:\s*(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    load = os.getloadavg()
    return (f"CPU: {cpu.group(1).strip() if cpu else platform.processor()}, {os.cpu_count()} cores; Python "
            f"{platform.python_version()}; load average {load[0]:.1f} at the start")


def format_row(row: tuple) -> str:
    size, generated, cold, index_mb, warm, plot, changed, parsed, off, before, load = row
    return (f"| {size:,} | {generated:.0f} s | {cell(before)} | {cell(off)} | {cell(cold)} | "
            + " | ".join(cell(warm[label]) for label in WARM)
            + f" | {cell(plot)} | {cell(changed)} ({parsed}) | {index_mb:.0f} MB | {load:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000,10000,100000")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-up-to", type=int, default=10000, help="larger sizes time each warm call once")
    parser.add_argument("--root", type=Path, help="where to write the runs (default: a temporary directory, removed after)")
    parser.add_argument("--baseline", type=Path, help="a checkout of dilbench without the index, timed for comparison")
    parser.add_argument("--baseline-up-to", type=int, default=10000)
    parser.add_argument("--plot-up-to", type=int, default=100000)
    parser.add_argument("--off-up-to", type=int, default=10000)
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    root = options.root or Path(tempfile.mkdtemp(prefix="bench-compare-"))
    runs = root / "runs"
    print(machine(), f"; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    rows, have = [], 0
    try:
        for size in sizes:
            generated = write_runs(runs, size - have, options.epochs, start=have)
            have = size
            time.sleep(2.1)  # files changed within 2 s are read again each call (index_store.RACY_NS): runs are older
            shutil.rmtree(runs / ".dilbench-index", ignore_errors=True)
            cold = run(runs, [])[:2]
            print(f"{size} runs: generated in {generated:.0f} s, cold {cold[0]:.1f} s ({cold[1]:.1f} s CPU)", file=sys.stderr, flush=True)
            index_mb = sum(f.stat().st_size for f in (runs / ".dilbench-index").iterdir()) / 1e6
            repeat = options.repeat if size <= options.repeat_up_to else 1
            warm = {label: best(runs, args, repeat) for label, args in WARM.items()}
            plot = best(runs, ["--plot", str(root / "plot.png")], min(2, repeat)) if size <= options.plot_up_to else None
            changed = one_more_epoch(runs)
            wall, cpu, stderr = run(runs, ["--debug"])
            parsed = re.search(r"parsed ([^;]+);", stderr)
            off = best(runs, [], 1, env={"DILBENCH_INDEX": "off"}) if size <= options.off_up_to else None
            before = (best(runs, [], 1, code=options.baseline) if options.baseline and size <= options.baseline_up_to else None)
            load = os.getloadavg()[0]
            rows.append((size, generated, cold, index_mb, warm, plot, (wall, cpu), parsed.group(1) if parsed else "?", off, before, load))
            print(f"{size} runs done: cold {cold[0]:.1f} s, warm {warm['default table'][0]:.2f} s; after one change "
                  f"({changed}): parsed {rows[-1][7]}", file=sys.stderr)
            print(f"  row: {format_row(rows[-1])}", file=sys.stderr, flush=True)  # survives a benchmark stopped later
    finally:
        if options.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print(machine().replace("at the start", f"at the start, {os.getloadavg()[0]:.1f} at the end"))
    print()
    header = ["runs x 50 epochs", "generate", "before the index (baseline code)", "index off", "cold (index written)",
              *(f"warm: {label}" for label in WARM), "warm: --plot", "warm, one run changed (files parsed)", "index size", "load (1 min)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    for row in rows:
        print(format_row(row))
    medians = {label: statistics.median(row[4][label][0] for row in rows) for label in WARM}
    print(f"\nmedian over sizes of the warm calls: {', '.join(f'{k} {v:.2f} s' for k, v in medians.items())}", file=sys.stderr)


if __name__ == "__main__":
    main()
