"""Temporary directories that the next run can tell are leftovers.

Each holds a lock file its process keeps locked (flock) for as long as the directory is in
use. The kernel drops the lock when the process dies, however it dies (SIGKILL, a crash),
so a directory whose lock can be taken is a leftover and `prune_stale` removes it; a live
run's is never touched, whatever its age, and a recycled pid cannot fool the check."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from meshready import signals

OWNER_LOCK = "owner.lock"
# A directory without a lock file is one being created (or left by a meshready from before
# the lock): removed only once it is this old.
UNLOCKED_GRACE_SECONDS = 600


def claim(prefix: str) -> tuple[Path, int]:
    """A new directory under the temp dir and the open, locked file that says it is in use."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    fd = os.open(directory / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\n".encode())  # for a human; the lock is what counts
    return directory, fd


def release(directory: Path, fd: int) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    os.close(fd)  # after the removal: until then the directory is still in use


def is_stale(directory: Path, now: float | None = None) -> bool:
    try:
        fd = os.open(directory / OWNER_LOCK, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        try:
            age = (now or time.time()) - directory.stat().st_mtime
        except OSError:
            return False
        return age > UNLOCKED_GRACE_SECONDS
    except OSError:  # another user's, or not ours to judge
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its process is alive and holds the lock
    finally:
        os.close(fd)
    return True


def prune_stale(prefix: str, temp_dir: Path | None = None) -> list[Path]:
    """Remove the leftover `prefix*` directories under the temp dir; the ones removed."""
    base = Path(temp_dir or tempfile.gettempdir())
    now = time.time()
    removed = []
    for directory in sorted(base.glob(f"{prefix}*")):
        if directory.is_dir() and not directory.is_symlink() and is_stale(directory, now):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A locked directory that is the process's temp dir while inside (so every temporary
    file a run makes is under it, removed with it, and pruned with it if the run is
    killed); leftovers of dead runs with the same prefix are removed first."""
    prune_stale(prefix)
    previous = tempfile.tempdir
    directory: Path | None = None
    fd = -1
    try:
        with signals.deferred():
            directory, fd = claim(prefix)
            tempfile.tempdir = str(directory)
        yield directory
    finally:
        with signals.deferred():
            tempfile.tempdir = previous
            if directory is not None:
                release(directory, fd)
