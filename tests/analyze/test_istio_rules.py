"""The Istio configuration rules (MR3xx) beyond their catalog fixtures: the issue's broken
VirtualService, every Istio API version alike, the host and gateway-host matching they rest
on, and the boundaries where a reference may point outside the input (no finding)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from meshready.analyze.engine import AnalysisConfig, AnalysisReport, analyze
from meshready.analyze.rules import CATALOG, Scope
from meshready.analyze.rules.istio import fqdn, hosts_overlap, server_hosts
from meshready.analyze.rules.istio_security import parse_principal
from meshready.render import RenderedObject, RenderResult

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "rules"
TARGET = "istio"

APP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: hello
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: hello
  namespace: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello-v1
  namespace: hello
spec:
  selector:
    matchLabels: {app: hello, version: v1}
  template:
    metadata:
      labels: {app: hello, version: v1}
    spec:
      serviceAccountName: hello
      containers:
      - name: hello
        image: registry.example/hello:1.0
        ports:
        - {containerPort: 8080, name: http}
---
apiVersion: v1
kind: Service
metadata:
  name: hellosvc
  namespace: hello
spec:
  selector: {app: hello}
  ports:
  - {name: http, port: 80, targetPort: http}
"""

# The issue's case: a typo in the gateway, a typo in a destination host, a host its Gateway
# does not serve, and a subset whose labels match no pod (version "v-two" instead of "v2").
BROKEN = """\
---
apiVersion: networking.istio.io/{version}
kind: Gateway
metadata:
  name: public-gateway
  namespace: hello
spec:
  selector:
    istio: ingressgateway
  servers:
  - hosts:
    - www.example.com
    port: {{name: http, number: 80, protocol: HTTP}}
---
apiVersion: networking.istio.io/{version}
kind: DestinationRule
metadata:
  name: hellosvc
  namespace: hello
spec:
  host: hellosvc
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v-two
---
apiVersion: networking.istio.io/{version}
kind: VirtualService
metadata:
  name: hello
  namespace: hello
spec:
  hosts:
  - hello.example.com
  gateways:
  - hello-gatway
  - public-gateway
  http:
  - route:
    - destination:
        host: hellosvcc
        port: {{number: 80}}
      weight: 50
    - destination:
        host: hellosvc
        port: {{number: 80}}
        subset: v2
      weight: 50
"""


def run(
    text: str, tmp_path: Path, table: dict | None = None, name: str = "input.yaml"
) -> AnalysisReport:
    """Analyse the objects of `text` as one target, with source lines from a real file."""
    source = tmp_path / name
    source.write_text(text)
    objects = [
        RenderedObject(obj=doc, origin={"path": name})
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]
    config = AnalysisConfig(per_target={TARGET: table or {}})
    return analyze([RenderResult(target=TARGET, objects=objects)], config, root=tmp_path)


def istio_findings(report: AnalysisReport) -> list[tuple[str, str]]:
    return sorted((f.rule.id, f.name) for f in report.findings if f.rule.id.startswith("MR3"))


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_the_issues_broken_virtualservice_gives_one_finding_per_defect(
    version: str, tmp_path: Path
):
    text = APP + BROKEN.format(version=version)
    report = run(text, tmp_path, {"external_gateways": True})
    found = {f.rule.id: f for f in report.findings if f.rule.id.startswith("MR3")}
    assert sorted(found) == ["MR301", "MR302", "MR306", "MR312"], [
        (f.rule.id, f.message) for f in report.findings
    ]
    assert "'hello-gatway'" in found["MR301"].message
    assert found["MR301"].line == line_of(text, "- hello-gatway")
    assert "hellosvcc (hellosvcc.hello.svc.cluster.local)" in found["MR302"].message
    assert found["MR302"].line == line_of(text, "host: hellosvcc")
    assert "hello.example.com not served by Gateway hello/public-gateway" in found["MR306"].message
    assert found["MR306"].line == line_of(text, "- public-gateway")
    assert "subset 'v2' (version=v-two)" in found["MR312"].message
    assert found["MR312"].line == line_of(text, "version: v-two") - 1  # the `labels:` key


def test_the_repaired_virtualservice_is_clean(tmp_path: Path):
    repaired = (
        BROKEN.format(version="v1")
        .replace("hello-gatway", "public-gateway")
        .replace("- www.example.com", "- hello.example.com")
        .replace("hellosvcc", "hellosvc")
        .replace("version: v-two", "version: v1")
    )
    report = run(APP + repaired, tmp_path, {"external_gateways": True})
    assert istio_findings(report) == []


