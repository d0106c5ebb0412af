"""`dilbench bench` end to end on a tiny model: every schedule, Keras, and a FreezeOut run's phases.
(The FLOP model itself is tested by hand in test_schedule_plan.py.)"""

from __future__ import annotations

import re

import pytest
from toolkit import QUICKSTART, TINY, invoke

from dilbench.schedules import SCHEDULES

QUICK = ["--steps", "1", "--rounds", "1", "--set", "model.channels=2", "--set", "model.hidden=[4]",
         "--set", "model.dilations=[1,2]", "--set", "train.batch_size=4"]  # one timed step of a small model


def bench(*extra: str) -> str:
    result = invoke("bench", QUICKSTART, *QUICK, *extra)
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_command_prints_every_schedule_and_keras():
    output = bench()
    expected = {*(name for name, entry in SCHEDULES.items() if entry.pattern is not None), "keras_fit"}  # every named one
    lines = output.splitlines()
    assert lines[1].split() == ["method", "ms/step", "img/s", "vs", "standard", "FLOP", "model", "measured/model"]
    rows = {line.split()[0]: line.split() for line in lines[3:3 + len(expected)]}  # under the header's dashed rule
    assert set(rows) == expected
    assert rows["standard"][3:5] == ["1.00x", "1.00x"]
    assert re.fullmatch(r"[0-9.]+x", rows["unfair_back"][4]) and float(rows["unfair_back"][4][:-1]) > 1.5
    assert "standard step throughput vs Keras model.fit:" in output


def test_bench_times_a_custom_schedule_under_freezeout_phase_by_phase():
    """3 groups, t0 0.5 linear: t_i = 0.5, 0.75, 1, so half the run has nothing frozen, a quarter one group, a
    quarter two; the FreezeOut row's FLOP model is that average of the phases' costs."""
    output = bench("--no-keras", "--set", "schedule={substeps: [[-1], all], freezeout: {t0: 0.5, spacing: linear}}",
                   "--set", "train.lr_schedule=constant")
    rows = {match[1]: match[2].split() for match in re.finditer(r"^(\S.*?|  \d frozen \(\d+%\))\s+(\d.*)$", output, re.M)}
    rows = {name.strip(): cells for name, cells in rows.items()}
    assert {"custom", "custom+freezeout", "0 frozen (50%)", "1 frozen (25%)", "2 frozen (25%)"} <= set(rows)
    model = [float(rows[name][-2][:-1]) for name in ("0 frozen (50%)", "1 frozen (25%)", "2 frozen (25%)")]
    assert float(rows["custom+freezeout"][-2][:-1]) == pytest.approx(0.5 * model[0] + 0.25 * model[1] + 0.25 * model[2], abs=0.011)
    assert model[0] > model[1] > model[2]
    assert "FreezeOut: its row is the run's average over the phases below" in output


def test_bench_tables_are_aligned_with_numbers_right():
    from dilbench.launch.bench_end_to_end import EndToEnd, EpochTiming, format_end_to_end
    from dilbench.training.bench import BenchRow, format_bench

    rows = [BenchRow("standard", 0.0125, 320.0, 1.0, 1.0), BenchRow("keras_fit", 0.01, 400.0, 0.8, 1.0),
            BenchRow("custom+freezeout", 0.006, 640.0, 0.5, 0.6), BenchRow("  0 frozen (50%)", 0.0125, 320.0, 1.0, 1.0)]
    assert format_bench(rows, "title").splitlines()[:7] == [
        "title",
        "method            ms/step  img/s  vs standard  FLOP model  measured/model",
        "----------------  -------  -----  -----------  ----------  --------------",
        "standard             12.5  320.0        1.00x       1.00x            1.00",
        "keras_fit            10.0  400.0        0.80x       1.00x            0.80",
        "custom+freezeout      6.0  640.0        0.50x       0.60x            0.83",
        "  0 frozen (50%)     12.5  320.0        1.00x       1.00x            1.00",
    ]
    timing = EpochTiming(bare_seconds=0.5, bare_images_per_s=256.0, train_seconds=0.64, epoch_images_per_s=200.0,
                         eval_seconds=0.1, outputs_seconds=0.26, epoch_seconds=1.0)
    assert format_end_to_end(EndToEnd(4, 32, [timing]), "title").splitlines()[2:6] == [
        "round   bare img/s  epoch img/s  ratio  train s  eval s  outputs s  epoch s  outside   eval  outputs",
        "------  ----------  -----------  -----  -------  ------  ---------  -------  -------  -----  -------",
        "1            256.0        200.0  0.781     0.64    0.10       0.26     1.00    36.0%  10.0%    26.0%",
        "median       256.0        200.0  0.781     0.64    0.10       0.26     1.00    36.0%  10.0%    26.0%",
    ]


