"""Tags, notes, rm, prune and hooks on live runs, with real processes: annotating a training run changes
nothing of its training, a run being written is neither moved nor pruned, racing taggers lose nothing,
a tagger racing `rm` either lands in the run or fails cleanly, and a failing or hanging hook leaves the
run's status and exit code alone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

from faultlib import (
    RISING,
    dilbench,
    one_line_error,
    partial_files,
    resume,
    spawn,
    train,
    train_args,
    training_records,
    wait_for,
)
from toolkit import meta, the_run

TAGGERS = 6
EDITS = 12  # per tagger: a tag added and a line appended to the note each time


def test_a_training_run_is_annotated_but_neither_moved_nor_pruned(reference, tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    runs = tmp_path / "runs"
    owner = spawn(*train_args(runs), specs=(RISING, "wait@step=2.2"), env={"FAULT_DIR": str(signals)})
    try:
        wait_for(signals / "waiting", owner)  # the trainer holds the run's lock, in the middle of epoch 2
        run = the_run(runs)
        meta_before = (run / "meta.json").read_text()
        tagged = dilbench("tag", str(run), "+live", "+baseline", "-baseline")
        assert tagged.returncode == 0 and tagged.stdout == f"{run}: live\n", tagged.stderr
        assert dilbench("note", str(run), "annotated while training").returncode == 0
        removed = dilbench("rm", str(run))
        assert removed.returncode == 1
        assert one_line_error(removed).startswith(f"Error: {run} is being written by pid {owner.pid} on ")
        pruned = dilbench("prune", str(run), "--keep", "best")
        assert pruned.returncode == 0 and f"{run}: being written by another process; left alone" in pruned.stderr
        assert (run / "meta.json").read_text() == meta_before and run.is_dir()
    finally:
        (signals / "go").touch()
        _, stderr = owner.communicate(timeout=300)
    assert owner.returncode == 0, stderr
    assert meta(run)["status"] == "completed" and "tags" not in meta(run)
    assert meta(run)["weights_sha256"] == meta(reference)["weights_sha256"]  # the annotations changed nothing of training
    assert training_records(run) == training_records(reference)
    assert json.loads((run / "tags.json").read_text())["tags"] == ["live"]
    assert (run / "notes.md").read_text() == "annotated while training\n"
    assert partial_files(run) == []

    assert dilbench("prune", str(run), "--keep", "best").returncode == 0  # now it is finished: both work
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best"]
    assert dilbench("rm", str(run)).returncode == 0 and not run.exists()
    assert dilbench("trash", "restore", str(run)).returncode == 0
    shown = dilbench("show", str(run))
    assert shown.returncode == 0 and "tags    live\n" in shown.stdout and "note    annotated while training\n" in shown.stdout


def test_tagging_a_run_all_through_its_training_costs_it_nothing(reference, tmp_path):
    """Taggers at whatever moments the scheduler gives them, while the trainer writes meta.json, metrics.jsonl,
    events and checkpoints: every tag lands and the run ends exactly as the reference."""
    runs = tmp_path / "runs"
    owner = spawn(*train_args(runs), specs=(RISING,))
    run, added = None, []
    while owner.poll() is None:  # tag as long as it trains, back to back, as fast as processes start
        found = list(runs.glob("tiny-*"))
        if not found or not (found[0] / "config.yaml").is_file():
            time.sleep(0.05)  # not a run directory yet
            continue
        run = found[0]
        result = dilbench("tag", str(run), f"+t{len(added)}")
        assert result.returncode == 0, result.stderr
        added.append(f"t{len(added)}")
    _, stderr = owner.communicate()
    assert owner.returncode == 0, stderr
    assert run is not None and len(added) >= 2
    assert json.loads((run / "tags.json").read_text())["tags"] == sorted(added)
    assert meta(run)["weights_sha256"] == meta(reference)["weights_sha256"]
    assert training_records(run) == training_records(reference) and partial_files(run) == []


def _tagger(run: str, number: int, barrier, results) -> None:
    """One racing annotator (a separate process): wait for the others, then add EDITS tags and note lines; puts
    (number, tags added, error)."""
    from dilbench.errors import DilbenchError
    from dilbench.runs.annotations import edit_tags, set_note
    from dilbench.runs.rundir import RunDir

    barrier.wait()
    done = 0  # tags added: rm may move the run between a tag and its note line, so a tag is counted on its own
    try:
        for edit in range(EDITS):
            edit_tags(RunDir(Path(run)), add=[f"p{number}-{edit}"])
            done += 1
            set_note(RunDir(Path(run)), f"p{number} line {edit}", append=True)
    except DilbenchError as err:  # racing rm: the run moved away
        results.put((number, done, str(err)))
        return
    results.put((number, done, ""))


def _remover(run: str, barrier, results) -> None:
    """`dilbench rm` in a separate process, released together with the taggers."""
    from dilbench.errors import DilbenchError
    from dilbench.runs.trash import move_to_trash

    barrier.wait()
    try:
        move_to_trash(run)
    except DilbenchError as err:
        results.put((-1, 0, str(err)))
        return
    results.put((-1, 0, ""))


def _race(run: Path, with_rm: bool) -> list[tuple[int, int, str]]:
    """TAGGERS annotating processes (and one moving the run to the trash) released at once by a barrier;
    each one's (number, edits done, error). The remover is number -1."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters: real, independent processes
    barrier = context.Barrier(TAGGERS + (1 if with_rm else 0))
    results = context.Queue()
    processes = [context.Process(target=_tagger, args=(str(run), number, barrier, results)) for number in range(TAGGERS)]
    if with_rm:
        processes.insert(TAGGERS // 2, context.Process(target=_remover, args=(str(run), barrier, results)))
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return sorted(outcomes)


def test_racing_taggers_lose_nothing(tmp_path):
    from dilbench.runs.rundir import RunDir

    run = _finished_run(tmp_path)
    outcomes = _race(run, with_rm=False)
    assert outcomes == [(number, EDITS, "") for number in range(TAGGERS)]
    expected = sorted(f"p{n}-{e}" for n in range(TAGGERS) for e in range(EDITS))
    assert RunDir(run).read_tags() == expected
    lines = (run / "notes.md").read_text().splitlines()
    assert sorted(lines) == sorted(f"p{n} line {e}" for n in range(TAGGERS) for e in range(EDITS))
    for number in range(TAGGERS):  # each tagger's lines in its own order
        assert [line for line in lines if line.startswith(f"p{number} ")] == [f"p{number} line {e}" for e in range(EDITS)]
    assert partial_files(run) == [] and not RunDir(run).annotation_partials()


def test_taggers_racing_rm_land_in_the_run_or_fail_cleanly(tmp_path):
    from dilbench.runs.rundir import RunDir
    from dilbench.runs.trash import find_trash

    run = _finished_run(tmp_path)
    (remover, *outcomes) = _race(run, with_rm=True)
    assert remover == (-1, 0, "")  # rm waits for a tagger holding the annotation lock, then moves the run
    assert not run.exists()  # nothing recreated it: no tag landed in a directory that moved away
    (entry,) = find_trash([str(run.parent)])
    landed = RunDir(entry.path).read_tags()  # valid JSON, whatever moment the move came at
    for number, done, error in outcomes:
        assert not error or "no longer a run directory (moved to the trash?)" in error, error
        assert [tag for tag in landed if tag.startswith(f"p{number}-")] == sorted(f"p{number}-{e}" for e in range(done))
    assert not RunDir(entry.path).annotation_partials()


def _finished_run(tmp_path: Path) -> Path:
    """A run directory as a finished run leaves it (what annotations and rm need: config.yaml, meta.json)."""
    run = tmp_path / "runs" / "tiny-20261201-120000-abcd"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: tiny\n")
    (run / "meta.json").write_text(json.dumps({"status": "completed", "name": "tiny"}))
    return run


def test_a_failing_or_hanging_hook_changes_neither_status_nor_exit_code(tmp_path):
    hanging = dilbench(*train_args(tmp_path, "train.epochs=1", "train.lr_schedule=constant"), "--on-end", "echo started; sleep 120",
                       "--hook-timeout", "2", specs=(RISING,))
    assert hanging.returncode == 0, hanging.stderr
    run = the_run(tmp_path)
    assert meta(run)["status"] == "completed" and hanging.stdout.strip() == str(run)
    warning = "on-end hook was stopped after its timeout of 2 s (the status stays as it is): echo started; sleep 120"
    assert [line for line in hanging.stderr.splitlines() if line.startswith("on-end hook")] == ["on-end hook: started", warning]
    assert warning in (run / "log.txt").read_text()

    killed = resume(run, "--set", "train.epochs=3", "--on-end", "touch never", specs=(RISING, "kill@step=2.2"))
    assert killed.returncode == -signal.SIGKILL  # extended, then killed: nothing runs after a kill -9, hooks neither
    failing = resume(run, "--on-end", 'echo "$DILBENCH_RUN_STATUS"; exit 5', specs=(RISING,))
    assert failing.returncode == 0, failing.stderr
    assert "on-end hook: completed" in failing.stderr
    assert "on-end hook exited with code 5 (the status stays as it is)" in failing.stderr
    assert meta(run)["status"] == "completed" and len(meta(run)["resumes"]) == 2 and meta(run)["epochs_done"] == 3


def test_a_killed_run_is_tagged_pruned_trashed_restored_and_resumed_as_if_left_alone(reference, tmp_path):
    """kill -9 mid-training leaves `running` in meta.json but no lock holder: tag, note, prune, rm and restore
    treat it as finished, and the resume afterwards ends bit-equal to the uninterrupted reference."""
    from dilbench.runs.trash import find_trash

    runs = tmp_path / "runs"
    assert train(runs, specs=(RISING, "kill@step=2.2")).returncode == -signal.SIGKILL
    run = the_run(runs)
    assert meta(run)["status"] == "running"  # what the killed process last wrote
    assert dilbench("tag", str(run), "+crashed").stdout == f"{run}: crashed\n"
    assert dilbench("note", str(run), "killed in epoch 2").returncode == 0

    dry = dilbench("prune", str(run), "--keep", "latest", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith(f"{run}: would remove checkpoints/best (")
    assert (run / "checkpoints" / "best").is_dir()  # a dry run removes nothing
    pruned = dilbench("prune", str(run), "--keep", "latest")
    assert pruned.returncode == 0 and pruned.stdout.startswith(f"{run}: removed checkpoints/best (")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest"]

    removed = dilbench("rm", str(run))
    assert removed.returncode == 0 and not run.exists(), removed.stderr
    listed = dilbench("compare", str(runs), "--columns", "run", "--format", "json")
    assert listed.returncode == 2  # compare does not see a trashed run: none is left
    assert one_line_error(listed).endswith(
        f"{runs} (a run directory holds config.yaml or meta.json; directories are searched 3 levels deep)")
    (entry,) = find_trash([str(runs)])
    assert dilbench("trash", "restore", str(entry.path)).returncode == 0 and run.is_dir()

    resumed = resume(run, specs=(RISING,))
    assert resumed.returncode == 0, resumed.stderr
    assert meta(run)["status"] == "completed"
    assert meta(run)["weights_sha256"] == meta(reference)["weights_sha256"]
    assert training_records(run) == training_records(reference) and partial_files(run) == []
    assert json.loads((run / "tags.json").read_text())["tags"] == ["crashed"]
    assert (run / "notes.md").read_text() == "killed in epoch 2\n"

    assert dilbench("rm", str(run)).returncode == 0
    purged = dilbench("trash", "purge", str(runs), "--older-than", "0s")
    assert purged.returncode == 0 and purged.stdout.startswith(f"removed {runs}/.trash/{run.name}-deleted-")
    assert find_trash([str(runs)]) == [] and not run.exists()


def _holds_open(pid: int, path: Path, seconds: float = 60) -> None:
    """Block until process `pid` has `path` open (it reached the lock and waits on it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if Path(os.readlink(fd)) == path:
                    return
            except OSError:
                continue
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never opened {path}")


def _polling(pid: int, seconds: float = 60) -> None:
    """Block until process `pid` sleeps between two tries of a lock (its wait loop), as the kernel says."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if "nanosleep" in Path(f"/proc/{pid}/wchan").read_text():
                return
        time.sleep(0.001)
    raise AssertionError(f"pid {pid} never waited in its lock loop")


def test_ctrl_c_while_waiting_for_a_runs_annotation_lock_is_exit_130_and_changes_nothing(tmp_path):
    """`tag` and `rm` waiting for another annotator: Ctrl-C ends them with one line and exit code 130; the run is
    neither tagged nor moved, and no lock is left behind (a later rm moves it)."""
    run = _finished_run(tmp_path)
    holder = os.open(run / ".annotations.lock", os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another annotator, in the middle of its write
    try:
        for args in (("tag", str(run), "+x"), ("rm", str(run))):
            waiting = spawn(*args)
            _holds_open(waiting.pid, run / ".annotations.lock")
            _polling(waiting.pid)
            waiting.send_signal(signal.SIGINT)
            _, stderr = waiting.communicate(timeout=60)
            assert waiting.returncode == 130, stderr
            assert "Traceback" not in stderr and stderr.splitlines()[-1] == "Error: interrupted"
            assert run.is_dir() and not (run / "tags.json").exists() and not (tmp_path / "runs" / ".trash").exists()
    finally:
        os.close(holder)
    assert dilbench("rm", str(run)).returncode == 0 and not run.exists()
