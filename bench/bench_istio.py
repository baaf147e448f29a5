"""How long the Istio configuration rules (MR3xx) take on a synthetic mesh, built in memory:
per namespace, versioned Deployments behind Services, a DestinationRule with two subsets and
a weighted VirtualService per Service, an AuthorizationPolicy per workload, a ServiceEntry
and a STRICT PeerAuthentication. Half the objects are Istio objects.

Prints the CPU time of `analyze` (all rules, no source lines) per object at several sizes:
flat means linear, i.e. every cross-reference is a table lookup (hosts, subsets, Gateways),
not a scan of the other objects. CPU time, because the machine is shared.

Run: `nox -s bench`, or `python bench/bench_istio.py [--namespaces N] [--runs N]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from meshready.analyze.engine import AnalysisConfig, analyze
from meshready.render import RenderedObject, RenderResult

APPS = 10


def namespace_objects(n: int) -> list[dict[str, Any]]:
    ns = f"ns{n}"
    meta = {"namespace": ns}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": "external", **meta},
            "spec": {
                "hosts": [f"api{n}.example.com"],
                "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
            },
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", **meta},
            "spec": {"mtls": {"mode": "STRICT"}},
        },
    ]
    for a in range(APPS):
        app = f"app{a}"
        for version in ("v1", "v2"):
            labels = {"app": app, "version": version}
            objects.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": f"{app}-{version}", "labels": labels, **meta},
                    "spec": {
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "containers": [
                                    {
                                        "name": app,
                                        "image": "registry.example/app:1.0",
                                        "ports": [{"containerPort": 8080, "name": "http"}],
                                    }
                                ]
                            },
                        },
                    },
                }
            )
        subsets = [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")]
        split = [
            {"destination": {"host": app, "subset": "v1"}, "weight": 90},
            {"destination": {"host": app, "subset": "v2"}, "weight": 10},
        ]
        objects += [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": app, **meta},
                "spec": {
                    "selector": {"app": app},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            },
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": app, **meta},
                "spec": {"host": app, "subsets": subsets},
            },
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": app, **meta},
                "spec": {
                    "hosts": [app],
                    "http": [
                        {"match": [{"uri": {"prefix": "/api"}}], "route": split},
                        {"route": [{"destination": {"host": f"app{(a + 1) % APPS}"}}]},
                    ],
                },
            },
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": app, **meta},
                "spec": {
                    "selector": {"matchLabels": {"app": app}},
                    "rules": [
                        {
                            "from": [
                                {"source": {"principals": [f"cluster.local/ns/{ns}/sa/default"]}}
                            ]
                        }
                    ],
                },
            },
        ]
    return objects


def measure(namespaces: int, runs: int) -> tuple[int, int, float]:
    objects = [
        RenderedObject(obj=obj, origin={})
        for n in range(namespaces)
        for obj in namespace_objects(n)
    ]
    istio = sum(str(o.obj["apiVersion"]).split("/")[0].endswith("istio.io") for o in objects)
    times = []
    for _ in range(runs):
        start = time.process_time()
        report = analyze([RenderResult(target="bench", objects=objects)], AnalysisConfig())
        times.append(time.process_time() - start)
    assert not [f for f in report.findings if f.rule.id.startswith("MR3")], "a clean mesh"
    return len(objects), istio, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10 namespaces, 1 run")
    args = parser.parse_args()
    if args.quick:
        args.namespaces, args.runs = 10, 1
    for share in (4, 2, 1):
        count, istio, median = measure(max(1, args.namespaces // share), args.runs)
        print(
            f"{count:6d} objects ({istio} Istio)  analyze CPU median {median:7.3f}s"
            f"  ({median / count * 1e6:6.1f} us/object)"
        )


if __name__ == "__main__":
    main()
