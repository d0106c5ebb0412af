"""The one table renderer: aligned text tables for terminals and Markdown tables for pages.

Built on tabulate (small, pure Python, well kept): column widths, alignment and the Markdown
alignment row are its job, so the commands that print tables or aligned lists (compare, show, summary, bench,
check, sweep, models, configs) only say what the cells are and which columns are numbers (right-aligned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def tabulate(*args: Any, **kwargs: Any) -> str:
    """tabulate.tabulate, imported on first use (the big tables of compare are made without it)."""
    import tabulate as _tabulate

    _tabulate.MIN_PADDING = 0  # columns as wide as their widest cell, two spaces apart (tabulate pads headers by 2)
    return _tabulate.tabulate(*args, **kwargs)


def text_table(rows: Sequence[Sequence[str]], headers: Sequence[str] = (), numeric: Sequence[bool] | None = None,
               indent: str = "") -> str:
    """A fixed-width table: a dashed rule under the headers, or without headers an aligned list of
    label/text lines; numeric columns right-aligned; cells kept as given, leading spaces too; each line
    starts with `indent`."""
    text = _simple(rows, headers, numeric) if headers else None
    if text is None:
        text = tabulate([list(r) for r in rows], list(headers), tablefmt="simple" if headers else "plain",
                        colalign=_align(numeric), disable_numparse=True, preserve_whitespace=True)
    return "\n".join((indent + line).rstrip() for line in text.splitlines())


def _simple(rows: Sequence[Sequence[str]], headers: Sequence[str], numeric: Sequence[bool] | None) -> str | None:
    """What tabulate's "simple" format makes of a table of one-line cells of one-column characters (ASCII, Latin
    letters, ±), at a fraction of its cost (a compare table of 100,000 runs); None for anything else."""
    columns = list(zip(*rows)) if rows else [() for _ in headers]
    if len(columns) != len(headers) or not set(map(len, rows)) <= {len(headers)}:
        return None
    cells = "".join(headers) + "".join("".join(column) for column in columns)
    if not (cells.isprintable() and (cells.isascii() or max(cells) < "\u0300")):  # one column per character
        return None
    right = list(numeric) if numeric else [False] * len(headers)
    widths = [max(len(header), max(map(len, column), default=0)) for header, column in zip(headers, columns)]
    line = "  ".join(f"{{:{'>' if flush else '<'}{width}}}" for width, flush in zip(widths, right)).format
    lines = [line(*headers).rstrip(), "  ".join("-" * width for width in widths)]
    lines += [line(*row).rstrip() for row in rows]
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence[str]], headers: Sequence[str], numeric: Sequence[bool] | None = None) -> str:
    """A Markdown (pipe) table; `|` inside a cell is escaped."""
    escape = lambda cells: [str(c).replace("|", "\\|") for c in cells]
    return tabulate([escape(r) for r in rows], escape(headers), tablefmt="pipe", colalign=_align(numeric),
                    disable_numparse=True)


def _align(numeric: Sequence[bool] | None) -> list[str] | None:
    return ["right" if n else "left" for n in numeric] if numeric else None  # None: all left