TINY_END_TO_END = [*TINY, "data.train_subset=128", "data.test_subset=64", "model.channels=2", "model.hidden=[4]",
                   "model.dilations=[1,2]", "train.batch_size=32", "runtime.deterministic=false", "seed=0"]


def test_end_to_end_times_trainer_epochs_against_the_bare_step():
    """Two measured rounds on the bundled MNIST sample: 128 images in 4 batches of 32, each round the
    bare step over 4 batches and then one Trainer epoch; every number is a timing or computed from them."""
    import functools
    import math

    from dilbench.config import load_config
    from dilbench.launch.bench_end_to_end import format_end_to_end, run_end_to_end

    result = run_end_to_end(load_config(QUICKSTART, TINY_END_TO_END), rounds=2)
    assert (result.steps, result.batch_size, len(result.rounds)) == (4, 32, 2)
    for r in result.rounds:
        assert all(math.isfinite(v) and v > 0 for v in vars(r).values()), r
        assert r.bare_images_per_s == 128 / r.bare_seconds and r.epoch_images_per_s == 128 / r.train_seconds
        assert r.ratio == r.epoch_images_per_s / r.bare_images_per_s
        assert r.epoch_seconds > r.train_seconds + r.eval_seconds
        assert math.isclose(r.outputs_seconds, r.epoch_seconds - r.train_seconds - r.eval_seconds, rel_tol=1e-9, abs_tol=1e-9)
        assert r.outside_share == (r.epoch_seconds - r.train_seconds) / r.epoch_seconds
        assert r.eval_share == r.eval_seconds / r.epoch_seconds and r.outputs_share == r.outputs_seconds / r.epoch_seconds
    assert result.median("train_seconds") == sum(r.train_seconds for r in result.rounds) / 2  # the median of two
    assert result.median("ratio") == (result.rounds[0].ratio + result.rounds[1].ratio) / 2  # ratios taken per round
    lines = format_end_to_end(result, "title").splitlines()
    assert lines[:2] == ["title", "each round: the bare step over 4 steps of 32, then a Trainer epoch of 4 steps"]
    assert lines[2].split() == ["round", "bare", "img/s", "epoch", "img/s", "ratio", "train", "s", "eval", "s", "outputs", "s",
                                "epoch", "s", "outside", "eval", "outputs"]
    assert set(lines[3].replace("  ", "")) == {"-"}
    for label, row in zip(["1", "2", "median"], lines[4:7]):
        cells = row.split()
        assert cells[0] == label and len(cells) == 11
        value = result.median if label == "median" else functools.partial(getattr, result.rounds[int(label) - 1])
        assert float(cells[1]) == round(value("bare_images_per_s"), 1) and float(cells[3]) == round(value("ratio"), 3)
        assert float(cells[4]) == round(value("train_seconds"), 2) and cells[8] == f"{value('outside_share'):.1%}"
    assert lines[7] == f"epoch training img/s vs the bare step: {result.median('ratio'):.3f}x (median over rounds)"
    assert lines[8].startswith(f"outside training: {result.median('outside_share'):.1%} of the epoch (median over rounds; ")


def test_end_to_end_needs_the_data():
    args = ["bench", str(QUICKSTART), "--end-to-end", "--set", "data.dataset=cifar10",
            "--set", "data.root=/nonexistent/cifar"]
    result = invoke(*args, env={"DILBENCH_DATA": "/nonexistent", "KERAS_HOME": "/nonexistent"}, catch_exceptions=True)
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1, result.output
    assert result.output.startswith("Error: cifar10 data root /nonexistent/cifar does not exist")
