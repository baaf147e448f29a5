"""`meshready analyze`: mesh-readiness and workload policy rules over rendered targets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshready import render
from meshready.analyze import output as analyze_output
from meshready.analyze.engine import analysis_config, analyze
from meshready.analyze.rules import Severity
from meshready.analyze.sources import cyclic_gc_paused, load_plain, split_inputs
from meshready.commands.common import add_render_flags, print_render_failures, render_selected
from meshready.config import load_config
from meshready.errors import EXIT_FINDINGS, EXIT_OK

DESCRIPTION = """\
Check Kubernetes objects against the rule catalog (`meshready rules`): a Service per
workload, protocol-named ports, app/version labels, sidecar-safe ports and UIDs, namespace
injection, and the restricted Pod Security profile. Each finding names the object and the
file and line it came from.

Inputs, in any mix: kustomization directories (rendered with kustomize; the default is
every target under the configured roots), manifest files, directories of manifests
(*.yaml, *.yml, *.json, recursively) and `-` for stdin. All plain manifests of one run are
analysed together as the group "files"; each kustomization is a group of its own. A target
that fails to render or a file that fails to parse is an error in every output format, and
the exit code is 1.

Suppress one finding on the object itself, with a reason:
  metadata.annotations: {meshready.dev/ignore: "MR203,MR209: reason"}
Disable rules or change their severity per target in pyproject.toml
([tool.meshready.rules."TARGET"], "files" for plain manifests; see `meshready rules --markdown`)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="check rendered objects for mesh readiness and workload policy",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_render_flags(parser, verbose_flag=False)
    for action in parser._actions:  # the shared positional, described for analyze's inputs
        if action.dest == "targets":
            action.metavar = "INPUT"
            action.help = (
                "kustomization directories, manifest files or directories, `-` for stdin "
                "(default: every target under the configured roots)"
            )
    parser.add_argument(
        "--output",
        "-o",
        choices=sorted(analyze_output.FORMATS),
        default="text",
        help="report format (default: text)",
    )
    parser.add_argument(
        "--fail-on",
        choices=[s.label for s in sorted(Severity, reverse=True)],
        help="lowest severity that makes the exit code 1 (default: error, or analyze_fail_on)",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also list suppressed findings and why, and the render cache's outcome per target",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="write the report to FILE instead of stdout (the summary still goes to stderr)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.repo)
    analysis = analysis_config(config)  # bad configuration fails before rendering
    inputs = split_inputs(args.targets)  # a missing path is a usage error
    results: list[render.RenderResult] = []
    if inputs.targets or not args.targets:
        chosen = [render.target_path(config.root, t) for t in inputs.targets] or None
        _, _, results = render_selected(args, config, chosen)
        # The same stderr line every rendering command prints; the report has it too.
        print_render_failures(results)
    fail_on = Severity.parse(args.fail_on) if args.fail_on else None
    with cyclic_gc_paused(freeze=True):  # what is loaded lives until the process ends
        plain = load_plain(inputs.files) if inputs.files else None
        report = analyze(
            [*results, *([plain.result] if plain else [])],
            analysis,
            config.root,
            fail_on,
            errors=plain.errors if plain else (),
            notes=[*inputs.notes, *(plain.notes if plain else ())],
        )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    output = analyze_output.render(report, args.output, args.verbose)
    if args.report:
        args.report.write_text(output)
        print(analyze_output.summary_line(report), file=sys.stderr)
    else:
        sys.stdout.write(output)
    return EXIT_FINDINGS if report.failed else EXIT_OK
