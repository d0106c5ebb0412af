"""`dilbench compare` and `dilbench show` on run directories written by hand (fast, no TensorFlow).

Every expected number is worked out here from the epoch records below, not read back from the code.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from toolkit import PNG, REPO, config, epoch_records, invoke, write_run

# run dir -> (name, schedule, seed, lr, status, eval_acc per epoch, train_acc per epoch, images/s per epoch)
RUNS = {
    "std-s0": ("std", "standard", 0, 1e-3, "completed", [0.5, 0.7, 0.6], [0.55, 0.75, 0.8], [100.0, 200.0, 300.0]),
    "std-s1": ("std", "standard", 1, 1e-3, "completed", [0.6, 0.65, 0.7], [0.6, 0.7, 0.75], [100.0] * 3),
    "ub-s0": ("ub", "unfair_back", 0, 1e-3, "completed", [0.6, 0.8, 0.75], [0.6, 0.8, 0.9], [100.0] * 3),
    "ub-s1": ("ub", "unfair_back", 1, 1e-4, "completed", [0.62, 0.7, 0.72], [0.6, 0.8, 0.85], [100.0] * 3),
    "ub-s2": ("ub", "unfair_back", 2, 1e-3, "running", [0.6, 0.7], [0.6, 0.8], [100.0] * 2),
}
@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    for dirname, (name, schedule, seed, lr, status, test, train, ips) in RUNS.items():
        updates = [5, 10] if schedule == "unfair_back" else [5, 5]
        meta = {"status": status, "name": name, "seed": seed, "host": "lab1", "git": {"commit": "abc123", "dirty": False}}
        write_run(root, dirname, config(name, schedule, seed, lr), meta, epoch_records(test, train, ips, updates))
    return root


def as_json(*args: str) -> list[dict]:
    result = invoke("compare", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def column(records: list[dict], name: str) -> list:
    return [r[name] for r in records]


def sample_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


# ---- the table ------------------------------------------------------------------------------------
def test_default_table(runs):
    result = invoke("compare", runs)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        "run     name  status     model           schedule     augmentation  seed  epochs  final_eval_acc  best_eval_acc"
        "  best_epoch  final_train_acc     gap  wall_time  images_per_s",
        "------  ----  ---------  --------------  -----------  ------------  ----  ------  --------------  -------------"
        "  ----------  ---------------  ------  ---------  ------------",
        "std-s0  std   completed  context_module  standard     none             0       3          0.6000         0.7000"
        "           2           0.8000  0.2000       30.0         200.0",
        "std-s1  std   completed  context_module  standard     none             1       3          0.7000         0.7000"
        "           3           0.7500  0.0500       30.0         100.0",
        "ub-s0   ub    completed  context_module  unfair_back  none             0       3          0.7500         0.8000"
        "           2           0.9000  0.1500       30.0         100.0",
        "ub-s1   ub    completed  context_module  unfair_back  none             1       3          0.7200         0.7200"
        "           3           0.8500  0.1300       30.0         100.0",
        "ub-s2   ub    running    context_module  unfair_back  none             2       2          0.7000         0.7000"
        "           2           0.8000  0.1000       20.0         100.0",
    ]


def test_runs_of_one_name_are_told_apart_by_default(tmp_path):
    """Two runs of the same name and seed (a rerun) differ only in their directory: the default row shows it."""
    for dirname in ("q-20260101-000000-aaaa", "q-20260101-000100-bbbb"):
        write_run(tmp_path, dirname, config("q", "standard", 0, 1e-3), {"status": "completed"},
                  epoch_records([0.5], [0.5], [1.0], [1]))
    rows = invoke("compare", tmp_path).stdout.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["q-20260101-000000-aaaa", "q-20260101-000100-bbbb"]
    assert column(as_json(tmp_path), "run") == ["q-20260101-000000-aaaa", "q-20260101-000100-bbbb"]
    header = invoke("compare", tmp_path, "--format", "csv").stdout.splitlines()[0].split(",")
    assert header[:3] == ["run", "name", "status"]


def test_builtin_columns_exact_values(runs):
    records = as_json(runs, "--columns", "run,final_eval_acc,best_eval_acc,best_epoch,final_train_acc,gap,wall_time,images_per_s,epochs")
    first = records[0]
    assert first == {
        "run": "std-s0", "final_eval_acc": 0.6, "best_eval_acc": 0.7, "best_epoch": 2, "final_train_acc": 0.8,
        "gap": 0.8 - 0.6, "wall_time": 30.0, "images_per_s": (100 * 10 + 200 * 10 + 300 * 10) / 30, "epochs": 3,
    }
    assert column(records, "run") == list(RUNS)
    assert column(records, "best_epoch") == [2, 3, 2, 3, 2]


def test_timing_columns_read_new_and_older_records(tmp_path):
    """Records with train_seconds/eval_seconds: images/s is weighted by training time and wall_time holds
    evaluation too. Older records (`seconds` was the training time alone) still fill every column."""
    new = epoch_records([0.5, 0.6], [0.5, 0.6], [100.0, 300.0], [1])
    for record, (train, evaluation) in zip(new, [(8.0, 2.0), (4.0, 1.0)]):
        record.update(seconds=train + evaluation, train_seconds=train, eval_seconds=evaluation)
    write_run(tmp_path, "new", config("new", "standard", 0, 1e-3), {"status": "completed"}, new)
    write_run(tmp_path, "old", config("old", "standard", 0, 1e-3), {"status": "completed"},
              epoch_records([0.5], [0.5], [50.0], [1]))
    assert as_json(tmp_path, "--columns", "run,wall_time,train_time,eval_time,images_per_s") == [
        {"run": "new", "wall_time": 15.0, "train_time": 12.0, "eval_time": 3.0, "images_per_s": (100 * 8 + 300 * 4) / 12},
        {"run": "old", "wall_time": 10.0, "train_time": 10.0, "eval_time": None, "images_per_s": 50.0},
    ]


def test_runs_of_0_1_with_test_names_read_as_eval(tmp_path):
    """dilbench 0.1 wrote test_loss/test_acc (even for the validation split) and final_test_acc; they read
    as eval_*, the split as test, and a resumed run whose file holds both spellings reads as one."""
    old = [{("test_" + key[5:] if key.startswith("eval_") else key): value for key, value in record.items()
            if key != "eval_split"} for record in epoch_records([0.5, 0.7], [0.4, 0.6], [10.0, 10.0], [1])]
    write_run(tmp_path, "old", config("old", "standard", 0, 1e-3), {"status": "completed", "final_test_acc": 0.7}, old)
    mixed = [old[0], epoch_records([0.5, 0.6], [0.5, 0.6], [10.0, 10.0], [1])[1]]
    write_run(tmp_path, "mixed", config("mixed", "standard", 0, 1e-3), {"status": "completed"}, mixed)
    columns = "run,final_eval_acc,best_eval_acc,mean:eval_loss,last:eval_split,meta.final_eval_acc"
    assert as_json(tmp_path, "--columns", columns) == [
        {"run": "mixed", "final_eval_acc": 0.6, "best_eval_acc": 0.6, "mean:eval_loss": pytest.approx(0.45),
         "last:eval_split": "test", "meta.final_eval_acc": None},
        {"run": "old", "final_eval_acc": 0.7, "best_eval_acc": 0.7, "mean:eval_loss": pytest.approx(0.4),
         "last:eval_split": "test", "meta.final_eval_acc": 0.7},
    ]


def test_metric_qualifiers_config_and_meta_columns(runs):
    names = "last:train_loss,max:eval_acc,min:eval_loss,mean:eval_acc,epoch_of:max:eval_acc,epoch_of:min:eval_loss," \
            "last:updates_total,optimizer.lr,model.hidden,meta.host,meta.git.commit"
    std_s0, *_ = as_json(runs, "--columns", names)
    assert std_s0 == {
        "last:train_loss": 1 - 0.8, "max:eval_acc": 0.7, "min:eval_loss": 1 - 0.7, "mean:eval_acc": (0.5 + 0.7 + 0.6) / 3,
        "epoch_of:max:eval_acc": 2, "epoch_of:min:eval_loss": 2, "last:updates_total": [15, 15],
        "optimizer.lr": 0.001, "model.hidden": [64], "meta.host": "lab1", "meta.git.commit": "abc123",
    }


def test_epoch_of_ties_go_to_the_earliest_epoch(tmp_path):
    write_run(tmp_path, "tie", config("tie", "standard", 0, 1e-3), {"status": "completed"},
              epoch_records([0.7, 0.9, 0.9], [0.5, 0.6, 0.7], [1.0] * 3, [1]))
    (record,) = as_json(tmp_path, "--columns", "epoch_of:max:eval_acc,best_epoch")
    assert record == {"epoch_of:max:eval_acc": 2, "best_epoch": 2}


@pytest.mark.parametrize("columns", ["+optimizer.lr,path", "+optimizer.lr,+path", "+optimizer.lr,run,path"])
def test_columns_plus_adds_the_whole_list_to_defaults(runs, columns):
    result = invoke("compare", runs, "--columns", columns, "--format", "csv")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split(",")
    assert header[:3] == ["run", "name", "status"] and header[-3:] == ["images_per_s", "optimizer.lr", "path"]
    assert header.count("run") == 1


def test_plus_inside_a_replacing_list_is_an_error(runs):
    result = invoke("compare", runs, "--columns", "run,+path")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: --columns run,+path: a `+` goes first and adds the whole list to the default columns")


def test_unknown_column_is_an_error_with_close_matches(runs):
    result = invoke("compare", runs, "--columns", "run,optimizer.lrr")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: unknown column 'optimizer.lrr' (close matches: optimizer.lr, ")
    assert "built-ins run, path, name, status" in result.stderr and "config keys augmentation.mode, " in result.stderr
    assert len(result.stderr.splitlines()) == 1

    bare = invoke("compare", runs, "--columns", "eval_acc")
    assert bare.exit_code == 2 and "last:eval_acc" in bare.stderr and "max:eval_acc" in bare.stderr
    qualifier = invoke("compare", runs, "--sort", "max:test_accuracy")
    assert qualifier.exit_code == 2 and "close matches: max:eval_acc" in qualifier.stderr
    no_such_metric = invoke("compare", runs, "--columns", "max:eval_split")  # not a number: only last: works
    assert no_such_metric.exit_code == 2 and "close matches: last:eval_split" in no_such_metric.stderr


def test_keys_of_an_older_schema_are_empty_not_errors(runs):
    old = config("old", "standard", 5, 1e-3)
    del old["augmentation"]
    write_run(runs, "old-s5", old, {"status": "completed"}, epoch_records([0.4], [0.4], [1.0], [1, 1]))
    records = as_json(runs, "--columns", "run,augmentation,augmentation.mode")
    assert records[0] == {"run": "old-s5", "augmentation": None, "augmentation.mode": None}
    assert records[1] == {"run": "std-s0", "augmentation": "none", "augmentation.mode": "none"}
    table = invoke("compare", runs, "--columns", "run,augmentation.mode")
    assert table.stdout.splitlines()[2] == "old-s5  -"


def test_list_columns(runs):
    result = invoke("compare", runs, "--list-columns")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "  optimizer.lr" in lines and "  meta.git.commit" in lines
    assert any(line.startswith("  final_eval_acc") and "= last:eval_acc" in line for line in lines)
    assert "last:  max:  min:  mean:  epoch_of:max:  epoch_of:min:" in result.stdout


# ---- selection ------------------------------------------------------------------------------------
def test_sort_descending_with_tie_breaker(runs):
    records = as_json(runs, "--columns", "run", "--sort", "-max:eval_acc")
    assert column(records, "run") == ["ub-s0", "ub-s1", "std-s0", "std-s1", "ub-s2"]  # ties keep path order
    records = as_json(runs, "--columns", "run", "--sort", "-max:eval_acc,-seed")
    assert column(records, "run") == ["ub-s0", "ub-s1", "ub-s2", "std-s1", "std-s0"]
    records = as_json(runs, "--columns", "run", "--sort", "schedule,final_eval_acc")
    assert column(records, "run") == ["std-s0", "std-s1", "ub-s2", "ub-s1", "ub-s0"]


def test_missing_values_sort_last_both_ways(runs):
    write_run(runs, "aaa-new", config("new", "standard", 9, 1e-3), {"status": "running"}, None)
    assert column(as_json(runs, "--columns", "run", "--sort", "max:eval_acc"), "run")[-1] == "aaa-new"
    assert column(as_json(runs, "--columns", "run", "--sort", "-max:eval_acc"), "run")[-1] == "aaa-new"


@pytest.mark.parametrize(("where", "expected"), [
    (["status=completed"], ["std-s0", "std-s1", "ub-s0", "ub-s1"]),
    (["status!=completed"], ["ub-s2"]),
    (["schedule=standard"], ["std-s0", "std-s1"]),
    (["schedule.name=standard,unfair_back"], list(RUNS)),
    (["optimizer.lr=1e-4"], ["ub-s1"]),
    (["optimizer.lr=0.0001"], ["ub-s1"]),
    (["max:eval_acc>0.7"], ["ub-s0", "ub-s1"]),
    (["max:eval_acc>=0.72"], ["ub-s0", "ub-s1"]),
    (["max:eval_acc<0.72"], ["std-s0", "std-s1", "ub-s2"]),
    (["schedule=unfair_back", "seed<=1"], ["ub-s0", "ub-s1"]),
    (["model.hidden=[64]", "deterministic=false", "data.root=null"], list(RUNS)),
])
def test_where(runs, where, expected):
    args = [item for condition in where for item in ("--where", condition)]
    assert column(as_json(runs, "--columns", "run", *args), "run") == expected


FORMS = "expected KEY=V1,V2 (any of), KEY!=V1,V2 (none of), KEY>V, KEY>=V, KEY<V or KEY<=V, e.g. --where schedule.name=unfair_back"


@pytest.mark.parametrize(("where", "problem"), [
    ("status", ""),
    ("status==completed", "'==' is not an operator; "),
    ("seed=>1", "'=>' is not an operator; "),
    ("seed<>1", "'<>' is not an operator; "),
    ("max:eval_acc>", "> needs a value; "),
    ("max:eval_acc>=high", "the runs' values of this column are numbers, so 'high' can never match; "),
    ("seed=one", "the runs' values of this column are numbers, so 'one' can never match; "),
    ("seed>nan", "the runs' values of this column are numbers, so 'nan' can never match; "),
    ("deterministic=maybe", "the runs' values of this column are true or false, so 'maybe' can never match; "),
    ("model.hidden=[64", "[64 is not a list (write [a, b]); "),
    ("model.hidden>[64]", "the runs' values of this column are lists or mappings, which have no order, so '[64]' can never match; "),
    ("seed=0,,1", "an empty value in the list; "),
])
def test_where_that_cannot_match_as_written_is_a_usage_error(runs, where, problem):
    """Each of these used to keep no run, silently; now exit 2 with one line showing the accepted forms."""
    result = invoke("compare", runs, "--where", where)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"Error: --where {where}: {problem}{FORMS}\n"


def test_where_errors(runs):
    result = invoke("compare", runs, "--where", "statsu=completed")
    assert result.exit_code == 2 and "unknown column 'statsu' (close matches: status" in result.stderr
    nothing = invoke("compare", runs, "--where", "status=failed", "--columns", "run")
    assert nothing.exit_code == 0 and nothing.stdout == "run\n---\nnone of the 5 runs matches --where status=failed\n"


def test_top_after_sort(runs):
    assert column(as_json(runs, "--columns", "run", "--sort", "-final_eval_acc", "--top", "2"), "run") == ["ub-s0", "ub-s1"]


def test_diff_shows_only_differing_config_keys(runs):
    result = invoke("compare", runs, "--diff")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "run     name  seed  schedule.name  optimizer.lr",
        "------  ----  ----  -------------  ------------",
        "std-s0  std      0  standard              0.001",
        "std-s1  std      1  standard              0.001",
        "ub-s0   ub       0  unfair_back           0.001",
        "ub-s1   ub       1  unfair_back          0.0001",
        "ub-s2   ub       2  unfair_back           0.001",
    ]
    records = as_json(runs, "--diff", "--where", "schedule=standard", "--columns", "run,final_eval_acc")
    assert records == [{"run": "std-s0", "final_eval_acc": 0.6, "seed": 0}, {"run": "std-s1", "final_eval_acc": 0.7, "seed": 1}]
    same = invoke("compare", runs, "--diff", "--where", "run=std-s0")
    assert same.stdout.splitlines()[-1] == "all 1 selected runs have the same config"
    assert invoke("compare", runs, "--diff", "--group-by", "seed").exit_code == 2


# ---- groups ---------------------------------------------------------------------------------------
def test_group_by_statistics(runs):
    groups = as_json(runs, "--group-by", "schedule", "--columns", "final_eval_acc,best_epoch,images_per_s")
    assert [(g["schedule"], g["n"], g["status"], g["varies"]) for g in groups] == [
        ("standard", 2, "2 completed", "seed"),
        ("unfair_back", 3, "2 completed, 1 running", "seed, optimizer.lr"),  # lr differs too: visible
    ]
    standard, unfair = groups
    finals = [0.75, 0.72, 0.7]
    assert unfair["final_eval_acc.mean"] == pytest.approx(sum(finals) / 3, rel=1e-12)
    assert unfair["final_eval_acc.std"] == pytest.approx(sample_std(finals), rel=1e-12)
    assert (unfair["final_eval_acc.min"], unfair["final_eval_acc.max"]) == (0.7, 0.75)
    assert standard["final_eval_acc.mean"] == pytest.approx(0.65, rel=1e-12)
    assert standard["final_eval_acc.std"] == pytest.approx(math.sqrt(2 * 0.05**2), rel=1e-12)
    assert standard["images_per_s.mean"] == pytest.approx(150.0) and standard["best_epoch.mean"] == 2.5
    assert set(standard) == {"schedule", "n", "status", "varies"} | {
        f"{c}.{s}" for c in ("final_eval_acc", "best_epoch", "images_per_s") for s in ("mean", "std", "min", "max")}
    # --top keeps one group: its columns are read over its runs alone, not over all runs and cut back
    assert as_json(runs, "--group-by", "schedule", "--columns", "final_eval_acc,best_epoch,images_per_s",
                   "--sort", "-n", "--top", "1") == [unfair]


def test_group_table_cells(runs):
    result = invoke("compare", runs, "--group-by", "schedule.name", "--columns", "final_eval_acc,best_epoch")
    finals = [0.75, 0.72, 0.7]
    mean, std = sum(finals) / 3, sample_std(finals)
    assert result.stdout.splitlines() == [
        "schedule.name  n  status                  varies                                final_eval_acc        best_epoch",
        "-------------  -  ----------------------  ------------------  --------------------------------  ----------------",
        "standard       2  2 completed             seed                0.6500 ± 0.0707 [0.6000, 0.7000]  2.5 ± 0.7 [2, 3]",
        f"unfair_back    3  2 completed, 1 running  seed, optimizer.lr  {mean:.4f} ± {std:.4f} [0.7000, 0.7500]  2.3 ± 0.6 [2, 3]",
        "cells: mean ± sample std (n-1) [min, max] over the group's runs that have a value; a single value is shown alone",
    ]


def test_group_of_one_has_no_std(runs):
    records = as_json(runs, "--group-by", "seed", "--columns", "final_eval_acc", "--where", "seed=2")
    assert records == [{"seed": 2, "n": 1, "status": "1 running", "varies": None, "final_eval_acc.mean": 0.7,
                        "final_eval_acc.std": None, "final_eval_acc.min": 0.7, "final_eval_acc.max": 0.7}]
    table = invoke("compare", runs, "--group-by", "seed", "--columns", "final_eval_acc", "--where", "seed=2")
    assert table.stdout.splitlines()[2] == "   2  1  1 running  -               0.7000"
    rows = list(csv.DictReader(io.StringIO(invoke("compare", runs, "-g", "seed", "-c", "final_eval_acc", "-f", "csv").stdout)))
    assert [(r["seed"], r["final_eval_acc.std"]) for r in rows][2] == ("2", "")


def test_group_sort_by_mean_and_by_size(runs):
    groups = as_json(runs, "--group-by", "seed", "--columns", "final_eval_acc", "--sort", "-final_eval_acc")
    assert column(groups, "seed") == [1, 2, 0]  # means 0.71, 0.70, 0.675
    groups = as_json(runs, "--group-by", "schedule", "--columns", "final_eval_acc", "--sort", "-n")
    assert column(groups, "schedule") == ["unfair_back", "standard"]


def test_groups_by_a_measure_sort_by_its_value_and_a_value_that_is_no_number_last(runs):
    write_run(runs, "nan-s7", config("nan", "standard", 7, 1e-3), {"status": "failed"},
              epoch_records([float("nan")], [0.5], [1.0], [1, 1]))
    groups = as_json(runs, "--group-by", "final_eval_acc", "--columns", "epochs")
    assert [(g["final_eval_acc"], g["n"]) for g in groups] == [(0.6, 1), (0.7, 2), (0.72, 1), (0.75, 1), (None, 1)]


def test_group_by_two_keys_keeps_missing_as_a_value(runs):
    old = config("old", "standard", 5, 1e-3)
    del old["augmentation"]
    write_run(runs, "old-s5", old, {"status": "completed"}, epoch_records([0.4], [0.4], [1.0], [1, 1]))
    groups = as_json(runs, "--group-by", "schedule,augmentation", "--columns", "epochs")
    assert [(g["schedule"], g["augmentation"], g["n"]) for g in groups] == [
        ("standard", "none", 2), ("standard", None, 1), ("unfair_back", "none", 3)]


# ---- formats --------------------------------------------------------------------------------------
def test_csv_is_rfc4180_with_exact_values(runs, tmp_path):
    out = tmp_path / "runs.csv"
    invoke("compare", runs, "--columns", "run,status,gap,model.hidden,meta.host", "--format", "csv", "--output", out)
    text = out.read_bytes().decode()
    assert text.startswith("run,status,gap,model.hidden,meta.host\r\n") and text.endswith("\r\n")  # CRLF, as RFC 4180 says
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [float(r["gap"]) for r in rows] == [0.8 - 0.6, 0.75 - 0.7, 0.9 - 0.75, 0.85 - 0.72, 0.8 - 0.7]
    assert rows[0] == {"run": "std-s0", "status": "completed", "gap": repr(0.8 - 0.6), "model.hidden": "[64]", "meta.host": "lab1"}
    grouped = invoke("compare", runs, "-g", "schedule", "-c", "final_eval_acc", "-f", "csv").stdout
    assert '"2 completed, 1 running","seed, optimizer.lr"' in grouped  # fields with commas are quoted
    assert list(csv.DictReader(io.StringIO(grouped, newline="")))[1]["varies"] == "seed, optimizer.lr"


def test_json_is_a_list_of_flat_records(runs):
    records = as_json(runs)
    assert isinstance(records, list) and len(records) == 5
    for record in records:
        assert list(record) == ["run", "name", "status", "model", "schedule", "augmentation", "seed", "epochs", "final_eval_acc",
                                "best_eval_acc", "best_epoch", "final_train_acc", "gap", "wall_time", "images_per_s"]
        assert not any(isinstance(value, (dict, list)) for value in record.values())


def test_markdown(runs):
    text = invoke("compare", runs, "--columns", "run,status,best_eval_acc", "--format", "markdown", "--top", "1").stdout
    assert text == ("| run    | status    | best_eval_acc |\n"
                    "|:-------|:----------|--------------:|\n"
                    "| std-s0 | completed |        0.7000 |\n")


def test_loads_into_pandas(runs, tmp_path):
    import pandas as pd  # a [dev] dependency: this test runs wherever the tests do

    invoke("compare", runs, "--format", "csv", "--output", tmp_path / "runs.csv")
    invoke("compare", runs, "--format", "json", "--output", tmp_path / "runs.json")
    frame = pd.read_csv(tmp_path / "runs.csv")
    assert list(frame["final_eval_acc"]) == [0.6, 0.7, 0.75, 0.72, 0.7]
    assert list(frame["run"]) == list(RUNS)
    from_json = pd.read_json(tmp_path / "runs.json")
    assert list(from_json["seed"]) == [0, 1, 0, 1, 2] and list(from_json["run"]) == list(RUNS)


def test_output_file_and_plots(runs, tmp_path):
    out = tmp_path / "out" / "table.md"
    result = invoke("compare", runs, "--format", "markdown", "--output", out, "--plot", tmp_path / "runs.png")
    assert result.exit_code == 0 and result.stdout == ""
    assert re.match(r"\| run +\| name +\| status +\|", out.read_text())
    assert f"wrote {out} (5 rows)" in result.stderr
    assert (tmp_path / "runs.png").read_bytes()[:8] == PNG
    grouped = invoke("compare", runs, "--group-by", "schedule", "--plot", tmp_path / "groups.png")
    assert grouped.exit_code == 0 and (tmp_path / "groups.png").read_bytes()[:8] == PNG


def test_plot_legend_from_differing_config_keys(runs):
    from dilbench.report.compare import compare

    assert compare([str(runs)], where=("schedule=standard",)).labels == ["seed=0", "seed=1"]
    assert compare([str(runs)], group_by="schedule").labels == ["schedule=standard (n=2)", "schedule=unfair_back (n=3)"]


def test_group_curves_are_means_with_min_max_band(runs):
    from dilbench.report.curves import epoch_stats
    from dilbench.report.runs_index import read_run

    group = [read_run(runs / name) for name in ("ub-s0", "ub-s1", "ub-s2")]
    epochs, mean, low, high = epoch_stats(group, "eval_acc")
    assert epochs == [1, 2, 3]
    assert mean == pytest.approx([(0.6 + 0.62 + 0.6) / 3, (0.8 + 0.7 + 0.7) / 3, (0.75 + 0.72) / 2])  # ub-s2 has 2 epochs
    assert (low, high) == ([0.6, 0.7, 0.72], [0.62, 0.8, 0.75])


# ---- finding runs, broken runs ----------------------------------------------------------------------
def test_finds_runs_in_globs_nested_directories_and_files(runs, tmp_path):
    nested = tmp_path / "experiments" / "unfair" / "runs"
    nested.parent.mkdir(parents=True)
    (runs).rename(nested)
    (tmp_path / "experiments" / "notes").mkdir()
    assert len(as_json(tmp_path / "experiments", "--columns", "run")) == 5
    assert column(as_json(f"{nested}/std-*", "--columns", "run"), "run") == ["std-s0", "std-s1"]
    same_twice = as_json(nested / "ub-s0" / "meta.json", nested / "ub-s0", "--columns", "run")
    assert column(same_twice, "run") == ["ub-s0"]


@pytest.mark.parametrize(("argument", "message"), [
    ("missing", "missing: no such file or directory"),
    ("empty", "no run directories under"),
    ("nothing-*", "nothing-*: matches no file or directory"),
])
def test_nothing_to_compare_is_a_usage_error(tmp_path, monkeypatch, argument, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = invoke("compare", argument)
    assert result.exit_code == 2 and result.stderr.startswith("Error: ") and message in result.stderr


def test_broken_and_unfinished_runs_are_listed_and_reported(tmp_path):
    good = epoch_records([0.5, 0.6, 0.7], [0.5, 0.6, 0.7], [1.0] * 3, [1, 1])
    lines = "".join(json.dumps(r) + "\n" for r in good)
    cfg = config("x", "standard", 0, 1e-3)
    done = {"status": "completed"}
    write_run(tmp_path, "a-good", cfg, done, good)
    write_run(tmp_path, "b-bad-meta", cfg, None, good).joinpath("meta.json").write_text('{"status": "comp')
    write_run(tmp_path, "c-torn", cfg, {"status": "interrupted"}, None).joinpath("metrics.jsonl").write_text(lines[:-20])
    write_run(tmp_path, "d-mid", cfg, {"status": "failed", "error": "loss became nan"}, None).joinpath(
        "metrics.jsonl").write_text(lines.replace('"epoch": 2', '"epoch": 2,,', 1))
    write_run(tmp_path, "e-config-only", cfg, None, None)
    write_run(tmp_path, "f-bad-config", None, done, good).joinpath("config.yaml").write_text("name: [x\n")
    write_run(tmp_path, "g-starting", cfg, {"status": "running"}, None)
    write_run(tmp_path, "h-list-meta", cfg, None, None).joinpath("meta.json").write_text("[]")
    (tmp_path / "z-not-a-run").mkdir()

    result = invoke("compare", tmp_path, "--columns", "run,status,schedule,epochs,final_eval_acc")
    try:
        json.loads(lines[:-20].splitlines()[-1])
    except json.JSONDecodeError as err:
        torn_error = str(err)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[2:] == [
        "a-good         completed    standard       3          0.7000",
        "b-bad-meta     corrupt      standard       3          0.7000",
        "c-torn         interrupted  standard       2          0.6000",
        "d-mid          failed       standard       1          0.5000",
        "e-config-only  unknown      standard       0               -",
        "f-bad-config   completed    -              3          0.7000",
        "g-starting     running      standard       0               -",
        "h-list-meta    corrupt      standard       0               -",
    ]
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path}/b-bad-meta: meta.json unreadable: Unterminated string starting at: line 1 column 12 (char 11)",
        f"warning: {tmp_path}/c-torn: metrics.jsonl last line unreadable ({torn_error}); epochs from there on ignored",
        f"warning: {tmp_path}/d-mid: metrics.jsonl line 2 of 3 unreadable (Expecting property name enclosed in double quotes: "
        "line 1 column 13 (char 12)); epochs from there on ignored",
        f"warning: {tmp_path}/e-config-only: no meta.json (status unknown)",
        f"warning: {tmp_path}/f-bad-config: config.yaml unreadable: while parsing a flow sequence",
        f"warning: {tmp_path}/h-list-meta: meta.json is not an object (got list)",
    ]
    problems = as_json(tmp_path, "--columns", "run,problems", "--where", "status=corrupt")
    assert problems[1] == {"run": "h-list-meta", "problems": "meta.json is not an object (got list)"}


# ---- show -----------------------------------------------------------------------------------------
def test_show_summarises_one_run(runs):
    path = runs / "ub-s0"
    (path / "plots" / "curves.png").write_bytes(PNG)
    (path / "events" / "train").mkdir()
    (path / "events" / "train" / "events.out.tfevents.1.host.1.0.v2").write_bytes(b"")
    text = invoke("show", path).stdout
    assert text.startswith(f"run     {path}\nstatus  completed (3/3 epochs)\ngit     abc123\nhost    lab1  devices: -\n\n")
    assert "  schedule      name=unfair_back\n" in text and "  optimizer     name=adam lr=0.001\n" in text
    assert (
        "                 epoch  eval_acc  eval_loss  train_acc  train_loss\n"
        "  -------------  -----  --------  ---------  ---------  ----------\n"
        "  final              3    0.7500     0.2500     0.9000      0.1000\n"
        "  best eval_acc      2    0.8000     0.2000     0.8000      0.2000\n"
        "  gap 0.1500  wall_time 30.0  train_time 30.0  eval_time -  images_per_s 100.0\n"
    ) in text
    assert "updates per group (epoch 3 / total)\n  group1  5 / 15\n  group2  10 / 30\n" in text
    assert f"  plots        {path}/plots/curves.png\n" in text
    assert f"  events       {path}/events (TensorBoard runs: train)\n               dilbench tensorboard {path}\n" in text
    assert "updates per group (epoch 3 / total)\n  group1-2  5 / 15\n" in invoke("show", runs / "std-s0").stdout


def test_show_of_a_broken_run_and_of_a_non_run(runs, tmp_path):
    (runs / "ub-s2" / "metrics.jsonl").write_text("{bad\n")
    result = invoke("show", runs / "ub-s2")
    assert result.exit_code == 0
    assert "status   running (0/3 epochs)\n" in result.stdout and "metrics: no finished epoch yet" in result.stdout
    assert "problem  metrics.jsonl last line unreadable" in result.stdout
    not_run = invoke("show", tmp_path)
    assert not_run.exit_code == 2 and not_run.stderr.startswith(f"Error: {tmp_path}: not a dilbench run directory")


@pytest.mark.parametrize("command", [
    ["compare", "{runs}", "--group-by", "schedule", "--plot", "{runs}/p.png"], ["show", "{runs}/std-s0"],
    ["tag", "{runs}/std-s0", "+a", "-b"], ["note", "{runs}/std-s0", "text"], ["prune", "{runs}", "--keep", "best"],
    ["rm", "{runs}/std-s0"], ["trash", "list", "{runs}"], ["trash", "purge", "{runs}", "--all"],
])
def test_compare_show_and_managing_runs_never_import_tensorflow(runs, command):
    args = [part.format(runs=runs) for part in command]
    code = (
        "import sys\nfrom dilbench.cli import cli\n"
        f"try:\n    cli({args!r}, standalone_mode=False)\nfinally:\n    print('TF', 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "TF False"


def test_compare_without_plot_imports_only_what_it_reads(runs):
    """A fresh `dilbench compare` stays quick: no config registries (they import NumPy), no matplotlib."""
    code = (
        "import sys\nfrom dilbench.cli import cli\n"
        f"cli(['compare', {str(runs)!r}, '--where', 'optimizer.lr>=1e-4'], standalone_mode=False)\n"
        "print('HEAVY', sorted(m for m in ('numpy', 'matplotlib', 'dilbench.config', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_restoring_a_trashed_run_never_imports_tensorflow(runs):
    assert invoke("rm", runs / "std-s0").exit_code == 0
    code = (
        "import sys\nfrom dilbench.cli import cli\n"
        f"try:\n    cli(['trash', 'restore', {str(runs / 'std-s0')!r}], standalone_mode=False)\n"
        "finally:\n    print('TF', 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "TF False" and (runs / "std-s0" / "meta.json").is_file()


# ---- provenance and resources (issue 24) --------------------------------------------------------------
def test_resource_and_provenance_columns_are_blank_for_old_runs_and_filter_new_ones(runs):
    """Runs from before resource figures and provenance were recorded: their columns are empty, not an error."""
    records = epoch_records([0.5, 0.6], [0.5, 0.6], [10.0, 10.0], [1])
    for record, peak, util in zip(records, (1.5 * 2**30, 2 * 2**30), (0.5, 0.7)):
        record.update(peak_rss_bytes=int(peak), cpu_seconds=5.0, cpu_util=util)
    meta = {"status": "completed", "name": "new", "seed": 0, "git": {"commit": "abc123", "dirty": True},
            "provenance": {"source": {"commit": "abc123", "dirty": True}, "data": {"sha256": "f" * 64}},
            "resumes": [{"provenance": {"source": {"commit": "abc123", "dirty": False}, "data": {"sha256": "e" * 64}}}]}
    write_run(runs, "new-s0", config("new", "standard", 0, 1e-3), meta, records)
    columns = "run,peak_rss_mib,cpu_util,gpu_peak_mib,data_sha256,dirty"
    rows = {r["run"]: r for r in as_json(runs, "--columns", columns)}
    assert rows["new-s0"] == {"run": "new-s0", "peak_rss_mib": 2048.0, "cpu_util": pytest.approx(0.6), "gpu_peak_mib": None,
                              "data_sha256": "f" * 12 + "+" + "e" * 12, "dirty": True}
    assert rows["std-s0"] == {"run": "std-s0", "peak_rss_mib": None, "cpu_util": None, "gpu_peak_mib": None,
                              "data_sha256": None, "dirty": False}  # an old run: its git flag, nothing more
    table = invoke("compare", runs, "--columns", columns).stdout.splitlines()
    assert table[2].split() == ["new-s0", "2048", "0.6000", "-", f"{'f' * 12}+{'e' * 12}", "true"]
    assert table[3].split() == ["std-s0", "-", "-", "-", "-", "false"]
    assert column(as_json(runs, "--where", "dirty=true", "--columns", "run"), "run") == ["new-s0"]
    assert column(as_json(runs, "--where", "peak_rss_mib>1000", "--columns", "run"), "run") == ["new-s0"]
    show = invoke("show", runs / "new-s0").stdout
    assert "  resume 1  source abc123; data sha256 eeeeeeeeeeee\n" in show


@pytest.mark.parametrize("values", [
    [0.7, 0.75, 0.8], [1e-3, 1e-3 + 1e-15, 1e-3 - 1e-15], [1e8 + 0.1, 1e8 + 0.2, 1e8 + 0.3, 1e8], [0.5] * 7,
    [0.1 * k for k in range(1, 1001)], [3, 4, 5, 9], [2, None, 7], [0.25, None, float("nan"), 0.75, float("inf"), True],
])
def test_group_summaries_match_the_exact_statistics(values):
    """A group's mean and sample std (aggregate.summarize, float sums) agree with statistics' exact rational
    ones to 1e-14 relative, from values that cancel (large offsets, near-equal) to many; None, NaN, inf and
    booleans are not numbers of the group."""
    import statistics

    from dilbench.report.aggregate import summarize

    numbers = [float(v) for v in values if type(v) in (int, float) and math.isfinite(v)]
    summary = summarize(values)
    assert summary is not None
    assert summary.mean == pytest.approx(statistics.fmean(numbers), rel=1e-14)
    assert summary.std == pytest.approx(statistics.stdev(numbers), rel=1e-14, abs=1e-300)
    assert (summary.min, summary.max) == (min(numbers), max(numbers))
    assert summary.integral == all(type(v) is int for v in values if v is not None)


@pytest.mark.parametrize("first, second", [
    ([1, 2], [1, 2]), ([1], [1.0]), ([True], [1]), ([{"a": 1, "b": 2}], [{"b": 2, "a": 1}]), ([{"a": 1}], [{"a": 2}]),
    (0.0, -0.0), (0.0, 0.0), (float("nan"), float("nan")), (0.1, 0.1), (0.1, 0.2), (1, 1.0), (True, 1), ("a", "a"),
])
def test_a_config_key_differs_exactly_when_its_canonical_json_does(first, second):
    """aggregate's cheaper tests of whether a key differs (one repr, equal floats, one type) answer as the
    canonical JSON of the values would: lists of equal but differently typed numbers differ, dicts in another
    key order do not, 0.0 and -0.0 differ, NaNs do not; each value its own object, as read from files."""
    from dilbench.report.aggregate import canonical, differing_config_keys
    from dilbench.report.runs_index import RunRecord

    values = [first, second, json.loads(json.dumps(first)) if not isinstance(first, float) else float(repr(first))]
    runs = [RunRecord.of(Path(f"r{i}"), config={"k": value}) for i, value in enumerate(values)]
    expected = ["k"] if len({canonical(value) for value in values}) > 1 else []
    assert differing_config_keys(runs) == expected
    assert differing_config_keys(runs[::2]) == []  # a value and its copy


def test_a_columns_one_format_is_what_number_gives_each_of_its_values():
    """formats._one_format repeats number's magnitude bands (a column of 100,000 values is formatted at once):
    wherever it names one format for [low, high], every value in between (either sign) formats as number does."""
    from dilbench.report.formats import _one_format, number

    edges = [0.0, 1e-9, 0.004, 0.00999, 0.01, 0.5, 9.99, 10.0, 123.4, 999.9, 1000.0, 5e6, 9999999.0, 1e7, 3e13]
    checked = 0
    for i, low in enumerate(edges):
        for high in edges[i:]:
            spec = _one_format(low, high)
            inside = [v for v in edges if low <= v <= high] + [low + (high - low) * k / 7 for k in range(8)]
            if spec is None:  # a column across bands: formatted value by value with number itself
                continue
            for value in inside:
                for signed in (value, -value):
                    assert format(signed, spec) == number(signed), (low, high, signed)
                    checked += 1
    assert checked > 500
