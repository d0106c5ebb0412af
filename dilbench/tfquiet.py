"""Import TensorFlow and initialise its devices without the C++ start-up chatter.

TensorFlow's oneDNN/CUDA notices are printed before absl logging starts, so TF_CPP_MIN_LOG_LEVEL does
not hide them; pointing file descriptor 2 at /dev/null for that moment does. Python errors still
surface: they are raised after the descriptor is restored. `--debug` keeps everything: the CLI says so
once at startup with set_verbose(True), for the whole process (as it sets TF_CPP_MIN_LOG_LEVEL).
"""

from __future__ import annotations

import contextlib
import os
import sys

_verbose = False  # --debug: keep TensorFlow's own output


def set_verbose(verbose: bool) -> None:
    global _verbose
    _verbose = verbose


@contextlib.contextmanager
def stderr_silenced():
    """File descriptor 2 points at /dev/null inside, unless --debug."""
    if _verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow(before_devices=None):
    """TensorFlow, imported and with its devices initialised; `before_devices()` runs first (e.g. to
    split the CPU into logical devices or create a strategy, which must precede device use)."""
    with stderr_silenced():
        import tensorflow as tf

        result = before_devices() if before_devices else None
        tf.config.list_logical_devices()
    return result
