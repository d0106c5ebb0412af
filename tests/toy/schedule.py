"""A toy schedule: the top group alone, then every group, then the top group again.

Per batch the top group is updated 3 times and every other group once.
"""

from __future__ import annotations

from dilbench.plugins import register_schedule


def register() -> None:
    register_schedule("toy_top_twice", lambda num_groups: [-1, "all", -1], "top group, all groups, top group again")
