"""`meshready check`: the main job. Render every target once, run every check stage on
the rendered objects, and print a one-screen summary."""

from __future__ import annotations

import argparse
import sys
import time

from meshready.analyze.stage import stage as analyze_stage
from meshready.commands.common import add_render_flags, print_render_failures, render_selected
from meshready.errors import EXIT_FINDINGS, EXIT_OK
from meshready.gitops.stage import stage as gitops_stage
from meshready.render.stage import stage as hydrated_stage
from meshready.stage import Stage
from meshready.term import paint
from meshready.validate.rendered import stage as validate_stage

# Every stage runs on the same rendered objects, so the main job checks everything that exists.
STAGES: list[Stage] = [hydrated_stage, validate_stage, analyze_stage, gitops_stage]
# Lines printed per stage before the rest is summarised: a screen, not a scroll.
MAX_LINES = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="the main job: render every target and run every check on it",
        description=__doc__,
    )
    add_render_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config, _, results = render_selected(args)
    failed_renders = print_render_failures(results)
    rendered = [r for r in results if r.ok]
    reports = [stage(rendered, config) for stage in STAGES]
    for report in reports:
        for line in report.lines[:MAX_LINES]:
            print(line)
        hidden = len(report.lines) - MAX_LINES
        if hidden > 0:
            print(
                f"{report.name}: {hidden} more not shown (the first {MAX_LINES} are above); "
                f"run `meshready {report.name if report.name != 'hydrated' else 'render --check'}` "
                "for all of them"
            )

    # Columns as wide as their widest cell, so a long status never shifts the next one.
    header = ["target", "objects", "render", *(r.name for r in reports)]
    rows = [
        [
            result.target,
            str(len(result.objects)),
            "ok" if result.ok else "FAILED",
            *(rep.per_target.get(result.target, "-") for rep in reports),
        ]
        for result in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    objects = sum(len(r.objects) for r in rendered)
    failures = failed_renders + sum(r.failures for r in reports)
    stage_summaries = "".join(f", {r.name}: {r.summary}" for r in reports)
    print(
        f"\n{len(results)} targets ({len(rendered)} rendered, {failed_renders} failed), "
        f"{objects} objects{stage_summaries}; {time.perf_counter() - started:.1f}s"
    )
    verdict = paint("FAILED", "red", sys.stderr) if failures else paint("OK", "green", sys.stderr)
    print(f"result: {verdict}", file=sys.stderr)
    return EXIT_FINDINGS if failures else EXIT_OK
