"""Turning configuration and flags into a schema registry and validation options.

Imported on every `meshready validate` run, so the schema engine is imported only
inside the function that builds the registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from meshready.errors import MeshreadyError

if TYPE_CHECKING:
    from meshready.config import RepoConfig
    from meshready.validate.registry import SchemaRegistry

DEFAULT_KUBERNETES_VERSION = "1.33"


def split_list(values: Iterable[str] | None) -> list[str]:
    """Repeated and comma-separated flag values, as one list (kubeconform's spelling)."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def configured_version(config: RepoConfig) -> str:
    return str(config.raw.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION))


def crd_dirs(config: RepoConfig, extra: Sequence[Path] = ()) -> list[Path]:
    from meshready.validate.registry import DEFAULT_CRD_DIRS

    configured = config.raw.get("validate_crd_dirs", list(DEFAULT_CRD_DIRS))
    return [config.root / str(d) for d in configured] + list(extra)


def build_registry(
    config: RepoConfig,
    strict: bool,
    locations: Sequence[str],
    versions: Sequence[str],
    extra_crd_dirs: Sequence[Path] = (),
) -> tuple[SchemaRegistry, list[str]]:
    """The registry, and the requested Kubernetes versions resolved to bundled ones."""
    from meshready.validate.registry import SchemaRegistry

    registry = SchemaRegistry(strict, locations, crd_dirs(config, extra_crd_dirs))
    resolved = list(dict.fromkeys(registry.resolve_version(v) for v in versions))
    return registry, resolved


def split_inputs(inputs: list[str]) -> list[str]:
    """kubeconform also takes comma-separated files in one argument; a path that exists
    (commas and all) is taken whole."""
    import os

    split: list[str] = []
    for given in inputs:
        if "," in given and not os.path.exists(given):
            split.extend(part for part in given.split(",") if part)
        else:
            split.append(given)
    return split


def check_patterns(patterns: list[str]) -> None:
    import re

    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise MeshreadyError(f"--ignore-filename-pattern {pattern!r}: {err}") from None


def use_cache_dir(directory: str | None) -> None:
    """`-cache DIR` (kubeconform's flag, which caches downloaded schemas) holds meshready's
    result cache; like kubeconform, the directory must exist."""
    import os

    if directory is None:
        return
    if not os.path.isdir(directory):
        raise MeshreadyError(f"failed opening cache folder {directory}: not a directory")
    os.environ["MESHREADY_CACHE_DIR"] = directory
