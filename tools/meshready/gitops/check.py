"""The GitOps wiring: do the bootstrap manifests sync what this repository hydrates?

Two kinds of mistake are caught, each as a one-line finding
`FILE:LINE: Kind ns/name: message`:

- A Config Sync RootSync/RepoSync (`spec.git.dir`) or an Argo CD Application
  (`spec.source.path`, `spec.sources[].path`) in the bootstrap directories points at
  a directory that is not a hydrate output of `[tool.meshready.hydrate]`: the agent
  would sync hand-written or stale YAML, or nothing at all.
- A synced directory holds a kustomization (the agent would render it itself, so the
  cluster would no longer apply exactly the reviewed files) or a sync object that
  would sync itself (Config Sync's KNV1069: a RootSync must never manage itself).

Pure checks over plain data (`check_bootstrap`, `check_synced`) with file reading at
the edge (`load_manifests`, `check_repo`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshready.config import RepoConfig
from meshready.errors import MeshreadyError
from meshready.manifests.loader import LoadedDocument, load_file

# Sync objects of the two agents: (API group, kind).
CONFIG_SYNC = "configsync.gke.io"
ARGO_CD = "argoproj.io"
ROOT_SYNC_KINDS = frozenset({"RootSync", "RepoSync"})
KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
YAML_SUFFIXES = (".yaml", ".yml")
# Config key listing the directories (or files) that hold the bootstrap manifests.
CONFIG_KEY = "gitops_bootstrap"
DEFAULT_BOOTSTRAP = ("bootstrap",)

FieldPath = tuple[str | int, ...]
_ERROR_LINE = re.compile(r"\bline (\d+)")


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    kind: str
    namespace: str
    name: str
    message: str

    def __str__(self) -> str:
        who = self.kind
        if self.name:  # cluster-scoped objects as `Kind name`, like the analyzer's findings
            who += f" {self.namespace}/{self.name}" if self.namespace else f" {self.name}"
        return f"{self.file}:{self.line}: {who}: {self.message}"


@dataclass
class Manifest:
    """One YAML document of a file, loaded by the shared bounded loader."""

    file: str  # repo-relative path
    document: LoadedDocument

    @property
    def data(self) -> Any:
        return self.document.data

    @property
    def line(self) -> int:
        return self.document.line

    def line_of(self, path: FieldPath) -> int:
        """Line of the field at `path`, or of its nearest ancestor that exists."""
        return self.document.line_of(path)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "")) if isinstance(self.data, dict) else ""

    @property
    def group(self) -> str:
        api_version = str(self.data.get("apiVersion", "")) if isinstance(self.data, dict) else ""
        return api_version.rpartition("/")[0]

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.data.get("metadata") if isinstance(self.data, dict) else None
        return meta if isinstance(meta, dict) else {}

    def finding(self, path: FieldPath, message: str) -> Finding:
        return Finding(
            self.file,
            self.line_of(path),
            self.kind or "document",
            str(self.metadata.get("namespace", "")),
            str(self.metadata.get("name", "")),
            message,
        )


def _error_line(message: str) -> int:
    found = _ERROR_LINE.search(message)
    return int(found.group(1)) if found else 1


def load_manifests(root: Path, path: Path) -> tuple[list[Manifest], list[Finding]]:
    """The YAML documents of a file, or of every YAML file under a directory."""
    files = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
    if path.is_file():
        files = [path]
    manifests: list[Manifest] = []
    problems: list[Finding] = []
    for file in files:
        shown = _relative(file, root)
        for document in load_file(file):
            if document.error is not None:
                problems.append(
                    Finding(shown, _error_line(document.error), "document", "", "", document.error)
                )
            elif isinstance(document.data, dict):
                manifests.append(Manifest(shown, document))
                # The later value wins silently; the agent would sync what nobody meant.
                problems.extend(
                    manifests[-1].finding(dup.path, dup.message) for dup in document.duplicate_keys
                )
    return manifests, problems


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _normalise(directory: str) -> str:
    """`./clusters/asm-ready/` -> `clusters/asm-ready`; the repository root is `.`."""
    cleaned = posixpath.normpath(directory.strip().strip("/") or ".")
    return cleaned


@dataclass(frozen=True)
class SyncSource:
    """A sync object and the repository directory it syncs."""

    manifest: Manifest
    path: FieldPath  # the field holding the directory
    directory: str | None  # normalised; None when the field is missing


def sync_sources(manifest: Manifest) -> list[SyncSource]:
    """The directories a RootSync, RepoSync or Argo CD Application syncs."""
    spec = manifest.data.get("spec") if isinstance(manifest.data, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    if manifest.group == CONFIG_SYNC and manifest.kind in ROOT_SYNC_KINDS:
        git = spec.get("git")
        if spec.get("sourceType", "git") != "git" or not isinstance(git, dict):
            return []  # OCI or Helm sources are not this repository
        directory = git.get("dir")
        # Config Sync syncs the repository root when dir is unset.
        return [SyncSource(manifest, ("spec", "git", "dir"), _normalise(str(directory or ".")))]
    if manifest.group == ARGO_CD and manifest.kind == "Application":
        found = []
        source = spec.get("source")
        if isinstance(source, dict):
            found.append(_argo_source(manifest, source, ("spec", "source")))
        for index, item in enumerate(spec.get("sources") or []):
            if isinstance(item, dict):
                found.append(_argo_source(manifest, item, ("spec", "sources", index)))
        return found
    return []


def _argo_source(manifest: Manifest, source: dict[str, Any], at: FieldPath) -> SyncSource:
    path = source.get("path")
    if source.get("chart"):  # a Helm chart from a chart repository, not a directory
        return SyncSource(manifest, (*at, "chart"), None)
    return SyncSource(manifest, (*at, "path"), _normalise(str(path)) if path else None)


def check_bootstrap(
    manifests: Iterable[Manifest], synced_dirs: set[str], existing: set[str]
) -> list[Finding]:
    """Every sync object must point at a hydrate output that exists."""
    findings = []
    choices = ", ".join(sorted(synced_dirs)) or "none configured"
    for manifest in manifests:
        for source in sync_sources(manifest):
            field_name = ".".join(str(p) for p in source.path)
            if source.directory is None:
                if source.path[-1] == "chart":
                    continue
                findings.append(
                    manifest.finding(
                        source.path, f"{field_name} is not set; set it to one of: {choices}"
                    )
                )
                continue
            if source.directory not in synced_dirs:
                findings.append(
                    manifest.finding(
                        source.path,
                        f"{field_name} {source.directory!r} is not a hydrate output of "
                        f"[tool.meshready.hydrate] (one of: {choices})",
                    )
                )
            elif source.directory not in existing:
                findings.append(
                    manifest.finding(
                        source.path,
                        f"{field_name} {source.directory!r} does not exist; run `nox -s render`",
                    )
                )
            if manifest.group == CONFIG_SYNC:
                spec = manifest.data.get("spec") or {}
                # RootSync defaults to the hierarchical format, which the flat
                # hydrated output does not follow.
                if manifest.kind == "RootSync" and spec.get("sourceFormat") != "unstructured":
                    findings.append(
                        manifest.finding(
                            ("spec", "sourceFormat"),
                            "sourceFormat must be `unstructured` for hydrated output",
                        )
                    )
    return findings


def check_synced(
    directory: str,
    manifests: Iterable[Manifest],
    file_names: Iterable[str],
    bootstrap: Iterable[Manifest] = (),
) -> list[Finding]:
    """A synced directory holds only objects to apply, and never its own sync object."""
    findings = []
    for name in file_names:
        if posixpath.basename(name) in KUSTOMIZATION_FILES:
            findings.append(
                Finding(
                    name,
                    1,
                    "Kustomization",
                    "",
                    "",
                    f"a kustomization in the synced directory {directory}: the agent would "
                    "render it itself instead of applying the reviewed files; hydrate instead",
                )
            )
    syncing_here = {
        (m.kind, str(m.metadata.get("namespace", "")), str(m.metadata.get("name", "")))
        for m in bootstrap
        for s in sync_sources(m)
        if s.directory == directory
    }
    for manifest in manifests:
        identity = (
            manifest.kind,
            str(manifest.metadata.get("namespace", "")),
            str(manifest.metadata.get("name", "")),
        )
        if manifest.kind == "Kustomization" and manifest.group.startswith(
            "kustomize.config.k8s.io"
        ):
            continue  # reported by file name above, whatever the file is called
        for source in sync_sources(manifest):
            if source.directory == directory or identity in syncing_here:
                code = " (Config Sync KNV1069)" if manifest.group == CONFIG_SYNC else ""
                findings.append(
                    manifest.finding(
                        source.path,
                        f"syncs its own directory {directory}{code}: a sync object must never "
                        "manage itself; keep it in bootstrap/ and apply it by hand",
                    )
                )
                break
    return findings


@dataclass
class GitopsReport:
    findings: list[Finding]
    sources: int  # sync objects found in the bootstrap manifests
    synced_dirs: list[str]


def bootstrap_paths(config: RepoConfig) -> tuple[list[str], bool]:
    """(paths, explicit): configured paths must exist; the default may be absent."""
    configured = config.raw.get(CONFIG_KEY)
    if configured is None:
        return list(DEFAULT_BOOTSTRAP), False
    if isinstance(configured, str) or not isinstance(configured, list):
        raise ValueError(f"{CONFIG_KEY} must be a list of paths")
    return [str(p) for p in configured], True


def check_repo(config: RepoConfig) -> GitopsReport:
    """Check the bootstrap manifests and every synced directory of a repository."""
    root = config.root
    paths, explicit = bootstrap_paths(config)
    bootstrap: list[Manifest] = []
    findings: list[Finding] = []
    for relative in paths:
        path = root / relative
        if not path.exists():
            if explicit:
                findings.append(
                    Finding(
                        "pyproject.toml",
                        1,
                        "config",
                        "",
                        "",
                        f"{CONFIG_KEY}: {relative} does not exist",
                    )
                )
            continue
        manifests, problems = load_manifests(root, path)
        bootstrap.extend(manifests)
        findings.extend(problems)

    synced = {_normalise(d) for d in config.hydrate.values()}
    existing = {d for d in synced if (root / d).is_dir()}
    findings.extend(check_bootstrap(bootstrap, synced, existing))
    for directory in sorted(existing):
        manifests, problems = load_manifests(root, root / directory)
        findings.extend(problems)
        names = [_relative(p, root) for p in sorted((root / directory).rglob("*")) if p.is_file()]
        findings.extend(check_synced(directory, manifests, names, bootstrap))
    sources = sum(len(sync_sources(m)) for m in bootstrap)
    return GitopsReport(findings, sources, sorted(synced))


def report_for(config: RepoConfig) -> GitopsReport:
    """check_repo, with a bad `gitops_bootstrap` setting as a usage error."""
    try:
        return check_repo(config)
    except ValueError as err:
        raise MeshreadyError(f"pyproject.toml: [tool.meshready]: {err}") from None
