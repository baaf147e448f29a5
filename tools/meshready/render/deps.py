"""What a target reads, found statically from its kustomization files: every file a
`kustomize build` of it can open, followed through resources, bases and components.

The answer is closed-world on purpose. A field this module does not know, an entry it
cannot resolve to a file inside the repository, or anything kustomize would fetch or
execute (remote bases, helm charts, exec and KRM-function plugins) makes the target
*uncacheable*, with a reason that `-v` prints: the render cache then always re-renders
it. A wrong "cacheable" would serve stale output; a wrong "uncacheable" only costs time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
import yaml_rs

from meshready.render.targets import KUSTOMIZATION_FILES

# Every field of a Kustomization or Component (kustomize v5). A field outside this set is
# a reason not to cache: it may read a file we do not know of.
_INLINE_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata",
        "namePrefix",
        "nameSuffix",
        "namespace",
        "commonLabels",
        "labels",
        "commonAnnotations",
        "images",
        "imageTags",
        "replicas",
        "vars",
        "sortOptions",
        "generatorOptions",
        "buildMetadata",
    }
)
_DIRECTORY_FIELDS = ("resources", "bases", "components")
_FILE_LIST_FIELDS = ("configurations", "crds")
_PATH_ENTRY_FIELDS = ("patches", "patchesJson6902", "replacements")
_GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")
_PLUGIN_FIELDS = ("transformers", "generators", "validators")
_HELM_FIELDS = ("helmCharts", "helmChartInflationGenerator", "helmGlobals")
_OTHER_FIELDS = ("patchesStrategicMerge", "openapi")
KNOWN_FIELDS = _INLINE_FIELDS.union(
    _DIRECTORY_FIELDS,
    _FILE_LIST_FIELDS,
    _PATH_ENTRY_FIELDS,
    _GENERATOR_FIELDS,
    _PLUGIN_FIELDS,
    _HELM_FIELDS,
    _OTHER_FIELDS,
)

# Builtin plugin configurations (apiVersion: builtin) that may sit in transformers or
# generators, with the fields of each that name files. Any other kind is not cached.
_BUILTIN_FILE_FIELDS: dict[str, tuple[str, ...]] = {
    "AnnotationsTransformer": (),
    "HashTransformer": (),
    "ImageTagTransformer": (),
    "LabelTransformer": (),
    "NamespaceTransformer": (),
    "PrefixSuffixTransformer": (),
    "PrefixTransformer": (),
    "SuffixTransformer": (),
    "ReplicaCountTransformer": (),
    "SortOrderTransformer": (),
    "ValueAddTransformer": (),
    "PatchTransformer": ("path",),
    "PatchJson6902Transformer": ("path",),
    "PatchStrategicMergeTransformer": ("paths",),
    "ReplacementTransformer": ("replacements",),
    "ConfigMapGenerator": ("files", "envs", "env"),
    "SecretGenerator": ("files", "envs", "env"),
}
# A kustomization is input from a pull request: bound what its aliases may expand to.
_ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=100_000)
_FUNCTION_ANNOTATIONS = ("config.kubernetes.io/function", "config.k8s.io/function")


@dataclass(frozen=True)
class Dependencies:
    """The files one target reads (repository-relative POSIX paths), the paths whose
    absence matters (another kustomization file name appearing would change the build),
    and why the target cannot be cached, if it cannot."""

    files: frozenset[str]
    absent: frozenset[str]
    uncacheable: str | None = None


@dataclass
class _Directory:
    """What one kustomization directory contributes by itself."""

    files: set[str] = field(default_factory=set)
    absent: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)
    children: list[Path] = field(default_factory=list)  # resolved kustomization directories


def _is_remote(entry: str) -> bool:
    return (
        "://" in entry
        or entry.startswith(("git@", "github.com/", "gitlab.com/"))
        or ("?ref=" in entry or "?version=" in entry)
    )


class DependencyScanner:
    """Scans kustomization trees under one repository root. Each directory is read once
    per scanner (a fleet of overlays shares its bases), safely from several threads."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._directories: dict[Path, _Directory] = {}
        self._lock = threading.Lock()

    # -- paths ---------------------------------------------------------------------------

    def _relative(self, path: Path) -> str | None:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return None

    def _shown(self, path: Path) -> str:
        return self._relative(path) or str(path)

    def _add_file(self, into: _Directory, base: Path, entry: Any, where: str) -> None:
        """A file kustomize reads; missing files are recorded as absent (a build that reads
        them fails, and failures are never cached; one that does not, changes if they appear)."""
        if not isinstance(entry, str) or not entry:
            into.reasons.append(f"{where}: entry {entry!r} is not a path")
            return
        if _is_remote(entry):
            into.reasons.append(f"{where}: {entry} is remote")
            return
        logical = base / entry
        resolved = logical.resolve()
        relative = self._relative(resolved)
        if relative is None:
            into.reasons.append(f"{where}: {entry} resolves outside the repository ({resolved})")
        elif resolved.is_file():
            into.files.add(relative)
        elif resolved.exists():
            into.reasons.append(f"{where}: {entry} is not a regular file")
        else:
            into.absent.add(relative)

    # -- one directory -------------------------------------------------------------------

    def _scan(self, directory: Path) -> _Directory:
        found = _Directory()
        relative = self._relative(directory)
        if relative is None:
            found.reasons.append(f"{directory} is outside the repository")
            return found
        present = []
        for name in KUSTOMIZATION_FILES:
            candidate = directory / name
            shown = (Path(relative) / name).as_posix() if relative else name
            if candidate.is_file():
                present.append(candidate)
                found.files.add(shown)
                if self._relative(candidate.resolve()) is None:
                    found.reasons.append(f"{shown}: a symlink out of the repository")
            else:
                found.absent.add(shown)
        if not present:
            found.reasons.append(f"{relative or '.'}: no kustomization file")
            return found
        kustomization = present[0]
        shown = self._shown(kustomization)
        try:
            # yaml_rs: a tenth of PyYAML's time, which a fleet of hundreds of overlays notices.
            data = yaml_rs.loads(
                kustomization.read_text(), parse_datetime=False, alias_limits=_ALIAS_LIMITS
            )
        except (OSError, UnicodeDecodeError, ValueError, TypeError, RecursionError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            found.reasons.append(f"{shown}: cannot parse it ({first})")
            return found
        if data is None:
            return found
        if not isinstance(data, dict):
            found.reasons.append(f"{shown}: not a mapping")
            return found
        self._fields(found, directory, shown, data)
        return found

    def _fields(self, found: _Directory, directory: Path, shown: str, data: dict) -> None:
        for key, value in data.items():
            where = f"{shown}: {key}"
            if key not in KNOWN_FIELDS:
                found.reasons.append(f"{where}: unknown field, not analysed")
            elif key in _HELM_FIELDS:
                if value:
                    found.reasons.append(f"{where}: helm charts are inflated by helm")
            elif key in _INLINE_FIELDS or value is None:
                continue
            elif not isinstance(value, list) and key != "openapi":
                found.reasons.append(f"{where}: not a list")
            elif key in _DIRECTORY_FIELDS:
                for entry in value:
                    self._resource(found, directory, entry, where)
            elif key in _FILE_LIST_FIELDS:
                for entry in value:
                    self._add_file(found, directory, entry, where)
            elif key in _PATH_ENTRY_FIELDS:
                for entry in value:
                    if isinstance(entry, dict) and "path" in entry:
                        self._add_file(found, directory, entry["path"], where)
            elif key in _GENERATOR_FIELDS:
                for entry in value:
                    self._generator(found, directory, entry, where)
            elif key in _PLUGIN_FIELDS:
                for entry in value:
                    self._plugin(found, directory, entry, where)
            elif key == "patchesStrategicMerge":
                for entry in value:
                    # An entry is a file name or an inline patch (a YAML document).
                    if isinstance(entry, str) and "\n" not in entry.strip():
                        self._add_file(found, directory, entry, where)
            elif key == "openapi" and isinstance(value, dict) and "path" in value:
                self._add_file(found, directory, value["path"], where)

    def _resource(self, found: _Directory, directory: Path, entry: Any, where: str) -> None:
        if not isinstance(entry, str) or not entry:
            found.reasons.append(f"{where}: entry {entry!r} is not a path")
            return
        if _is_remote(entry):
            found.reasons.append(f"{where}: {entry} is a remote base")
            return
        resolved = (directory / entry).resolve()
        if self._relative(resolved) is None:
            found.reasons.append(f"{where}: {entry} resolves outside the repository ({resolved})")
        elif resolved.is_dir():
            found.children.append(resolved)
        elif resolved.is_file():
            found.files.add(self._shown(resolved))
        else:
            # kustomize tries a path that is not on disk as a remote URL.
            found.reasons.append(f"{where}: {entry} does not exist here (kustomize would fetch it)")

    def _generator(self, found: _Directory, directory: Path, entry: Any, where: str) -> None:
        if not isinstance(entry, dict):
            found.reasons.append(f"{where}: entry is not a mapping")
            return
        env_files = list(entry.get("envs") or []) + ([entry["env"]] if entry.get("env") else [])
        for source in list(entry.get("files") or []) + env_files:
            # `files` entries are `path` or `key=path`.
            path = source.split("=", 1)[1] if isinstance(source, str) and "=" in source else source
            self._add_file(found, directory, path, where)
        for env_file in env_files:
            if isinstance(env_file, str):
                self._environment_keys(found, directory / env_file, where)

    def _environment_keys(self, found: _Directory, path: Path, where: str) -> None:
        """A line of an env file without `=` names an environment variable, whose value
        some kustomize releases take from the environment: not a file, so not cacheable."""
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            return  # a build that reads it fails, and failures are not cached
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if text and not text.startswith("#") and "=" not in text:
                found.reasons.append(
                    f"{where}: {self._shown(path)}:{number}: {text} would take its value from "
                    "the environment"
                )
                return

    def _plugin(self, found: _Directory, directory: Path, entry: Any, where: str) -> None:
        """A transformers/generators/validators entry: a file or an inline configuration of
        a builtin plugin is analysed; directories and every other plugin are not."""
        if not isinstance(entry, str):
            found.reasons.append(f"{where}: entry is not a string")
            return
        if "\n" in entry.strip():
            text, shown = entry, f"{where} (inline)"
        else:
            if _is_remote(entry):
                found.reasons.append(f"{where}: {entry} is remote")
                return
            resolved = (directory / entry).resolve()
            if self._relative(resolved) is None or not resolved.is_file():
                found.reasons.append(f"{where}: {entry} is not a file in the repository")
                return
            found.files.add(self._shown(resolved))
            shown = self._shown(resolved)
            try:
                text = resolved.read_text()
            except (OSError, UnicodeDecodeError) as err:
                found.reasons.append(f"{shown}: cannot read it ({err})")
                return
        try:
            documents = [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d is not None]
        except yaml.YAMLError:
            found.reasons.append(f"{shown}: cannot parse the plugin configuration")
            return
        for document in documents:
            self._builtin(found, directory, document, shown)

    def _builtin(self, found: _Directory, directory: Path, document: Any, shown: str) -> None:
        if not isinstance(document, dict):
            found.reasons.append(f"{shown}: a plugin configuration is not a mapping")
            return
        kind = document.get("kind")
        annotations = (document.get("metadata") or {}).get("annotations") or {}
        if any(a in annotations for a in _FUNCTION_ANNOTATIONS):
            found.reasons.append(f"{shown}: {kind} runs a KRM function (exec or container)")
            return
        if document.get("apiVersion") != "builtin" or kind not in _BUILTIN_FILE_FIELDS:
            found.reasons.append(f"{shown}: {kind} is a plugin, not a builtin this cache knows")
            return
        for name in _BUILTIN_FILE_FIELDS[kind]:
            value = document.get(name)
            values = value if isinstance(value, list) else [value] if value else []
            for item in values:
                if name == "replacements":
                    if isinstance(item, dict) and "path" in item:
                        self._add_file(found, directory, item["path"], shown)
                elif name == "files" and isinstance(item, str) and "=" in item:
                    self._add_file(found, directory, item.split("=", 1)[1], shown)
                else:
                    self._add_file(found, directory, item, shown)

    def _directory(self, directory: Path) -> _Directory:
        cached = self._directories.get(directory)
        if cached is None:
            try:
                cached = self._scan(directory)
            except (OSError, ValueError, RuntimeError) as err:
                # A symlink loop, a path with a NUL byte: kustomize fails on it too.
                cached = _Directory(reasons=[f"{self._shown(directory)}: cannot analyse ({err})"])
            with self._lock:
                self._directories.setdefault(directory, cached)
        return cached

    # -- a target ------------------------------------------------------------------------

    def dependencies(self, target: str) -> Dependencies:
        """Everything the build of `target` (a repository-relative directory) reads."""
        files: set[str] = set()
        absent: set[str] = set()
        reasons: list[str] = []
        start = (self.root / target).resolve()
        pending, seen = [start], {start}
        while pending:
            directory = pending.pop()
            found = self._directory(directory)
            files |= found.files
            absent |= found.absent
            reasons.extend(found.reasons)
            for child in found.children:
                if child not in seen:
                    seen.add(child)
                    pending.append(child)
        return Dependencies(
            files=frozenset(files),
            absent=frozenset(absent),
            uncacheable="; ".join(dict.fromkeys(reasons)) or None,
        )
