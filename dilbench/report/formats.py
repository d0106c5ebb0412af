"""Render a compare Table as an aligned text table, CSV, JSON or Markdown.

CSV and JSON are for programs (pandas, scripts): exact values, column names as headers, a missing
value empty (CSV) or null (JSON), a group Summary split into `COLUMN.mean/.std/.min/.max` fields and
lists kept as lists (JSON text in CSV). Table and Markdown are for people: measured numbers with fixed
decimals, `-` for missing, groups as `mean ± std [min, max]`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
from typing import Any

from dilbench.report.aggregate import STAT_FIELDS, Summary
from dilbench.report.compare import Table
from dilbench.tables import markdown_table, text_table


def render(table: Table, fmt: str) -> str:
    """`table` in one of FORMATS."""
    return RENDERERS[fmt](table)


# ---- for programs -----------------------------------------------------------------------------------
def flat_records(table: Table) -> list[dict[str, Any]]:
    """One flat dict per row, Summaries split into one field per statistic."""
    records = []
    for row in table.rows:
        record: dict[str, Any] = {}
        for name in table.columns:
            value = row.get(name)
            if name in table.measures and table.grouped:
                record.update({f"{name}.{stat}": getattr(value, stat) if value else None for stat in STAT_FIELDS})
            else:
                record[name] = value
        records.append({key: _finite(value) for key, value in record.items()})
    return records


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON; they export as missing."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _csv(table: Table) -> str:
    records = flat_records(table)
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180: comma, double quotes, CRLF line ends
    header = _flat_header(table)
    writer.writerow(header)
    for record in records:
        writer.writerow([_csv_cell(record[key]) for key in header])
    return out.getvalue()


def _flat_header(table: Table) -> list[str]:
    """Field names of flat_records, also when there are no rows."""
    if not table.grouped:
        return table.columns
    return [field for name in table.columns for field in ([f"{name}.{s}" for s in STAT_FIELDS] if name in table.measures else [name])]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def _json(table: Table) -> str:
    if not table.grouped and table.rows and table.columns and len(set(table.columns)) == len(table.columns):
        return _json_by_column(table) + "\n"
    return dumps_records(flat_records(table)) + "\n"


def _column(table: Table, name: str) -> list[Any]:
    """One column's values, row by row (None where a row has none)."""
    try:
        return list(map(operator.itemgetter(name), table.rows))
    except KeyError:
        return [row.get(name) for row in table.rows]


def _json_by_column(table: Table) -> str:
    """What dumps_records(flat_records(table)) gives for a table of runs, each column's values encoded at once
    (a JSON table of 100,000 runs is 1.5 million values)."""
    encoded = []
    for name in table.columns:
        values = _column(table, name)
        kinds = set(map(type, values))
        if kinds <= {str}:
            encoded.append(list(map(_encode_text, values)))
        elif kinds <= {int}:
            encoded.append(list(map(int.__repr__, values)))
        elif kinds <= {float} and all(map(math.isfinite, values)):
            encoded.append(list(map(float.__repr__, values)))
        else:
            encoded.append([_encode(_finite(value)) for value in values])
    fields = ",\n".join(f"    {_encode_text(name).replace('%', '%%')}: %s" for name in table.columns)
    record = "  {\n" + fields + "\n  }"  # one %-format per row: no string per cell and field name
    return "[\n" + ",\n".join([record % cells for cells in zip(*encoded)]) + "\n]"


def dumps_records(records: list[dict[str, Any]]) -> str:
    """`json.dumps(records, indent=2)` for a list of flat records, built line by line: the standard library
    formats with indent in pure Python (2 s for 100,000 rows), this in a tenth of it."""
    if not records:
        return "[]"
    lines = []
    for record in records:
        if not record:
            lines.append("  {}")
            continue
        fields = ",\n".join(f"    {_encode_text(key)}: {_encode(value)}" for key, value in record.items())
        lines.append(f"  {{\n{fields}\n  }}")
    return "[\n" + ",\n".join(lines) + "\n]"


