"""`meshready gitops`: check that the bootstrap manifests sync a hydrated directory, and
that no synced directory holds a kustomization or a sync object that syncs itself."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from meshready.gitops import check as gitops
from meshready.config import RepoConfig, load_config
from meshready.errors import EXIT_FINDINGS, EXIT_OK, MeshreadyError
from meshready.render.build import RenderResult

if TYPE_CHECKING:
    from meshready.commands.check import StageReport


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gitops",
        help="check the Config Sync / Argo CD bootstrap against the hydrated directories",
        description=__doc__,
    )
    parser.add_argument(
        "--repo", type=Path, metavar="DIR", help="repository root (default: found from cwd)"
    )
    parser.set_defaults(run=run)


def _report(config: RepoConfig) -> gitops.GitopsReport:
    try:
        return gitops.check_repo(config)
    except ValueError as err:
        raise MeshreadyError(f"pyproject.toml: [tool.meshready]: {err}") from None


def run(args: argparse.Namespace) -> int:
    report = _report(load_config(args.repo))
    for finding in report.findings:
        print(finding)
    synced = ", ".join(report.synced_dirs) or "none"
    print(
        f"gitops: {report.sources} sync source(s) checked, synced directories: {synced}; "
        f"{len(report.findings)} finding(s)"
    )
    return EXIT_FINDINGS if report.findings else EXIT_OK


def stage(results: list[RenderResult], config: RepoConfig) -> StageReport:
    """The `meshready check` stage: the same check, reported against the hydrated targets."""
    from meshready.commands.check import StageReport  # check imports this module

    report = _report(config)
    stage_report = StageReport(name="gitops", failures=len(report.findings))
    stage_report.lines = [str(f) for f in report.findings]
    cell = "ok" if not report.findings else f"{len(report.findings)} findings"
    for result in results:
        if result.target in config.hydrate:
            stage_report.per_target[result.target] = cell
    stage_report.summary = (
        f"{report.sources} sync sources ok"
        if not report.findings
        else f"{len(report.findings)} findings"
    )
    return stage_report
