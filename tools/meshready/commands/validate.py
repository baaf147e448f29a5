"""`meshready validate`: offline, strict, fast schema validation, kubeconform-compatible.

This module is imported on every `meshready validate` run, including the result-cache
fast path, so heavy imports (the YAML parser, the schema engine, rendering) happen
inside the functions that need them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from meshready import __version__
from meshready.errors import EXIT_FINDINGS, EXIT_OK, MeshreadyError
from meshready.manifests.inputs import expand_inputs
from meshready.validate import cache as validate_cache
from meshready.validate.setup import (
    build_registry,
    check_patterns,
    configured_version,
    split_inputs,
    split_list,
    use_cache_dir,
)

if TYPE_CHECKING:
    from meshready.config import RepoConfig
    from meshready.validate.core import Options, ResourceResult
    from meshready.validate.registry import SchemaRegistry

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


# Switches in both spellings, kubeconform's single dash (-strict) and the long form (--strict).
SWITCHES = (
    ("strict", "reject unknown fields, duplicate keys and fields only the API server sets"),
    ("ignore-missing-schemas", "skip resources without a schema instead of failing them"),
    ("summary", "print a summary at the end"),
    ("verbose", "text output lists valid resources too"),
    ("exit-on-error", "stop the report at the first invalid resource or error"),
    ("debug", "print where each schema came from"),
    ("insecure-skip-tls-verify", "accepted for kubeconform; no effect (validation is offline)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="FILE|DIR|-",
        help="manifests to validate (default: stdin); with --rendered, kustomization targets "
        "(default: all)",
    )
    for name, text in SWITCHES:
        parser.add_argument(f"--{name}", f"-{name}", action="store_true", help=text)
    for name, metavar, text in (
        ("kubernetes-version", "VERSION", "Kubernetes version to validate against; repeat (or "
         "comma-separate) for a matrix (default: [tool.meshready] kubernetes_version)"),
        ("skip", "KIND[,..]", "kinds to skip"),
        ("reject", "KIND[,..]", "kinds to reject"),
        ("schema-location", "TEMPLATE", "local schema directory, file or kubeconform template, "
         "e.g. 'schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'; "
         "'default' is the built-in set (used when none is given)"),
        ("ignore-filename-pattern", "REGEX", "leave out paths matching this regular expression"),
    ):  # fmt: skip
        parser.add_argument(f"--{name}", f"-{name}", action="append", metavar=metavar, help=text)
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
        choices=("text", "json", "junit", "tap", "pretty"),
        default="text",
        help="report format (default: text)",
    )
    parser.add_argument(
        "--cache",
        "-cache",
        metavar="DIR",
        help="directory of the result cache (it must exist; default: $MESHREADY_CACHE_DIR or "
        "~/.cache/meshready/validate)",
    )
    parser.add_argument("-v", "--version", action="version", version=__version__)
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
        "--no-cache",
        action="store_true",
        help="do not read or write the result cache (with --rendered, nor the render cache)",
    )
    parser.add_argument(
        "--repo", type=Path, metavar="DIR", help="repository root (default: found from cwd)"
    )


# -- the subcommand ---------------------------------------------------------------------------


def run(args: argparse.Namespace, cache_key: str | None = None) -> int:
    from meshready.config import load_config
    from meshready.validate.core import (
        Options,
        exit_status,
        find_duplicate_objects,
    )
    from meshready.validate.files import validate_files
    from meshready.validate.output import new_output

    config = load_config(args.repo)
    versions = split_list(args.kubernetes_version) or [configured_version(config)]
    if args.workers is not None and args.workers < 1:
        raise MeshreadyError("--workers must be at least 1")
    patterns = args.ignore_filename_pattern or []
    check_patterns(patterns)
    registry, resolved = build_registry(
        config, args.strict, split_list(args.schema_location), versions, args.crd_dir or ()
    )
    options = Options(
        tuple(resolved),
        strict=args.strict,
        skip_kinds=frozenset(split_list(args.skip)),
        reject_kinds=frozenset(split_list(args.reject)),
        ignore_missing_schemas=args.ignore_missing_schemas,
    )
    notes: list[str] = []
    stdin = False
    if args.rendered:
        results, files = _rendered(args, config, registry, options)
        input_files: list[str] = []
    else:
        input_files = expand_inputs(
            split_inputs(args.inputs) or ["-"],
            patterns,
            notes,
            missing_ok=True,
        )
        stdin = input_files == ["-"]
        if "-" in input_files and sys.stdin.isatty():  # as kubeconform: never wait on a terminal
            raise MeshreadyError("no input: give FILE, DIR or -, or pipe manifests on stdin")
        for note in notes:
            print(f"meshready: note: {note}", file=sys.stderr)
        results = validate_files(input_files, registry, options, args.workers, args.schema_location)
        files = len(input_files)

    find_duplicate_objects(results)
    if args.exit_on_error:  # kubeconform stops at the first failure; so does the report
        first_bad = next(
            (i for i, r in enumerate(results) if r.status in ("invalid", "error")), None
        )
        results = results if first_bad is None else results[: first_bad + 1]
    if args.debug:
        for source in registry.sources():
            print(f"meshready: debug: {source}", file=sys.stderr)
    resources = [r for r in results if r.kind or r.status == "error"]
    out = validate_cache.Capture(sys.stdout) if cache_key else sys.stdout
    output = new_output(
        args.output,
        out,
        args.summary,
        args.verbose,
        files,
        show_version=len(resolved) > 1,
        unit="target" if args.rendered else "file",
        stdin=stdin,
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
    stderr = [*(f"meshready: note: {n}" for n in notes), *([message] if message else [])]
    if cache_key and isinstance(out, validate_cache.Capture) and "-" not in input_files:
        validate_cache.store(
            cache_key,
            args.inputs,
            input_files,
            registry.consulted,
            out.text(),
            "\n".join(stderr) or None,
            code,
            None if args.repo is None else str(args.repo),
            patterns,
        )
    return code


def _rendered(
    args: argparse.Namespace, config: RepoConfig, registry: SchemaRegistry, options: Options
) -> tuple[list[ResourceResult], int]:
    from meshready.commands.common import print_render_failures, render_selected
    from meshready.validate.rendered import validate_render_results

    args.timeout, args.jobs, args.targets = None, None, args.inputs
    _, _, rendered = render_selected(args, config)
    print_render_failures(rendered)
    return validate_render_results(rendered, config.root, registry, options), len(rendered)


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
        args = parser.parse_intermixed_args(argv)  # flags after files too
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        use_cache_dir(args.cache)
        cache_key = None
        if not args.no_cache and not args.rendered and args.inputs and "-" not in args.inputs:
            cache_key = validate_cache.key_for(argv)
        return run(args, cache_key)
    except MeshreadyError as err:
        print(f"meshready: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # `meshready validate DIR | head`: stop quietly, as the CLI does
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
