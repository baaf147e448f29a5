"""`meshready validate`: offline, strict, fast schema validation, kubeconform-compatible.

This module is imported on every `meshready validate` run, including the result-cache
fast path, so heavy imports (the YAML parser, the schema engine, rendering) happen
inside the functions that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshready.errors import EXIT_FINDINGS, EXIT_OK, MeshreadyError
from meshready.validate.cache import expand_inputs

if TYPE_CHECKING:
    from meshready.commands.check import StageReport
    from meshready.config import RepoConfig
    from meshready.render.build import RenderResult
    from meshready.validate.registry import SchemaRegistry
    from meshready.validate.core import Options, ResourceResult

DEFAULT_KUBERNETES_VERSION = "1.33"
# Below this much input, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 1_000_000

DESCRIPTION = """\
Validate Kubernetes manifests against the API schemas, offline. Inputs are files,
directories (searched for *.yaml, *.yml, *.json) or - for stdin; with --rendered,
every kustomization target is rendered and validated instead. kubeconform's
single-dash spellings (-strict, -summary, -output json, ...) work too."""

EPILOG = """\
exit codes:
  0  every resource is valid (or skipped)
  1  an invalid resource, an error (unparsable YAML, missing schema, ...) or no resources
  2  usage error"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate manifests against Kubernetes and CRD schemas (offline)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="FILE|DIR|-",
        help="manifests to validate; with --rendered, kustomization targets (default: all)",
    )
    parser.add_argument(
        "--strict",
        "-strict",
        action="store_true",
        help="reject unknown fields, duplicate keys and fields only the API server sets",
    )
    parser.add_argument(
        "--kubernetes-version",
        "-kubernetes-version",
        action="append",
        metavar="VERSION",
        help="Kubernetes version to validate against; repeat (or comma-separate) for a matrix "
        "(default: [tool.meshready] kubernetes_version)",
    )
    parser.add_argument(
        "--skip", "-skip", action="append", metavar="KIND[,..]", help="kinds to skip"
    )
    parser.add_argument(
        "--reject", "-reject", action="append", metavar="KIND[,..]", help="kinds to reject"
    )
    parser.add_argument(
        "--ignore-missing-schemas",
        "-ignore-missing-schemas",
        action="store_true",
        help="skip resources without a schema instead of failing them",
    )
    parser.add_argument(
        "--schema-location",
        "-schema-location",
        action="append",
        metavar="TEMPLATE",
        help="local schema directory or kubeconform template, e.g. "
        "'schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'; "
        "'default' is the built-in set (used when none is given)",
    )
    parser.add_argument(
        "--crd-dir",
        action="append",
        type=Path,
        metavar="DIR",
        help="directory of CustomResourceDefinition files (default: [tool.meshready] "
        "validate_crd_dirs)",
    )
    parser.add_argument(
        "--output",
        "-output",
        choices=("text", "json", "junit", "tap"),
        default="text",
        help="report format (default: text)",
    )
    parser.add_argument(
        "--summary", "-summary", action="store_true", help="print a summary at the end"
    )
    parser.add_argument(
        "--verbose", "-verbose", action="store_true", help="text output lists valid resources too"
    )
    parser.add_argument(
        "-n", "--workers", type=int, metavar="N", help="worker processes (default: CPU count)"
    )
    parser.add_argument(
        "--allow-empty", action="store_true", help="exit 0 when the input holds no resources"
    )
    parser.add_argument(
        "--rendered",
        action="store_true",
        help="render every kustomization target (or the given ones) and validate the result",
    )
    parser.add_argument(
        "--include-bases", action="store_true", help="with --rendered, render base/ too"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="do not read or write the result cache"
    )
    parser.add_argument(
        "--repo", type=Path, metavar="DIR", help="repository root (default: found from cwd)"
    )


