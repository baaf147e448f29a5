"""The `meshready` command line: one subcommand per concern, uniform errors and exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys

from meshready import __version__
from meshready.errors import MeshreadyError

# Modules under meshready.commands; each registers its subcommand with
# `register(subparsers)` and sets `run`. Only the one being run is imported (the
# others cost a tenth of a second of start-up), except for `meshready --help`.
COMMANDS = (
    "check",
    "render",
    "validate",
    "analyze",
    "rules",
    "diff",
    "gitops",
    "images",
    "completion",
)

EPILOG = """\
exit codes:
  0  success: everything rendered, valid, and no findings at the threshold
  1  findings: invalid objects, findings, failed targets or stale hydrated output
  2  usage error: bad flags or configuration, or a required tool is missing

Run `meshready COMMAND --help` for the flags of one command."""


def build_parser(commands: tuple[str, ...] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshready",
        description="Render, validate, analyze and diff the Kustomize targets of this repository.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"meshready {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands:
        importlib.import_module(f"meshready.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser((chosen,) if chosen else COMMANDS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its one-line usage error
        return int(exit_.code or 0)
    try:
        return int(args.run(args))
    except MeshreadyError as err:
        print(f"meshready: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("meshready: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `meshready render --print | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
