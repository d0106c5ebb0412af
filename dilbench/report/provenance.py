"""Reading a run's provenance back (meta.json `provenance` and `resumes[].provenance`, launch/provenance.py):
for `show`, and (as `summary`, kept in the summary index) the `data_sha256` and `dirty` columns of compare and
the warnings of groups and results pages. No TensorFlow.

A run is made of segments, its start and each resume; each records its own source, data and machine.
Runs from before provenance was recorded have only `git` (commit and dirty flag): read as a start
segment with that source and no data digest.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

SHORT = 12  # hex digits of a digest or commit in tables, as git shows commits


def segments(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The provenance of the start, then of each resume that recorded one."""
    start = meta.get("provenance")
    if not isinstance(start, dict):
        start = {"source": meta["git"]} if isinstance(meta.get("git"), dict) else {}
    resumed = [r["provenance"] for r in meta.get("resumes") or [] if isinstance(r, dict) and isinstance(r.get("provenance"), dict)]
    return [start, *resumed]


def data_digests(meta: dict[str, Any]) -> list[str]:
    """The data SHA-256 of each segment that recorded one, distinct, in order (two: the run read two copies)."""
    found = [(p.get("data") or {}).get("sha256") for p in segments(meta)]
    return list(dict.fromkeys(d for d in found if isinstance(d, str)))


def dirty(meta: dict[str, Any]) -> bool | None:
    """Whether any segment ran from a tree that differs from its commit (None: no git information)."""
    flags = [(p.get("source") or {}).get("dirty") for p in segments(meta)]
    known = [flag for flag in flags if isinstance(flag, bool)]
    return any(known) if known else None


def source_state(meta: dict[str, Any]) -> str | None:
    """The source every segment ran from, as `commit[+patch]` parts (None: no git information)."""
    states = []
    for part in segments(meta):
        source = part.get("source") or {}
        if source.get("commit"):
            patch = source.get("patch_sha256") or ("dirty" if source.get("dirty") else "")
            states.append(str(source["commit"])[:SHORT] + (f"+{str(patch)[:SHORT]}" if patch else ""))
    return " then ".join(dict.fromkeys(states)) or None


def summary(meta: dict[str, Any]) -> list[Any]:
    """What compare's columns and `mixed` need of a run's provenance, small enough for the summary index to
    hold beside meta.json's other values (so a table of 100,000 runs never parses their meta.json again):
    [the short data digests, source_state, dirty]."""
    return [[d[:SHORT] for d in data_digests(meta)], source_state(meta), dirty(meta)]


NO_SUMMARY: list[Any] = [[], None, None]  # a run without a readable meta.json


def mixed(summaries: list[list[Any]]) -> list[str]:
    """Why runs meant to be alike may not be (their `summary`s): they read different data files, ran from
    different sources, or from uncommitted changes. One sentence each (empty when none)."""
    problems = []
    digests = Counter(" + ".join(data) for data, _, _ in summaries if data)
    if len(digests) > 1:
        problems.append("its runs read different data files (data sha256 " + ", ".join(
            f"{digest}: {count} run{'s' if count > 1 else ''}" for digest, count in digests.most_common()) + ")")
    sources = Counter(state for _, state, _ in summaries if state)
    if len(sources) > 1:
        problems.append("its runs ran from different sources (commit+patch " + ", ".join(
            f"{state}: {count} run{'s' if count > 1 else ''}" for state, count in sources.most_common()) + ")")
    flags = [flag for _, _, flag in summaries]
    if any(flags):
        problems.append(f"{sum(bool(f) for f in flags)} of {len(summaries)} runs ran from uncommitted changes "
                        "(each run's source.patch holds them)")
    return problems


