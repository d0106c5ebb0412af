"""Per-epoch progress: a tqdm bar on a terminal, a few plain lines otherwise (logs, CI)."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger("dilbench")


class Progress:
    def __init__(self, description: str, total: int, initial: int = 0, quiet: bool = False):
        self.description = description
        self.total = total
        self.done = initial
        self.next_line = initial + max(1, total // 5)
        self.bar = None
        if not quiet and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=initial, desc=description, unit="batch", leave=False, dynamic_ncols=True)

    def update(self, **stats: float) -> None:
        self.done += 1
        text = " ".join(f"{k.replace('_', '/')}={v:.4g}" for k, v in stats.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.done >= self.next_line and self.done < self.total:
            log.info("%s %d/%d %s", self.description, self.done, self.total, text)
            self.next_line += max(1, self.total // 5)

    def status(self, text: str) -> None:
        """Say what happens after the last batch (e.g. evaluation), so the bar does not sit there silently."""
        if self.bar is not None:
            self.bar.set_description_str(f"{self.description}: {text}", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
