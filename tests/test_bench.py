"""`dilbench bench`: the FLOP model of each schedule, and the command end to end on a tiny model."""

from __future__ import annotations

import re

from click.testing import CliRunner

from dilbench.cli import cli
from dilbench.training.bench import predicted_cost


def test_flop_model_by_hand():
    """Groups of 1, 2, 3 forward FLOPs; backward = weight grad + input grad, none below the lowest group."""
    flops = [1, 2, 3]
    assert predicted_cost("standard", flops) == 6 + 6 + 5
    # forward 6; recompute groups 2-3 (5) and 1-3 (6); backward 3, 5+3, 6+5
    assert predicted_cost("unfair_back", flops) == 6 + 5 + 6 + 3 + 8 + 11
    # each sub-step: forward 6 + input grads of groups 2-3 (5) + weight grads of groups 1..k
    assert predicted_cost("unfair_front", flops) == (6 + 5 + 1) + (6 + 5 + 3) + (6 + 5 + 6)


def test_bench_command_prints_every_schedule_and_keras():
    args = ["bench", "dilbench/configs/quickstart.yaml", "--steps", "1", "--rounds", "1", "--set", "model.channels=2",
            "--set", "model.hidden=[4]", "--set", "model.dilations=[1,2]", "--set", "train.batch_size=4"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:6]}
    assert set(rows) == {"standard", "unfair_back", "unfair_front", "keras_fit"}
    assert rows["standard"][3:5] == ["1.00x", "1.00x"]
    assert re.fullmatch(r"[0-9.]+x", rows["unfair_back"][4]) and float(rows["unfair_back"][4][:-1]) > 1.5
    assert "standard step throughput vs Keras model.fit:" in result.output
