"""What a run is made from, captured when it starts and at every resume: meta.json's `provenance`.

- **source**: the git commit of the checkout dilbench runs from and, when the tree differs from it, a
  patch in the run directory (`source.patch`; `source-resume<N>.patch` for a resume whose tree differs
  again) such that `git checkout COMMIT && git apply RUN/source.patch` in a fresh clone gives the tree the
  run used: `git diff --binary HEAD` (staged and unstaged changes to tracked files, binary-safe) plus
  untracked, not ignored files of at most UNTRACKED_FILE_BYTES each, as new files. Cut at PATCH_BYTES, at a
  file boundary, so what is kept still applies; whatever is left out is listed with why (too large, the
  cap reached, or a name that looks like it holds a secret: `.env`, `*.pem`, `id_rsa`, `*token*`, ...).
  Untracked names are listed too (the first UNTRACKED_LISTED).
- **packages**: every installed distribution and its version (importlib.metadata, no `pip` process).
- **machine**: CPU model, logical CPUs (and those this process may use), memory; TensorFlow's version
  and build (CUDA, cuDNN) and the GPUs' names are added once TensorFlow is loaded (launch._train).
- **env**: the environment variables that change how a run executes, from an allowlist (ENV_PREFIXES,
  ENV_NAMES), minus any whose name contains TOKEN, SECRET, PASSW, KEY, CREDENTIAL, AUTH, PRIVATE or
  COOKIE, with the user:password part of any URL in a value masked. Nothing else of the environment is
  read, so a secret cannot reach meta.json by a name nobody thought of.
- **data**: the data files read: path, size and SHA-256 (data/cache.py computes it once per source).

No TensorFlow here. Every part is best effort: a failing `git` is recorded as the part's `error`, never
fails the run; only writing the patch into the run directory can (a full disk), like any run file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import subprocess
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from dilbench.runs.rundir import RunDir, write_atomic

PATCH_BYTES = 5 * 2**20  # the patch of one segment stops before this
UNTRACKED_FILE_BYTES = 2**20  # an untracked file larger than this is listed, not copied into the patch
UNTRACKED_LISTED = 200  # untracked names kept in meta.json (the count is always there)
GIT_SECONDS = 20  # per git command; a repository that slow is recorded as an error

ENV_PREFIXES = ("TF_", "OMP_", "MKL_", "KMP_", "ONEDNN_", "DNNL_", "OPENBLAS_", "CUDA_", "CUDNN_", "NCCL_", "NVIDIA_",
                "XLA_", "KERAS_", "DILBENCH_")
ENV_NAMES = ("PYTHONHASHSEED", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID",
             "SLURM_ARRAY_TASK_ID", "SLURM_STEP_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_JOB_NAME",
             "SLURM_JOB_PARTITION", "SLURM_CLUSTER_NAME", "SLURM_JOB_NODELIST", "SLURM_NNODES", "SLURM_NTASKS",
             "SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU", "SLURM_GPUS",
             "SLURM_RESTART_COUNT")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE", re.IGNORECASE)
SECRET_FILE = re.compile(r"^\.env(\..*)?$|\.(pem|p12|pfx|kdbx|keystore)$|^id_(rsa|dsa|ecdsa|ed25519)|^\.netrc$|^\.pgpass$"
                         r"|token|secret|passw|credential|private", re.IGNORECASE)
URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
ENV_VALUE_CHARS = 4096


def capture(run: RunDir, data_digest: dict[str, Any] | None, segment: int = 0,
            earlier: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The provenance of segment `segment` of `run` (0: its start, N: its Nth resume), the source patch
    written into the run directory; `earlier` segments' provenance lets an unchanged patch be named, not copied."""
    started = time.perf_counter()
    record: dict[str, Any] = {
        "source": capture_source(run, segment, earlier or []),
        "data": data_digest,
        "machine": machine(),
        "env": env_vars(os.environ),
        "packages": packages(),
    }
    record["capture_seconds"] = round(time.perf_counter() - started, 3)
    return record