_encode_text = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # json.dumps's own (C) string encoder


def _encode(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_text(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)
    return json.dumps(value, indent=2).replace("\n", "\n    ")  # lists, mappings: nested one level deeper


# ---- for people -------------------------------------------------------------------------------------
def number(value: float, like: float | None = None) -> str:
    """Accuracies and losses with 4 decimals, seconds with 1, throughputs whole, tiny values in g-format.

    The precision follows `like` (a group's mean) so a mean, its std and its range line up.
    """
    magnitude = abs(value if like is None else like)
    if 0 < magnitude < 0.01:
        return f"{value:.3g}"
    if magnitude < 10:
        return f"{value:.4f}"
    if magnitude >= 1e7:  # FLOPs
        return f"{value:.3g}"
    return f"{value:.1f}" if magnitude < 1000 else f"{value:.0f}"


def _one_format(low: float, high: float) -> str | None:
    """The format `number` gives every finite value whose magnitude lies in [low, high], None if not one."""
    if low > 0 and high < 0.01:
        return ".3g"
    if (low >= 0.01 or high == 0) and high < 10:
        return ".4f"
    if low >= 10 and high < 1000:
        return ".1f"
    if low >= 1000 and high < 1e7:
        return ".0f"
    return ".3g" if low >= 1e7 else None


def cell(value: Any, measure: bool) -> str:
    if value is None:
        return "-"
    if isinstance(value, Summary):
        if value.integral:  # counts: one decimal for mean and std, whole min and max
            if value.std is None:
                return str(int(value.mean))
            return f"{value.mean:.1f} ± {value.std:.1f} [{value.min:.0f}, {value.max:.0f}]"
        if value.std is None:
            return number(value.mean)
        stats = [number(v, like=value.mean) for v in (value.mean, value.std, value.min, value.max)]
        return "{} ± {} [{}, {}]".format(*stats)
    if isinstance(value, bool):
        return "true" if value else "false"
    if measure and isinstance(value, float):
        return number(value)
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _cells(table: Table) -> tuple[list[tuple[str, ...]], list[bool]]:
    """Cell texts and, per column, whether it is numeric (right-aligned)."""
    columns, numeric = [], []
    for name in table.columns:
        values = _column(table, name)
        kinds = set(map(type, values))
        columns.append(_column_cells(values, kinds, name in table.measures))
        present = kinds - {type(None)}
        numeric.append(bool(present) and present <= {int, float, Summary})
    rows: list[tuple[str, ...]] = list(zip(*columns)) if columns else [() for _ in table.rows]
    return rows, numeric


def _column_cells(values: list[Any], kinds: set[type], measure: bool) -> list[str]:
    """`cell` of each value, by the column's types: one call per value only for mixed columns."""
    if kinds <= {str}:
        return values
    if kinds <= {int, type(None)}:
        return ["-" if value is None else str(value) for value in values]
    if measure and kinds <= {float, type(None)}:
        gaps = values.count(None)
        present = [abs(value) for value in values if value is not None] if gaps else list(map(abs, values))
        spec = _one_format(min(present), max(present)) if present and all(map(math.isfinite, present)) else None
        if spec is not None:  # accuracies, losses, seconds...: every value gets the same format from `number`
            if not gaps:
                return list(map(f"{{:{spec}}}".format, values))
            return ["-" if value is None else format(value, spec) for value in values]
        return ["-" if value is None else number(value) for value in values]
    return [cell(value, measure) for value in values]


def _text(table: Table) -> str:
    cells, numeric = _cells(table)
    return "\n".join([text_table(cells, table.columns, numeric)] + table.notes) + "\n"


def _markdown(table: Table) -> str:
    cells, numeric = _cells(table)
    return markdown_table(cells, table.columns, numeric) + "\n" + "".join(f"\n{note}\n" for note in table.notes)


RENDERERS = {"table": _text, "csv": _csv, "json": _json, "markdown": _markdown}
FORMATS = tuple(RENDERERS)  # the choices of `compare --format`