def test_every_istio_rule_runs_on_istio_objects_or_workloads():
    family = [r for r in CATALOG.values() if r.id.startswith("MR3")]
    assert len(family) >= 20
    assert {r.category for r in family} == {"istio configuration"}
    assert {r.scope for r in family} <= {Scope.ISTIO, Scope.WORKLOAD}


@pytest.mark.parametrize("rule_id", sorted(r for r in CATALOG if r.startswith("MR3")))
def test_passing_fixtures_are_clean_for_the_whole_family(rule_id: str):
    # Each passes.yaml is a correct configuration: no MR3xx rule may fire on it.
    text = (FIXTURES / rule_id / "passes.yaml").read_text()
    objects = [RenderedObject(obj=doc, origin={}) for doc in yaml.safe_load_all(text) if doc]
    report = analyze([RenderResult(target=TARGET, objects=objects)], AnalysisConfig())
    assert istio_findings(report) == []


# ---------------------------------------------------------------- host matching


@pytest.mark.parametrize(
    ("host", "namespace", "expected"),
    [
        ("reviews", "shop", "reviews.shop.svc.cluster.local"),
        ("Reviews", "shop", "reviews.shop.svc.cluster.local"),
        ("reviews.other.svc.cluster.local", "shop", "reviews.other.svc.cluster.local"),
        ("reviews.other", "shop", "reviews.other"),  # Istio does not expand a dotted name
        ("api.example.com", "shop", "api.example.com"),
        ("*", "shop", "*"),
        ("10.0.0.1", "shop", "10.0.0.1"),
    ],
)
def test_short_names_resolve_in_the_rules_namespace(host: str, namespace: str, expected: str):
    assert fqdn(host, namespace) == expected


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("*", "anything.example.com", True),
        ("*.example.com", "shop.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("shop.example.com", "*.example.com", True),
        ("*.example.com", "*.shop.example.com", True),
        ("*.example.com", "*.example.org", False),
        ("shop.example.com", "www.example.com", False),
    ],
)
def test_wildcard_hosts_overlap_like_istios(a: str, b: str, overlap: bool):
    assert hosts_overlap(a, b) is overlap
    assert hosts_overlap(b, a) is overlap


def test_gateway_server_hosts_carry_their_namespace():
    server = {"hosts": ["plain.example.com", "./own.example.com", "shop/x.example.com", "*/y.com"]}
    assert server_hosts(server, "gw-ns") == [
        ("*", "plain.example.com"),
        ("gw-ns", "own.example.com"),
        ("shop", "x.example.com"),
        ("*", "y.com"),
    ]


@pytest.mark.parametrize(
    ("principal", "parsed"),
    [
        ("cluster.local/ns/hello/sa/loadgen", ("hello", "loadgen")),
        ("my-project.svc.id.goog/ns/hello/sa/loadgen", ("hello", "loadgen")),
        ("cluster.local/ns/hello/sa/*", None),
        ("*", None),
        ("spiffe://cluster.local/ns/hello/sa/loadgen", None),
    ],
)
def test_principals_are_read_for_any_trust_domain(principal: str, parsed):
    assert parse_principal(principal) == parsed


# ---------------------------------------------------------------- boundaries

VS = """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: hello
  namespace: hello
spec:
  hosts: [hellosvc]
  {gateways}
  http:
  - route:
    - destination:
        host: {host}
        port: {{number: 80}}
"""


def test_gateways_outside_the_input_are_assumed_to_exist(tmp_path: Path):
    text = APP + VS.format(gateways="gateways: [istio-system/shared, mesh]", host="hellosvc")
    assert [f for f in istio_findings(run(text, tmp_path)) if f[0] == "MR301"] == []
    # ... but a namespace the input holds is checked.
    text = APP + VS.format(gateways="gateways: [hello/shared]", host="hellosvc")
    assert ("MR301", "hello") in istio_findings(run(text, tmp_path))


def test_hosts_of_namespaces_outside_the_input_are_not_reported(tmp_path: Path):
    remote = VS.format(gateways="", host="payments.billing.svc.cluster.local")
    assert istio_findings(run(APP + remote, tmp_path)) == []
    billing = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: billing\n"
    assert ("MR302", "hello") in istio_findings(run(APP + billing + remote, tmp_path))


