"""Benchmark `meshready validate` end to end against the issue's references.

Corpus: bench/corpus.py's 10,000 valid objects in 100 files (2,000 in 20 with --quick),
or the directory $MESHREADY_BENCH_CORPUS if set. Figures, all whole-process wall time of the
installed console script, strict mode, Kubernetes 1.33:

- cold: empty result cache (parsing + validation), default workers and one worker;
- warm: the same command again (result cache hit);
- kubernetes-validate's own API (`kubernetes_validate.validate`) on a 500-resource sample;
- PyYAML's C loader parsing the corpus alone, one core, for scale.

Usage: python bench/bench_validate.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import write_corpus  # noqa: E402  (bench/ is not a package)

RESOURCES = 10_000
QUICK_RESOURCES = 2_000
REFERENCES = {
    "kubeconform (Go, 4 workers, strict)": "0.75 s, ~13,000 resources/s",
    "kubernetes-validate API": "~110 resources/s",
    "PyYAML C loader, parse only, 1 core": "0.98 s",
}


def meshready() -> str:
    found = Path(sys.executable).parent / "meshready"
    return str(found) if found.exists() else shutil.which("meshready") or "meshready"


def corpus(workdir: Path, resources: int) -> Path:
    given = os.environ.get("MESHREADY_BENCH_CORPUS")
    if given:
        if not Path(given).is_dir():
            sys.exit(f"bench_validate: MESHREADY_BENCH_CORPUS={given} is not a directory")
        return Path(given)
    out = workdir / "corpus"
    write_corpus(out, resources)
    return out


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def cold_and_warm(files: Path, workdir: Path, runs: int, extra: list[str]) -> tuple[list, list]:
    cold, warm = [], []
    command = [meshready(), "validate", "--strict", "--summary", *extra, str(files)]
    for run in range(runs):
        env = {**os.environ, "MESHREADY_CACHE_DIR": str(workdir / f"cache-{run}-{len(extra)}")}
        cold.append(timed(command, env))
        warm.append(timed(command, env))
    return cold, warm


def kubernetes_validate_rate(files: Path, sample: int = 500) -> tuple[float, int]:
    import kubernetes_validate
    import yaml

    objects = []
    for path in sorted(files.glob("*.yaml")):
        objects.extend(d for d in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if d)
        if len(objects) >= sample:
            break
    objects = objects[:sample]
    started = time.perf_counter()
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33", strict=True)
    return len(objects) / (time.perf_counter() - started), len(objects)


def pyyaml_parse_seconds(files: Path) -> float:
    import yaml

    texts = [p.read_text() for p in sorted(files.glob("*.yaml"))]
    started = time.perf_counter()
    for text in texts:
        list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    return time.perf_counter() - started


def line(name: str, seconds: list[float], count: int) -> str:
    best, median = min(seconds), statistics.median(seconds)
    return (
        f"  {name:<38} best {best:6.3f} s  median {median:6.3f} s  "
        f"{count / best:>10,.0f} resources/s (best)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="default: 5, 1 with --quick")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2,000 objects, one run; figures indicative"
    )
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        workdir = Path(tmp)
        files = corpus(workdir, QUICK_RESOURCES if args.quick else RESOURCES)
        file_count = len(list(files.glob("*.yaml")))
        count = (
            sum(
                p.read_text().count("\nkind: ") + p.read_text().startswith("kind: ")
                for p in files.glob("*.yaml")
            )
            or RESOURCES
        )
        cold, warm = cold_and_warm(files, workdir, args.runs, [])
        cold_one, _ = cold_and_warm(
            files, workdir, 1 if args.quick else max(2, args.runs // 2), ["-n", "1"]
        )
        kv_rate, kv_sample = kubernetes_validate_rate(files, 100 if args.quick else 500)
        parse = pyyaml_parse_seconds(files)

    cpus = os.cpu_count()
    print(
        f"meshready validate --strict, {count} resources in {file_count} "
        f"files, {cpus} CPUs, {args.runs} runs, whole process wall time"
        + (" (--quick: indicative only)" if args.quick else "")
    )
    print(line(f"cold (no result cache, {cpus} workers)", cold, count))
    print(line("cold (no result cache, -n 1)", cold_one, count))
    print(line("warm (result cache hit)", warm, count))
    print(
        f"  {'kubernetes-validate API':<38} {kv_rate:,.0f} resources/s "
        f"(sample of {kv_sample}, in process)"
    )
    print(f"  {'PyYAML C loader, parse only, 1 core':<38} {parse:.3f} s")
    print()
    best_cold, best_warm = min(cold), min(warm)
    print("targets:")
    print(
        f"  cold >= kubeconform (13,000/s):  {count / best_cold:,.0f}/s  "
        f"{'MET' if count / best_cold >= 13_000 else 'MISSED'}"
    )
    print(
        f"  warm >= 10x cold:                {best_cold / best_warm:.1f}x  "
        f"{'MET' if best_cold / best_warm >= 10 else 'MISSED'}"
    )
    print(
        f"  cold >= 50x kubernetes-validate: {count / best_cold / kv_rate:.0f}x  "
        f"{'MET' if count / best_cold / kv_rate >= 50 else 'MISSED'}"
    )
    print("references (issue 4, this machine):")
    for name, figure in REFERENCES.items():
        print(f"  {name:<38} {figure}")


if __name__ == "__main__":
    main()
