"""`dilbench tensorboard`: TensorBoard on run directories, started from Python (no TensorFlow import).

One directory becomes TensorBoard's `--logdir`; several become a `--logdir_spec` named by their last
path parts, so two sweeps' `runs/quick` stay apart. Binds to 127.0.0.1 unless told otherwise: event
files name hosts, paths and configs, which is not for the whole network by default.
"""

from __future__ import annotations

from pathlib import Path

from dilbench.errors import UsageError


def logdir_flags(paths: list[Path]) -> list[str]:
    """`--logdir DIR` for one directory; for several, `--logdir_spec name:DIR,...`, each named by as few
    trailing path parts as tell it from the others (`a/runs/quick`, `b/runs/quick`, `full`)."""
    for path in paths:
        if not path.is_dir():
            raise UsageError(f"{path}: no such directory; pass run directories or directories of runs (e.g. runs/)")
    resolved = list(dict.fromkeys(path.resolve() for path in paths))
    if len(resolved) == 1:
        return ["--logdir", str(resolved[0])]
    for path in resolved:
        if "," in str(path) or ":" in str(path):
            raise UsageError(f"{path}: TensorBoard cannot take a path with ',' or ':' among several; pass it alone")

    def short_name(path: Path) -> str:
        others = [other for other in resolved if other != path]
        depth = next(d for d in range(1, len(path.parts) + 1) if all(path.parts[-d:] != o.parts[-d:] for o in others))
        return "/".join(path.parts[-depth:]).lstrip("/")

    names = [short_name(path) for path in resolved]
    return ["--logdir_spec", ",".join(f"{name}:{path}" for name, path in zip(names, resolved))]


def start_tensorboard(paths: list[Path], host: str, port: int | None) -> str:
    """Start TensorBoard in a background thread of this process; returns its URL.

    `port` None: the first free port from 6006 up (TensorBoard's own search); 0: any free port."""
    from tensorboard import program

    board = program.TensorBoard()
    port_flags = [] if port is None else ["--port", str(port)]
    board.configure(argv=[None, *logdir_flags(paths), "--host", host, *port_flags])
    try:
        return board.launch()
    except program.TensorBoardServerException as err:
        raise UsageError(f"cannot start TensorBoard: {err.msg}; pick another --port (or leave it out)") from None
