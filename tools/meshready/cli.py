"""The `meshready` command line: one subcommand per concern, uniform errors and exit codes."""

from __future__ import annotations

import argparse
import sys

from meshready import __version__
from meshready.commands import analyze, check, diff, gitops, images, render, rules, validate
from meshready.errors import MeshreadyError

# Each module registers its subcommand with `register(subparsers)` and sets `run`.
COMMANDS = (check, render, diff, analyze, rules, gitops, images, validate)

EPILOG = """\
exit codes:
  0  success: everything rendered, valid, and no findings at the threshold
  1  findings: invalid objects, findings, failed targets or stale hydrated output
  2  usage error: bad flags or configuration, or a required tool is missing

Run `meshready COMMAND --help` for the flags of one command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshready",
        description="Render, validate, analyze and diff the Kustomize targets of this repository.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"meshready {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
