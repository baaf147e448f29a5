"""What a terminal gets that a log or a pipe does not: colour and a progress line.

Colour follows the conventions people set once for every tool: NO_COLOR (any non-empty
value) turns it off, FORCE_COLOR turns it on, TERM=dumb and non-terminals get none. The
progress line goes to stderr only when stderr is a terminal, so CI logs and redirected
output never carry carriage returns."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import TextIO

STYLES = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def color_enabled(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, style: str, stream: TextIO, env: Mapping[str, str] | None = None) -> str:
    """`text` in `style` when `stream` takes colour, else unchanged."""
    if not color_enabled(stream, env):
        return text
    return f"\033[{STYLES[style]}m{text}\033[0m"


class Progress:
    """`[done/total] what` on one stderr line, redrawn at most ten times a second; silent
    unless stderr is a terminal. Safe to advance from worker threads."""

    def __init__(self, total: int, what: str, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.active = bool(isatty and isatty()) and total > 1
        self.total, self.what, self.done = total, what, 0
        self._lock = threading.Lock()
        self._drawn = 0.0

    def advance(self, label: str = "") -> None:
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if not self.active or (now - self._drawn < 0.1 and self.done < self.total):
                return
            self._drawn = now
            line = f"[{self.done}/{self.total}] {self.what} {label}"[:78]
            self.stream.write(f"\r{line:<78}")
            self.stream.flush()

    def close(self) -> None:
        if self.active and self.done:
            self.stream.write("\r" + " " * 78 + "\r")
            self.stream.flush()
