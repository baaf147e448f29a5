"""Which files a list of manifest inputs (files, directories, `-` for stdin) stands for.
Standard library only: validate's result cache calls it before anything heavy is imported."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence

from meshready.errors import MeshreadyError

YAML_SUFFIXES = (".yaml", ".yml", ".json")
SKIPPED_DIRS = {".git", ".nox", ".venv", "node_modules", "__pycache__"}


def _unreadable_kind(path: str) -> str | None:
    """Why a file found in a directory is skipped (it could hang or fail the run), or None:
    a dangling symlink, a FIFO, a socket or a device."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except OSError:
        return "dangling symlink" if os.path.islink(path) else "unreadable"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "not a regular file"


def expand_inputs(
    inputs: Sequence[str],
    ignore_patterns: Sequence[str] = (),
    notes: list[str] | None = None,
    missing_ok: bool = False,
) -> list[str]:
    """Files in the order given; directories searched recursively (*.yaml, *.yml, *.json),
    sorted; `-` is stdin. Validate's result cache re-lists input directories on every hit.

    - `ignore_patterns`: regular expressions (kubeconform's -ignore-filename-pattern); a
      path any of them matches (re.search) is left out, given or found;
    - a file found in a directory that is a dangling symlink, a FIFO or another
      non-regular file is skipped with a one-line note appended to `notes` (reading a
      FIFO nobody writes to would hang); a FIFO given by name (`<(cmd)`) is read;
    - a given path that does not exist is a usage error, or kept (to be reported as an
      error result, as kubeconform does) with `missing_ok`.
    """
    patterns = [re.compile(p) for p in ignore_patterns]

    def ignored(path: str) -> bool:
        return any(p.search(path) for p in patterns)

    files: list[str] = []
    for given in inputs:
        if given == "-":
            files.append(given)
        elif os.path.isdir(given):
            for directory, dirnames, filenames in os.walk(given):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
                for name in sorted(filenames):
                    path = os.path.join(directory, name)
                    if not name.endswith(YAML_SUFFIXES) or ignored(path):
                        continue
                    why = _unreadable_kind(path)
                    if why is None:
                        files.append(path)
                    elif notes is not None:
                        notes.append(f"{path}: skipped ({why})")
        elif ignored(given):
            continue
        elif os.path.exists(given) or missing_ok:
            files.append(given)
        else:
            raise MeshreadyError(f"{given}: no such file or directory")
    return list(dict.fromkeys(files))
