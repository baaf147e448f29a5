"""The benchmarks' corpus: N valid Kubernetes objects (strict-clean for Kubernetes 1.33),
written as multi-document YAML files of 100 objects each.

Six kinds take turns (Deployment, Service, ConfigMap, ServiceAccount, PodDisruptionBudget,
HorizontalPodAutoscaler), so 10,000 objects are 1,667 or 1,666 of each kind, over 50
namespaces, in 100 files `part-0000.yaml` ... `part-0099.yaml`. The same N always gives
the same bytes, so figures from different machines compare.

    python bench/corpus.py OUTDIR [N]        # or: from corpus import write_corpus
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

OBJECTS = 10_000
PER_FILE = 100
NAMESPACES = 50
# A digest-pinned image, as production targets require; the registry is not resolved.
IMAGE_DIGEST = "sha256:" + "0" * 64

Obj = dict[str, Any]


def _meta(kind_index: int, name: str, **extra: Any) -> Obj:
    return {"name": name, "namespace": f"ns-{kind_index % NAMESPACES}", **extra}


def _deployment(i: int) -> Obj:
    app = f"app-{i}"
    labels = {"app": app, "version": "v1"}
    http_probe = {"path": "/readyz", "port": "http"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(i, app, labels=labels),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": app,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "main",
                            "image": f"registry.example/{app}@{IMAGE_DIGEST}",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [
                                {"name": "PORT", "value": "8080"},
                                {"name": "LEVEL", "value": "info"},
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                            "readinessProbe": {"httpGet": dict(http_probe)},
                            "livenessProbe": {"httpGet": {**http_probe, "path": "/healthz"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def _service(i: int) -> Obj:
    app = f"app-{i}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(i, app, labels={"app": app}),
        "spec": {
            "selector": {"app": app},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def _configmap(i: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(i, f"cfg-{i}"),
        # A nested document as a value: block scalars are part of what a parser meets.
        "data": {"a": "1", "b": "two", "config.yaml": "x: 1\ny: [1, 2]\n"},
    }


def _serviceaccount(i: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(i, f"app-{i}"),
        "automountServiceAccountToken": False,
    }


def _poddisruptionbudget(i: int) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(i, f"app-{i}"),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": f"app-{i}"}}},
    }


def _horizontalpodautoscaler(i: int) -> Obj:
    cpu = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(i, f"app-{i}"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"app-{i}"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": cpu}],
        },
    }


BUILDERS: tuple[Callable[[int], Obj], ...] = (
    _deployment,
    _service,
    _configmap,
    _serviceaccount,
    _poddisruptionbudget,
    _horizontalpodautoscaler,
)


def corpus_objects(count: int = OBJECTS) -> list[Obj]:
    """Object k is kind k mod 6, numbered k div 6 within its kind (so app-7's Deployment,
    Service, ServiceAccount, PDB and HPA belong together)."""
    return [BUILDERS[k % len(BUILDERS)](k // len(BUILDERS)) for k in range(count)]


def write_corpus(out: Path, count: int = OBJECTS, per_file: int = PER_FILE) -> list[Path]:
    """Write `count` objects under `out`, `per_file` to a file; return the files."""
    out.mkdir(parents=True, exist_ok=True)
    objects = corpus_objects(count)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    files = []
    for number, start in enumerate(range(0, count, per_file)):
        path = out / f"part-{number:04d}.yaml"
        path.write_text(
            yaml.dump_all(objects[start : start + per_file], Dumper=dumper, sort_keys=False)
        )
        files.append(path)
    return files


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2 or (len(argv) == 2 and not argv[1].isdigit()):
        print(f"usage: {Path(__file__).name} OUTDIR [N]", file=sys.stderr)
        return 2
    out = Path(argv[0])
    count = int(argv[1]) if len(argv) == 2 else OBJECTS
    files = write_corpus(out, count)
    print(f"{count} objects in {len(files)} files under {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