def test_an_external_host_is_a_warning_and_a_serviceentry_answers_it(tmp_path: Path):
    external = APP + VS.format(gateways="", host="api.example.com").replace("80}", "443}")
    report = run(external, tmp_path)
    assert istio_findings(report) == [("MR303", "hello")]
    assert report.findings[0].severity.label == "warning"
    entry = """\
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: api
  namespace: hello
spec:
  hosts: [api.example.com]
  ports: [{name: https, number: 443, protocol: TLS}]
  resolution: DNS
"""
    assert istio_findings(run(external + entry, tmp_path)) == []
    # Its port is checked like a Service's.
    wrong_port = external.replace("443}", "8443}") + entry
    assert istio_findings(run(wrong_port, tmp_path)) == [("MR304", "hello")]


def test_external_gateways_silences_the_gateway_selector_rule(tmp_path: Path):
    text = (FIXTURES / "MR313" / "fires.yaml").read_text()
    assert ("MR313", "web-gateway") in istio_findings(run(text, tmp_path))
    quiet = run(text, tmp_path, {"external_gateways": True})
    assert [f for f in istio_findings(quiet) if f[0] == "MR313"] == []
    # "*" applies it to every target, like the other keys.
    config = AnalysisConfig(per_target={"*": {"external_gateways": True}})
    assert config.for_target("overlays/any").settings.external_gateways is True
    assert AnalysisConfig().for_target("overlays/any").settings.external_gateways is False


def test_external_gateways_is_an_accepted_pyproject_key(tmp_path: Path):
    from meshready.analyze.engine import analysis_config
    from meshready.config import RepoConfig

    raw = {"rules": {"overlays/dev": {"external_gateways": True}}}
    analysis = analysis_config(RepoConfig(root=tmp_path, raw=raw))
    assert analysis.for_target("overlays/dev").settings.external_gateways is True


def _weights(*weights: int | None) -> str:
    routes = ""
    for subset, weight in zip(("v1", "v2", "v3"), weights, strict=False):
        routes += f"    - destination: {{host: hellosvc, port: {{number: 80}}, subset: {subset}}}\n"
        if weight is not None:
            routes += f"      weight: {weight}\n"
    dr = """\
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hellosvc, namespace: hello}
spec:
  host: hellosvc
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v1}}
  - {name: v3, labels: {version: v1}}
"""
    vs = f"""\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: hello, namespace: hello}}
spec:
  hosts: [hellosvc]
  http:
  - route:
{routes}"""
    return APP + dr + vs


@pytest.mark.parametrize(
    ("weights", "fires"),
    [
        ((None,), False),  # one destination may omit its weight
        ((100, None), False),  # a missing weight counts as 0
        ((90, 10), False),
        ((34, 33, 33), False),
        ((None, None), True),  # 0 != 100
        ((90, 20), True),
        ((50, 49), True),
    ],
)
def test_route_weights_sum_to_100(weights, fires: bool, tmp_path: Path):
    found = [f for f in istio_findings(run(_weights(*weights), tmp_path)) if f[0] == "MR310"]
    assert bool(found) is fires


ROUTES = """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: hello, namespace: hello}}
spec:
  hosts: [hellosvc]
  http:
{rules}"""
DEST = "    route: [{destination: {host: hellosvc}}]\n"


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # A catch-all last is the normal shape.
        (f"  - match: [{{uri: {{prefix: /api}}}}]\n{DEST}  -\n{DEST}", []),
        # `uri.prefix: /` matches every request like no match at all.
        (
            f"  - match: [{{uri: {{prefix: /}}}}]\n{DEST}  - match: [{{uri: {{prefix: /a}}}}]\n{DEST}",
            ["MR308"],
        ),
        # Every match of the second rule repeats the first: unreachable, not just shadowed.
        (
            f"  - match: [{{uri: {{exact: /a}}}}]\n{DEST}  - match: [{{name: again, uri: {{exact: /a}}}}]\n{DEST}",
            ["MR308"],
        ),
        # One of two matches repeats: shadowed (info), the rule still works.
        (
            f"  - match: [{{uri: {{exact: /a}}}}]\n{DEST}  - match: [{{uri: {{exact: /a}}}}, {{uri: {{exact: /b}}}}]\n{DEST}",
            ["MR309"],
        ),
        # Different methods on one path are different matches.
        (
            f"  - match: [{{uri: {{exact: /a}}, method: {{exact: GET}}}}]\n{DEST}  - match: [{{uri: {{exact: /a}}}}]\n{DEST}",
            [],
        ),
    ],
)
def test_route_rules_that_are_never_used(rules: str, expected: list[str], tmp_path: Path):
    report = run(APP + ROUTES.format(rules=rules), tmp_path)
    assert [f[0] for f in istio_findings(report) if f[0] in ("MR308", "MR309")] == expected


