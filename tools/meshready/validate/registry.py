"""Where JSON schemas come from, and compiling each one once.

Sources, in lookup order:

1. CustomResourceDefinitions found in the input set (`SchemaRegistry.add_crd`);
2. CRD files in repository directories (`[tool.meshready] validate_crd_dirs`,
   default `schemas/crds`);
3. `--schema-location` templates in kubeconform's syntax, local files only; a location
   not ending in `json` is a directory in kubeconform's layout, one ending in `json`
   is a template (or one schema file for every kind); the word `default` stands for
   the built-in schemas. A schema without `$schema` is Draft 4, as kubeconform compiles
   it (boolean `exclusiveMaximum`, `format` asserted);
4. the built-in schemas (when no location is given): the Draft 2020-12 schemas that
   the `kubernetes-validate` wheel ships for Kubernetes 1.25..1.37, strict or not.
   They `$ref` into a shared `_definitions.json`, which is registered once per
   Kubernetes version with jsonschema-rs, so each kind compiles in about 2 ms.

A compiled validator is kept per (Kubernetes version, apiVersion, kind). The
registry also records every schema file it read or probed (`consulted`), so the
result cache can tell when a schema on disk changed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs

from meshready.errors import MeshreadyError

DEFAULT_CRD_DIRS = ("schemas/crds",)
DEFAULT_LOCATION = "default"
# kubeconform's default path below a bare directory given as a schema location.
DIRECTORY_TEMPLATE = (
    "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/"
    "{{ .ResourceKind }}{{ .KindSuffix }}.json"
)
_TEMPLATE_VAR = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
TEMPLATE_VARIABLES = (
    "NormalizedKubernetesVersion",
    "KubernetesVersion",
    "StrictSuffix",
    "ResourceKind",
    "ResourceAPIVersion",
    "Group",
    "KindSuffix",
)
DRAFT4 = "http://json-schema.org/draft-04/schema#"
_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local$")


def builtin_schema_root() -> Path:
    """The schema tree inside the installed kubernetes-validate wheel, found without
    importing it (its import pulls in jsonschema, which costs startup time)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise MeshreadyError("the kubernetes-validate package (built-in schemas) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


def builtin_versions(root: Path | None = None) -> list[tuple[int, int, int]]:
    root = root or builtin_schema_root()
    found = []
    for entry in os.listdir(root):
        match = _VERSION_DIR.match(entry)
        if match:
            major, minor, patch = (int(g) for g in match.groups())
            found.append((major, minor, patch))
    return sorted(found)


def parse_version(text: str) -> tuple[int, int]:
    """'1.33', 'v1.33', '1.33.2' -> (1, 33); anything else is a usage error."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", text.strip())
    if not match:
        raise MeshreadyError(f"invalid Kubernetes version {text!r} (expected e.g. 1.33)")
    return int(match.group(1)), int(match.group(2))


def split_api_version(api_version: str) -> tuple[str, str]:
    """'apps/v1' -> ('apps', 'v1'); 'v1' -> ('', 'v1')."""
    group, _, version = api_version.rpartition("/")
    return group, version


def kind_suffix(api_version: str) -> str:
    """kubeconform's `{{ .KindSuffix }}`: '-apps-v1', '-rbac-v1', '-v1'."""
    group, version = split_api_version(api_version)
    prefix = group.split(".")[0]
    return f"-{prefix}-{version}" if prefix else f"-{version}"


def crd_to_schemas(crd: dict[str, Any], strict: bool) -> dict[tuple[str, str, str], dict]:
    """JSON schemas for each served version of a CRD, keyed by (group, version, kind).

    As kubeconform's openapi2jsonschema does in strict mode, every object that lists
    `properties` and says nothing else about extra fields rejects unknown ones, unless
    it carries `x-kubernetes-preserve-unknown-fields`.
    """
    spec = crd.get("spec") if isinstance(crd, dict) else None
    if not isinstance(spec, dict):
        return {}
    group = spec.get("group") or ""
    kind = (spec.get("names") or {}).get("kind") or ""
    schemas: dict[tuple[str, str, str], dict] = {}
    shared = (spec.get("validation") or {}).get("openAPIV3Schema")  # v1beta1 CRDs
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or version.get("served") is False:
            continue
        source = (version.get("schema") or {}).get("openAPIV3Schema") or shared
        if not isinstance(source, dict) or not group or not kind:
            continue
        converted = _convert_openapi(source, strict)
        properties = converted.setdefault("properties", {})
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        properties.setdefault("metadata", {"type": "object"})
        converted["$schema"] = DRAFT4  # OpenAPI 3.0 is Draft 4's dialect (boolean exclusive*)
        schemas[(group, str(version.get("name")), kind)] = converted
    return schemas


def _convert_openapi(node: Any, strict: bool) -> Any:
    if isinstance(node, list):
        return [_convert_openapi(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions", "$defs"):
            out[key] = {k: _convert_openapi(v, strict) for k, v in value.items()}
        elif key == "nullable" or key.startswith("x-kubernetes-"):
            continue
        else:
            out[key] = _convert_openapi(value, strict)
    if node.get("x-kubernetes-int-or-string") or node.get("format") == "int-or-string":
        out.pop("type", None)
        out.pop("format", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        strict
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def check_location(location: str) -> None:
    """A usage error for a location that can never work: remote, or a template naming a
    variable kubeconform does not have (kubeconform fails these before validating too)."""
    if re.match(r"^[a-z]+://", location) and not location.startswith("file://"):
        raise MeshreadyError(
            f"schema location {location!r}: only local files and directories are supported "
            "(validation runs offline)"
        )
    if location == DEFAULT_LOCATION:
        return
    for name in _TEMPLATE_VAR.findall(location):
        if name not in TEMPLATE_VARIABLES:
            raise MeshreadyError(
                f"schema location {location!r}: unknown variable {{{{ .{name} }}}} "
                f"(known: {', '.join(TEMPLATE_VARIABLES)})"
            )
    if "{{" in location.replace("{{ .", "").replace("{{.", ""):
        raise MeshreadyError(f"schema location {location!r}: malformed template")


def expand_location(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise MeshreadyError(f"unknown variable {{{{ .{name} }}}} in schema location")
        return values[name]

    return _TEMPLATE_VAR.sub(replace, template)


@dataclass(frozen=True)
class SchemaHit:
    validator: Any  # jsonschema_rs validator
    source: str  # where the schema came from, for messages


class SchemaRegistry:
    """Compiled validators for (Kubernetes version, apiVersion, kind), built on first use."""

    def __init__(
        self,
        strict: bool,
        locations: Iterable[str] = (),
        crd_dirs: Iterable[Path] = (),
        builtin_root: Path | None = None,
    ):
        self.strict = strict
        self.locations = [loc for loc in locations if loc] or [DEFAULT_LOCATION]
        for location in self.locations:
            check_location(location)
        self._builtin_root = builtin_root
        self.crd_dirs = [Path(d) for d in crd_dirs]
        self._available: list[tuple[int, int, int]] | None = None
        self._builtin_registries: dict[str, Any] = {}
        self._crd_schemas: dict[tuple[str, str, str], tuple[dict, str]] = {}
        self._validators: dict[tuple[str, str, str], SchemaHit | None] = {}
        # schema files read or probed: path -> (mtime_ns, size), or None when absent
        self.consulted: dict[str, tuple[int, int] | None] = {}
        for directory in self.crd_dirs:
            self._load_crd_dir(directory)

    # -- Kubernetes versions -------------------------------------------------------
    @property
    def builtin_root(self) -> Path:
        if self._builtin_root is None:
            self._builtin_root = builtin_schema_root()
        return self._builtin_root

    def resolve_version(self, requested: str) -> str:
        """The built-in schema version used for a requested one: the newest not newer
        than it. '1.33' -> '1.33.0'. Versions outside the bundled range are usage errors."""
        wanted = parse_version(requested)
        if self._available is None:
            self._available = builtin_versions(self.builtin_root)
        usable = [v for v in self._available if v[:2] <= wanted]
        if not usable or wanted > self._available[-1][:2]:
            low, high = self._available[0], self._available[-1]
            raise MeshreadyError(
                f"no schemas for Kubernetes {wanted[0]}.{wanted[1]} "
                f"(bundled: {low[0]}.{low[1]} to {high[0]}.{high[1]})"
            )
        return ".".join(str(p) for p in usable[-1])

    # -- custom resources ----------------------------------------------------------
    def add_crd(self, crd: dict[str, Any], source: str) -> int:
        """Register the schemas of a CRD; returns how many versions it added."""
        schemas = crd_to_schemas(crd, self.strict)
        for key, schema in schemas.items():
            self._crd_schemas[key] = (schema, source)
            for cache_key in [k for k in self._validators if k[2] == key[2]]:
                del self._validators[cache_key]
        return len(schemas)

    def _load_crd_dir(self, directory: Path) -> None:
        from meshready.manifests.loader import load_file

        self._note(directory)  # a directory's mtime changes when a file is added or removed
        if not directory.is_dir():
            return
        for path in sorted(directory.rglob("*")):
            if path.is_dir():  # a CRD added in a subdirectory changes only that one's mtime
                self._note(path)
                continue
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                continue
            self._note(path)
            for doc in load_file(path):
                if doc.error:
                    raise MeshreadyError(f"{path}:{doc.line}: {doc.error}", exit_code=1)
                if (
                    isinstance(doc.data, dict)
                    and doc.data.get("kind") == "CustomResourceDefinition"
                ):
                    self.add_crd(doc.data, f"{path}:{doc.line}")

    # -- lookup ------------------------------------------------------------------------
    def lookup(self, kubernetes_version: str, api_version: str, kind: str) -> SchemaHit | None:
        """The validator for one kind, or None when no source has a schema for it."""
        key = (kubernetes_version, api_version, kind)
        if key not in self._validators:
            self._validators[key] = self._find(kubernetes_version, api_version, kind)
        return self._validators[key]

    def sources(self) -> list[str]:
        """Where each schema looked up came from (for `--debug`)."""
        return [
            f"{api_version} {kind} (Kubernetes {version}): "
            + (hit.source if hit is not None else "no schema")
            for (version, api_version, kind), hit in self._validators.items()
        ]

    def _find(self, k8s_version: str, api_version: str, kind: str) -> SchemaHit | None:
        group, version = split_api_version(api_version)
        crd = self._crd_schemas.get((group, version, kind))
        if crd is not None:
            schema, source = crd
            try:
                return SchemaHit(jsonschema_rs.Draft4Validator(schema), source)
            except ValueError as err:  # a CRD whose schema is not a schema: one line, no trace
                message = str(err).splitlines()[0]
                raise MeshreadyError(
                    f"{source}: CRD schema does not compile: {message}", 1
                ) from None
        for location in self.locations:
            hit = (
                self._builtin(k8s_version, api_version, kind)
                if location == DEFAULT_LOCATION
                else self._from_location(location, k8s_version, api_version, kind)
            )
            if hit is not None:
                return hit
        return None

    def _builtin(self, k8s_version: str, api_version: str, kind: str) -> SchemaHit | None:
        directory = self.builtin_root / f"v{k8s_version}-local{'-strict' if self.strict else ''}"
        path = directory / f"{kind.lower()}{kind_suffix(api_version)}.json"
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        schema = json.loads(raw)
        if schema.get("x-kubernetes-group-version-kind") and not any(
            gvk.get("kind") == kind
            and gvk.get("version") == split_api_version(api_version)[1]
            and gvk.get("group") == split_api_version(api_version)[0]
            for gvk in schema["x-kubernetes-group-version-kind"]
        ):
            return None  # same file name, another group (e.g. foo.example.com/v1 vs foo/v1)
        registry = self._builtin_registries.get(str(directory))
        if registry is None:
            self._note(directory)
            definitions = json.loads((directory / "_definitions.json").read_bytes())
            registry = jsonschema_rs.Registry([(definitions["$id"], definitions)])
            self._builtin_registries[str(directory)] = registry
        # Formats are asserted, as kubeconform does (its schemas are Draft 4): date-time is
        # the one these schemas use that has a check (int32, byte, ... are annotations).
        validator = jsonschema_rs.Draft202012Validator(
            schema, registry=registry, validate_formats=True
        )
        return SchemaHit(validator, f"kubernetes-validate {k8s_version}")

    def _from_location(
        self, location: str, k8s_version: str, api_version: str, kind: str
    ) -> SchemaHit | None:
        group, version = split_api_version(api_version)
        template = location.removeprefix("file://")
        if not template.endswith("json"):  # kubeconform's rule: a directory in its layout
            template = template.rstrip("/") + "/" + DIRECTORY_TEMPLATE
        values = {
            "NormalizedKubernetesVersion": f"v{k8s_version}",
            "KubernetesVersion": k8s_version,
            "StrictSuffix": "-strict" if self.strict else "",
            "ResourceKind": kind.lower(),
            "ResourceAPIVersion": version,
            "Group": group,
            "KindSuffix": kind_suffix(api_version),
        }
        path = Path(expand_location(template, values))
        self._note(path)
        if not path.is_file():
            return None
        try:
            schema = _load_schema_file(path)
            base_uri, retriever = path.resolve().as_uri(), self._local_retriever
            if isinstance(schema, dict) and "$schema" not in schema:  # Draft 4, as kubeconform
                validator: Any = jsonschema_rs.Draft4Validator(
                    schema, base_uri=base_uri, retriever=retriever
                )
            else:
                validator = jsonschema_rs.validator_for(
                    schema, base_uri=base_uri, retriever=retriever
                )
        except (ValueError, OSError, jsonschema_rs.ReferencingError) as err:
            raise MeshreadyError(f"schema {path}: {err}".splitlines()[0], exit_code=1) from None
        return SchemaHit(validator, str(path))

    def _local_retriever(self, uri: str) -> Any:
        if not uri.startswith("file://"):
            raise ValueError(f"{uri}: only local schema references are followed (offline)")
        path = Path(uri.removeprefix("file://").split("#")[0])
        self._note(path)
        return _load_schema_file(path)

    def _note(self, path: Path) -> None:
        try:
            stat = path.stat()
            self.consulted[str(path)] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            self.consulted[str(path)] = None


def _load_schema_file(path: Path) -> Any:
    if path.suffix in (".yaml", ".yml"):
        from meshready.manifests.loader import load_file

        docs = load_file(path)
        if not docs or docs[0].error:
            raise ValueError(docs[0].error if docs else "empty schema file")
        return docs[0].data
    return json.loads(path.read_bytes())


def consulted_unchanged(consulted: dict[str, Any]) -> bool:
    """True when every schema file recorded by `SchemaRegistry.consulted` is as it was."""
    for name, recorded in consulted.items():
        try:
            stat = os.stat(name)
            now = [stat.st_mtime_ns, stat.st_size]
        except OSError:
            now = None
        if (list(recorded) if recorded is not None else None) != now:
            return False
    return True
