"""What the Trainer's per-batch events cost (issue 23): the batch_ended dispatch to the listeners every run has
(progress display, non-finite policy, periodic checkpoint at its default interval), with the BatchEnd record and
the epoch sums the loop keeps for it, timed alone over many batches; set beside the quickstart's bare compiled
step timed in the same process. The dispatch is pure Python and tiny, so this ratio is steadier on a loaded
machine than two end-to-end epochs are (benchmarks/bench_listeners.sh runs those).

    python benchmarks/bench_listeners.py [--batches 200000]
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import time
from types import SimpleNamespace

from dilbench.training.checkpoints import PeriodicCheckpoint
from dilbench.training.finite import NonFiniteLoss
from dilbench.training.listeners import BatchEnd
from dilbench.training.progress import ProgressDisplay


def dispatch_seconds(batches: int, tty: bool) -> float:
    """Seconds per batch of building BatchEnd and emitting it to the standard listeners, as Trainer._emit does."""
    display = ProgressDisplay()
    listeners = [display, NonFiniteLoss(), PeriodicCheckpoint(None, "15min")]  # type: ignore[arg-type]
    trainer = SimpleNamespace(config=SimpleNamespace(train=SimpleNamespace(epochs=1)))
    if tty:  # a tqdm bar as on a terminal, drawing to nowhere
        import io

        from tqdm import tqdm
        for listener in listeners:
            listener.epoch_started(trainer, 0, batches, 0)  # type: ignore[arg-type]
        assert display.progress is not None
        display.progress.bar = tqdm(total=batches, file=io.StringIO(), leave=False)
    else:
        for listener in listeners:
            listener.epoch_started(trainer, 0, batches, 0)  # type: ignore[arg-type]
    loss_sum, correct, seen, started = 0.0, 0, 0, time.perf_counter()
    begin = time.perf_counter()
    for step in range(batches - 1):  # the last batch closes nothing here; the epoch end does that
        loss, batch_correct, batch = 2.3, 7, 64
        loss_sum += loss * batch
        correct += batch_correct
        seen += batch
        event = BatchEnd(0, step + 1, batches, loss, loss_sum / seen, correct / seen,
                         seen / max(1e-9, time.perf_counter() - started))
        for listener in listeners:
            listener.batch_ended(trainer, event)  # type: ignore[arg-type]
    return (time.perf_counter() - begin) / (batches - 1)


def step_seconds() -> float:
    """Seconds per bare compiled training step of the quickstart (standard schedule), from `dilbench bench`."""
    out = subprocess.run([sys.executable, "-m", "dilbench", "bench", "quickstart", "--no-keras", "--steps", "20",
                          "--rounds", "3", "-q"], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"^standard\s+([0-9.]+)", out, re.M).group(1)) / 1000  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=200_000)
    args = parser.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), platform.processor())
    with open("/proc/loadavg") as loadavg:
        print(f"{model}; load {loadavg.read().split()[:3]}")
    step = step_seconds()
    print(f"quickstart bare compiled step (standard, batch 64): {step * 1e3:.1f} ms")
    for tty in (False, True):
        per_batch = dispatch_seconds(args.batches, tty)
        print(f"batch_ended dispatch ({'tqdm bar' if tty else 'log lines'}): {per_batch * 1e6:.2f} us a batch, "
              f"{per_batch / step:.4%} of the step")


if __name__ == "__main__":
    main()
