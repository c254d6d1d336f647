"""A minimal progress display on stderr: a bar when the total is known, a running count when it is not."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``update(n)`` advances; ``close()`` ends the line. On a terminal the line redraws in place (at most 10 times a
    second); elsewhere (logs, pipes) only the final line is written, so captured output stays short."""

    def __init__(self, label: str, total: int | None = None, unit: str = "", stream: TextIO | None = None,
                 enabled: bool = True):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.count = 0
        self.start = time.perf_counter()
        self._drawn = 0.0
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.live and time.perf_counter() - self._drawn >= 0.1:
            self._draw("\r")

    def _line(self) -> str:
        seconds = time.perf_counter() - self.start
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            done = min(self.count / self.total, 1.0)
            bar = "#" * int(round(24 * done)) + "." * (24 - int(round(24 * done)))
            return f"{self.label} [{bar}] {self.count}/{self.total}{unit} {seconds:5.1f}s"
        return f"{self.label}: {self.count}{unit} {seconds:5.1f}s"

    def _draw(self, prefix: str) -> None:
        self.stream.write(prefix + self._line())
        self.stream.flush()
        self._drawn = time.perf_counter()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw("\r" if self.live else "")
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
