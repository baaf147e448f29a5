"""`meshready cache`: where the render cache is, how big, and clearing it
(docs/render-cache.md)."""

from __future__ import annotations

import argparse

from meshready.errors import EXIT_OK
from meshready.render import cache as render_cache


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show or clear the render cache",
        description="The render cache keeps rendered targets, keyed by the content of every "
        "file a target reads, the kustomize binary and its flags. It lives in "
        "$MESHREADY_CACHE_DIR, else $XDG_CACHE_HOME/meshready/render, else "
        f"~/.cache/meshready/render, and is pruned past ${render_cache.MAX_MB_ENV} MiB "
        f"(default {render_cache.DEFAULT_MAX_MB}).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("info", help="print the cache directory, its size and its limit")
    actions.add_parser("clear", help="remove every cached render")
    parser.set_defaults(run=run)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def run(args: argparse.Namespace) -> int:
    if args.action == "clear":
        before = render_cache.clear()
        print(
            f"{before.directory}: removed {before.entries} entries and {before.blobs} blobs "
            f"({_mib(before.bytes)})"
        )
        return EXIT_OK
    now = render_cache.info()
    print(f"directory: {now.directory}")
    print(f"entries:   {now.entries}")
    print(f"blobs:     {now.blobs}")
    print(f"size:      {_mib(now.bytes)} of {_mib(now.limit)}")
    return EXIT_OK
