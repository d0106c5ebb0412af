"""Typed, frozen config dataclasses from plain YAML data: the machinery every config section uses.

The bottom layer: the sections themselves live with what they configure (data, models, schedules,
optimizers, augment), and `dilbench.config` composes them into a run config and reads YAML.
"""
