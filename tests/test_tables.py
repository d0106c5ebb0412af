"""The quick renderers of big compare tables write exactly what tabulate and json.dumps write."""

from __future__ import annotations

import json
import random
import string

import pytest

from dilbench.report.formats import dumps_records
from dilbench.tables import _align, _simple, tabulate, text_table  # tabulate: as dilbench sets it up

CHARACTERS = string.ascii_letters + string.digits + " .-±[],{}éß"


def random_cell(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.1:
        return ""
    if roll < 0.2:
        return " " * rng.randint(1, 3) + rng.choice(string.ascii_letters)
    if roll < 0.3:
        return rng.choice(string.ascii_letters) + " " * rng.randint(1, 3)
    return "".join(rng.choice(CHARACTERS) for _ in range(rng.randint(1, 12)))


@pytest.mark.parametrize("seed", range(4))
def test_text_table_is_what_tabulate_writes(seed):
    rng = random.Random(seed)
    for _ in range(500):
        columns, count = rng.randint(1, 6), rng.randint(0, 8)
        headers = [random_cell(rng) or "h" for _ in range(columns)]
        rows = [[random_cell(rng) for _ in range(columns)] for _ in range(count)]
        numeric = [rng.random() < 0.5 for _ in range(columns)] if rng.random() < 0.8 else None
        indent = rng.choice(["", "  "])
        assert _simple(rows, headers, numeric) is not None  # these take the quick way
        slow = tabulate(rows, headers, tablefmt="simple", colalign=_align(numeric), disable_numparse=True,
                                 preserve_whitespace=True)
        assert text_table(rows, headers, numeric, indent) == "\n".join((indent + line).rstrip() for line in slow.splitlines())


def test_text_table_leaves_wide_and_control_characters_to_tabulate():
    assert _simple([["日本"]], ["h"], None) is None and _simple([["a\tb"]], ["h"], None) is None
    slow = tabulate([["日本", "x"]], ["h", "v"], tablefmt="simple", disable_numparse=True, preserve_whitespace=True)
    assert text_table([["日本", "x"]], ["h", "v"]) == "\n".join(line.rstrip() for line in slow.splitlines())


def plain_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.2:
        return rng.random() < 0.5
    if roll < 0.35:
        return rng.randint(-10**20, 10**20)
    if roll < 0.5:
        return rng.choice([rng.random(), -0.0, 1e300, 5e-324, float("nan"), float("inf"), 1.0])
    if roll < 0.7:
        return "".join(rng.choice('ab"\\\n\té€😀 ') for _ in range(rng.randint(0, 6)))
    if roll < 0.85 and depth < 3:
        return [plain_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3:
        return {"".join(rng.choice('xyé"') for _ in range(rng.randint(0, 3))): plain_value(rng, depth + 1) for _ in range(3)}
    return 1


def test_json_records_are_what_json_dumps_writes():
    rng = random.Random(0)
    for _ in range(2000):
        records = [{"".join(rng.choice('ab.:é"') for _ in range(rng.randint(0, 5))): plain_value(rng)
                    for _ in range(rng.randint(0, 5))} for _ in range(rng.randint(0, 4))]
        assert dumps_records(records) == json.dumps(records, indent=2)
