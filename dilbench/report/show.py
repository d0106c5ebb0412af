"""`dilbench show RUN_DIR`: one run on one screen (no TensorFlow).

Status, provenance (source and how to re-create it, data, machine, packages), a config summary, final and
best metrics with the run's peak memory and CPU use, how often each layer group was updated, and where its
plots, TensorBoard events, checkpoints and log are. Written from the same forgiving RunRecord as
compare, so a running, failed or damaged run is shown with its problems instead of an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dilbench.errors import UsageError
from dilbench.report.columns import BUILTINS, is_number
from dilbench.report.formats import cell
from dilbench.report.provenance import describe as describe_provenance
from dilbench.report.runs_index import RunRecord, is_run_dir, read_run
from dilbench.runs.owner import describe as describe_owner
from dilbench.runs.rundir import RunDir
from dilbench.tables import text_table

METRIC_KEYS = ("eval_acc", "eval_loss", "train_acc", "train_loss")


def show(path: str | Path) -> str:
    path = Path(path)
    if not path.is_dir() or not is_run_dir(path):
        raise UsageError(f"{path}: not a dilbench run directory (no config.yaml or meta.json); pass a directory under runs/")
    run = read_run(path)
    sections = [_header(run), _provenance(run), _config(run), _metrics(run), _updates(run), _files(RunDir(path))]
    run.reader.save()
    return "\n\n".join(section for section in sections if section) + "\n"


def _header(run: RunRecord) -> str:
    meta = run.meta
    planned = run.config.get("train.epochs")
    progress = f"{len(run.metrics)}/{planned} epochs" if planned is not None else f"{len(run.metrics)} epochs"
    pairs = [("run", str(run.path)), ("status", f"{run.status} ({progress})")]
    times = [f"{key} {meta[key]}" for key in ("created", "started", "ended") if meta.get(key)]
    if times:
        pairs.append(("time", ", ".join(times)))
    if meta.get("resumes"):
        pairs.append(("resumed", f"{len(meta['resumes'])} time(s), last at {meta['resumes'][-1].get('at', '?')}"))
    git = meta.get("git") or {}
    if git.get("commit"):
        pairs.append(("git", f"{git['commit'][:12]}{' (dirty)' if git.get('dirty') else ''}"))
    if meta.get("host"):
        pairs.append(("host", f"{meta['host']}  devices: {', '.join(meta.get('devices') or []) or '-'}"))
    if run.status in ("crashed", "stale") and isinstance(meta.get("owner"), dict):
        gone = "is gone" if run.status == "crashed" else "runs on another host and cannot be checked from here"
        pairs.append(("owner", f"{describe_owner(meta['owner'])} {gone}; continue with: dilbench train --resume {run.path}"))
    if run.tags:
        pairs.append(("tags", ", ".join(run.tags)))
    if run.note:
        pairs += [("note" if i == 0 else "", line) for i, line in enumerate(run.note.splitlines())]
    if meta.get("error"):
        pairs.append(("error", str(meta["error"])))
    if meta.get("pruned"):
        pairs.append(("pruned", str(meta["pruned"])))
    search = meta.get("search")
    if isinstance(search, dict):
        params = ", ".join(f"{key}={cell(value, False)}" for key, value in (search.get("params") or {}).items())
        role = "trial" if search.get("role") == "tune" else "confirmation run of the best trial,"
        pairs.append(("search", f"{role} {search.get('trial', '?')} of study {search.get('study', '?')}: {params or '-'}"))
    pairs += [("problem", problem) for problem in run.problems]
    return text_table(pairs)


def _provenance(run: RunRecord) -> str:
    """Where the run came from: source (and how to re-create a dirty one), data, machine, environment, packages."""
    pairs = describe_provenance(run.meta, str(run.path))
    return "provenance\n" + text_table(pairs, indent="  ") if pairs else ""


def _config(run: RunRecord) -> str:
    """Top-level scalars on one line, then one line per section: generic, so new keys just appear."""
    if not run.config:
        return "config: -"
    top = [f"{key}: {cell(value, False)}" for key, value in run.config.items() if "." not in key]
    sections: dict[str, list[str]] = {}
    for key, value in run.config.items():
        if "." in key:
            section, rest = key.split(".", 1)
            sections.setdefault(section, []).append(f"{rest}={cell(value, False)}")
    lines = ["config", "  " + "   ".join(top)] if top else ["config"]
    lines += [text_table([(s, " ".join(items)) for s, items in sections.items()], indent="  ")] if sections else []
    return "\n".join(lines)


def _metrics(run: RunRecord) -> str:
    if not run.metrics:
        return "metrics: no finished epoch yet"
    split = run.metrics[-1].get("eval_split", "test")
    best = max((r for r in run.metrics if is_number(r.get("eval_acc"))), key=lambda r: r["eval_acc"], default=None)
    header = ["", "epoch", *METRIC_KEYS]
    rows = [["final", *_record_cells(run.metrics[-1])]]
    if best is not None:
        rows.append(["best eval_acc", *_record_cells(best)])
    table = text_table(rows, header, [False] + [True] * (len(header) - 1), "  ").splitlines()
    shown: tuple[str, ...] = ("gap", "wall_time", "train_time", "eval_time", "images_per_s")
    shown += tuple(name for name in ("train_flops", "peak_rss_mib", "cpu_util", "gpu_peak_mib") if BUILTINS[name][1](run) is not None)
    extras = "  ".join(f"{name} {cell(BUILTINS[name][1](run), True)}" for name in shown)
    return "\n".join([f"metrics (eval_* on the {split} split)", *table, "  " + extras])


def _record_cells(record: dict[str, Any]) -> list[str]:
    return [str(record.get("epoch", "-")), *(cell(record.get(key), True) for key in METRIC_KEYS)]


def _updates(run: RunRecord) -> str:
    """Updates per layer group in the last epoch and in total; equal neighbours share a line."""
    last = run.metrics[-1] if run.metrics else {}
    per_epoch, total = last.get("updates"), last.get("updates_total")
    if not isinstance(per_epoch, list) or not isinstance(total, list) or len(per_epoch) != len(total):
        return ""
    spans: list[tuple[int, int, tuple[Any, Any]]] = []
    for index, pair in enumerate(zip(per_epoch, total), start=1):
        if spans and spans[-1][2] == pair:
            spans[-1] = (spans[-1][0], index, pair)
        else:
            spans.append((index, index, pair))
    pairs = [(f"group{a}" if a == b else f"group{a}-{b}", f"{p[0]} / {p[1]}") for a, b, p in spans]
    return f"updates per group (epoch {last.get('epoch', len(run.metrics))} / total)\n" + text_table(pairs, indent="  ")


def _files(run: RunDir) -> str:
    plots = sorted(run.plots.glob("*.png")) if run.plots.is_dir() else []
    events = [p for p in run.events.rglob("*") if p.is_file()] if run.events.is_dir() else []
    boards = sorted({p.parent.name for p in events if p.parent != run.events})  # train, eval
    checkpoints = sorted(p.name for p in run.checkpoints.iterdir() if p.is_dir()) if run.checkpoints.is_dir() else []
    pairs = [("plots", str(p)) for p in plots] or [("plots", "-")]
    where = f"{run.events} (TensorBoard runs: {', '.join(boards)})" if boards else str(run.events)
    pairs.append(("events", where if events else "-"))
    if events:
        pairs.append(("", f"dilbench tensorboard {run.path}"))
    pairs.append(("checkpoints", f"{run.checkpoints}: {', '.join(checkpoints)}" if checkpoints else "-"))
    pairs.append(("log", str(run.log_file) if run.log_file.is_file() else "-"))
    return "files\n" + text_table(pairs, indent="  ")
