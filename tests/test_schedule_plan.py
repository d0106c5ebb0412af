"""Schedules as data, without TensorFlow: selectors, derived sub-steps, update counts, the FLOP cost
model, FreezeOut's points and factors, per-group values and the training-compute count."""

from __future__ import annotations

import math

import pytest
from toolkit import error_of, write

from dilbench.schedules import FreezeOutConfig, ScheduleConfig, batch_plan, flops_per_example, updates_per_batch
from dilbench.schedules.freezeout import freeze_points, frozen_groups, lr_factor
from dilbench.schedules.plan import SubStep, per_group, resolve
from dilbench.training.compute import epoch_images, training_flops
from dilbench.typed.validate import FieldError

FLOPS = [1, 2, 3]  # forward FLOPs of three groups


def custom(*substeps) -> ScheduleConfig:
    return ScheduleConfig(substeps=tuple(substeps))


def test_selectors():
    assert resolve([1, -1, "2..3", "-2..-1", "all", (1, -1), ("1..2", 2)], 3) == [
        (0,), (2,), (1, 2), (1, 2), (0, 1, 2), (0, 2), (0, 1)]
    for bad, message in ((4, "group 4 does not exist: the model has 3 groups"), (-4, "group -4 does not exist"),
                         ("3..1", "runs downwards"), ("1..5", "group 5 does not exist")):
        with pytest.raises(FieldError, match=message) as info:
            resolve([bad], 3)
        assert info.value.path == "schedule.substeps[0]"


def test_named_schedules_are_sub_step_lists():
    assert batch_plan(ScheduleConfig("standard"), 3) == [SubStep((0, 1, 2), "first")]
    assert batch_plan(ScheduleConfig("unfair_back"), 3) == [
        SubStep((2,), "first"), SubStep((1, 2), "cached"), SubStep((0, 1, 2), "cached")]
    assert batch_plan(ScheduleConfig("unfair_front"), 3) == [
        SubStep((0,), "first"), SubStep((0, 1), "cached"), SubStep((0, 1, 2), "cached")]
    assert updates_per_batch(ScheduleConfig("unfair_back"), 9) == list(range(1, 10))
    assert updates_per_batch(ScheduleConfig("unfair_front"), 9) == list(range(9, 0, -1))


def test_cost_model_of_the_named_schedules_by_hand():
    """Forward F, weight gradient F and input gradient F per group; none below a sub-step's lowest group."""
    assert flops_per_example(ScheduleConfig("standard"), FLOPS) == 6 + 6 + 5
    # forward 6; sub-step 1 from the first pass: W3 = 3; then from cached inputs: F(2..3) 5 + W 5 + I3 3,
    # F(1..3) 6 + W 6 + I(2..3) 5
    assert flops_per_example(ScheduleConfig("unfair_back"), FLOPS) == 6 + 3 + (5 + 5 + 3) + (6 + 6 + 5)
    # each sub-step: a full forward 6 + input grads of groups 2-3 (5) + weight grads of groups 1..k
    assert flops_per_example(ScheduleConfig("unfair_front"), FLOPS) == (6 + 5 + 1) + (6 + 5 + 3) + (6 + 5 + 6)


def test_custom_schedule_derives_sources_counts_and_cost():
    """[[1], [-1], '2..3', all]: after group 1 changed, the top sub-steps must re-run the groups below
    them (fresh); `all` starts at group 1, whose cached input (the images) is still valid."""
    schedule = custom((1,), (-1,), "2..3", "all")
    assert batch_plan(schedule, 3) == [SubStep((0,), "first"), SubStep((2,), "fresh"), SubStep((1, 2), "fresh"),
                                       SubStep((0, 1, 2), "cached")]
    assert updates_per_batch(schedule, 3) == [2, 2, 3]
    # first pass 6; (W1 1 + I(2..3) 5); (fresh 6 + W3 3); (fresh 6 + W(2..3) 5 + I3 3); (6 + W 6 + I(2..3) 5)
    assert flops_per_example(schedule, FLOPS) == 6 + 6 + 9 + 14 + 17


def test_the_issues_example_is_unfair_back_on_three_groups():
    example = custom((-1,), (-2, -1), "all")
    assert batch_plan(example, 3) == batch_plan(ScheduleConfig("unfair_back"), 3)
    assert flops_per_example(example, FLOPS) == flops_per_example(ScheduleConfig("unfair_back"), FLOPS)
    assert updates_per_batch(example, 5) == [1, 1, 1, 2, 3]


def test_frozen_groups_leave_every_sub_step():
    front = ScheduleConfig("unfair_front")
    assert batch_plan(front, 3, frozen=1) == [SubStep((1,), "first"), SubStep((1, 2), "cached")]
    assert updates_per_batch(front, 3, frozen=1) == [0, 2, 1]
    assert flops_per_example(front, FLOPS, frozen=1) == 6 + (2 + 3) + (5 + 5 + 3)
    # standard with the lowest two frozen: forward 6, then only group 3's weight gradient
    assert flops_per_example(ScheduleConfig("standard"), FLOPS, frozen=2) == 6 + 3


