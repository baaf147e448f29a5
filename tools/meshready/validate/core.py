"""The validation core: loaded documents in, one result per resource and Kubernetes version out.

Pure over its inputs (documents, a `SchemaRegistry`, `Options`); reading files, the
result cache and printing live in `files.py`, `cache.py` and `output.py`. Messages and
paths are clipped to `MAX_ECHO` characters, so a huge bad value stays one short line.

A document is anything with `filename`, `line`, `data`, `error`, `duplicate_keys` and
`line_of(path)` (`loader.LoadedDocument`, or `RenderedDocument` for rendered objects).
Line numbers are asked for only when a resource has errors, so valid documents never
pay for line tracking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from meshready.manifests.names import name_problem
from meshready.validate.registry import SchemaRegistry, split_api_version

VALID, INVALID, ERROR, SKIPPED, EMPTY = "valid", "invalid", "error", "skipped", "empty"
# Longest message or path echoed in a report: an 8 MB bad value must not become an 8 MB line.
MAX_ECHO = 400
# jsonschema-rs converts an object to Rust recursively and gives up past this depth.
VALIDATION_DEPTH = 255
STATUSES = (VALID, INVALID, ERROR, SKIPPED, EMPTY)
_ERROR_LINE = re.compile(r"\bline (\d+)")

# Fields only the API server sets; in strict mode a manifest that carries them was
# copied from a live cluster (`kubectl get -o yaml`) and should not be applied as is.
SERVER_SET_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "managedFields",
)


class Document(Protocol):
    filename: str
    line: int
    data: Any
    error: str | None
    duplicate_keys: tuple

    def line_of(self, path: tuple[str | int, ...]) -> int: ...


@dataclass(frozen=True)
class Options:
    kubernetes_versions: tuple[str, ...] = ("1.33.0",)  # resolved schema versions
    strict: bool = False
    skip_kinds: frozenset[str] = frozenset()
    reject_kinds: frozenset[str] = frozenset()
    ignore_missing_schemas: bool = False


@dataclass(slots=True)
class FieldError:
    path: str  # JSON Pointer into the resource, "" for the resource itself
    line: int
    msg: str

    def __post_init__(self) -> None:
        self.path = clip(self.path)
        self.msg = clip(self.msg)


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """`text` cut to about `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 4) :]
    return f"{head}... ({len(text) - len(head) - len(tail):,} characters omitted) ...{tail}"


@dataclass(slots=True)
class ResourceResult:
    filename: str
    line: int
    kind: str
    name: str
    namespace: str
    api_version: str
    kubernetes_version: str | None  # None for documents that are no resource at all
    status: str
    errors: list[FieldError] = field(default_factory=list)
    target: str = ""  # the rendered target, for objects that came from a render
    # (document, path prefix of the resource in it), to find a field's line later (the
    # duplicate-object check wants metadata.name's); None once the result left its process.
    source: Any = field(default=None, repr=False, compare=False)

    def line_of(self, *path: str | int) -> int:
        """The line of a field of this resource, else the resource's own line."""
        if self.source is None:
            return self.line
        doc, prefix = self.source
        if isinstance(doc, int):  # a document index: the result came from a worker process
            doc = _reloaded_document(self.filename, doc)
            if doc is None:
                return self.line
            self.source = (doc, prefix)
        return doc.line_of((*prefix, *path))

    def detached(self) -> ResourceResult:
        """This result without its document (cheap to send between processes); `line_of`
        reloads the file when it is asked for a line."""
        if self.source is not None:
            doc, prefix = self.source
            index = getattr(doc, "index", None)
            self.source = (index, prefix) if isinstance(index, int) else None
        return self

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "filename": self.filename,
            "line": self.line,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "apiVersion": self.api_version,
            "kubernetesVersion": self.kubernetes_version,
            "status": self.status,
            "errors": [{"path": e.path, "line": e.line, "msg": e.msg} for e in self.errors],
            # kubeconform's keys: its `version` is the apiVersion, its `msg` every error
            "version": self.api_version,
            "msg": " - ".join(f"{e.path}: {e.msg}" if e.path else e.msg for e in self.errors),
        }
        if self.target:
            record["target"] = self.target
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> ResourceResult:
        return cls(
            record["filename"],
            record["line"],
            record["kind"],
            record["name"],
            record["namespace"],
            record["apiVersion"],
            record["kubernetesVersion"],
            record["status"],
            [FieldError(e["path"], e["line"], e["msg"]) for e in record["errors"]],
            record.get("target", ""),
        )


_reloaded: dict[str, list[Any]] = {}


def _reloaded_document(filename: str, index: int) -> Any:
    from pathlib import Path

    from meshready.manifests.loader import load_file

    if filename not in _reloaded:
        _reloaded[filename] = load_file(Path(filename))
    documents = _reloaded[filename]
    return documents[index] if 0 <= index < len(documents) else None


def pointer(path: Iterable[str | int]) -> str:
    """JSON Pointer (RFC 6901) for a path: ("metadata", "annotations", "a/b") ->
    "/metadata/annotations/a~1b"."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def crds_in(documents: Iterable[Document]) -> Iterable[tuple[dict, str]]:
    """(CRD, "file:line") for every CustomResourceDefinition among the documents."""
    for doc in documents:
        data = doc.data
        if isinstance(data, dict) and data.get("kind") == "CustomResourceDefinition":
            yield data, f"{doc.filename}:{doc.line}"


def validate_documents(
    documents: Sequence[Document], registry: SchemaRegistry, options: Options
) -> list[ResourceResult]:
    results: list[ResourceResult] = []
    for doc in documents:
        results.extend(_validate_document(doc, registry, options))
    return results


def _validate_document(
    doc: Document, registry: SchemaRegistry, options: Options
) -> list[ResourceResult]:
    target = getattr(doc, "target", "")
    if doc.error is not None:
        where = _ERROR_LINE.search(doc.error)
        error = FieldError("", int(where.group(1)) if where else doc.line, doc.error)
        return [
            ResourceResult(doc.filename, doc.line, "", "", "", "", None, ERROR, [error], target)
        ]
    data = doc.data
    if data is None:
        return [ResourceResult(doc.filename, doc.line, "", "", "", "", None, EMPTY, [], target)]
    if not isinstance(data, dict):
        error = FieldError("", doc.line, f"document is a {type(data).__name__}, not a mapping")
        return [
            ResourceResult(doc.filename, doc.line, "", "", "", "", None, ERROR, [error], target)
        ]
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list):
        results = []
        for index, item in enumerate(data["items"]):
            prefix = ("items", index)
            results.extend(_validate_resource(doc, item, prefix, registry, options, target))
        return results
    return _validate_resource(doc, data, (), registry, options, target)


def _identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return (
        _text(obj.get("apiVersion")),
        _text(obj.get("kind")),
        _text(metadata.get("namespace")),
        _text(metadata.get("name")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _validate_resource(
    doc: Document,
    obj: Any,
    prefix: tuple[str | int, ...],
    registry: SchemaRegistry,
    options: Options,
    target: str,
) -> list[ResourceResult]:
    line = doc.line_of(prefix) if prefix else doc.line
    if not isinstance(obj, dict):
        error = FieldError(pointer(prefix), line, "list item is not a mapping")
        return [ResourceResult(doc.filename, line, "", "", "", "", None, ERROR, [error], target)]
    api_version, kind, namespace, name = _identity(obj)

    def result(version: str | None, status: str, errors: list[FieldError]) -> ResourceResult:
        return ResourceResult(
            doc.filename,
            line,
            kind,
            name,
            namespace,
            api_version,
            version,
            status,
            errors,
            target,
            (doc, prefix),
        )

    missing = [f for f, v in (("apiVersion", api_version), ("kind", kind)) if not v]
    if missing:
        errors = [FieldError(pointer((*prefix, f)), line, f"missing '{f}' key") for f in missing]
        return [result(v, ERROR, errors) for v in options.kubernetes_versions]
    if kind in options.skip_kinds or f"{api_version}/{kind}" in options.skip_kinds:
        return [result(v, SKIPPED, []) for v in options.kubernetes_versions]
    if kind in options.reject_kinds or f"{api_version}/{kind}" in options.reject_kinds:
        error = FieldError(pointer((*prefix, "kind")), line, f"prohibited resource kind {kind}")
        return [result(v, ERROR, [error]) for v in options.kubernetes_versions]

    results = []
    for version in options.kubernetes_versions:
        hit = registry.lookup(version, api_version, kind)
        if hit is None:
            if options.ignore_missing_schemas:
                results.append(result(version, SKIPPED, []))
            else:
                message = f"no schema for {api_version} {kind}"
                results.append(result(version, ERROR, [FieldError("", line, message)]))
            continue
        try:
            obj, problems = _schema_problems(hit.validator, obj)
        except ValueError as err:  # too deep for jsonschema-rs, or a key it cannot take
            message = (
                f"nesting too deep to validate (more than {VALIDATION_DEPTH} levels)"
                if "ecursion" in str(err)
                else f"cannot validate: {err}"
            )
            results.append(result(version, ERROR, [FieldError(pointer(prefix), line, message)]))
            continue
        problems.extend(_resource_rules(obj, name, options.strict))
        errors = [
            FieldError(pointer((*prefix, *path)), doc.line_of((*prefix, *path)), msg)
            for path, msg in problems
        ]
        if options.strict and doc.duplicate_keys:
            errors.extend(_duplicate_keys_under(doc.duplicate_keys, prefix))
        if not errors:
            results.append(result(version, VALID, []))
            continue
        errors.sort(key=lambda e: (e.line, e.path))
        results.append(result(version, INVALID, errors))
    return results


def _schema_problems(
    validator: Any, obj: Any
) -> tuple[Any, list[tuple[tuple[str | int, ...], str]]]:
    """(the object as validated, its schema errors). A key that is not a string (from a
    loader other than ours) is made one as kubectl would, instead of failing the run."""
    try:
        valid = validator.is_valid(obj)
    except ValueError as err:
        if "key must be str" not in str(err):
            raise
        from meshready.manifests.loader import stringify_keys

        obj = stringify_keys(obj)
        valid = validator.is_valid(obj)
    return obj, ([] if valid else list(_schema_errors(validator, obj)))


def _schema_errors(validator: Any, obj: Any) -> Iterable[tuple[tuple[str | int, ...], str]]:
    for error in validator.iter_errors(obj):
        path = tuple(error.instance_path)
        if error.kind.name == "additionalProperties":
            for unexpected in error.kind.as_dict().get("unexpected", []):
                yield (*path, unexpected), f'unknown field "{unexpected}"'
        else:
            yield path, error.message


def _resource_rules(
    obj: dict[str, Any], name: str, strict: bool
) -> Iterable[tuple[tuple[str | int, ...], str]]:
    metadata = obj.get("metadata")
    named = isinstance(metadata, dict) and ("name" in metadata or metadata.get("generateName"))
    if not name and not named:  # a name of the wrong type is the schema's finding
        yield ("metadata",) if isinstance(metadata, dict) else (), "missing metadata.name"
    kind = obj.get("kind")
    problem = name_problem(kind, name) if name and isinstance(kind, str) else None
    if problem:  # the API server refuses it, strict or not (MR401 says the same)
        yield ("metadata", "name"), f"invalid name: {problem}"
    if not strict:
        return
    if "status" in obj:
        yield ("status",), "status is set by the API server, not by manifests"
    if isinstance(metadata, dict):
        for key in SERVER_SET_METADATA:
            if key in metadata:
                yield ("metadata", key), f"metadata.{key} is set by the API server"


def _duplicate_keys_under(duplicates: tuple, prefix: tuple[str | int, ...]) -> list[FieldError]:
    """One error per repeated key, at the line of the repetition: the second line its
    message names (the first is where the key was given before)."""
    return [
        FieldError(pointer((*dup.path, dup.key)), dup.line, dup.message)
        for dup in duplicates
        if tuple(dup.path[: len(prefix)]) == prefix
    ]


def find_duplicate_objects(results: list[ResourceResult]) -> None:
    """Mark a resource invalid when an earlier one in the set has the same group, kind,
    namespace and name (per Kubernetes version). Mutates `results` in place."""
    seen: dict[tuple, ResourceResult] = {}
    for result in results:
        if not result.kind or not result.name or result.status in (ERROR, EMPTY):
            continue
        group = split_api_version(result.api_version)[0]
        key = (
            result.target,  # rendered targets are separate clusters' worth of objects
            result.kubernetes_version,
            group,
            result.kind,
            result.namespace,
            result.name,
        )
        first = seen.setdefault(key, result)
        if first is result:
            continue
        where = f"{first.filename}:{first.line_of('metadata', 'name')}"
        message = f"duplicate object: same group, kind, namespace and name as {where}"
        line = result.line_of("metadata", "name")
        result.errors.append(FieldError("/metadata/name", line, message))
        if result.status in (VALID, SKIPPED):
            result.status = INVALID


def up_to_first_failure(results: list[ResourceResult]) -> list[ResourceResult]:
    """The results up to and including the first invalid or error one (-exit-on-error)."""
    for index, result in enumerate(results):
        if result.status in (INVALID, ERROR):
            return results[: index + 1]
    return results


def exit_status(results: Sequence[ResourceResult]) -> bool:
    """True when every result is acceptable (valid, skipped or empty)."""
    return all(r.status in (VALID, SKIPPED, EMPTY) for r in results)
