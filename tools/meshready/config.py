"""Repository configuration: the `[tool.meshready]` table of the root pyproject.toml."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshready.errors import MeshreadyError

CONFIG_FILE = "pyproject.toml"

# Every key [tool.meshready] may hold, and who reads it (each concern checks its own
# values). A key not listed here is a usage error naming it, so that a typo
# (`production_target`) cannot silently turn a check off. A new key is one line here.
SCHEMA: dict[str, str] = {
    "target_roots": "directories searched for kustomization targets (render)",
    "render_timeout": "seconds one kustomize build may take (render)",
    "render_memory_mib": "address space one kustomize build may use, 0 for no limit (render)",
    "hydrate": "target -> directory of its committed hydrated output (render)",
    "production_targets": "targets held to the production rules (analyze, images)",
    "analyze_fail_on": "severity `meshready check` fails at (analyze)",
    "rules": 'per-target rule tables, "*" for every target (analyze)',
    "gitops_bootstrap": "bootstrap manifests checked against hydrate (gitops)",
    "kubernetes_version": "Kubernetes version validated against (validate)",
    "validate_crd_dirs": "directories of CRDs whose schemas validate (validate)",
    "images": "registry and build contexts of the images (images)",
}


def check_schema(table: dict[str, Any], where: str) -> None:
    """Raise a usage error naming the first unknown key (and the known key it is closest to)."""
    for key in table:
        if key not in SCHEMA:
            close = difflib.get_close_matches(key, SCHEMA, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MeshreadyError(
                f"{where}: [tool.meshready]: unknown key {key!r}{hint}; "
                f"known keys: {', '.join(sorted(SCHEMA))}"
            )


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
    if isinstance(table, dict):
        check_schema(table, CONFIG_FILE)
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
