"""Rendering targets in parallel. Each target is built through a throwaway
wrapper kustomization that adds `buildMetadata: [originAnnotations]`, so that every
object knows the source file it came from; the annotation is then moved out of the
object into `RenderedObject.origin`, which keeps hydrated output free of it.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from meshready.render import kustomize as kz
from meshready.render.cache import RenderCache
from meshready.render.model import (
    ORIGIN_ANNOTATION,
    TRANSFORMATIONS_ANNOTATION,
    RenderedObject,
    RenderResult,
)
from meshready.render.targets import find_kustomization
from meshready.render.yamlfmt import dump_yaml


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
    raw_transformations = annotations.pop(TRANSFORMATIONS_ANNOTATION, None)
    if not annotations:
        del metadata["annotations"]
    origin = None
    if raw_origin:
        parsed = yaml.load(raw_origin, Loader=yaml.CSafeLoader)
        if isinstance(parsed, dict):
            origin = _origin_relative_to_root(parsed, wrapper, root)
    if origin is not None and raw_transformations:
        # The transformers that changed the object (patches, prefixes), in the order they
        # ran, as origin["transformations"]: a finding a patch introduced is located there.
        steps = yaml.load(raw_transformations, Loader=yaml.CSafeLoader)
        if isinstance(steps, list):
            origin["transformations"] = [
                _origin_relative_to_root(step, wrapper, root)
                for step in steps
                if isinstance(step, dict)
            ]
    return obj, origin


def render_target(
    root: Path,
    target: str,
    kustomize: kz.Kustomize,
    timeout: float,
    cache: RenderCache | None = None,
) -> RenderResult:
    """Build one target, or take it from `cache` when nothing it reads has changed."""
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
        lookup = cache.lookup(root, target) if cache is not None else None
        if lookup is not None and lookup.objects is not None:
            result.objects = lookup.objects
        elif lookup is None:
            _build_into(result, root, directory, kustomize, timeout)
        else:
            assert cache is not None  # a lookup comes only from a cache
            try:
                _build_into(result, root, directory, kustomize, timeout)
                cache.store(lookup, result)
            finally:
                cache.release(lookup)
    result.seconds = time.perf_counter() - started
    return result


def _build_into(
    result: RenderResult, root: Path, directory: Path, kustomize: kz.Kustomize, timeout: float
) -> None:
    try:
        result.objects = _build_with_origins(root, directory, kustomize, timeout)
    except kz.BuildError as err:
        result.error = str(err)
    except yaml.YAMLError as err:
        result.error = f"kustomize printed unparsable YAML: {err}".replace("\n", " ")


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
            "- transformerAnnotations\n"
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
    cache: RenderCache | None = None,
    on_done: Callable[[RenderResult], None] | None = None,
) -> list[RenderResult]:
    """Render all targets in parallel; results come back in the order of `targets`.
    `on_done` is called from the worker thread as each target finishes (progress)."""
    if not targets:
        return []
    workers = workers or min(len(targets), 2 * (os.cpu_count() or 1))

    def one(target: str) -> RenderResult:
        result = render_target(root, target, kustomize, timeout, cache)
        if on_done is not None:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, targets))


def render_stream(result: RenderResult) -> str:
    """The target as one normalised multi-document YAML stream."""
    return "---\n".join(dump_yaml(o.obj) for o in result.objects)
