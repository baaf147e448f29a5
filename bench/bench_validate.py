"""Benchmark `meshready validate` end to end against the issue's references.

Corpus: bench/corpus.py's 10,000 valid objects in 100 files (2,000 in 20 with --quick),
or the directory $MESHREADY_BENCH_CORPUS if set. Figures, all whole-process wall time of the
installed console script, strict mode, Kubernetes 1.33:

- cold: empty result cache (parsing + validation), default workers and one worker;
- warm: the same command again (result cache hit);
- kubernetes-validate's own API (`kubernetes_validate.validate`) on a 500-resource sample;
- PyYAML's C loader parsing the corpus alone, one core, for scale;
- the cost of reading YAML 1.1 scalars as kubectl does (issue 14): the share of documents
  that take the kubectl path, cold time on a variant where every ServiceAccount says
  `automountServiceAccountToken: no` (1 document in 6 on that path), and in-process
  parse time of the corpus with every document forced down that path (the worst case);
- with $MESHREADY_BENCH_BASELINE=DIR (a `tools` directory of an older meshready, e.g.
  `git archive 67f0fd4 tools | tar -x -C /tmp/old`), the same cold run of that code, for
  before/after figures (wall and CPU time).

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
# kubeconform's figure beside meshready's in issue 14 (same corpus, cold, same run).
KUBECONFORM_SECONDS = 1.13
REFERENCES = {
    "kubeconform (issue 14, same run as meshready 0.46 s)": f"{KUBECONFORM_SECONDS} s",
    "kubeconform (Go, 4 workers, strict; issue 4)": "0.75 s, ~13,000 resources/s",
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


def yaml11_variant(files: Path, workdir: Path) -> Path:
    """The corpus with a YAML 1.1 boolean in every ServiceAccount (still valid)."""
    out = workdir / "corpus-yaml11"
    out.mkdir()
    for path in files.glob("*.yaml"):
        text = path.read_text().replace(
            "automountServiceAccountToken: false", "automountServiceAccountToken: no"
        )
        (out / path.name).write_text(text)
    return out


def kubectl_path_share(files: Path) -> tuple[int, int]:
    """(documents that take the kubectl path when loaded, documents)."""
    from meshready.manifests import loader

    hits = total = 0
    for path in sorted(files.glob("*.yaml")):
        for document in loader.split_text(path.read_text(), str(path)):
            total += 1
            hits += bool(document.load()._nodes)  # composed while loading: the kubectl path
    return hits, total


def parse_seconds(files: Path, force_kubectl_path: bool) -> float:
    """In-process load of the corpus with meshready's loader (CPU seconds); optionally
    with every document sent down the kubectl (compose + YAML 1.1) path."""
    from meshready.manifests import loader

    texts = [(p.read_text(), str(p)) for p in sorted(files.glob("*.yaml"))]
    saved = loader.kubectl_candidate, loader._kubectl_differs
    if force_kubectl_path:
        loader.kubectl_candidate = loader._kubectl_differs = lambda *_: True
    try:
        started = time.process_time()
        for text, name in texts:
            loader.load_text(text, name)
        return time.process_time() - started
    finally:
        loader.kubectl_candidate, loader._kubectl_differs = saved


CPU_SECONDS: dict[str, list[float]] = {}  # command label -> user+sys of each run's process tree


def timed(command: list[str], env: dict[str, str], label: str = "") -> float:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    CPU_SECONDS.setdefault(label, []).append(cpu)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def cold_and_warm(files: Path, workdir: Path, runs: int, extra: list[str]) -> tuple[list, list]:
    cold, warm = [], []
    command = [meshready(), "validate", "--strict", "--summary", *extra, str(files)]
    for run in range(runs):
        env = {**os.environ, "MESHREADY_CACHE_DIR": str(workdir / f"cache-{run}-{len(extra)}")}
        cold.append(timed(command, env, f"cold {files.name} {' '.join(extra)}"))
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
        variant = yaml11_variant(files, workdir)
        cold_yaml11, _ = cold_and_warm(variant, workdir, args.runs, ["--no-cache"])
        share = kubectl_path_share(files)
        share_variant = kubectl_path_share(variant)
        fast_parse = min(parse_seconds(files, False) for _ in range(3))
        slow_parse = min(parse_seconds(files, True) for _ in range(3))
        baseline = os.environ.get("MESHREADY_BENCH_BASELINE")
        cold_before: list[float] = []
        if baseline:
            env_before = {**os.environ, "PYTHONPATH": baseline}
            for run in range(args.runs):
                env_before["MESHREADY_CACHE_DIR"] = str(workdir / f"cache-before-{run}")
                command = [meshready(), "validate", "--strict", "--summary", str(files)]
                cold_before.append(timed(command, env_before, "before"))
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
    print("YAML 1.1 scalars as kubectl reads them:")
    if cold_before:
        print(line("cold, before (baseline tools)", cold_before, count))
    print(line("cold, after", cold, count))
    print(line("cold, every ServiceAccount `no`", cold_yaml11, count))
    cpu_after = min(CPU_SECONDS[f"cold {files.name} "])
    cpu_before = min(CPU_SECONDS.get("before", [0.0]))
    print(
        f"  CPU (user+sys, best): after {cpu_after:.3f} s"
        + (f", before {cpu_before:.3f} s (+{cpu_after / cpu_before - 1:.0%})" if cpu_before else "")
        + f", every ServiceAccount `no` {min(CPU_SECONDS[f'cold {variant.name} --no-cache']):.3f} s"
    )
    print(
        f"  documents on the kubectl path: corpus {share[0]} of {share[1]}, "
        f"variant {share_variant[0]} of {share_variant[1]}"
    )
    print(
        f"  loader, in process, CPU: {fast_parse:.3f} s as is, {slow_parse:.3f} s with every "
        f"document on the kubectl path ({slow_parse / fast_parse:.1f}x)"
    )
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
        f"  cold <= kubeconform / 2 ({KUBECONFORM_SECONDS / 2:.3f} s): {best_cold:.3f} s  "
        f"{'MET' if best_cold <= KUBECONFORM_SECONDS / 2 else 'MISSED'}"
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
