"""Discovering kustomization targets, rendering them in parallel, and normalising the result.

A target is a directory under one of the configured target roots that holds a
kustomization file and is not a Component. Each target is built through a throwaway
wrapper kustomization that adds `buildMetadata: [originAnnotations]`, so that every
object knows the source file it came from; the annotation is then moved out of the
object into `RenderedObject.origin`, which keeps hydrated output free of it.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshready.render import kustomize as kz
from meshready.render.yamlfmt import dump_yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
TRANSFORMATIONS_ANNOTATION = "alpha.config.kubernetes.io/transformations"
BUILD_ANNOTATIONS = (ORIGIN_ANNOTATION, TRANSFORMATIONS_ANNOTATION)
SKIPPED_DIRS = {".git", ".nox", ".venv", "node_modules", "__pycache__"}


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


def _inside(root: Path, directory: Path) -> bool:
    return directory.resolve().is_relative_to(root.resolve())


def _origin_relative_to_root(origin: dict[str, Any], wrapper: Path, root: Path) -> dict[str, Any]:
    fixed = dict(origin)
    for key in ("path", "configuredIn"):
        value = fixed.get(key)
        if isinstance(value, str) and not value.startswith(("http://", "https://")):
            absolute = Path(os.path.normpath(wrapper / value))
            try:
                fixed[key] = absolute.relative_to(root).as_posix()
            except ValueError:
                fixed[key] = absolute.as_posix()
    return fixed


def split_build_annotations(
    obj: dict[str, Any], wrapper: Path, root: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Remove the annotations the wrapper asked for; return the object and its origin."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("annotations"), dict):
        return obj, None
    annotations = metadata["annotations"]
    raw_origin = annotations.pop(ORIGIN_ANNOTATION, None)
    annotations.pop(TRANSFORMATIONS_ANNOTATION, None)
    if not annotations:
        del metadata["annotations"]
    origin = None
    if raw_origin:
        parsed = yaml.load(raw_origin, Loader=yaml.CSafeLoader)
        if isinstance(parsed, dict):
            origin = _origin_relative_to_root(parsed, wrapper, root)
    return obj, origin


def render_target(root: Path, target: str, kustomize: kz.Kustomize, timeout: float) -> RenderResult:
    started = time.perf_counter()
    result = RenderResult(target=target)
    directory = root / target
    if not _inside(root, directory):
        result.error = f"target is outside the repository {root}"
    elif not directory.is_dir():
        result.error = "directory does not exist"
    elif find_kustomization(directory) is None:
        result.error = "no kustomization.yaml in this directory"
    else:
        try:
            result.objects = _build_with_origins(root, directory, kustomize, timeout)
        except kz.BuildError as err:
            result.error = str(err)
        except yaml.YAMLError as err:
            result.error = f"kustomize printed unparsable YAML: {err}".replace("\n", " ")
    result.seconds = time.perf_counter() - started
    return result


def _build_with_origins(
    root: Path, directory: Path, kustomize: kz.Kustomize, timeout: float
) -> list[RenderedObject]:
    root = root.resolve()
    with tempfile.TemporaryDirectory(prefix="meshready-render-") as tmp:
        wrapper = Path(tmp)
        relative = os.path.relpath(directory.resolve(), wrapper)
        (wrapper / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n- {relative}\nbuildMetadata:\n- originAnnotations\n"
        )
        try:
            stdout = kz.build(kustomize, wrapper, timeout)
        except kz.BuildError as err:
            # kustomize names paths as the wrapper sees them; name them as the user does.
            raise kz.BuildError(_without_wrapper(str(err), root)) from None
        objects = []
        for document in yaml.load_all(stdout, Loader=yaml.CSafeLoader):
            if isinstance(document, dict):
                obj, origin = split_build_annotations(document, wrapper, root)
                objects.append(RenderedObject(obj=obj, origin=origin))
        return objects


# The layers of kustomize's message that describe the wrapper, not the user's target.
_WRAPPER_LAYERS = re.compile(
    r"^accumulating resources: accumulation err='accumulating resources from '[^']*': "
    r"'[^']*' must resolve to a file': (?:recursed accumulation of path '[^']*': )?"
)


def _without_wrapper(message: str, root: Path) -> str:
    message = _WRAPPER_LAYERS.sub("", message)
    return message.replace(f"{root}/", "")


def render_targets(
    root: Path,
    targets: Sequence[str],
    kustomize: kz.Kustomize,
    timeout: float,
    workers: int | None = None,
) -> list[RenderResult]:
    """Render all targets in parallel; results come back in the order of `targets`."""
    if not targets:
        return []
    workers = workers or min(len(targets), 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda t: render_target(root, t, kustomize, timeout), targets))


def render_stream(result: RenderResult) -> str:
    """The target as one normalised multi-document YAML stream."""
    return "---\n".join(dump_yaml(o.obj) for o in result.objects)
