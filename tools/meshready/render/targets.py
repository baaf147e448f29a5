"""Discovering kustomization targets: every directory under the configured target roots
that holds a kustomization file and is not a Component."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml

from meshready.manifests.inputs import SKIPPED_DIRS

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _is_component(kustomization: Path) -> bool:
    try:
        data = yaml.load(kustomization.read_text(errors="replace"), Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return False  # broken files stay targets, so the build reports what is wrong
    return isinstance(data, dict) and data.get("kind") == "Component"


def discover_targets(root: Path, target_roots: Iterable[str]) -> list[str]:
    """Every non-Component kustomization directory under `target_roots`, sorted."""
    found: set[str] = set()
    for target_root in target_roots:
        start = root / target_root
        if not start.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            directory = Path(dirpath)
            kustomization = find_kustomization(directory)
            if kustomization is not None and not _is_component(kustomization):
                found.add(directory.relative_to(root).as_posix())
    return sorted(found)


def target_path(root: Path, given: str) -> str:
    """A user-given target as a repository-relative path, or resolved and absolute if it
    lies outside the repository (render_target then reports it as a failed target)."""
    resolved = (Path.cwd() / given).resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return resolved.as_posix()
