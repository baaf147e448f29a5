"""The Istio rules' edges that mutation testing found unpinned (docs/testing.md), through
analyze() on real files: every deprecated field at its line, every `tls.mode: DISABLE` a
DestinationRule can hold against the PeerAuthentication layers, HTTP mirrors, and the
gateway reference forms."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from meshready.analyze.engine import AnalysisConfig, analyze
from meshready.analyze.rules.istio_routing import split_gateway_ref
from meshready.render import RenderedObject, RenderResult

TARGET = "istio"

DEPRECATED = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: old-vs
  namespace: shop
spec:
  hosts: [old.example.com]
  http:
  - route:
    - destination: {host: old.example.com}
  - mirrorPercent: 5
    mirror_percent: 5
    fault:
      delay:
        percent: 10
        fixedDelay: 1s
    corsPolicy:
      allowOrigin: ["*"]
    route:
    - destination: {host: old.example.com}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: old-dr
  namespace: shop
spec:
  host: old.example.com
  trafficPolicy:
    outlierDetection:
      consecutiveErrors: 5
    portLevelSettings:
    - port: {number: 80}
    - port: {number: 81}
      outlierDetection:
        consecutiveErrors: 3
  subsets:
  - name: a
  - name: b
    trafficPolicy:
      outlierDetection:
        consecutiveErrors: 2
      portLevelSettings:
      - port: {number: 82}
        outlierDetection:
          consecutiveErrors: 1
---
apiVersion: networking.istio.io/v1beta1
kind: Sidecar
metadata:
  name: old-sidecar
  namespace: shop
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
    egressProxy: {host: egress.example.com}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: old-filter
  namespace: shop
spec:
  workloadLabels: {app: x}
  filters: []
---
apiVersion: rbac.istio.io/v1alpha1
kind: ServiceRole
metadata:
  name: old-role
  namespace: shop
spec: {}
---
apiVersion: example.com/v1
kind: EnvoyFilter
metadata:
  name: not-istio
  namespace: shop
spec:
  filters: []
"""

APP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
spec:
  selector:
    matchLabels: {app: cart}
  template:
    metadata:
      labels: {app: cart, version: v1}
    spec:
      containers:
      - name: cart
        image: registry.example/cart:1.0
        ports:
        - {containerPort: 8080, name: http}
---
apiVersion: v1
kind: Service
metadata:
  name: cart
  namespace: shop
spec:
  selector: {app: cart}
  ports:
  - {name: http, port: 80, targetPort: http}
"""

STRICT_AND_DISABLED = """\
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: shop
spec:
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: cart
  namespace: shop
spec:
  host: cart
  trafficPolicy:
    tls:
      mode: disable
    portLevelSettings:
    - port: {number: 80}
      tls: {mode: ISTIO_MUTUAL}
    - port: {number: 81}
      tls:
        mode: DISABLE
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v1b
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: DISABLE}
      portLevelSettings:
      - port: {number: 82}
        tls: {mode: DISABLE}
"""

MIRRORS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: cart
  namespace: shop
spec:
  hosts: [cart]
  http:
  - name: main
    route:
    - destination: {host: cart}
    mirror: {host: cartt}
    mirrors:
    - destination: {host: cart}
    - destination:
        host: carts
  tcp:
  - mirror: {host: nowhere}
    route:
    - destination: {host: cart}
"""


def findings(text: str, tmp_path: Path, rule_id: str) -> list[tuple[int, str, str]]:
    """(line, object name, detail) of the findings of `rule_id`, the input read from a file."""
    (tmp_path / "input.yaml").write_text(text)
    objects = [
        RenderedObject(obj=doc, origin={"path": "input.yaml"})
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]
    config = AnalysisConfig(per_target={TARGET: {"external_gateways": True}})
    report = analyze([RenderResult(target=TARGET, objects=objects)], config, root=tmp_path)
    return sorted(
        (f.line, f.name, f.message.split(": ", 1)[1])
        for f in report.findings
        if f.rule.id == rule_id
    )


def line_of(text: str, needle: str, after: int = 0) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if i > after and needle in line)