def test_schedule_config_in_yaml(tmp_path):
    from dilbench.config import load_config

    path = write(tmp_path, """
        schedule:
          substeps: [[-1], [-2, -1], all]
        """)
    assert load_config(path).schedule == ScheduleConfig("custom", ((-1,), (-2, -1), "all"))
    assert load_config(path, ["schedule.name=custom"]).schedule.name == "custom"
    assert load_config(path, ["schedule=unfair_back"]).schedule == ScheduleConfig("unfair_back")
    assert "schedule 'standard' has its own sub-steps; for your own list set name: custom" in error_of(
        path, ["schedule.name=standard"])
    assert "schedule.substeps[1][0]: groups count from 1 (the bottom group) or from -1" in error_of(
        write(tmp_path, "schedule: {substeps: [[-1], [0, 1]]}"))
    assert "schedule.substeps: a custom schedule lists its sub-steps" in error_of(write(tmp_path, "schedule: custom"))
    assert "schedule.substeps[0]: expected a group" in error_of(write(tmp_path, "schedule: {substeps: [top]}"))


def test_freezeout_points_and_factors():
    assert freeze_points(FreezeOutConfig(t0=0.5, spacing="linear"), 3) == [0.5, 0.75, 1.0]
    assert freeze_points(FreezeOutConfig(t0=0.8, spacing="cubic"), 3) == pytest.approx([0.512, 0.729, 1.0])
    points = [0.5, 0.75, 1.0]
    assert [frozen_groups(points, t) for t in (0.0, 0.49, 0.5, 0.74, 0.75, 0.999)] == [0, 0, 1, 1, 2, 2]
    scaled, unscaled = FreezeOutConfig(t0=0.5, spacing="linear"), FreezeOutConfig(t0=0.5, spacing="linear", scale_lr=False)
    assert lr_factor(scaled, 0.5, 0.0) == 2.0 and lr_factor(unscaled, 0.5, 0.0) == 1.0
    assert lr_factor(unscaled, 0.5, 0.25) == pytest.approx(0.5) and lr_factor(unscaled, 0.5, 0.5) == 0.0
    assert lr_factor(unscaled, 1.0, 0.5) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_freezeout_config_errors(tmp_path):
    assert "schedule.freezeout.t0: is the fraction of training at which group 1 freezes: in (0, 1], got 1.5" in error_of(
        write(tmp_path, "schedule: {name: standard, freezeout: {t0: 1.5}}"))
    assert "train.lr_schedule: is 'cosine', but schedule.freezeout anneals" in error_of(
        write(tmp_path, "schedule: {freezeout: {}}\ntrain: {lr_schedule: cosine}"))


def test_per_group_values():
    assert per_group(None, 3, "p") == [1.0, 1.0, 1.0]
    assert per_group((1.0, 2.0, 3.0), 3, "p") == [1.0, 2.0, 3.0]
    assert per_group({1: 0.5, "2..-1": 2.0}, 4, "p") == [0.5, 2.0, 2.0, 2.0]
    assert per_group({-1: 3.0}, 4, "p") == [1.0, 1.0, 1.0, 3.0]
    with pytest.raises(FieldError, match="lists 2 values, but the model has 3 groups"):
        per_group((1.0, 2.0), 3, "p")
    with pytest.raises(FieldError, match="names group 3 again"):
        per_group({3: 1.0, -1: 2.0}, 3, "p")


def test_group_lr_and_adam_published_in_yaml(tmp_path):
    from dilbench.config import load_config

    config = load_config(write(tmp_path, "optimizer: {name: adam_published, lr: 1e-4, group_lr: {1: 0.5, '2..-1': 2}}"))
    assert config.optimizer.name == "adam_published" and config.optimizer.group_lr == {1: 0.5, "2..-1": 2.0}
    assert load_config(write(tmp_path, "optimizer: {name: sgd, group_lr: [1, 2, 3]}")).optimizer.group_lr == (1.0, 2.0, 3.0)
    assert "optimizer.group_lr[1]: must be >= 0" in error_of(write(tmp_path, "optimizer: {group_lr: [1, -2]}"))
    assert "optimizer.group_lr.0: groups count from 1" in error_of(write(tmp_path, "optimizer: {group_lr: {0: 2}}"))


def test_training_compute():
    assert epoch_images(300, 64) == [64, 64, 64, 64, 44]
    assert epoch_images(10, 4, "paired") == [4, 4, 4, 4, 4]  # 2 originals + their 2 copies per batch
    assert epoch_images(9, 4, "replace") == [4, 4, 1]
    # 2 batches of 1 image, 2 epochs: t = 0, .25, .5, .75; one group frozen from t = .5; cost 10**frozen
    frozen_at = lambda t: 1 if t >= 0.5 else 0
    assert training_flops([1, 1], 2, 1, lambda k: 10.0**k, frozen_at) == 2
    assert training_flops([1, 1], 2, 2, lambda k: 10.0**k, frozen_at) == 22
