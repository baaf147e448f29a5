"""The result cache of `meshready validate`: a second run over unchanged input replays the
first run's report without parsing or validating anything.

An entry is found by the command line and working directory, and is only used when
everything the result depends on is unchanged: the SHA-256 of every input file, the
file list of every input directory and of pyproject.toml, and the size and mtime of
every schema file, CRD file and schema directory (each subdirectory of a CRD directory
too) the first run read. Entries
live in $MESHREADY_CACHE_DIR, else $XDG_CACHE_HOME/meshready/validate, else
~/.cache/meshready/validate. This module imports only the standard library, so a hit
costs little more than starting Python and hashing the inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

from meshready import __version__
from meshready.cachedir import user_cache_dir
from meshready.errors import MeshreadyError
from meshready.manifests.inputs import expand_inputs

FORMAT = 2  # 2: pyproject.toml by content


def cache_dir() -> str:
    return str(user_cache_dir("validate"))


def key_for(argv: list[str]) -> str:
    material = json.dumps([FORMAT, __version__, sys.executable, os.getcwd(), argv])
    return hashlib.sha256(material.encode()).hexdigest()


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def _stat(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_mtime_ns, stat.st_size]


def _config_file(repo: str | None) -> str:
    """The configuration a run reads, whether it exists yet or not: creating one later
    (with a kubernetes_version, say) must invalidate a result made without it."""
    from meshready.config import CONFIG_FILE, find_repo_root

    candidate = find_repo_root(None if repo is None else __import__("pathlib").Path(repo))
    return str(candidate / CONFIG_FILE)


def store(
    key: str,
    given: list[str],
    files: list[str],
    consulted: dict,
    stdout: str,
    stderr: str | None,
    code: int,
    repo: str | None = None,
    ignore_patterns: list[str] | None = None,
) -> None:
    """Record a run; failures to write are ignored (the cache is an optimisation)."""
    watched = {name: list(value) if value else None for name, value in consulted.items()}
    config = _config_file(repo)
    entry = {
        # Its content, not its mtime: an edit of kubernetes_version or validate_crd_dirs
        # can keep the size, and land within the mtime's granularity.
        "config": {config: _digest(config)},  # None while it does not exist
        "given": given,
        "ignore": list(ignore_patterns or ()),
        "files": {name: _digest(name) for name in files},
        "watched": watched,
        "stdout": stdout,
        "stderr": stderr,
        "code": code,
    }
    import tempfile

    directory = cache_dir()
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as tmp:
            json.dump(entry, tmp)
        os.replace(tmp.name, os.path.join(directory, f"{key}.json"))
    except OSError:
        pass


def replay(argv: list[str]) -> int | None:
    """Print a cached report and return its exit code, or None on a miss."""
    try:
        with open(os.path.join(cache_dir(), f"{key_for(argv)}.json"), encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    try:
        files = expand_inputs(entry["given"], entry.get("ignore", ()), [], missing_ok=True)
    except (MeshreadyError, KeyError):
        return None
    if files != list(entry["files"]):
        return None
    if any(_stat(name) != recorded for name, recorded in entry["watched"].items()):
        return None
    if any(_digest(name) != digest for name, digest in entry["files"].items()):
        return None
    if any(_digest(name) != digest for name, digest in entry.get("config", {}).items()):
        return None
    sys.stdout.write(entry["stdout"])
    if entry["stderr"]:
        print(entry["stderr"], file=sys.stderr)
    return int(entry["code"])


class Capture:
    """Writes through to a stream and keeps a copy, for the result cache."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def text(self) -> str:
        return "".join(self.parts)
