"""The quick renderers of big compare tables write exactly what tabulate and json.dumps write."""

from __future__ import annotations

import json
import math
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


def test_a_json_table_of_runs_is_what_json_dumps_writes():
    """formats._json_by_column (a table of runs, encoded column by column into one %-format per row) writes
    what json.dumps writes for its records, whatever its column names and texts hold: % signs included."""
    from dilbench.report.compare import Table
    from dilbench.report.formats import render

    rng = random.Random(1)
    for _ in range(500):
        names = list(dict.fromkeys("".join(rng.choice('ab%s"é.:') for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 5))))
        kind = [rng.choice(["text", "int", "float", "any"]) for _ in names]
        value = {"text": lambda: "".join(rng.choice('a%s"\\\né') for _ in range(rng.randint(0, 4))),
                 "int": lambda: rng.randint(-10**6, 10**6), "float": lambda: rng.choice([rng.random(), -0.0, 1e300]),
                 "any": lambda: plain_value(rng)}
        rows = [{name: value[k]() for name, k in zip(names, kind)} for _ in range(rng.randint(1, 4))]
        finite = [{key: None if isinstance(v, float) and not math.isfinite(v) else v for key, v in row.items()} for row in rows]
        table = Table(names, set(), rows, [[] for _ in rows])
        assert render(table, "json") == json.dumps(finite, indent=2) + "\n"
