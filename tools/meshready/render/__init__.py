"""From kustomizations to objects with origins (docs/architecture.md).

- `targets`: discovering the kustomization directories to build
- `kustomize`: the kustomize binary (finding it, running `build` with limits)
- `build`: rendering targets in parallel, origins moved out of the objects
- `model`: `RenderResult` and `RenderedObject`, what every later stage reads
- `hydrate`: one file per object, written or checked against the committed output
- `yamlfmt`: the normalised YAML that hydrated files and diffs are made of
"""

from meshready.render.build import (
    render_stream,
    render_target,
    render_targets,
    split_build_annotations,
)
from meshready.render.model import BUILD_ANNOTATIONS, RenderedObject, RenderResult
from meshready.render.targets import discover_targets, find_kustomization, target_path

__all__ = [
    "BUILD_ANNOTATIONS",
    "RenderResult",
    "RenderedObject",
    "discover_targets",
    "find_kustomization",
    "render_stream",
    "render_target",
    "render_targets",
    "split_build_annotations",
    "target_path",
]
