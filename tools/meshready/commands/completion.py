"""`meshready completion SHELL`: a completion script for bash, zsh or tcsh, generated from
the same argparse parser the command runs (shtab), so it never lags behind the flags.

    meshready completion bash > ~/.local/share/bash-completion/completions/meshready
    meshready completion zsh > "${fpath[1]}/_meshready"
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "tcsh")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, tcsh)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    from meshready.cli import COMMANDS, build_parser

    sys.stdout.write(shtab.complete(build_parser(COMMANDS), shell=args.shell))
    return 0