def test_every_deprecated_field_is_found_at_its_line(tmp_path: Path):
    text = DEPRECATED
    dr = line_of(text, "name: old-dr")
    subset_b = line_of(text, "- name: b")
    assert findings(text, tmp_path, "MR322") == [
        (line_of(text, "mirrorPercent: 5"), "old-vs", "mirrorPercent: use mirrorPercentage"),
        (line_of(text, "mirror_percent: 5"), "old-vs", "mirror_percent: use mirrorPercentage"),
        (line_of(text, "percent: 10"), "old-vs", "fault.delay.percent: use percentage"),
        (line_of(text, "allowOrigin:"), "old-vs", "corsPolicy.allowOrigin: use allowOrigins"),
        *(
            (line, "old-dr", "outlierDetection.consecutiveErrors: use consecutive5xxErrors")
            for line in (
                line_of(text, "consecutiveErrors: 5", dr),  # trafficPolicy
                line_of(text, "consecutiveErrors: 3", dr),  # its portLevelSettings[1]
                line_of(text, "consecutiveErrors: 2", subset_b),  # subsets[1].trafficPolicy
                line_of(text, "consecutiveErrors: 1", subset_b),  # and its port level
            )
        ),
        (
            line_of(text, "egressProxy:"),
            "old-sidecar",
            "outboundTrafficPolicy.egressProxy is ignored",
        ),
        (
            line_of(text, "workloadLabels:"),
            "old-filter",
            "workloadLabels was removed: use workloadSelector",
        ),
        (line_of(text, "filters: []"), "old-filter", "filters was removed: use configPatches"),
        (
            line_of(text, "apiVersion: rbac.istio.io"),
            "old-role",
            "rbac.istio.io ServiceRole: use AuthorizationPolicy (security.istio.io)",
        ),
    ]


def test_current_fields_are_not_deprecated(tmp_path: Path):
    text = (
        DEPRECATED.replace("mirrorPercent: 5", "mirrorPercentage: {value: 5}")
        .replace("mirror_percent: 5", "timeout: 1s")
        .replace("percent: 10", "percentage: {value: 10}")
        .replace("allowOrigin:", "allowOrigins:")
        .replace("consecutiveErrors", "consecutive5xxErrors")
        .replace("egressProxy", "egress")
        .replace("workloadLabels", "workloadSelector")
        .replace("filters: []", "configPatches: []")
        .replace("rbac.istio.io/v1alpha1", "security.istio.io/v1")
    )
    assert findings(text, tmp_path, "MR322") == []


def tls_findings(tmp_path: Path, text: str) -> list[tuple[int, str]]:
    return [(line, detail) for line, _, detail in findings(text, tmp_path, "MR321")]


def test_every_disabled_tls_mode_conflicts_with_a_strict_namespace(tmp_path: Path):
    text = APP + STRICT_AND_DISABLED
    dr = line_of(text, "kind: DestinationRule")
    message = "Service shop/cart is STRICT by PeerAuthentication shop/default"
    assert tls_findings(tmp_path, text) == [
        (line_of(text, "mode: disable", dr), message),  # any case
        (line_of(text, "mode: DISABLE", line_of(text, "number: 81")), message),  # a port's
        (line_of(text, "tls: {mode: DISABLE}", line_of(text, "- name: v1b")), message),
        (line_of(text, "tls: {mode: DISABLE}", line_of(text, "number: 82")), message),
    ]


def test_without_a_disabled_mode_there_is_no_conflict(tmp_path: Path):
    text = APP + STRICT_AND_DISABLED.replace("DISABLE", "SIMPLE").replace("disable", "SIMPLE")
    assert tls_findings(tmp_path, text) == []


def peer_authentication(namespace: str, mode: str, selector: str = "") -> str:
    selector_yaml = f"  selector:\n    matchLabels: {{{selector}}}\n" if selector else ""
    return (
        "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n"
        f"  name: pa-{namespace}-{mode.lower()}\n  namespace: {namespace}\nspec:\n"
        f"{selector_yaml}  mtls: {{mode: {mode}}}\n"
    )


