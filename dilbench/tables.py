"""The one table renderer: aligned text tables for terminals and Markdown tables for pages.

Built on tabulate (small, pure Python, well kept): column widths, alignment and the Markdown
alignment row are its job, so the commands that print tables or aligned lists (compare, show, summary, bench,
check, sweep, models, configs) only say what the cells are and which columns are numbers (right-aligned).
"""

from __future__ import annotations

from collections.abc import Sequence

import tabulate as _tabulate
from tabulate import tabulate

_tabulate.MIN_PADDING = 0  # columns as wide as their widest cell, two spaces apart (tabulate pads headers by 2)


def text_table(rows: Sequence[Sequence[str]], headers: Sequence[str] = (), numeric: Sequence[bool] | None = None,
               indent: str = "") -> str:
    """A fixed-width table: a dashed rule under the headers, or without headers an aligned list of
    label/text lines; numeric columns right-aligned; cells kept as given, leading spaces too; each line
    starts with `indent`."""
    text = tabulate([list(r) for r in rows], list(headers), tablefmt="simple" if headers else "plain",
                    colalign=_align(numeric), disable_numparse=True, preserve_whitespace=True)
    return "\n".join((indent + line).rstrip() for line in text.splitlines())


def markdown_table(rows: Sequence[Sequence[str]], headers: Sequence[str], numeric: Sequence[bool] | None = None) -> str:
    """A Markdown (pipe) table; `|` inside a cell is escaped."""
    escape = lambda cells: [str(c).replace("|", "\\|") for c in cells]
    return tabulate([escape(r) for r in rows], escape(headers), tablefmt="pipe", colalign=_align(numeric),
                    disable_numparse=True)


def _align(numeric: Sequence[bool] | None) -> list[str] | None:
    return ["right" if n else "left" for n in numeric] if numeric else None  # None: all left