POLICY = """\
---
apiVersion: security.istio.io/{version}
kind: AuthorizationPolicy
metadata: {{name: allow, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  rules:
  - from:
    - source: {{principals: [{principal}]}}
"""


@pytest.mark.parametrize("version", ["v1beta1", "v1"])
def test_policies_are_checked_only_against_namespaces_of_the_input(version: str, tmp_path: Path):
    def findings(**fields: str) -> list[tuple[str, str]]:
        values = {"version": version, "namespace": "hello", "app": "hello"}
        values.update(fields)
        values.setdefault("principal", "cluster.local/ns/hello/sa/hello")
        return istio_findings(run(APP + POLICY.format(**values), tmp_path))

    assert findings() == []
    assert findings(app="helo") == [("MR319", "allow")]
    assert findings(principal="cluster.local/ns/hello/sa/helo") == [("MR320", "allow")]
    # istio-system holds no workload of the input: its gateways are installed elsewhere.
    assert findings(namespace="istio-system", app="ingressgateway") == []
    assert findings(principal="cluster.local/ns/istio-system/sa/istio-ingressgateway") == []
    # A namespace declared in the input counts, even without workloads.
    other = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n"
    report = run(
        APP
        + other
        + POLICY.format(
            version=version,
            namespace="hello",
            app="hello",
            principal="cluster.local/ns/other/sa/client",
        ),
        tmp_path,
    )
    assert istio_findings(report) == [("MR320", "allow")]


def test_strict_mtls_meets_tls_disable_only_where_it_applies(tmp_path: Path):
    def text(mode: str, *extra: str) -> str:
        return (
            APP
            + "".join(extra)
            + f"""\
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {{name: hellosvc, namespace: hello}}
spec:
  host: hellosvc.hello.svc.cluster.local
  trafficPolicy:
    portLevelSettings:
    - port: {{number: 80}}
      tls: {{mode: {mode}}}
"""
        )

    def pa(name: str, namespace: str, mode: str, selector: str = "") -> str:
        return f"""\
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  {selector}
  mtls: {{mode: {mode}}}
"""

    mesh_strict = pa("default", "istio-system", "STRICT")
    assert istio_findings(run(text("DISABLE"), tmp_path)) == []
    assert istio_findings(run(text("DISABLE", mesh_strict), tmp_path)) == [("MR321", "hellosvc")]
    assert istio_findings(run(text("ISTIO_MUTUAL", mesh_strict), tmp_path)) == []
    # The namespace's PERMISSIVE overrides the mesh's STRICT; a workload's STRICT overrides both.
    permissive = pa("default", "hello", "PERMISSIVE")
    assert istio_findings(run(text("DISABLE", mesh_strict, permissive), tmp_path)) == []
    workload = pa("hello", "hello", "STRICT", "selector: {matchLabels: {app: hello}}")
    found = istio_findings(run(text("DISABLE", permissive, workload), tmp_path))
    assert found == [("MR321", "hellosvc")]
    # UNSET inherits from the parent.
    unset = pa("default", "hello", "UNSET")
    assert istio_findings(run(text("DISABLE", mesh_strict, unset), tmp_path)) == [
        ("MR321", "hellosvc")
    ]


def test_subsets_of_a_service_without_pods_are_left_to_the_service_rule(tmp_path: Path):
    lonely = """\
---
apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: hello}
spec:
  selector: {app: nothing}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: lonely, namespace: hello}
spec:
  host: lonely
  subsets:
  - {name: v1, labels: {version: v1}}
"""
    report = run(APP + lonely, tmp_path)
    assert istio_findings(report) == []
    assert "MR106" in {f.rule.id for f in report.findings}


