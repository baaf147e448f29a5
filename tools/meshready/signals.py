"""SIGTERM and SIGINT as an exception, so that `finally` blocks run.

Python dies of SIGTERM at once (nothing is cleaned up), and SIGINT's KeyboardInterrupt
can land in the middle of a cleanup. Inside `stop_on_signals`, the first of either signal
runs the given hooks (killing child processes, say), ignores any further one, and raises
`Stopped` in the main thread; code that must not be cut short (creating or removing a
temporary worktree) runs inside `deferred()`, which holds the signal back to its end."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A stopping signal arrived; a BaseException, so `except Exception` never swallows it."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        # The shell's convention for "killed by signal N", which a caller may rely on.
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.name}")


class _State:
    received: int | None = None  # the first stopping signal
    raised = False
    deferring = 0
    hooks: tuple[Callable[[], None], ...] = ()


def _raise_once() -> None:
    if _State.received is not None and not _State.raised:
        _State.raised = True
        raise Stopped(_State.received)


def _on_signal(signum: int, _frame: object) -> None:
    if _State.received is not None:
        return
    _State.received = signum
    for other in SIGNALS:  # a second Ctrl-C must not interrupt the cleanup of the first
        signal.signal(other, signal.SIG_IGN)
    for hook in _State.hooks:
        hook()
    if not _State.deferring:
        _raise_once()


@contextmanager
def stop_on_signals(*hooks: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT raise `Stopped` (after `hooks`) while inside; main thread only
    (elsewhere signals cannot be handled, and this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _State.received, _State.raised, _State.hooks = None, False, hooks
    for s in SIGNALS:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _State.received, _State.raised, _State.hooks = None, False, ()


@contextmanager
def deferred() -> Iterator[None]:
    """A stopping signal that arrives inside waits for the block to finish, then raises."""
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
    if not _State.deferring:
        _raise_once()