# ---- environment ---------------------------------------------------------------------------------------
def env_vars(environ: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted variables that change a run, none whose name suggests a secret, URLs' userinfo masked."""
    kept = {}
    for name, value in environ.items():
        if not (name.startswith(ENV_PREFIXES) or name in ENV_NAMES) or SECRET_NAME.search(name):
            continue
        kept[name] = URL_USERINFO.sub("***@", value)[:ENV_VALUE_CHARS]
    return dict(sorted(kept.items()))


def packages() -> dict[str, str]:
    """Every installed distribution -> version, as the import system sees them (the first of a name on sys.path wins)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        with contextlib.suppress(Exception):  # a broken dist-info must not stop a run
            name = dist.metadata["Name"]
            if name:
                found.setdefault(str(name), str(dist.version))
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def machine() -> dict[str, Any]:
    facts: dict[str, Any] = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "arch": platform.machine()}
    with contextlib.suppress(AttributeError, OSError):
        facts["cpus_usable"] = len(os.sched_getaffinity(0))
    with contextlib.suppress(ImportError, OSError):
        import psutil

        facts["memory_bytes"] = int(psutil.virtual_memory().total)
    return facts


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform module knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model", "Model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


# ---- source --------------------------------------------------------------------------------------------
def source_repository() -> Path | None:
    """The top of the git checkout dilbench runs from, else of the one holding the current directory."""
    for where in (Path(__file__).resolve().parents[2], Path.cwd()):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            top = _git(where, "rev-parse", "--show-toplevel")
            if top.returncode == 0 and top.stdout.strip():
                return Path(top.stdout.decode().strip())
    return None


def capture_source(run: RunDir, segment: int, earlier: list[dict[str, Any]], repo: Path | None = None) -> dict[str, Any] | None:
    """Commit, dirty flag, untracked files and the patch that turns the commit into the tree (see the module)."""
    repo = repo or source_repository()
    if repo is None:
        return None
    try:
        commit = _git(repo, "rev-parse", "HEAD")
        if commit.returncode:
            return {"repo": str(repo), "error": _first_line(commit.stderr) or "git rev-parse HEAD failed"}
        diff = _git(repo, "-c", "core.quotePath=true", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
                    "--no-renames", "--src-prefix=a/", "--dst-prefix=b/", "--ignore-submodules")
        listed = _git(repo, "ls-files", "-z", "--others", "--exclude-standard")
    except (OSError, subprocess.SubprocessError) as err:
        return {"repo": str(repo), "error": f"git: {err}"}
    tracked = _split_diff(diff.stdout)
    untracked = sorted(name for name in listed.stdout.decode(errors="surrogateescape").split("\0") if name)
    source: dict[str, Any] = {"repo": str(repo), "commit": commit.stdout.decode().strip(), "dirty": bool(tracked),
                              "untracked": untracked[:UNTRACKED_LISTED], "untracked_count": len(untracked)}
    if diff.returncode:
        source["error"] = f"git diff: {_first_line(diff.stderr)}"
    patch, omitted = _assemble(repo, tracked, untracked)
    if omitted:
        source["patch_omitted"] = omitted
    if patch:
        source.update(_write_patch(run, patch, segment, earlier))
    return source


def _assemble(repo: Path, tracked: list[tuple[str, bytes]], untracked: list[str]) -> tuple[bytes, list[dict[str, Any]]]:
    """The patch, tracked changes first, within PATCH_BYTES; and what was left out, with why."""
    parts: list[bytes] = []
    omitted: list[dict[str, Any]] = []
    size = 0
    candidates: list[tuple[str, bytes | None, str]] = [(path, chunk, "") for path, chunk in tracked]
    for name in untracked:
        file = repo / name
        try:
            bytes_ = file.lstat().st_size
        except OSError:
            continue
        if SECRET_FILE.search(Path(name).name):
            candidates.append((name, None, "untracked, and its name looks like it may hold a secret"))
        elif bytes_ > UNTRACKED_FILE_BYTES:
            candidates.append((name, None, f"untracked and larger than {_size(UNTRACKED_FILE_BYTES)}"))
        else:
            candidates.append((name, None, ""))
    for path, chunk, reason in candidates:
        if not reason and chunk is None:
            chunk = _new_file_diff(repo, path)
            if chunk is None:
                reason = "untracked, and git could not diff it"
        if not reason and chunk is not None and size + len(chunk) > PATCH_BYTES:
            reason = f"the patch would exceed {_size(PATCH_BYTES)}"
        if reason or chunk is None:
            omitted.append({"path": path, "reason": reason})
            continue
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), omitted


def _new_file_diff(repo: Path, name: str) -> bytes | None:
    """An untracked file as a git patch creating it (exit code 1 means "differs", which is the point)."""
    try:
        result = _git(repo, "diff", "--no-index", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
                      "--src-prefix=a/", "--dst-prefix=b/", "--", "/dev/null", name)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 1 and result.stdout.startswith(b"diff --git ") else None


def _write_patch(run: RunDir, patch: bytes, segment: int, earlier: list[dict[str, Any]]) -> dict[str, Any]:
    digest = hashlib.sha256(patch).hexdigest()
    for before in earlier:
        source = (before or {}).get("source") or {}
        if source.get("patch_sha256") == digest and (run.path / str(source.get("patch"))).is_file():
            return {"patch": source["patch"], "patch_sha256": digest, "patch_bytes": len(patch)}  # the same changes
    name = run.source_patch(segment).name
    write_atomic(run.path / name, patch)
    return {"patch": name, "patch_sha256": digest, "patch_bytes": len(patch)}


def _split_diff(diff: bytes) -> list[tuple[str, bytes]]:
    """`git diff` output cut into one (path, chunk) per file (with --no-renames a header names one path twice)."""
    if not diff.strip():
        return []
    chunks = [b"diff --git " + part for part in (b"\n" + diff).split(b"\ndiff --git ")[1:]]
    chunks = [chunk if chunk.endswith(b"\n") else chunk + b"\n" for chunk in chunks]
    return [(_chunk_path(chunk), chunk) for chunk in chunks]


def _chunk_path(chunk: bytes) -> str:
    header = chunk.split(b"\n", 1)[0][len(b"diff --git "):].decode(errors="replace")
    half = header[: (len(header) - 1) // 2]  # "a/P b/P": the first half
    return half.strip('"')[2:] if half.strip('"').startswith("a/") else half


def _git(where: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # never take the index lock: a run only reads
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return subprocess.run(["git", "-C", str(where), *args], capture_output=True, timeout=GIT_SECONDS, env=env,
                          stdin=subprocess.DEVNULL)


def _size(count: int) -> str:
    return f"{count / 2**20:g} MiB" if count % 2**20 == 0 else f"{count} bytes"


def _first_line(data: bytes) -> str:
    text = data.decode(errors="replace").strip()
    return text.splitlines()[0] if text else ""
