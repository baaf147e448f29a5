"""Kill ratios per package from mutmut's results (mutants/**/*.meta), and the survivors.

    python tools/mutation_report.py [PATH ...]     # PATH: tools/meshready/<package>[/<module>.py]
                                                   #   or apps/<app>/<script>.py
    python tools/mutation_report.py --functions PATH ...    # a row per function instead

Run by `nox -s mutate` after `mutmut run`. A mutant counts as killed when a test failed
(or timed out: an infinite loop is caught); "no tests" and "not checked" are listed apart,
since no test runs that code at all.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTANTS = Path("mutants")
KILLED = {1, 3, 36, -24, 24, 152, 255, 37, -11, -9}
SURVIVED = {0}
NO_TESTS = {5, 33}


def mutant_prefix(path: str) -> str:
    """tools/meshready/analyze/rules -> tools.meshready.analyze.rules"""
    return path.rstrip("/").removesuffix(".py").replace("/", ".")


def package_of(name: str) -> str:
    parts = name.split(".")
    # apps.<app>.<script>.x_<function>__mutmut_N -> apps/<app>
    if parts[0] == "apps":
        return "/".join(parts[:2])
    # tools.meshready.<package>.<module>.x_<function>__mutmut_N -> meshready.<package>
    return ".".join(parts[1:3]) if len(parts) > 4 else ".".join(parts[1:2])


def group_of(name: str, prefixes: list[str]) -> str:
    """The row a mutant counts in: the PATH it was asked for, else its package."""
    for prefix in prefixes:
        if name.startswith(prefix + "."):
            return prefix.removeprefix("tools.")
    return package_of(name)


def collect(prefixes: list[str]) -> dict[str, int | None]:
    results: dict[str, int | None] = {}
    for meta in sorted(MUTANTS.rglob("*.meta")):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            # A module's prefix ends at a dot: istio.py is not istio_routing.py.
            if not prefixes or any(name.startswith(p + ".") for p in prefixes):
                results[name] = code
    return results


def function_of(name: str) -> str:
    """apps.loadgen.loadgen.xǁStatsǁrecord_send__mutmut_4 -> apps.loadgen.loadgen Stats.record_send"""
    module, _, mangled = name.partition("__mutmut_")[0].rpartition(".")
    # mutmut mangles a function as x_NAME and a method as xǁCLASSǁNAME
    function = mangled.removeprefix("x_") if mangled.startswith("x_") else mangled[2:]
    return f"{module} {function.replace('ǁ', '.')}"


def main(argv: list[str]) -> int:
    by_function = "--functions" in argv
    prefixes = [mutant_prefix(p) for p in argv if p != "--functions"]
    results = collect(prefixes)
    if not results:
        print("no mutants found: run `mutmut run` first", file=sys.stderr)
        return 1
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for name, code in results.items():
        if code in KILLED:
            outcome = "killed"
        elif code in SURVIVED:
            outcome = "survived"
            survivors.append(name)
        elif code in NO_TESTS:
            outcome = "no tests"
            survivors.append(name)
        else:
            outcome = "not checked"
        counts[function_of(name) if by_function else group_of(name, prefixes)][outcome] += 1
    width = max(40, *(len(row) for row in counts))
    print(
        f"{'function' if by_function else 'package or module':{width}} {'killed':>7} {'survived':>9} {'no tests':>9} {'unchecked':>9} {'kill ratio':>10}"
    )
    for package, c in sorted(counts.items()):
        judged = c["killed"] + c["survived"] + c["no tests"]
        ratio = f"{100 * c['killed'] / judged:.1f}%" if judged else "-"
        print(
            f"{package:{width}} {c['killed']:>7} {c['survived']:>9} {c['no tests']:>9} "
            f"{c['not checked']:>9} {ratio:>10}"
        )
    if survivors:
        print(f"\n{len(survivors)} surviving mutants (`mutmut show NAME` prints the change):")
        for name in survivors:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        sys.stderr.close()
        sys.exit(0)
