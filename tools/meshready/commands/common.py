"""Flags and steps that several subcommands share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshready import render
from meshready.config import RepoConfig, load_config
from meshready.errors import MeshreadyError
from meshready.render import kustomize as kz


def add_render_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="kustomization directories to render (default: every target under the configured roots)",
    )
    parser.add_argument(
        "--include-bases", action="store_true", help="render base/ kustomizations too"
    )
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="per-target build timeout")
    parser.add_argument("-j", "--jobs", type=int, metavar="N", help="targets built in parallel")
    parser.add_argument(
        "--repo", type=Path, metavar="DIR", help="repository root (default: found from cwd)"
    )


def select_targets(config: RepoConfig, given: list[str], include_bases: bool = False) -> list[str]:
    if given:
        return [render.target_path(config.root, t) for t in given]
    roots = [*config.target_roots, *(["base"] if include_bases else [])]
    targets = render.discover_targets(config.root, roots)
    if not targets:
        raise MeshreadyError(
            f"no kustomization targets under {', '.join(roots)} in {config.root}", exit_code=1
        )
    return targets


def render_selected(
    args: argparse.Namespace, config: RepoConfig | None = None, targets: list[str] | None = None
) -> tuple[RepoConfig, kz.Kustomize, list[render.RenderResult]]:
    """Find kustomize and render the chosen targets; print the kustomize in use."""
    config = config or load_config(args.repo)
    chosen = (
        targets if targets is not None else select_targets(config, args.targets, args.include_bases)
    )
    kustomize = kz.find_kustomize(memory_mib=config.render_memory_mib)
    print(f"using {kustomize.describe()}", file=sys.stderr)
    results = render.render_targets(
        config.root, chosen, kustomize, args.timeout or config.render_timeout, args.jobs
    )
    return config, kustomize, results


def print_render_failures(results: list[render.RenderResult]) -> int:
    failed = [r for r in results if not r.ok]
    for result in failed:
        print(f"{result.target}: render failed: {result.error}", file=sys.stderr)
    return len(failed)