def strict_by(tmp_path: Path, *policies: str) -> set[str]:
    """Which PeerAuthentication the findings name, with the DestinationRule of the fixture."""
    dr = (
        "---\napiVersion: networking.istio.io"
        + STRICT_AND_DISABLED.split("---\napiVersion: networking.istio.io")[1]
    )
    text = APP + "".join(policies) + dr
    return {detail.rpartition(" ")[2] for _, detail in tls_findings(tmp_path, text)}


def test_the_most_specific_peer_authentication_decides(tmp_path: Path):
    root_strict = peer_authentication("istio-system", "STRICT")
    # the mesh-wide policy of the root namespace applies where nothing closer has a mode
    assert strict_by(tmp_path, root_strict) == {"istio-system/pa-istio-system-strict"}
    assert strict_by(tmp_path, root_strict, peer_authentication("shop", "UNSET")) == {
        "istio-system/pa-istio-system-strict"
    }
    # the namespace's own policy overrides it, either way
    assert strict_by(tmp_path, root_strict, peer_authentication("shop", "PERMISSIVE")) == set()
    assert strict_by(
        tmp_path,
        peer_authentication("istio-system", "PERMISSIVE"),
        peer_authentication("shop", "STRICT"),
    ) == {"shop/pa-shop-strict"}
    # a workload's own policy overrides the namespace's
    assert (
        strict_by(
            tmp_path,
            peer_authentication("shop", "STRICT"),
            peer_authentication("shop", "PERMISSIVE", "app: cart"),
        )
        == set()
    )
    assert strict_by(
        tmp_path,
        peer_authentication("shop", "PERMISSIVE"),
        peer_authentication("shop", "STRICT", "app: cart"),
    ) == {"shop/pa-shop-strict"}
    # a selector that picks other pods, another namespace, or a root policy with a
    # selector: none of them governs these pods
    assert strict_by(tmp_path, peer_authentication("shop", "STRICT", "app: other")) == set()
    assert strict_by(tmp_path, peer_authentication("other", "STRICT")) == set()
    assert strict_by(tmp_path, peer_authentication("istio-system", "STRICT", "app: cart")) == set()


def test_http_mirrors_are_destinations_too(tmp_path: Path):
    text = APP + "---\n" + MIRRORS
    found = findings(text, tmp_path, "MR302")
    assert found == [
        (
            line_of(text, "mirror: {host: cartt}"),
            "cart",
            "cartt (cartt.shop.svc.cluster.local)",
        ),
        (
            line_of(text, "host: carts"),
            "cart",
            "carts (carts.shop.svc.cluster.local)",
        ),
    ]  # a `mirror` outside `http` is no field of Istio's: not read


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("gw", ("shop", "gw")),
        ("edge/gw", ("edge", "gw")),
        ("edge/gw/x", ("edge", "gw/x")),
        ("gw.edge", ("edge", "gw")),
        ("gw.edge.svc.cluster.local", ("edge", "gw")),
        ("gw.edge.", ("edge", "gw")),
        (".gw", ("shop", ".gw")),
        ("gw.", ("shop", "gw.")),
    ],
)
def test_split_gateway_ref(ref: str, expected: tuple[str, str]):
    assert split_gateway_ref(ref, "shop") == expected


ROUTES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: cart
  namespace: shop
spec:
  hosts: [cart]
  http:
  - name: api
    match:
    - headers: {b: {exact: "1"}, a: {exact: "2"}}
    - headers: {x-day: {exact: 2024-01-01}}
    route:
    - destination: {host: cart}
  - name: dup
    match:
    - headers: {a: {exact: "2"}, b: {exact: "1"}}
    route:
    - destination: {host: cart}
  - match:
    - uri: {exact: /x}
    - headers: {x-day: {exact: 2024-01-01}}
    route:
    - destination: {host: cart}
  - name: rest
    route:
    - destination: {host: cart}
  - route:
    - destination: {host: cart}
  - name: last
    route:
    - destination: {host: cart}
  tcp:
  - route:
    - destination: {host: cart}
  - route:
    - destination: {host: cart}
