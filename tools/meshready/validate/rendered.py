"""Validating rendered kustomize targets: each object is checked against its schema, and
an error's field is mapped to a line of the source file a person edits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshready.manifests.locate import Locator
from meshready.stage import StageReport
from meshready.validate.core import (
    ERROR,
    FieldError,
    Options,
    ResourceResult,
    crds_in,
    find_duplicate_objects,
    validate_documents,
)
from meshready.validate.output import error_lines
from meshready.validate.setup import build_registry, configured_version

if TYPE_CHECKING:
    from meshready.config import RepoConfig
    from meshready.render import RenderResult
    from meshready.validate.registry import SchemaRegistry


@dataclass
class RenderedDocument:
    """A rendered object as a validation document; lines are looked up in its source file
    by the one source locator (`manifests.locate.Locator`), as analysis does, so a
    namePrefix'd or nameSuffix'd object is found in the document it came from."""

    target: str
    data: Any
    origin: str | None
    root: Path
    filename: str = ""
    line: int = 1
    error: str | None = None
    duplicate_keys: tuple = ()
    locator: Locator | None = field(default=None, repr=False)
    _source: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.filename = self.origin or self.target

    def line_of(self, path: tuple[str | int, ...]) -> int:
        source = self._source_document()
        return source.line_of(path) if source is not None else 1

    def _source_document(self) -> Any:
        if self._source is None:
            self._source = False
            if self.origin and isinstance(self.data, dict):
                kind = self.data.get("kind")
                metadata = self.data.get("metadata")
                name = metadata.get("name") if isinstance(metadata, dict) else None
                locator = self.locator or Locator(self.root)
                found = locator.document(self.origin, str(kind or ""), str(name or ""))
                if found is not None:
                    self._source = found
                    self.line = found.line
        return self._source or None


def rendered_documents(results: Sequence[RenderResult], root: Path) -> list[RenderedDocument]:
    locator = Locator(root)  # one per run: each source file is read and split once
    documents = []
    for result in results:
        for rendered in result.objects:
            doc = RenderedDocument(
                result.target, rendered.obj, rendered.source_path, root, locator=locator
            )
            documents.append(doc)
    return documents


def validate_rendered(
    results: Sequence[RenderResult], config: RepoConfig, strict: bool = True
) -> list[ResourceResult]:
    """Strict validation of rendered targets against the configured Kubernetes version;
    every resource is validated per target (duplicates are looked for within a target)."""
    registry, versions = build_registry(config, strict, (), [configured_version(config)])
    options = Options(tuple(versions), strict=strict)
    found: list[ResourceResult] = []
    for result in results:
        docs = rendered_documents([result], config.root)
        for crd, source in _crds(docs):
            registry.add_crd(crd, source)
        target_results = validate_documents(docs, registry, options)
        find_duplicate_objects(target_results)
        found.extend(target_results)
    return found


def _crds(documents: Iterable[Any]) -> list[tuple[dict, str]]:
    return list(crds_in(documents))


def validate_render_results(
    rendered: Sequence[RenderResult], root: Path, registry: SchemaRegistry, options: Options
) -> list[ResourceResult]:
    """`validate --rendered`: a target that failed to render is one error result; the
    others are validated target by target, with the CRDs each target holds."""
    results: list[ResourceResult] = [
        ResourceResult(r.target, 1, "", "", "", "", None, ERROR, [FieldError("", 1, r.error or "")])
        for r in rendered
        if not r.ok
    ]
    for render_result in (r for r in rendered if r.ok):
        docs = rendered_documents([render_result], root)
        for crd, source in _crds(docs):
            registry.add_crd(crd, source)
        results.extend(validate_documents(docs, registry, options))
    return results


def stage(results: list[RenderResult], config: RepoConfig) -> StageReport:
    """The `meshready check` stage: every rendered target, strictly."""
    validated = validate_rendered(results, config)
    report = StageReport(name="validate")
    bad_by_target: dict[str, list[ResourceResult]] = {}
    for item in validated:
        if item.status in ("invalid", "error"):
            bad_by_target.setdefault(item.target, []).append(item)
    for result in results:
        bad = bad_by_target.get(result.target, [])
        report.per_target[result.target] = f"{len(bad)} invalid" if bad else "ok"
        for item in bad:
            report.lines.extend(error_lines(item))
    report.failures = sum(1 for r in validated if r.status in ("invalid", "error"))
    report.summary = f"{report.failures} invalid" if report.failures else "all valid"
    return report
