"""Equal compute in `dilbench compare`: epochs on the FLOPs and seconds axes, accuracy at a budget
(interpolated between epochs), and curves against FLOPs. Run directories written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toolkit import PNG, config, invoke, write_run

from dilbench.report.budget import axis_values, best_until, value_at
from dilbench.report.runs_index import RunRecord, read_run

# run -> (schedule, eval_acc per epoch, cumulative train_flops, train seconds per epoch (None: old runs' `seconds` only))
RUNS = {
    "std": ("standard", [0.5, 0.7, 0.6], [10.0, 20.0, 30.0], [1.0, 2.0, 3.0]),
    "ub": ("unfair_back", [0.6, 0.8, 0.75], [25.0, 50.0, 75.0], None),
}


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for name, (schedule, accs, flops, seconds) in RUNS.items():
        records = []
        for epoch, (acc, total) in enumerate(zip(accs, flops), start=1):
            record = {"epoch": epoch, "train_loss": 1.0, "train_acc": 0.5, "eval_loss": 1 - acc, "eval_acc": acc,
                      "eval_split": "test", "seconds": 10.0, "images_per_s": 1.0, "train_flops": total}
            if seconds:
                record["train_seconds"] = seconds[epoch - 1]
            records.append(record)
        write_run(root, name, config(name, schedule, 0, 1e-3), {"status": "completed", "name": name}, records)
    return root


def test_axes_and_interpolation(runs):
    std, ub = read_run(runs / "std"), read_run(runs / "ub")
    assert axis_values(std, "epoch") == [1, 2, 3] and axis_values(std, "flops") == [10, 20, 30]
    assert axis_values(std, "seconds") == [1, 3, 6]  # cumulative train_seconds
    assert axis_values(ub, "seconds") == [10, 20, 30]  # written before train_seconds: `seconds`
    assert value_at(std, "flops", 15) == pytest.approx(0.6)
    assert value_at(std, "flops", 25) == pytest.approx(0.65)
    assert value_at(std, "flops", 30) == pytest.approx(0.6) and value_at(std, "flops", 10) == 0.5
    assert value_at(std, "flops", 5) is None and value_at(std, "flops", 31) is None
    assert value_at(ub, "flops", 25) == 0.6 and value_at(ub, "flops", 20) is None
    assert value_at(std, "epoch", 2.5, "eval_loss") == pytest.approx(0.35)
    assert best_until(std, "flops", 25) == pytest.approx(0.7) and best_until(std, "flops", 15) == pytest.approx(0.6)


def test_at_an_epoch_the_value_is_that_epochs_exactly():
    """So a claim at equal FLOPs between groups of the same cost compares exactly its equal-epochs values, and the
    page counts that test once (0.1 + (0.45 - 0.1) x 1.0 is 0.44999999999999996)."""
    run = RunRecord.of(Path("r"), metrics=[{"epoch": e, "eval_acc": a, "train_flops": 10.0 * e} for e, a in ((1, 0.1), (2, 0.45))])
    assert value_at(run, "flops", 20.0) == 0.45 and value_at(run, "flops", 10.0) == 0.1


def test_compare_at_flops_says_it_interpolates(runs):
    result = invoke("compare", runs, "--columns", "run", "--at-flops", "25", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["run"]: row for row in json.loads(result.stdout[: result.stdout.rindex("]") + 1])}
    assert rows["std"]["at:flops=25:eval_acc"] == pytest.approx(0.65) and rows["ub"]["at:flops=25:eval_acc"] == 0.6
    table = invoke("compare", runs, "--columns", "run", "--at-flops", "60")
    assert "at:flops=60:eval_acc: test accuracy at 60 training FLOPs" in table.stdout
    assert "interpolated linearly between the two epochs around it" in table.stdout
    grouped = invoke("compare", runs, "--group-by", "schedule", "--columns", "at:seconds=15:eval_acc", "--format", "json")
    assert grouped.exit_code == 0, grouped.output


def test_bad_budget_column_is_a_usage_error(runs):
    result = invoke("compare", runs, "--columns", "at:watts=3:eval_acc")
    assert result.exit_code == 2 and "expected at:AXIS=BUDGET:KEY with AXIS one of epoch, flops, seconds" in result.stderr


def test_curves_against_flops_and_seconds(runs, tmp_path):
    from dilbench.report.curves import epoch_stats

    xs, mean, _, _ = epoch_stats([read_run(runs / "std")], "eval_acc", "flops")
    assert xs == [10, 20, 30] and mean == [0.5, 0.7, 0.6]
    for axis in ("flops", "seconds"):
        result = invoke("compare", runs, "--plot", tmp_path / f"{axis}.png", "--x", axis)
        assert result.exit_code == 0 and (tmp_path / f"{axis}.png").read_bytes()[:8] == PNG


def test_train_flops_column_and_show(runs):
    from dilbench.report.formats import number

    result = invoke("compare", runs, "--columns", "run,train_flops", "--format", "csv")
    assert result.stdout.splitlines()[1:] == ["std,30.0", "ub,75.0"]
    assert "train_flops 30.0" in invoke("show", runs / "std").stdout
    assert number(3.176e9) == "3.18e+09" and number(123456.0) == "123456"