"""


def test_route_rules_after_a_catch_all_or_with_repeated_matches_are_found(tmp_path: Path):
    text = APP + "---\n" + ROUTES
    vs = line_of(text, "kind: VirtualService")
    tcp = line_of(text, "tcp:")
    assert [(line, detail) for line, _, detail in findings(text, tmp_path, "MR308")] == [
        # key order and a YAML date do not make two matches different
        (line_of(text, "- name: dup", vs), "http[1] (dup): every match is in http[0] (api)"),
        (
            line_of(text, "- route:", line_of(text, "- name: rest")),
            "http[4]: http[3] (rest) matches every request",
        ),
        (line_of(text, "- name: last"), "http[5] (last): http[3] (rest) matches every request"),
        (line_of(text, "- route:", tcp + 2), "tcp[1]: tcp[0] matches every request"),
    ]
    assert [(line, detail) for line, _, detail in findings(text, tmp_path, "MR309")] == [
        (
            line_of(text, "- headers: {x-day", line_of(text, "uri: {exact: /x}")),
            "http[2] match 1 repeats http[0] (api)",
        )
    ]


MESH_VS = """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: {namespace}
spec:
  hosts: [{host}]
  exportTo: {export}
  http:
  - route:
    - destination: {{host: cart.shop.svc.cluster.local}}
"""


def mesh_conflicts(tmp_path: Path, *services: tuple[str, str, str, str]) -> list[str]:
    text = APP + "".join(
        MESH_VS.format(name=n, namespace=ns, host=h, export=e) for n, ns, h, e in services
    )
    return [f"{name}: {detail}" for _, name, detail in findings(text, tmp_path, "MR307")]


def test_mesh_host_conflicts_follow_export_scopes(tmp_path: Path):
    fq = "cart.shop.svc.cluster.local"
    # `.` is the VirtualService's own namespace, a namespace name is that namespace
    assert mesh_conflicts(
        tmp_path, ("a", "shop", "cart", '["."]'), ("b", "web", fq, '["shop"]')
    ) == ["a: cart also in VirtualService web/b", f"b: {fq} also in VirtualService shop/a"]
    assert mesh_conflicts(tmp_path, ("a", "shop", "cart", '["."]'), ("b", "web", fq, '["."]')) == []
    assert mesh_conflicts(tmp_path, ("a", "shop", "cart", "[]"), ("b", "web", fq, '["*"]')) == [
        "a: cart also in VirtualService web/b",
        f"b: {fq} also in VirtualService shop/a",
    ]


def test_a_name_dot_namespace_host_is_explained(tmp_path: Path):
    text = APP + "---\n" + MIRRORS.replace("{host: cart}", "{host: cart.shop}", 1)
    text += "---\n" + MIRRORS.replace("name: cart", "name: other").replace(
        "{host: cart}", "{host: cart.nowhere}", 1
    )
    assert [(name, detail) for _, name, detail in findings(text, tmp_path, "MR303")] == [
        (
            "cart",
            "cart.shop (Istio does not expand it: did you mean cart.shop.svc.cluster.local?)",
        ),
        ("other", "cart.nowhere"),
    ]


def test_host_helpers_at_their_edges():
    from meshready.analyze.rules.istio import (
        IstioIndex,
        cluster_service,
        fqdn,
        hosts_overlap,
        namespace_of,
        selector_text,
        server_hosts,
    )
    from meshready.analyze.rules.model import K8sObject

    assert namespace_of(K8sObject({}, "VirtualService", "v", "")) == "default"
    assert fqdn("::1", "shop") == "::1"  # an IPv6 address has colons and no dot
    assert fqdn(" Cart ", "shop") == "cart.shop.svc.cluster.local"
    assert cluster_service("cart.shop.svc.cluster.local") == ("shop", "cart")
    assert cluster_service("*.shop.svc.cluster.local") is None
    assert cluster_service("a.b.c.svc.cluster.local") is None
    assert cluster_service("shop.svc.cluster.local") is None
    assert hosts_overlap("*", "a.example.com") and hosts_overlap("a.example.com", "*")
    assert not hosts_overlap("*.ay.com", "*.y.com")  # a label suffix is no domain suffix
    assert not hosts_overlap("*.y.com", "*.ay.com")
    assert hosts_overlap("*.a.y.com", "*.y.com") and hosts_overlap("*.y.com", "*.a.y.com")
    assert selector_text({"b": "2", "a": "1"}) == "a=1,b=2"
    assert selector_text({}) == "(empty)"
    assert server_hosts({"hosts": ["ns/a/b", "./x", "Y"]}, "gw") == [
        ("ns", "a/b"),
        ("gw", "x"),
        ("*", "y"),
    ]
    index = IstioIndex(namespaces={"shop"})
    assert not index.resolve("*", "shop").external
    assert index.resolve("api.example.com", "shop").external
    assert index.resolve("cart", "shop").missing_in_input
    assert not index.resolve("cart", "other").missing_in_input
    assert index.resolve("cart", "shop") is index.resolve("cart", "shop")  # resolved once
    dr = K8sObject({"spec": {"subsets": [{"name": "v1"}, {}]}}, "DestinationRule", "d", "shop")
    index.destination_patterns.append(("*.shop.svc.cluster.local", dr))
    assert index.subsets("cart.shop.svc.cluster.local") == {"v1": [dr]}
    assert index.subsets("cart.web.svc.cluster.local") is None


WILDCARD_DR = """\
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: all-of-shop
  namespace: shop