def describe(meta: dict[str, Any], run_path: str) -> list[tuple[str, str]]:
    """`show`'s provenance lines: (label, text)."""
    parts = segments(meta)
    start = parts[0]
    if not start:
        return []
    pairs = _source(start.get("source"), run_path)
    data = start.get("data")
    if isinstance(data, dict) and data.get("sha256"):
        pairs.append(("data", f"{data.get('dataset', '?')} {data.get('path', '?')} ({_bytes(data.get('size'))}, "
                              f"{data.get('file_count', 1)} file(s), sha256 {data['sha256']})"))
    machine = start.get("machine")
    if isinstance(machine, dict):
        gpus = start.get("gpus")
        gpu_text = ", ".join(str(g.get("name", "?")) for g in gpus) if gpus else "no GPU"
        cpus = f"{machine.get('cpu_count', '?')} CPUs" + (f" ({machine['cpus_usable']} usable)" if machine.get("cpus_usable")
                                                             not in (None, machine.get("cpu_count")) else "")
        pairs.append(("machine", f"{machine.get('cpu', '?')}, {cpus}, {_bytes(machine.get('memory_bytes'))} memory; {gpu_text}"))
    build = start.get("tensorflow")
    if isinstance(build, dict):
        cuda = ", ".join(f"{name} {build[key]}" for name, key in (("CUDA", "cuda_version"), ("cuDNN", "cudnn_version"))
                         if build.get(key))
        pairs.append(("tensorflow", f"{build.get('version', '?')}" + (f" (built with {cuda})" if cuda else "")))
    if isinstance(start.get("env"), dict):
        pairs.append(("env", " ".join(f"{k}={v}" for k, v in start["env"].items()) or "-"))
    if isinstance(start.get("packages"), dict):
        pairs.append(("packages", f"{len(start['packages'])} installed (meta.json: provenance.packages)"))
    for number, later in enumerate(parts[1:], start=1):
        pairs.append((f"resume {number}", _changes(parts[number - 1], later)))
    return pairs


def _source(source: Any, run_path: str) -> list[tuple[str, str]]:
    if not isinstance(source, dict) or not source.get("commit"):
        return [("source", str((source or {}).get("error") or "not a git checkout"))] if isinstance(source, dict) else []
    text = f"{source['commit'][:SHORT]}{' (dirty)' if source.get('dirty') else ''} in {source.get('repo', '?')}"
    if source.get("untracked_count"):
        text += f"; {source['untracked_count']} untracked file(s)"
    pairs = [("source", text)]
    if source.get("patch"):
        digest = str(source.get("patch_sha256"))[:SHORT]
        pairs.append(("patch", f"{source['patch']} ({_bytes(source.get('patch_bytes'))}, sha256 {digest})"))
        pairs.append(("", f"re-create it in a clone: git checkout {source['commit']} && git apply {run_path}/{source['patch']}"))
    for entry in source.get("patch_omitted") or []:
        pairs.append(("not in patch", f"{entry.get('path')}: {entry.get('reason')}"))
    return pairs


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a resume ran on that its previous segment did not."""
    changes = []
    old, new = before.get("source") or {}, after.get("source") or {}
    if any(old.get(key) != new.get(key) for key in ("commit", "dirty", "patch_sha256")):
        changes.append(f"source {str(new.get('commit', '?'))[:SHORT]}{' (dirty)' if new.get('dirty') else ''}"
                       + (f", {new['patch']}" if new.get("patch") else ""))
    if (before.get("data") or {}).get("sha256") != (after.get("data") or {}).get("sha256"):
        changes.append(f"data sha256 {str((after.get('data') or {}).get('sha256'))[:SHORT]}")
    old_packages, new_packages = before.get("packages") or {}, after.get("packages") or {}
    changed = [f"{name} {old_packages.get(name, '-')} -> {new_packages.get(name, '-')}"
               for name in sorted(set(old_packages) | set(new_packages), key=str.lower)
               if old_packages.get(name) != new_packages.get(name)]
    if changed:
        changes.append("packages " + ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else ""))
    if (before.get("machine") or {}).get("cpu") != (after.get("machine") or {}).get("cpu") or before.get("gpus") != after.get("gpus"):
        changes.append("machine " + str((after.get("machine") or {}).get("cpu", "?")))
    return "; ".join(changes) or "same source, data and packages"


def _bytes(count: Any) -> str:
    if not isinstance(count, (int, float)):
        return "?"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return "?"
