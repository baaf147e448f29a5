"""How long `meshready diff` takes on this repository, next to what it cannot beat: one
parallel render of both sides (the base worktree's targets and the working tree's, in one
thread pool). The issue asks for the two to be about the same.

Run: `nox -s bench`, or `python bench/bench_diff.py [--runs N] [--base REF] [--quick]`
(`--quick`: one run of each, for smoke runs; the figures are indicative).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meshready import git as gitrev
from meshready import render
from meshready.config import load_config
from meshready.diff.core import DiffReport, StripRules, diff_renders
from meshready.diff.output import format_report
from meshready.render import kustomize

ROOT = Path(__file__).resolve().parent.parent
MESHREADY = str(Path(sys.executable).parent / "meshready")


def timed(action, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def figure(label: str, times: list[float]) -> str:
    return (
        f"{label:<46} median {statistics.median(times):6.3f}s  "
        f"min {min(times):6.3f}s  max {max(times):6.3f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=None, help="default: 5, 1 with --quick")
    parser.add_argument("--base", default="HEAD", help="base revision (default: HEAD)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one run of each")
    args, _ = parser.parse_known_args()  # nox -s bench passes its posargs to every bench
    if args.runs is None:
        args.runs = 1 if args.quick else 5

    config = load_config(ROOT)
    top = gitrev.toplevel(ROOT)
    base = gitrev.resolve_base(top, args.base)
    kz = kustomize.find_kustomize()
    head_targets = render.discover_targets(config.root, config.target_roots)
    workers = 2 * (os.cpu_count() or 1)

    with gitrev.checkout(top, base.commit) as tree:
        base_root = tree / config.root.relative_to(top)
        base_targets = render.discover_targets(base_root, config.target_roots)
        jobs = [(config.root, t) for t in head_targets] + [(base_root, t) for t in base_targets]

        def render_both() -> list[render.RenderResult]:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(
                    pool.map(
                        lambda job: render.render_target(*job, kz, config.render_timeout), jobs
                    )
                )

        render_times = timed(render_both, args.runs)
        results = render_both()

    split = len(head_targets)
    head = {r.target: r for r in results[:split]}
    base_side = {r.target: r for r in results[split:]}

    def compare_and_format() -> None:
        rules = StripRules()
        report = DiffReport("base", "working tree", rules, 3, diff_renders(base_side, head, rules))
        for output in ("diff", "markdown", "json"):
            format_report(report, output)

    compare_times = timed(compare_and_format, args.runs)
    with_checkout = []
    for _ in range(args.runs):
        started = time.perf_counter()
        with gitrev.checkout(top, base.commit):
            with_checkout.append(time.perf_counter() - started)

    def whole_command() -> None:
        subprocess.run(
            [MESHREADY, "diff", "--base", args.base, "--output", "markdown"],
            cwd=ROOT,
            capture_output=True,
            check=False,
            env={**os.environ, "KUSTOMIZE": kz.command[0]},
        )

    diff_times = timed(whole_command, args.runs)
    objects = sum(len(r.objects) for r in results)
    startup = timed(
        lambda: subprocess.run([MESHREADY, "diff", "--help"], capture_output=True, check=False),
        args.runs,
    )

    print(
        f"bench_diff: base {base.label}; {len(base_targets)} base + {len(head_targets)} "
        f"working-tree targets, {objects} objects; {kz.describe()}; {os.cpu_count()} CPUs; "
        f"{args.runs} runs"
    )
    print(figure("meshready diff --output markdown (whole CLI)", diff_times))
    print(figure("one parallel render of both sides", render_times))
    print(figure("  git worktree add + remove", with_checkout))
    print(figure("  compare + format diff, markdown, json", compare_times))
    print(figure("  CLI start-up (meshready diff --help)", startup))
    render_median = max(statistics.median(render_times), 1e-9)
    own = statistics.median(diff_times) - statistics.median(startup)
    print(
        f"diff / parallel render of both sides: {statistics.median(diff_times) / render_median:.2f}x"
    )
    print(
        f"diff without CLI start-up / parallel render of both sides: {own / render_median:.2f}x "
        f"({own:.3f}s vs {render_median:.3f}s)"
    )


if __name__ == "__main__":
    main()