spec:
  host: "*.shop.svc.cluster.local"
  subsets:
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: legacy
  namespace: shop
spec:
  hosts: [legacy]
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: subsets
  namespace: shop
spec:
  hosts: [cart]
  http:
  - route:
    - destination: {host: cart, subset: v1}
    - destination: {host: cart, subset: v9}
    - destination: {host: legacy}
"""

ONLY_A_SERVICE_AND_A_JOB = """\
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: web
spec:
  selector: {app: api}
  ports:
  - {name: http, port: 80}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: task
  namespace: jobs
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: task, image: registry.example/task:1.0}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
  namespace: web
spec:
  hosts: [api]
  http:
  - route:
    - destination: {host: apii}
    - destination: {host: worker.jobs.svc.cluster.local}
"""


def test_wildcard_destination_rules_and_short_service_entry_hosts(tmp_path: Path):
    text = APP + WILDCARD_DR
    assert [detail for _, _, detail in findings(text, tmp_path, "MR305")] == [
        "'v9' (subsets of cart.shop.svc.cluster.local: v1)"
    ]
    assert findings(text, tmp_path, "MR302") == []  # `legacy` is the ServiceEntry's


def test_a_namespace_is_part_of_the_input_by_its_services_or_workloads(tmp_path: Path):
    found = findings(ONLY_A_SERVICE_AND_A_JOB, tmp_path, "MR302")
    assert [detail for _, _, detail in found] == [
        "apii (apii.web.svc.cluster.local)",
        "worker.jobs.svc.cluster.local (worker.jobs.svc.cluster.local)",
    ]


@pytest.mark.parametrize(
    ("principal", "parsed"),
    [
        ("cluster.local/ns/shop/sa/cart", ("shop", "cart")),
        ("example.org/ns/shop/sa/cart", ("shop", "cart")),
        ("cluster.local/ns/shop/sa/", None),
        ("cluster.local/ns//sa/cart", None),
        ("cluster.local/ns/*/sa/cart", None),
        ("cluster.local/ns/shop/sa/car*", None),
        ("cluster.local/NS/shop/sa/cart", None),
        ("cluster.local/ns/shop/SA/cart", None),
        ("cluster.local/ns/shop/sa/cart/x", None),
        ("ns/shop/sa/cart", None),
    ],
)
def test_parse_principal(principal: str, parsed):
    from meshready.analyze.rules.istio_security import parse_principal

    assert parse_principal(principal) == parsed


AUTHZ = """\
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: cart
  namespace: shop
