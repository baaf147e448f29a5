"""The `meshready` console script. `meshready validate` takes a short path that imports
only what validation needs (and, on a result-cache hit, almost nothing), because the
full CLI imports every subcommand; everything else goes to `meshready.cli.main`."""

from __future__ import annotations

import os
import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["validate"]:
        rest = argv[1:]
        for flag in ("-cache", "--cache"):  # kubeconform's -cache DIR: where the cache lives
            if flag in rest[:-1]:
                os.environ["MESHREADY_CACHE_DIR"] = rest[rest.index(flag) + 1]
        if not {"--no-cache", "--rendered", "-", "-h", "--help"} & set(rest):
            from meshready.validate import cache as validate_cache

            code = validate_cache.replay(rest)
            if code is not None:
                return code
        from meshready.commands import validate

        return validate.main(rest)
    from meshready.cli import main as full_cli

    return full_cli()


if __name__ == "__main__":
    sys.exit(main())
