"""The one table renderer: aligned text tables for terminals and Markdown tables for pages.

Built on tabulate (small, pure Python, well kept): column widths, alignment and the Markdown
alignment row are its job, so the commands that print tables (compare, summary, bench, check, sweep)
only say what the cells are and which columns are numbers (right-aligned).
"""

from __future__ import annotations

from collections.abc import Sequence

import tabulate as _tabulate
from tabulate import tabulate

_tabulate.MIN_PADDING = 0  # columns as wide as their widest cell, two spaces apart (tabulate pads headers by 2)


def text_table(rows: Sequence[Sequence[str]], headers: Sequence[str], numeric: Sequence[bool] | None = None) -> str:
    """A fixed-width table with a dashed rule under the header; numeric columns right-aligned."""
    text = tabulate([list(r) for r in rows], list(headers), tablefmt="simple", colalign=_align(headers, numeric),
                    disable_numparse=True)
    return "\n".join(line.rstrip() for line in text.splitlines())


def markdown_table(rows: Sequence[Sequence[str]], headers: Sequence[str], numeric: Sequence[bool] | None = None) -> str:
    """A Markdown (pipe) table; `|` inside a cell is escaped."""
    escape = lambda cells: [str(c).replace("|", "\\|") for c in cells]
    return tabulate([escape(r) for r in rows], escape(headers), tablefmt="pipe", colalign=_align(headers, numeric),
                    disable_numparse=True)


def _align(headers: Sequence[str], numeric: Sequence[bool] | None) -> list[str]:
    return ["right" if n else "left" for n in (numeric or [False] * len(headers))]
