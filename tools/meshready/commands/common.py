"""Flags and steps that several subcommands share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshready import render
from meshready.config import RepoConfig, load_config
from meshready.errors import MeshreadyError
from meshready.render import kustomize as kz
from meshready.render.cache import RenderCache, cache_report
from meshready.term import Progress


def add_render_flags(parser: argparse.ArgumentParser, verbose_flag: bool = True) -> None:
    """The flags of every command that renders; `verbose_flag=False` where the command has
    its own -v (it then also lists the render cache's per-target outcomes)."""
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
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="render every target afresh, neither reading nor writing the render cache",
    )
    if verbose_flag:
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="say per target whether the render cache had it, and why a target is not cached",
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
    cache = open_render_cache(args, kustomize)
    progress = Progress(len(chosen), "rendered")
    results = render.render_targets(
        config.root,
        chosen,
        kustomize,
        args.timeout or config.render_timeout,
        args.jobs,
        cache,
        on_done=lambda result: progress.advance(result.target),
    )
    progress.close()
    close_render_cache(args, cache)
    return config, kustomize, results


def open_render_cache(args: argparse.Namespace, kustomize: kz.Kustomize) -> RenderCache | None:
    """The render cache, unless --no-cache."""
    return None if getattr(args, "no_cache", False) else RenderCache(kustomize)


def close_render_cache(args: argparse.Namespace, cache: RenderCache | None) -> None:
    """One summary line on stderr (one per target with -v), then prune past the limit."""
    if cache is None:
        return
    for line in cache_report(cache, getattr(args, "verbose", False)):
        print(line, file=sys.stderr)
    cache.close()


def print_render_failures(results: list[render.RenderResult]) -> int:
    failed = [r for r in results if not r.ok]
    for result in failed:
        print(f"{result.target}: render failed: {result.error}", file=sys.stderr)
    return len(failed)
