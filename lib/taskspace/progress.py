"""Progress on stderr through tqdm: a bar when the total is known, a running count when it is not."""

from __future__ import annotations

import math
import sys
from typing import TextIO

from tqdm import tqdm

REDRAW_SECONDS = 0.1


class Progress:
    """``update(n)`` advances; ``close()`` ends the line. On a terminal the line redraws in place (at most 10 times a
    second); elsewhere (logs, pipes) only the final line is written, so captured output stays short."""

    def __init__(self, label: str, total: int | None = None, unit: str = "", stream: TextIO | None = None,
                 enabled: bool = True):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and getattr(self.stream, "isatty", lambda: False)()
        counted = "{desc} [{bar:24}] {n_fmt}/{total_fmt}" if total else "{desc}: {n_fmt}"
        # off a terminal the infinite delay keeps tqdm from ever drawing: close() writes the one final line
        self._bar = tqdm(
            total=total or None, desc=label, unit=f" {unit}" if unit else "", file=self.stream,
            bar_format=counted + "{unit} {elapsed_s:5.1f}s", ascii=".#", disable=not enabled, leave=True,
            mininterval=REDRAW_SECONDS, miniters=1, delay=0 if self.live else math.inf,
        )
        self._closed = False

    def update(self, n: int = 1) -> None:
        """Advance the count by ``n``."""
        self._bar.update(n)

    def close(self) -> None:
        """Write the final line (once), ending it with a newline."""
        if self._closed:
            return
        self._closed = True
        if self.enabled and not self.live:
            self.stream.write(f"{self._bar}\n")
            self.stream.flush()
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