spec:
  selector:
    matchLabels: {app: cart}
  rules:
  - from:
    - source: {principals: [cluster.local/ns/shop/sa/default]}
  - from:
    - source: {namespaces: [shop]}
    - source:
        principals: [cluster.local/ns/shop/sa/cart, cluster.local/ns/shop/sa/carts]
        notPrincipals: [cluster.local/ns/shop/sa/ghost, cluster.local/ns/elsewhere/sa/x]
"""


def test_unknown_service_accounts_in_principals_and_not_principals(tmp_path: Path):
    runs_as_cart = "      serviceAccountName: cart\n      containers:\n"
    text = APP.replace("      containers:\n", runs_as_cart, 1) + AUTHZ
    assert findings(text, tmp_path, "MR320") == [
        (
            line_of(text, "principals: [cluster.local/ns/shop/sa/cart,"),
            "cart",
            "cluster.local/ns/shop/sa/carts: no ServiceAccount shop/carts",
        ),
        (
            line_of(text, "notPrincipals:"),
            "cart",
            "cluster.local/ns/shop/sa/ghost: no ServiceAccount shop/ghost",
        ),
    ]  # `cart` runs the Deployment, `default` always exists, `elsewhere` is not in the input


ROOT_GATEWAY = """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress
  namespace: istio-system
spec:
  selector:
    matchLabels: {istio: ingressgateway}
  template:
    metadata:
      labels: {istio: ingressgateway}
    spec:
      containers:
      - {name: istio-proxy, image: registry.example/proxy:1.0}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: mesh-wide
  namespace: istio-system
spec:
  selector:
    matchLabels: {app: SELECTED}
"""


def test_a_root_namespace_policy_selects_pods_of_every_namespace(tmp_path: Path):
    assert findings(APP + ROOT_GATEWAY.replace("SELECTED", "cart"), tmp_path, "MR319") == []
    text = APP + ROOT_GATEWAY.replace("SELECTED", "nothing")
    assert findings(text, tmp_path, "MR319") == [
        (line_of(text, "matchLabels: {app: nothing}"), "mesh-wide", "app=nothing")
    ]
    # a namespace with no workload in the input: its pods are elsewhere, nothing is checked
    elsewhere = text.replace(
        "namespace: istio-system\nspec:\n  selector:\n    matchLabels: {istio",
        "namespace: gateways\nspec:\n  selector:\n    matchLabels: {istio",
    )
    assert findings(elsewhere, tmp_path, "MR319") == []


def test_a_peer_authentication_without_a_mode_defers_to_the_next_layer(tmp_path: Path):
    modeless = (
        "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n"
        "  name: modeless\n  namespace: shop\nspec: {}\n"
    )
    root_strict = peer_authentication("istio-system", "STRICT")
    assert strict_by(tmp_path, root_strict, modeless) == {"istio-system/pa-istio-system-strict"}


ORPHAN = """\
---
apiVersion: v1
kind: Service
metadata:
  name: orphan
  namespace: shop
spec:
  selector: {app: nobody}
  ports:
  - {name: http, port: 80}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: orphan
  namespace: shop
spec:
  host: orphan
  trafficPolicy:
    tls: {mode: DISABLE}
"""


def test_a_service_without_pods_is_governed_by_its_namespace_only(tmp_path: Path):
    text = (
        APP
        + peer_authentication("shop", "STRICT")
        + peer_authentication("shop", "PERMISSIVE", "app: cart")
        + ORPHAN
    )
    assert [
        detail for _, name, detail in findings(text, tmp_path, "MR321") if name == "orphan"
    ] == ["Service shop/orphan is STRICT by PeerAuthentication shop/pa-shop-strict"]


SIDECARS_WITHOUT_WORKLOADS = """\
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: one
  namespace: empty
spec:
  workloadSelector:
    labels: {app: x}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: two
  namespace: empty
spec:
  workloadSelector:
    labels: {app: x}
"""


def test_sidecars_of_a_namespace_without_workloads_are_not_compared(tmp_path: Path):
    assert findings(APP + SIDECARS_WITHOUT_WORKLOADS, tmp_path, "MR317") == []
    in_shop = SIDECARS_WITHOUT_WORKLOADS.replace("empty", "shop").replace("app: x", "app: cart")
    assert [name for _, name, _ in findings(APP + in_shop, tmp_path, "MR317")] == ["one", "two"]


ODD = """\
---
apiVersion: example.com/v1
kind: VirtualService
metadata:
  name: not-istio
  namespace: shop
