"""Run `dilbench` with faults injected at exact moments: the fault-injection tests' child process.

    python tests/faults/inject.py SPEC... -- train CONFIG --runs-dir D ...

A SPEC is ACTION@WHEN, or acc=A,B,... (the evaluation accuracy each epoch reports, by epoch, so that
which epoch is "best" is the test's choice; losses and weights stay real):

    ACTION  kill     SIGKILL this process (nothing runs after it: no handler, no finally)
            fill     fill the file system holding $FAULT_FILL (a file created there) to the last byte
            nan      set the first weight of the model to NaN (the loss of that step was finite)
            nanslot  set the last group's first Adam slot to NaN (the weights stay finite until the next update)
            wait     create $FAULT_DIR/waiting, then block until $FAULT_DIR/go exists
    WHEN    step=E.S            after step S of epoch E (1-based) is done
            save=N              inside the Nth checkpoint save of this process, after TensorFlow wrote its
                                ckpt-N_temp/ files and before it merges them
            write=NAME[:TEXT]   inside an atomic write of file NAME (whose new text holds TEXT), after the
                                temp file is written and before it is renamed into place

Hooks sit on dilbench's own seams (Progress.update, os.replace, TensorFlow's merge op), so the code under
test runs unchanged.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

SPECS: list[tuple[str, str, str]] = []  # (action, kind, argument)
ACCURACY: list[float] = []
STATE = {"trainer": None, "saves": 0, "merge_armed": None}


def act(action: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "fill":
        fill(Path(os.environ["FAULT_FILL"]))
    elif action in ("nan", "nanslot"):
        import numpy as np

        trainer = STATE["trainer"]
        variable = trainer.model.variables[0] if action == "nan" else trainer.optimizers[-1].m[0]
        variable.assign(np.full(variable.shape, np.nan, dtype="float32"))
    elif action == "wait":
        directory = Path(os.environ["FAULT_DIR"])
        (directory / "waiting").write_text(str(os.getpid()))
        while not (directory / "go").exists():
            time.sleep(0.02)
    else:
        raise SystemExit(f"inject.py: unknown action {action!r}")


def fill(path: Path) -> None:
    """Write to `path` until the file system says no space; the bytes stay (it is the test's to remove)."""
    chunk = b"\0" * 4096
    with open(path, "ab", buffering=0) as handle:
        for size in (1 << 20, 4096):
            block = chunk * (size // 4096)
            try:
                while True:
                    handle.write(block)
            except OSError:
                continue


def fire(kind: str, matches) -> None:
    for action, spec_kind, argument in SPECS:
        if spec_kind == kind and matches(argument):
            act(action)


def install() -> None:
    """Hooks that need no TensorFlow: steps, atomic writes; the rest once dilbench imported TensorFlow."""
    from dilbench import launch
    from dilbench.training import progress

    update = progress.Progress.update

    def update_then_fire(self, **stats):
        update(self, **stats)
        epoch = int(self.description.split()[1].split("/")[0])
        fire("step", lambda arg: arg == f"{epoch}.{self.done}")

    progress.Progress.update = update_then_fire

    replace = os.replace

    def replace_then_fire(src, dst, *args, **kwargs):
        name = Path(dst).name

        def matches(argument: str) -> bool:
            target, _, text = argument.partition(":")
            return target == name and (not text or text in Path(src).read_text(errors="replace"))

        fire("write", matches)
        return replace(src, dst, *args, **kwargs)

    os.replace = replace_then_fire

    import_tensorflow = launch.import_tensorflow

    def import_then_hook(*args, **kwargs):
        result = import_tensorflow(*args, **kwargs)
        hook_tensorflow()
        return result

    launch.import_tensorflow = import_then_hook


def hook_tensorflow() -> None:
    import tensorflow as tf
    from tensorflow.python.ops import gen_io_ops

    from dilbench.training import trainer as trainer_module

    init = trainer_module.Trainer.__init__

    def init_and_keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        STATE["trainer"] = self

    trainer_module.Trainer.__init__ = init_and_keep

    evaluate = trainer_module.Trainer.evaluate

    def scripted_evaluate(self):
        loss, accuracy = evaluate(self)
        epoch = int(self.state.epoch)  # 0-based during the epoch's evaluation
        return loss, ACCURACY[epoch] if epoch < len(ACCURACY) else accuracy

    if ACCURACY:
        trainer_module.Trainer.evaluate = scripted_evaluate

    save = tf.train.CheckpointManager.save

    def counted_save(self, *args, **kwargs):
        STATE["saves"] += 1
        STATE["merge_armed"] = STATE["saves"]
        try:
            return save(self, *args, **kwargs)
        finally:
            STATE["merge_armed"] = None

    tf.train.CheckpointManager.save = counted_save
    merge = gen_io_ops.merge_v2_checkpoints

    def merge_after_fire(*args, **kwargs):
        if STATE["merge_armed"] is not None:
            fire("save", lambda arg: int(arg) == STATE["merge_armed"])
        return merge(*args, **kwargs)

    gen_io_ops.merge_v2_checkpoints = merge_after_fire


def main(argv: list[str]) -> None:
    split = argv.index("--")
    for spec in argv[:split]:
        if spec.startswith("acc="):
            ACCURACY.extend(float(a) for a in spec[4:].split(","))
            continue
        action, _, when = spec.partition("@")
        kind, _, argument = when.partition("=")
        SPECS.append((action, kind, argument))
    install()
    from dilbench.cli import cli

    cli.main(args=argv[split + 1:], prog_name="dilbench")


if __name__ == "__main__":
    main(sys.argv[1:])