def test_mesh_virtualservices_conflict_where_some_namespace_sees_both(tmp_path: Path):
    def vs(name: str, export: str, namespace: str = "hello") -> str:
        return f"""\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: [hellosvc.hello.svc.cluster.local]
  {export}
  http:
  - route: [{{destination: {{host: hellosvc.hello.svc.cluster.local}}}}]
"""

    both = run(APP + vs("a", "") + vs("b", "exportTo: ['*']"), tmp_path)
    assert istio_findings(both) == [("MR307", "a"), ("MR307", "b")]
    # Exported everywhere and to its own namespace: the sidecars of `hello` see both.
    overlapping = run(APP + vs("a", "exportTo: ['.']") + vs("b", "exportTo: ['*']"), tmp_path)
    assert istio_findings(overlapping) == [("MR307", "a"), ("MR307", "b")]
    # Each visible in its own namespace only: no sidecar sees both.
    apart = run(APP + vs("a", "exportTo: ['.']") + vs("b", "exportTo: ['.']", "web"), tmp_path)
    assert [f for f in istio_findings(apart) if f[0] == "MR307"] == []


@pytest.mark.parametrize(
    ("gateway_hosts", "vs_hosts", "gateways", "served"),
    [
        (["*"], ["hello.example.com"], ["public"], True),
        (["*.example.com"], ["hello.example.com"], ["public"], True),
        (["hello/*.example.com"], ["hello.example.com"], ["public"], True),
        (["./hello.example.com"], ["hello.example.com"], ["hello/public"], True),
        # A namespace prefix admits VirtualServices of that namespace only.
        (["other/*.example.com"], ["hello.example.com"], ["public"], False),
        (["www.example.com"], ["hello.example.com"], ["public"], False),
        # Every host must be served, not just one of them.
        (["www.example.com"], ["www.example.com", "hello.example.com"], ["public"], False),
        # A Service name of a VirtualService bound to the mesh too is for the sidecars.
        (["www.example.com"], ["www.example.com", "hellosvc"], ["public", "mesh"], True),
        (["www.example.com"], ["www.example.com", "hellosvc"], ["public"], False),
    ],
)
def test_virtualservice_hosts_against_their_gateway(
    gateway_hosts: list[str], vs_hosts: list[str], gateways: list[str], served: bool, tmp_path: Path
):
    text = (
        APP
        + f"""\
---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {{name: public, namespace: hello}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - hosts: {gateway_hosts}
    port: {{name: http, number: 80, protocol: HTTP}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: hello, namespace: hello}}
spec:
  hosts: {vs_hosts}
  gateways: {gateways}
  http:
  - route: [{{destination: {{host: hellosvc}}}}]
"""
    )
    found = istio_findings(run(text, tmp_path, {"external_gateways": True}))
    assert (("MR306", "hello") not in found) is served
    assert [f for f in found if f[0] != "MR306"] == []


@pytest.mark.parametrize(
    ("ref", "found"),
    [
        ("public", True),
        ("hello/public", True),
        ("public.hello.svc.cluster.local", True),  # the legacy FQDN form
        ("hello/publik", False),
        ("publik.hello.svc.cluster.local", False),
    ],
)
def test_gateway_references_in_every_form(ref: str, found: bool, tmp_path: Path):
    text = (
        APP
        + """\
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: hello}
spec:
  selector: {istio: ingressgateway}
  servers:
  - hosts: ['*']
    port: {name: http, number: 80, protocol: HTTP}
"""
        + VS.format(gateways=f"gateways: [{ref}]", host="hellosvc")
    )
    report = run(text, tmp_path, {"external_gateways": True})
    assert (("MR301", "hello") not in istio_findings(report)) is found


TELEMETRY = """\
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: {name}, namespace: hello}}
spec:
  {selector}
  accessLogging:
  - providers: [{{name: envoy}}]
"""


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["", ""], ["MR318", "MR318"]),  # two namespace defaults
        (["", "selector: {matchLabels: {app: hello}}"], []),  # a default and one override
        (
            ["selector: {matchLabels: {app: hello}}", "selector: {matchLabels: {version: v1}}"],
            ["MR317", "MR317"],  # both select hello-v1
        ),
        # (version v2 selects no pod at all: MR319's, not a conflict)
        (["selector: {matchLabels: {app: hello}}", "selector: {matchLabels: {version: v2}}"], []),
    ],
)
def test_telemetry_selectors_conflict_like_sidecars(selectors, expected, tmp_path: Path):
    text = APP + "".join(
        TELEMETRY.format(name=f"t{i}", selector=s) for i, s in enumerate(selectors)
    )
    found = [f[0] for f in istio_findings(run(text, tmp_path)) if f[0] in ("MR317", "MR318")]
    assert found == expected


