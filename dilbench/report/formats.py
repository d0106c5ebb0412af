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
    return json.dumps(flat_records(table), indent=2) + "\n"


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


def _cells(table: Table) -> tuple[list[list[str]], list[bool]]:
    """Cell texts and, per column, whether it is numeric (right-aligned)."""
    cells = [[cell(row.get(name), name in table.measures) for name in table.columns] for row in table.rows]
    present = [[row[name] for row in table.rows if row.get(name) is not None] for name in table.columns]
    numeric = [bool(values) and all(isinstance(v, (int, float, Summary)) and not isinstance(v, bool) for v in values)
               for values in present]
    return cells, numeric


def _text(table: Table) -> str:
    cells, numeric = _cells(table)
    return "\n".join([text_table(cells, table.columns, numeric)] + table.notes) + "\n"


def _markdown(table: Table) -> str:
    cells, numeric = _cells(table)
    return markdown_table(cells, table.columns, numeric) + "\n" + "".join(f"\n{note}\n" for note in table.notes)


RENDERERS = {"table": _text, "csv": _csv, "json": _json, "markdown": _markdown}
FORMATS = tuple(RENDERERS)  # the choices of `compare --format`