spec:
  hosts: [cart]
  gateways: [nowhere]
  http:
  - route:
    - destination: {host: missing}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: numeric
  namespace: shop
spec:
  host: 5
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: numeric
  namespace: shop
spec:
  hosts: [cart]
  http:
  - route:
    - destination: {host: 5}
"""


def test_other_groups_kinds_and_non_text_hosts_are_left_alone(tmp_path: Path):
    text = APP + ODD
    for rule_id in ("MR301", "MR302", "MR303", "MR311"):
        assert findings(text, tmp_path, rule_id) == [], rule_id


MESH_AND_GATEWAY = """\
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: shop
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [other.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ingress
  namespace: shop
spec:
  hosts: [cart.example.com]
  gateways: [public]
  http:
  - route:
    - destination: {host: cart}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: split
  namespace: shop
spec:
  hosts: [cart, www.example.com]
  gateways: [public, mesh]
  http:
  - route:
    - destination: {host: cart, subset: v1}
      weight: 50
    - destination: {host: cart, subset: v2}
      weight: 50
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: split-again
  namespace: shop
spec:
  hosts: [cart]
  http:
  - route:
    - destination: {host: cart, subset: v1}
"""


def test_hosts_for_the_mesh_and_for_a_gateway(tmp_path: Path):
    text = APP + MESH_AND_GATEWAY
    # a Service name on a VirtualService bound to the mesh too is for the sidecars
    assert [(name, detail) for _, name, detail in findings(text, tmp_path, "MR306")] == [
        ("ingress", "cart.example.com not served by Gateway shop/public"),
        ("split", "www.example.com not served by Gateway shop/public"),
    ]
    # each splitting VirtualService is named once, a gateway-only one listed first or not
    assert [(name, detail) for _, name, detail in findings(text, tmp_path, "MR324")] == [
        ("ingress", "cart: split by subset in VirtualService shop/split, shop/split-again"),
    ]
    # the mesh conflict is found past the gateway-only VirtualService listed first
    assert [name for _, name, _ in findings(text, tmp_path, "MR307")] == ["split", "split-again"]


def test_a_rule_repeating_matches_of_two_earlier_rules_names_both(tmp_path: Path):
    text = (
        APP
        + "---\n"
        + ROUTES.replace(
            '    - headers: {a: {exact: "2"}, b: {exact: "1"}}\n',
            "    - uri: {exact: /only-dup}\n",
        ).replace(
            "  - match:\n    - uri: {exact: /x}\n",
            "  - match:\n    - uri: {exact: /only-dup}\n",
        )
    )
    unreachable = [detail for _, _, detail in findings(text, tmp_path, "MR308")]
    assert "http[2]: every match is in http[0] (api), http[1] (dup)" in unreachable


ENTRY_AND_TCP = """\
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: api
  namespace: shop
spec:
  hosts: [api.example.com]
  resolution: DNS
  ports:
  - {number: 443, name: tls, protocol: TLS}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
  namespace: shop
spec:
  hosts: [api.example.com]
  tcp:
  - route:
    - destination: {host: api.example.com}
  - route:
    - destination: {host: cartz}
  tls:
  - match:
    - sniHosts: [api.example.com]
    route:
    - destination: {host: api.example.com}
  - match:
    - sniHosts: [api.example.com]
    route:
    - destination: {host: carty}
"""


def test_every_tcp_and_tls_route_is_read_and_a_service_entry_is_no_virtual_service(
    tmp_path: Path,
):
    text = APP + ENTRY_AND_TCP
    assert [detail for _, _, detail in findings(text, tmp_path, "MR302")] == [
        "cartz (cartz.shop.svc.cluster.local)",
        "carty (carty.shop.svc.cluster.local)",
    ]
    assert findings(text, tmp_path, "MR307") == []  # the ServiceEntry shares the host