def test_a_sidecar_and_a_telemetry_do_not_conflict(tmp_path: Path):
    sidecar = """\
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: t0, namespace: hello}
spec:
  egress: [{hosts: ['./*']}]
"""
    text = APP + sidecar + TELEMETRY.format(name="t1", selector="")
    assert istio_findings(run(text, tmp_path)) == []


def test_a_virtualservice_bound_to_gateway_and_mesh_splits_both(tmp_path: Path):
    # One VirtualService for both (the design the repository uses) leaves nothing to skip.
    split = """\
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hellosvc, namespace: hello}
spec:
  host: hellosvc
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: hello, namespace: hello}
spec:
  hosts: [hellosvc]
  gateways: [mesh]
  http:
  - route: [{destination: {host: hellosvc, subset: v1}}]
"""
    ingress = """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ingress, namespace: hello}
spec:
  hosts: ['*']
  gateways: [istio-system/public]
  http:
  - route: [{destination: {host: hellosvc.hello.svc.cluster.local}}]
"""
    assert istio_findings(run(APP + split + ingress, tmp_path)) == [("MR324", "ingress")]
    assert istio_findings(run(APP + split, tmp_path)) == []


def test_a_name_dot_namespace_host_is_not_expanded_and_the_finding_says_so(tmp_path: Path):
    report = run(APP + VS.format(gateways="", host="hellosvc.hello"), tmp_path)
    found = [f for f in report.findings if f.rule.id == "MR303"]
    assert len(found) == 1
    assert "did you mean hellosvc.hello.svc.cluster.local?" in found[0].message


def test_a_gateway_name_is_checked_where_the_input_manages_gateways(tmp_path: Path):
    # A namespace holding only Istio objects: its Gateways are managed here once one is.
    edge = """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: edge}
spec:
  hosts: [www.example.com]
  gateways: [edge-gatway]
  http:
  - route: [{destination: {host: hellosvc.hello.svc.cluster.local}}]
"""
    gateway = """\
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge-gateway, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - hosts: [www.example.com]
    port: {name: http, number: 80, protocol: HTTP}
"""
    assert istio_findings(run(APP + edge, tmp_path)) == []
    with_gateway = run(APP + edge + gateway, tmp_path, {"external_gateways": True})
    assert istio_findings(with_gateway) == [("MR301", "edge")]


# ---------------------------------------------------------------- the repository


def test_a_broken_ingress_route_in_a_copy_of_the_repository(repo_copy: Path):
    # Rendered by the real kustomize: a typo in the component's gateway, and one in a host
    # of the overlay's weight patch (which replaces the component's route).
    component = repo_copy / "components/mesh-ingress/virtualservice.yaml"
    text = component.read_text()
    assert "- hello-gateway\n" in text
    broken = text.replace("- hello-gateway\n", "- hello-gatway\n", 1)
    component.write_text(broken)
    patch = repo_copy / "overlays/asm-ready/canary-weights.yaml"
    ingress = patch.read_text().split("name: hello-ingress", 1)
    assert len(ingress) == 2 and "host: hellosvc\n" in ingress[1]
    patch.write_text(
        ingress[0]
        + "name: hello-ingress"
        + ingress[1].replace("host: hellosvc\n", "host: hellosvcc\n", 1)
    )
    result = run_cli("analyze", "--fail-on", "warning", cwd=repo_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    where = "components/mesh-ingress/virtualservice.yaml"
    assert f"{where}:{line_of(broken, '- hello-gatway')}: error: MR301" in result.stdout
    assert "MR302 vs-destination-host-not-found" in result.stdout
    assert "hellosvcc (hellosvcc.hello.svc.cluster.local)" in result.stdout
    assert "VirtualService hello/hello-ingress" in result.stdout


def test_the_repository_is_clean_for_the_istio_rules(repo_copy: Path):
    result = run_cli("analyze", "--fail-on", "warning", "--output", "json", cwd=repo_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r for r in json.loads(result.stdout) if r["rule"].startswith("MR3")] == []
