"""How long `meshready analyze` takes on a synthetic 10,000-object repository, built in
memory: many namespaces, each with Services, Deployments, ServiceAccounts,
PodDisruptionBudgets, ConfigMaps and a CronJob, some of them with findings.

Prints: analysis alone (rules + indexing), analysis with source lines (every object
written to a source file and located, as `meshready analyze` does), and the time per
object at several sizes, which stays flat because Services are indexed by namespace and
selector (linear, not quadratic). The issue asks analysis to take no longer than
validating the same objects; when the validator is installed, its time on the same
objects is printed beside it.

Run: `nox -s bench`, or `python bench/bench_analyze.py [--objects N] [--runs N] [--quick]`
(`--quick`: 2,000 objects, one run each, for smoke runs; the figures are indicative).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from meshready.analyze.engine import AnalysisConfig, analyze
from meshready.render import RenderedObject, RenderResult
from meshready.render.yamlfmt import dump_yaml

TARGET = "overlays/bench"


def app_objects(namespace: str, app: int, flawed: bool) -> list[dict[str, Any]]:
    name = f"app{app}"
    labels = {"app": name, "version": "v1"}
    container: dict[str, Any] = {
        "name": name,
        "image": f"registry.example/{name}:{'latest' if flawed else '1.0'}",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": not flawed,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    meta = {"name": name, "namespace": namespace, "labels": labels}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": dict(labels)},  # no YAML anchor in the files
                    "spec": {
                        "serviceAccountName": name,
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": {"app": name},
                "ports": [{"name": "web" if flawed else "http", "port": 80, "targetPort": "http"}],
            },
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}},
    ]


def synthetic_objects(count: int, apps_per_namespace: int = 20) -> list[tuple[str, dict]]:
    """(source file, object) pairs: one file per namespace, `count` objects in all."""
    objects: list[tuple[str, dict]] = []
    namespace_index = 0
    while len(objects) < count:
        namespace = f"ns{namespace_index}"
        source = f"bench/{namespace}.yaml"
        objects.append(
            (
                source,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {"istio-injection": "enabled"}},
                },
            )
        )
        for app in range(apps_per_namespace):
            flawed = app % 7 == 0
            objects.extend((source, obj) for obj in app_objects(namespace, app, flawed))
        namespace_index += 1
    return objects[:count]


def as_result(objects: list[tuple[str, dict]]) -> RenderResult:
    return RenderResult(TARGET, [RenderedObject(obj, {"path": path}) for path, obj in objects])


def write_sources(root: Path, objects: list[tuple[str, dict]]) -> None:
    by_file: dict[str, list[dict]] = {}
    for path, obj in objects:
        by_file.setdefault(path, []).append(obj)
    for path, docs in by_file.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("---\n".join(dump_yaml(d) for d in docs))


def timed(action, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def figure(label: str, times: list[float], objects: int) -> str:
    median = statistics.median(times)
    return (
        f"{label:<44} median {median:7.3f}s  min {min(times):7.3f}s  "
        f"({median / objects * 1e6:6.1f} us/object)"
    )


def validation_timers(root: Path) -> dict[str, Any]:
    """Callables validating the same objects (the validation issue's engine), if installed:
    from the source files (load + validate) and from already loaded documents."""
    try:
        from meshready.manifests import loader
        from meshready.validate import core as validate
        from meshready.validate import registry as schema
    except ImportError:
        return {}
    files = sorted(root.rglob("*.yaml"))
    registry = schema.SchemaRegistry(strict=False)
    options = validate.Options(kubernetes_versions=(registry.resolve_version("1.33"),))
    documents = [d for f in files for d in loader.load_file(f)]
    validate.validate_documents(documents, registry, options)  # compile the schemas once
    return {
        "validate, same objects from files": lambda: validate.validate_documents(
            [d for f in files for d in loader.load_file(f)], registry, options
        ),
        "validate, same objects already loaded": lambda: validate.validate_documents(
            documents, registry, options
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=None, help="default: 10,000, 2,000 --quick")
    parser.add_argument("--runs", type=int, default=None, help="default: 5, 1 with --quick")
    parser.add_argument("--quick", action="store_true", help="smoke run: small and short")
    args = parser.parse_args()
    if args.objects is None:
        args.objects = 2_000 if args.quick else 10_000
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    scaling_runs = 1 if args.quick else 3
    config = AnalysisConfig(production_targets=frozenset([TARGET]))

    objects = synthetic_objects(args.objects)
    result = as_result(objects)
    namespaces = sum(1 for _, o in objects if o["kind"] == "Namespace")
    services = sum(1 for _, o in objects if o["kind"] == "Service")
    report = analyze([result], config)
    print(
        f"synthetic repo: {len(objects)} objects, {namespaces} namespaces, {services} Services; "
        f"{len(report.findings)} findings"
    )
    rules_only = timed(lambda: analyze([result], config), args.runs)
    print(figure("analyze (rules, no source lines)", rules_only, len(objects)))

    with tempfile.TemporaryDirectory(prefix="bench-analyze-") as tmp:
        root = Path(tmp)
        write_sources(root, objects)
        with_lines = timed(lambda: analyze([result], config, root), args.runs)
        located = analyze([result], config, root)
        assert all(f.line for f in located.findings), "every finding should have a line"
        print(figure("analyze + source lines (meshready analyze)", with_lines, len(objects)))
        # `meshready analyze DIR` on plain files: load every file, then analyse with lines.
        from meshready.analyze.sources import load_plain

        files = sorted(str(f) for f in root.rglob("*.yaml"))

        def plain_run():
            loaded = load_plain(files, target=TARGET)
            return analyze([loaded.result], config, root)

        plain = timed(plain_run, args.runs)
        assert all(f.line for f in plain_run().findings), "every finding should have a line"
        print(figure("analyze plain files (load + rules + lines)", plain, len(objects)))
        try:
            validators = validation_timers(root)
            if not validators:
                print("validate: not installed (meshready.validate)")
            validated = {}
            for label, action in validators.items():
                validated[label] = timed(action, args.runs)
                print(figure(label, validated[label], len(objects)))
            # The bar: analysing takes no longer than validating the same objects.
            for analysis, times, validation in (
                ("analyze plain files", plain, "validate, same objects from files"),
                ("analyze + source lines", with_lines, "validate, same objects from files"),
                ("analyze (rules only)", rules_only, "validate, same objects already loaded"),
            ):
                if validation in validated:
                    ratio = statistics.median(times) / statistics.median(validated[validation])
                    print(f"  {analysis} / {validation}: {ratio:.2f}x (medians)")
        except Exception as err:  # the validator's API is its own; keep the analysis figures
            print(f"validate: could not be called ({err}); see bench/bench_validate.py")

    # Python's cyclic GC rescans every live object from time to time, which adds a
    # size-dependent cost that is not the algorithm's; it is paused for this table only.
    # (analyze() pauses it during analysis anyway; the figures above include whatever
    # collections the rest of the run triggers, as a user's run would.)
    print("scaling (analysis without lines, GC paused; flat us/object means linear):")
    for size in (args.objects // 4, args.objects // 2, args.objects, args.objects * 2):
        scaled = as_result(synthetic_objects(size))
        gc.collect()
        gc.disable()
        try:
            times = timed(lambda s=scaled: analyze([s], config), scaling_runs)
        finally:
            gc.enable()
        print("  " + figure(f"{size} objects", times, size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
