"""What rendering produces: per target, its objects with the source each came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
TRANSFORMATIONS_ANNOTATION = "alpha.config.kubernetes.io/transformations"
BUILD_ANNOTATIONS = (ORIGIN_ANNOTATION, TRANSFORMATIONS_ANNOTATION)


@dataclass(frozen=True)
class RenderedObject:
    obj: dict[str, Any]
    # Where kustomize took the object from: {"path": "base/hello/deployment.yaml"} for a
    # resource file, {"configuredIn": ".../kustomization.yaml", "configuredBy": {...}}
    # for a generated one; paths are relative to the repository root.
    origin: dict[str, Any] | None = None

    @property
    def source_path(self) -> str | None:
        if not self.origin:
            return None
        return self.origin.get("path") or self.origin.get("configuredIn")


@dataclass
class RenderResult:
    target: str  # repository-relative POSIX path of the kustomization directory
    objects: list[RenderedObject] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None
