"""`meshready diff`: what a change does to the rendered objects, per resource, against a
git revision (by default the merge base of HEAD with origin/main, falling back to main)."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from meshready import git as gitrev
from meshready import render, scratch, signals
from meshready.commands.common import add_render_flags
from meshready.config import RepoConfig, load_config
from meshready.diff.core import DiffReport, StripRules, diff_renders, parse_strip_attrs
from meshready.diff.output import DEFAULT_MARKDOWN_LIMIT, FORMATS, MIN_LIMIT_BYTES, format_report
from meshready.errors import EXIT_FINDINGS, EXIT_OK, MeshreadyError
from meshready.render import kustomize as kz

DESCRIPTION = """\
Render every target twice, at a base git revision (checked out into a temporary
worktree) and in the working tree, in parallel, and compare the objects per
resource: (target, group/kind, namespace, name). A summary comes first, then a
unified diff per resource. Build annotations are stripped, and the output says so;
Secret data and stringData values are masked as a short sha256 of each value.

exit codes: 0 no changes, or changes without --exit-code; 1 changes with
--exit-code, or a target failed to render; 2 usage error (bad ref, not a git repo);
143 stopped by SIGTERM, 130 by SIGINT (the temporary worktree removed all the same)."""

HEAD_LABEL = "working tree"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="compare rendered objects per resource with a git revision",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_render_flags(parser)
    parser.add_argument(
        "--base",
        metavar="REF",
        help="the revision to compare with; REF... (three dots) means the merge base of HEAD "
        "and REF (default: origin/main..., falling back to main...)",
    )
    parser.add_argument(
        "--output", choices=FORMATS, default="diff", help="output format (default: diff)"
    )
    parser.add_argument(
        "-u",
        "--unified",
        type=int,
        default=3,
        metavar="N",
        help="lines of context in each diff (default: 3)",
    )
    parser.add_argument(
        "--strip-attrs",
        action="append",
        default=[],
        metavar="KEYS",
        help="extra label and annotation keys to strip before comparing (comma-separated, "
        "repeatable, fnmatch patterns such as 'example.com/*'); the output lists them",
    )
    parser.add_argument(
        "--limit-bytes",
        type=int,
        metavar="N",
        help=f"cap the diff or markdown output at N bytes, leaving whole resource diffs out "
        f"with a notice (markdown default: {DEFAULT_MARKDOWN_LIMIT}; GitHub caps comments at 65536)",
    )
    parser.add_argument(
        "--exit-code", action="store_true", help="exit 1 when anything differs, like git diff"
    )
    parser.add_argument(
        "--out-file", type=Path, metavar="FILE", help="write the output to FILE, not stdout"
    )
    parser.set_defaults(run=run)


def _check_flags(args: argparse.Namespace) -> None:
    if args.unified < 0:
        raise MeshreadyError("-u/--unified takes a number of lines, 0 or more")
    if args.limit_bytes is not None:
        if args.output == "json":
            raise MeshreadyError("--limit-bytes caps diff and markdown; json output is never cut")
        if args.limit_bytes < MIN_LIMIT_BYTES:
            raise MeshreadyError(f"--limit-bytes must be at least {MIN_LIMIT_BYTES}")


def _targets_of(root: Path, roots: list[str], given: list[str] | None) -> list[str]:
    """The targets on one side: the user's (those that exist there) or discovered ones."""
    if given is not None:
        return [t for t in given if render.find_kustomization(root / t) is not None]
    return render.discover_targets(root, roots)


def _base_roots(base_root: Path, head: RepoConfig) -> list[str]:
    """The target roots the base revision itself configured, or the working tree's."""
    try:
        if "[tool.meshready" in (base_root / "pyproject.toml").read_text(errors="replace"):
            return list(load_config(base_root).target_roots)
    except OSError:
        pass  # no pyproject.toml at the base
    except MeshreadyError as err:
        print(f"base revision: {err}; using the working tree's target roots", file=sys.stderr)
    return list(head.target_roots)


def run(args: argparse.Namespace) -> int:
    # SIGTERM and SIGINT unwind like an error, so the base worktree and temp dirs go too;
    # running kustomize builds are killed first, or waiting for them would hang the exit.
    # Every temp dir of the run is under one scratch dir, which a SIGKILLed run leaves
    # for the next run to remove.
    try:
        with signals.stop_on_signals(kz.stop_builds), scratch.scratch_dir(gitrev.CHECKOUT_PREFIX):
            return _diff(args)
    except signals.Stopped as stopped:
        print(f"meshready: {stopped}; its worktree and temp dirs are removed", file=sys.stderr)
        return stopped.exit_code


def _diff(args: argparse.Namespace) -> int:
    _check_flags(args)
    config = load_config(args.repo)
    top = gitrev.toplevel(config.root)
    base = gitrev.resolve_base(top, args.base)

    extra_roots = ["base"] if args.include_bases else []
    given = [render.target_path(config.root, t) for t in args.targets] if args.targets else None
    timeout = args.timeout or config.render_timeout
    # Where the repository sits inside the git work tree, so the base side finds it too.
    inside = config.root.resolve().relative_to(top)
    head_targets = _targets_of(config.root, [*config.target_roots, *extra_roots], given)

    # One pool for everything. The critical path is checkout + base renders, so nothing
    # waits on anything it does not need: kustomize's version probe runs while git checks
    # the base out, and the working tree renders as soon as the probe is back.
    workers = args.jobs or 2 * (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        finding = pool.submit(kz.find_kustomize, None, config.render_memory_mib)

        def submit_side(root: Path, targets: list[str]) -> dict[str, Future]:
            kustomize = finding.result()
            return {
                t: pool.submit(render.render_target, root, t, kustomize, timeout) for t in targets
            }

        head_launch = pool.submit(submit_side, config.root, head_targets)
        with gitrev.checkout(top, base.commit) as tree:
            base_root = tree / inside
            base_targets = _targets_of(
                base_root, [*_base_roots(base_root, config), *extra_roots], given
            )
            base_jobs = submit_side(base_root, base_targets)
            print(f"using {finding.result().describe()}", file=sys.stderr)
            base_results = {t: job.result() for t, job in base_jobs.items()}
        head_results = {t: job.result() for t, job in head_launch.result().items()}

    if given is not None and not (base_results or head_results):
        raise MeshreadyError(
            f"no kustomization in {', '.join(given)} at the base or in the working tree"
        )
    rules = StripRules(extra=parse_strip_attrs(args.strip_attrs))
    report = DiffReport(
        base_label=base.label,
        head_label=HEAD_LABEL,
        strip=rules,
        context=args.unified,
        targets=diff_renders(base_results, head_results, rules, args.unified),
    )
    text = format_report(report, args.output, args.limit_bytes)
    if args.out_file is not None:
        try:
            args.out_file.write_text(text)
        except OSError as err:
            raise MeshreadyError(f"cannot write {args.out_file}: {err.strerror}") from None
    else:
        sys.stdout.write(text)
    for target in report.failed_targets:
        print(f"{target.target}: render failed", file=sys.stderr)
    if report.failed_targets or (args.exit_code and report.has_changes):
        return EXIT_FINDINGS
    return EXIT_OK
