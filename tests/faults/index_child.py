"""`dilbench compare` in a child process, started on a signal and killed at an exact moment of an index write.

    python tests/faults/index_child.py GO [FAULT] -- compare RUNS ...

GO is a file to wait for before starting (so that several children start together; "-": start now).
FAULT is ACTION@N: `kill@write=N` sends SIGKILL to this process halfway through writing the Nth shard
file of the index (its temp file is half written), `kill@rename=N` just before the Nth shard's temp file
is renamed into place (the temp file is complete, the old shard still in place).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def arm(fault: str) -> None:
    from dilbench.report import index_store

    action, _, spec = fault.partition("@")
    moment, _, count = spec.partition("=")
    assert action == "kill" and moment in ("write", "rename"), fault
    seen = {"writes": 0, "renames": 0}

    class Handle:
        def __init__(self, real):
            self.real = real

        def write(self, data):
            if moment == "write" and seen["writes"] == int(count) - 1 and len(data) > 1:
                self.real.write(data[: len(data) // 2])
                self.real.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return self.real.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            seen["writes"] += 1
            return self.real.__exit__(*exc)

    def shard_open(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115  # closed by the caller's `with`
        return Handle(handle) if ".shard." in str(path) and "x" in mode else handle

    real_replace = os.replace

    def replace(source, target, *args, **kwargs):
        if str(target).endswith(".shard"):
            seen["renames"] += 1
            if moment == "rename" and seen["renames"] == int(count):
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(source, target, *args, **kwargs)

    index_store.open = shard_open  # type: ignore[attr-defined]  # the module's own name for open: only shard writes
    index_store.os.replace = replace  # type: ignore[attr-defined]


def main() -> None:
    args = sys.argv[1:]
    split = args.index("--")
    go, faults, command = args[0], args[1:split], args[split + 1:]
    while go != "-" and not Path(go).exists():
        time.sleep(0.005)
    for fault in faults:
        arm(fault)
    from dilbench.cli import cli

    cli(command, prog_name="dilbench")


if __name__ == "__main__":
    main()