def _split(values: Iterable[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def configured_version(config: RepoConfig) -> str:
    return str(config.raw.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION))


def crd_dirs(config: RepoConfig, extra: Sequence[Path] = ()) -> list[Path]:
    from meshready.validate.registry import DEFAULT_CRD_DIRS

    configured = config.raw.get("validate_crd_dirs", list(DEFAULT_CRD_DIRS))
    return [config.root / str(d) for d in configured] + list(extra)


def build_registry(
    config: RepoConfig,
    strict: bool,
    locations: Sequence[str],
    versions: Sequence[str],
    extra_crd_dirs: Sequence[Path] = (),
) -> tuple[SchemaRegistry, list[str]]:
    from meshready.validate.registry import SchemaRegistry

    registry = SchemaRegistry(strict, locations, crd_dirs(config, extra_crd_dirs))
    resolved = list(dict.fromkeys(registry.resolve_version(v) for v in versions))
    return registry, resolved


@dataclass
class RenderedDocument:
    """A rendered object as a validation document; lines are looked up in its source file."""

    target: str
    data: Any
    origin: str | None
    root: Path
    filename: str = ""
    line: int = 1
    error: str | None = None
    duplicate_keys: tuple = ()
    _source: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.filename = self.origin or self.target

    def line_of(self, path: tuple[str | int, ...]) -> int:
        source = self._source_document()
        return source.line_of(path) if source is not None else 1

    def _source_document(self) -> Any:
        """The document of the origin file with this object's kind (and name, when it
        matches), so a field's line is the line in the file a person edits."""
        if self._source is None:
            self._source = False
            if self.origin:
                from meshready.manifests.loader import load_file

                kind = self.data.get("kind") if isinstance(self.data, dict) else None
                name = ((self.data.get("metadata") or {}) if kind else {}).get("name")
                candidates = [
                    d
                    for d in load_file(self.root / self.origin)
                    if isinstance(d.data, dict) and d.data.get("kind") == kind
                ]
                named = [
                    d for d in candidates if (d.data.get("metadata") or {}).get("name") == name
                ]
                chosen = (named or candidates or [None])[0]
                if chosen is not None:
                    self._source = chosen
                    self.line = chosen.line
        return self._source or None


def rendered_documents(results: Sequence[RenderResult], root: Path) -> list[RenderedDocument]:
    documents = []
    for result in results:
        for rendered in result.objects:
            doc = RenderedDocument(result.target, rendered.obj, rendered.source_path, root)
            documents.append(doc)
    return documents


def validate_rendered(
    results: Sequence[RenderResult], config: RepoConfig, strict: bool = True
) -> list[ResourceResult]:
    """Strict validation of rendered targets against the configured Kubernetes version;
    every resource is validated per target (duplicates are looked for within a target)."""
    from meshready.validate.core import Options, find_duplicate_objects, validate_documents

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
    from meshready.validate.core import crds_in

    return list(crds_in(documents))


def stage(results: list[RenderResult], config: RepoConfig) -> StageReport:
    """The `meshready check` stage: every rendered target, strictly."""
    from meshready.commands.check import StageReport
    from meshready.validate.output import error_lines

    validated = validate_rendered(results, config)
    report = StageReport(name="validate")
    for result in results:
        mine = [r for r in validated if r.target == result.target]
        bad = [r for r in mine if r.status in ("invalid", "error")]
        report.per_target[result.target] = f"{len(bad)} invalid" if bad else "ok"
        for item in bad:
            report.lines.extend(error_lines(item))
    report.failures = sum(1 for r in validated if r.status in ("invalid", "error"))
    report.summary = f"{report.failures} invalid" if report.failures else "all valid"
    return report


# -- the subcommand ---------------------------------------------------------------------------


def run(args: argparse.Namespace, cache_key: str | None = None) -> int:
    from meshready.config import load_config

    config = load_config(args.repo)
    versions = _split(args.kubernetes_version) or [configured_version(config)]
    if args.workers is not None and args.workers < 1:
        raise MeshreadyError("--workers must be at least 1")
    if not args.rendered and not args.inputs:
        raise MeshreadyError("no input: give FILE, DIR or - (stdin), or --rendered")
    registry, resolved = build_registry(
        config, args.strict, _split(args.schema_location), versions, args.crd_dir or ()
    )
    from meshready.validate.core import Options

    options = Options(
        tuple(resolved),
        strict=args.strict,
        skip_kinds=frozenset(_split(args.skip)),
        reject_kinds=frozenset(_split(args.reject)),
        ignore_missing_schemas=args.ignore_missing_schemas,
    )
    if args.rendered:
        results, files = _validate_rendered_targets(args, config, registry, options)
        input_files: list[str] = []
    else:
        input_files = expand_inputs(args.inputs)
        results = _validate_files(
            input_files, registry, options, args.workers, args.schema_location
        )
        files = len(input_files)

    from meshready.validate.core import exit_status, find_duplicate_objects
    from meshready.validate.output import new_output

    find_duplicate_objects(results)
    resources = [r for r in results if r.kind or r.status == "error"]
    out = _Capture(sys.stdout) if cache_key else sys.stdout
    output = new_output(
        args.output,
        out,
        args.summary,
        args.verbose,
        files,
        show_version=len(resolved) > 1,
        unit="target" if args.rendered else "file",
    )
    for result in results:
        output.write(result)
    output.flush()
    code = EXIT_OK if exit_status(results) else EXIT_FINDINGS
    message = None
    if not resources and not args.allow_empty:
        message = "meshready: error: no resources found"
        code = EXIT_FINDINGS
    if message:
        print(message, file=sys.stderr)
    if cache_key and isinstance(out, _Capture) and "-" not in input_files:
        from meshready.validate import cache as validate_cache

        validate_cache.store(
            cache_key,
            args.inputs,
            input_files,
            registry.consulted,
            out.text(),
            message,
            code,
            None if args.repo is None else str(args.repo),
        )
    return code


class _Capture:
    """Writes through to a stream and keeps a copy, for the result cache."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def text(self) -> str:
        return "".join(self.parts)


def _validate_rendered_targets(
    args: argparse.Namespace, config: RepoConfig, registry: SchemaRegistry, options: Options
) -> tuple[list[ResourceResult], int]:
    from meshready.commands.common import print_render_failures, render_selected
    from meshready.validate.core import ERROR, FieldError, ResourceResult, validate_documents

    args.timeout, args.jobs, args.targets = None, None, args.inputs
    _, _, rendered = render_selected(args, config)
    print_render_failures(rendered)
    results: list[ResourceResult] = [
        ResourceResult(r.target, 1, "", "", "", "", None, ERROR, [FieldError("", 1, r.error or "")])
        for r in rendered
        if not r.ok
    ]
    for render_result in (r for r in rendered if r.ok):
        docs = rendered_documents([render_result], config.root)
        for crd, source in _crds(docs):
            registry.add_crd(crd, source)
        results.extend(validate_documents(docs, registry, options))
    return results, len(rendered)


def _load(filename: str) -> list[Any]:
    from meshready.manifests.loader import LoadedDocument, decode, load_file, load_text

    if filename != "-":
        return load_file(Path(filename))
    try:
        return load_text(decode(sys.stdin.buffer.read()), "stdin")
    except Exception as err:  # LoadError: too large, binary, not UTF-8
        return [LoadedDocument("stdin", 0, 1, None, str(err))]


_CRD_MARKER = b"CustomResourceDefinition"


def _validate_files(
    files: Sequence[str],
    registry: SchemaRegistry,
    options: Options,
    workers: int | None,
    locations: Sequence[str] | None,
) -> list[ResourceResult]:
    from meshready.validate.core import crds_in, validate_documents

    workers = workers or os.cpu_count() or 1
    sizes = {f: (os.path.getsize(f) if f != "-" else 0) for f in files}
    parallel = workers > 1 and len(files) > 1 and sum(sizes.values()) >= PARALLEL_MIN_BYTES
    if not parallel or "-" in files:
        documents = [doc for f in files for doc in _load(f)]
        for crd, source in crds_in(documents):
            registry.add_crd(crd, source)
        return validate_documents(documents, registry, options)

    # CRDs in the input must be known to every worker before validation starts: find
    # the (few) files that mention the word and load those first.
    crds: list[tuple[dict, str]] = []
    for name in files:
        with open(name, "rb") as handle:
            if _CRD_MARKER in handle.read():
                crds.extend(crds_in(_load(name)))
    for crd, source in crds:
        registry.add_crd(crd, source)

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = _balanced_chunks(files, sizes, workers * 4)
    setup = (
        registry.strict,
        list(locations or ()),
        [str(p) for p in registry.crd_dirs],
        crds,
        options,
    )
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)),
        mp_context=context,
        initializer=_worker_init,
        initargs=(registry if context.get_start_method() == "fork" else None, setup),
    ) as pool:
        parts = list(pool.map(_worker_validate, chunks))
    results: list[ResourceResult] = []
    for part, consulted in parts:
        results.extend(part)
        registry.consulted.update(consulted)
    return results


def _balanced_chunks(files: Sequence[str], sizes: dict[str, int], count: int) -> list[list[str]]:
    """Contiguous runs of files of about equal size, so output order stays input order."""
    total = sum(sizes.values()) or 1
    chunks: list[list[str]] = [[]]
    filled = 0
    for name in files:
        if filled >= total / count * len(chunks) and chunks[-1]:
            chunks.append([])
        chunks[-1].append(name)
        filled += sizes[name]
    return chunks


_worker_state: dict[str, Any] = {}


def _worker_init(registry: SchemaRegistry | None, setup: tuple) -> None:
    strict, locations, dirs, crds, options = setup
    if registry is None:  # spawned, not forked: rebuild the registry from its recipe
        from meshready.validate.registry import SchemaRegistry

        registry = SchemaRegistry(strict, locations, [Path(d) for d in dirs])
        for crd, source in crds:
            registry.add_crd(crd, source)
    _worker_state["registry"] = registry
    _worker_state["options"] = options


def _worker_validate(chunk: list[str]) -> tuple[list[ResourceResult], dict]:
    from meshready.validate.core import validate_documents

    registry = _worker_state["registry"]
    documents = [doc for f in chunk for doc in _load(f)]
    return validate_documents(documents, registry, _worker_state["options"]), registry.consulted


def main(argv: list[str]) -> int:
    """`meshready validate ARGS` without building the whole CLI (see meshready.entry)."""
    parser = argparse.ArgumentParser(
        prog="meshready validate",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    cache_key = None
    if not args.no_cache and not args.rendered and "-" not in args.inputs:
        from meshready.validate import cache as validate_cache

        cache_key = validate_cache.key_for(argv)
    try:
        return run(args, cache_key)
    except MeshreadyError as err:
        print(f"meshready: error: {err}", file=sys.stderr)
        return err.exit_code
