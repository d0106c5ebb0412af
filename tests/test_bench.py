"""`dilbench bench` end to end on a tiny model: every schedule, Keras, and a FreezeOut run's phases.
(The FLOP model itself is tested by hand in test_schedule_plan.py.)"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from dilbench.cli import cli

TINY = ["--steps", "1", "--rounds", "1", "--set", "model.channels=2", "--set", "model.hidden=[4]",
        "--set", "model.dilations=[1,2]", "--set", "train.batch_size=4"]


def bench(*extra: str) -> str:
    result = CliRunner().invoke(cli, ["bench", "dilbench/configs/quickstart.yaml", *TINY, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_command_prints_every_schedule_and_keras():
    output = bench()
    rows = {line.split()[0]: line.split() for line in output.splitlines()[2:6]}
    assert set(rows) == {"standard", "unfair_back", "unfair_front", "keras_fit"}
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
