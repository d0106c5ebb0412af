"""Provenance: a dirty tree re-created from the run directory alone, and nothing secret recorded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dilbench.launch import provenance
from dilbench.runs.rundir import RunDir

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(where: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert result.returncode == 0, result.stderr
    return result.stdout


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root but .git, by relative path (symlinks by their target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative == ".git" or relative.startswith(".git/"):
            continue
        if path.is_symlink():
            found[relative] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            found[relative] = path.read_bytes()
    return found


@pytest.fixture
def dirty_repo(tmp_path) -> tuple[Path, str]:
    """A committed repository, then every kind of change: edits staged and not, a deletion, a mode change, new
    binary and text files (one in a new directory), a secret-looking file and an ignored one."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("lr = 0.1\nepochs = 3\n")
    (repo / "staged.py").write_text("a = 1\n")
    (repo / "gone.txt").write_text("to be deleted\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (repo / ".gitignore").write_text("ignored/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    commit = git(repo, "rev-parse", "HEAD").strip()
    (repo / "train.py").write_text("lr = 0.01\nepochs = 3\n# tuned\n")  # unstaged edit
    (repo / "staged.py").write_text("a = 2\n")
    git(repo, "add", "staged.py")  # staged edit
    (repo / "gone.txt").unlink()
    (repo / "run.sh").chmod(0o755)
    (repo / "weights.bin").write_bytes(os.urandom(2048) + b"\x00")  # a binary edit
    (repo / "new.bin").write_bytes(os.urandom(3000) + b"\x00")  # untracked binary
    (repo / "lib").mkdir()
    (repo / "lib" / "helper.py").write_text("def helper():\n    return 'ü'\n")  # untracked, in a new directory
    (repo / ".env").write_text("API_TOKEN=hunter2\n")  # untracked, looks like a secret: listed, not copied
    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.npz").write_bytes(b"x" * 100)
    return repo, commit


def test_the_documented_commands_recreate_a_dirty_tree_from_the_run_directory_alone(dirty_repo, tmp_path):
    repo, commit = dirty_repo
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    source = provenance.capture_source(run, 0, [], repo=repo)
    assert source["commit"] == commit and source["dirty"] is True
    assert source["patch"] == "source.patch" and (run.path / "source.patch").is_file()
    patch = (run.path / "source.patch").read_bytes()
    assert source["patch_sha256"] == __import__("hashlib").sha256(patch).hexdigest() and source["patch_bytes"] == len(patch)
    assert source["untracked"] == [".env", "lib/helper.py", "new.bin"] and source["untracked_count"] == 3
    assert source["patch_omitted"] == [{"path": ".env", "reason": "untracked, and its name looks like it may hold a secret"}]
    assert b"hunter2" not in patch

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", commit)  # docs/guides/run-directory.md#provenance: check out the commit
    git(clone, "apply", str(run.path / "source.patch"))  # and apply the patch
    expected = {name: data for name, data in tree(repo).items() if not name.startswith("ignored/") and name != ".env"}
    assert tree(clone) == expected
    assert os.access(clone / "run.sh", os.X_OK)  # the mode change came along


def test_a_clean_tree_has_no_patch_and_an_oversized_one_is_cut_at_a_file_boundary(dirty_repo, tmp_path, monkeypatch):
    repo, commit = dirty_repo
    clean = tmp_path / "clean"
    git(tmp_path, "clone", "-q", str(repo), str(clean))
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    assert provenance.capture_source(run, 0, [], repo=clean) == {
        "repo": str(clean), "commit": commit, "dirty": False, "untracked": [], "untracked_count": 0}
    assert not (run.path / "source.patch").exists()

    monkeypatch.setattr(provenance, "PATCH_BYTES", 2000)  # room for the text edits, not the binary ones
    source = provenance.capture_source(run, 0, [], repo=repo)
    cut = {entry["path"] for entry in source["patch_omitted"] if entry["reason"] == "the patch would exceed 2000 bytes"}
    assert cut == {"weights.bin", "new.bin"} and source["patch_bytes"] <= 2000
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "apply", "--check", str(run.path / "source.patch"))  # what is kept still applies
    git(clone, "apply", str(run.path / "source.patch"))
    assert (clone / "train.py").read_text() == (repo / "train.py").read_text()


def test_a_resume_names_an_unchanged_patch_and_writes_a_changed_one(dirty_repo, tmp_path):
    repo, _ = dirty_repo
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    start = {"source": provenance.capture_source(run, 0, [], repo=repo)}
    again = provenance.capture_source(run, 1, [start], repo=repo)
    assert again["patch"] == "source.patch" and not (run.path / "source-resume1.patch").exists()
    (repo / "train.py").write_text("lr = 0.5\n")
    changed = provenance.capture_source(run, 2, [start, {"source": again}], repo=repo)
    assert changed["patch"] == "source-resume2.patch" and changed["patch_sha256"] != start["source"]["patch_sha256"]
    assert b"lr = 0.5" in (run.path / "source-resume2.patch").read_bytes()


SECRETS = {"GITHUB_TOKEN": "ghp_s3cr3t", "AWS_SECRET_ACCESS_KEY": "aws-s3cr3t", "HF_TOKEN": "hf_s3cr3t",
           "TF_API_TOKEN": "tf-s3cr3t", "DILBENCH_API_KEY": "key-s3cr3t", "OMP_PASSWORD": "omp-s3cr3t",
           "CUDA_AUTH": "cuda-s3cr3t", "NVIDIA_CREDENTIALS": "nv-s3cr3t", "SLURM_PRIVATE": "slurm-s3cr3t",
           "DATABASE_URL": "postgres://u:db-s3cr3t@host/db", "MY_PASSWORD": "pw-s3cr3t"}
KEPT = {"TF_NUM_INTRAOP_THREADS": "2", "OMP_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_ID": "42",
        "SLURM_ARRAY_TASK_ID": "3", "TF_CONFIG": '{"cluster": {"worker": ["10.0.0.1:2222"]}}', "XLA_FLAGS": "--xla_dump_to=/tmp/x",
        "PYTHONHASHSEED": "0"}


def test_only_allowlisted_environment_variables_and_never_a_secret_reach_the_record(monkeypatch):
    for name, value in {**SECRETS, **KEPT, "DILBENCH_DATA": "https://user:url-s3cr3t@data.example.org/mnist"}.items():
        monkeypatch.setenv(name, value)
    env = provenance.env_vars(os.environ)
    assert {name: env[name] for name in KEPT} == KEPT
    assert env["DILBENCH_DATA"] == "https://***@data.example.org/mnist"
    assert not set(SECRETS) & set(env)
    monkeypatch.setattr(provenance, "source_repository", lambda: None)  # the environment is the point here
    text = json.dumps(provenance.capture(RunDir(Path("/nonexistent")), None))
    assert "s3cr3t" not in text and "HOME" not in json.loads(text)["env"]


def test_packages_are_every_installed_distribution():
    from importlib import metadata

    found = provenance.packages()
    assert found["numpy"] == metadata.version("numpy") and found["click"] == metadata.version("click")
    assert len(found) >= 30 and list(found) == sorted(found, key=str.lower)
