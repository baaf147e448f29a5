"""Repository configuration: the `[tool.meshready]` table of the root pyproject.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshready.errors import MeshreadyError

CONFIG_FILE = "pyproject.toml"


@dataclass(frozen=True)
class RepoConfig:
    root: Path
    target_roots: tuple[str, ...] = ("overlays", "clusters")
    render_timeout: float = 60.0
    # MiB of address space one `kustomize build` may use (0: no limit)
    render_memory_mib: int = 2048
    # target path -> directory its hydrated output is committed to
    hydrate: dict[str, str] = field(default_factory=dict)
    # the whole [tool.meshready] table, for the concerns that read their own keys
    raw: dict[str, Any] = field(default_factory=dict)


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` whose pyproject.toml has [tool.meshready]."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        pyproject = candidate / CONFIG_FILE
        if pyproject.is_file() and "[tool.meshready" in pyproject.read_text(errors="replace"):
            return candidate
    return here


def load_config(root: Path | None = None) -> RepoConfig:
    root = find_repo_root() if root is None else root.resolve()
    pyproject = root / CONFIG_FILE
    if not pyproject.is_file():
        return RepoConfig(root=root)
    try:
        data = tomllib.loads(pyproject.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise MeshreadyError(f"{pyproject}: invalid TOML: {err}") from None
    table = data.get("tool", {}).get("meshready", {})
    try:
        return RepoConfig(
            root=root,
            target_roots=tuple(str(r) for r in table.get("target_roots", RepoConfig.target_roots)),
            render_timeout=float(table.get("render_timeout", RepoConfig.render_timeout)),
            render_memory_mib=_memory_mib(
                table.get("render_memory_mib", RepoConfig.render_memory_mib)
            ),
            hydrate={str(k): str(v) for k, v in table.get("hydrate", {}).items()},
            raw=table,
        )
    except (TypeError, ValueError, AttributeError) as err:
        raise MeshreadyError(f"{pyproject}: [tool.meshready]: {err}") from None


def _memory_mib(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"render_memory_mib must be a whole number of MiB (0: no limit), not {value!r}"
        )
    return value
