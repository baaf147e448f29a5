"""Which files a list of manifest inputs (files, directories, `-` for stdin) stands for.
Standard library only: validate's result cache calls it before anything heavy is imported."""

from __future__ import annotations

import os
from collections.abc import Sequence

from meshready.errors import MeshreadyError

YAML_SUFFIXES = (".yaml", ".yml", ".json")
SKIPPED_DIRS = {".git", ".nox", ".venv", "node_modules", "__pycache__"}


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Files in the order given; directories searched recursively (*.yaml, *.yml, *.json),
    sorted; `-` is stdin. Validate's result cache re-lists input directories on every hit."""
    files: list[str] = []
    for given in inputs:
        if given == "-":
            files.append(given)
        elif os.path.isdir(given):
            for directory, dirnames, filenames in os.walk(given):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
                files.extend(
                    os.path.join(directory, name)
                    for name in sorted(filenames)
                    if name.endswith(YAML_SUFFIXES)
                )
        elif os.path.exists(given):
            files.append(given)
        else:
            raise MeshreadyError(f"{given}: no such file or directory")
    return list(dict.fromkeys(files))
