"""`meshready gitops`: check that the bootstrap manifests sync a hydrated directory, and
that no synced directory holds a kustomization or a sync object that syncs itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshready.config import load_config
from meshready.errors import EXIT_FINDINGS, EXIT_OK
from meshready.gitops import report_for


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


def run(args: argparse.Namespace) -> int:
    report = report_for(load_config(args.repo))
    for finding in report.findings:
        print(finding)
    synced = ", ".join(report.synced_dirs) or "none"
    print(
        f"gitops: {report.sources} sync source(s) checked, synced directories: {synced}; "
        f"{len(report.findings)} finding(s)"
    )
    return EXIT_FINDINGS if report.findings else EXIT_OK
