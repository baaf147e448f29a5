"""The mesh state of the production cluster: a v1/v2 split of hello, strict mTLS, authorization.

The checks are plain functions over the rendered objects that return what is wrong, one line
per broken link (a subset label that selects no pod, weights that do not sum to 100, a
principal whose ServiceAccount does not exist, ...). They run on the state two ways: rendered
from the overlay by the real CLI (`python -m meshready render overlays/asm-ready --print`) and
as committed in clusters/asm-ready/, the files the GitOps agent applies. Each link is then
broken on purpose, in the rendered objects and, for the label links, in a copy of the sources
rendered again, to prove the checks see it.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_STATE

ROOT = Path(__file__).resolve().parents[2]
TARGET = "overlays/asm-ready"
SYNCED = ROOT / "clusters/asm-ready"
NAMESPACE = "hello"
SERVICE = "hellosvc"
SERVING_PORT = 8080
# A principal as AuthorizationPolicy writes it: <trust domain>/ns/<namespace>/sa/<account>.
PRINCIPAL = re.compile(r"^(?P<domain>[^/]+)/ns/(?P<namespace>[^/]+)/sa/(?P<account>[^/]+)$")
LOADGEN_PRINCIPAL = f"cluster.local/ns/{NAMESPACE}/sa/loadgenerator"


def render_with_cli(root: Path) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "meshready", "render", TARGET, "--print"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def read_hydrated() -> list[dict]:
    paths = sorted(SYNCED.glob("*.yaml"))
    assert paths, f"{SYNCED} is empty"
    return [yaml.safe_load(p.read_text()) for p in paths]


# --- the checks: pure functions over rendered objects -------------------------------------


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict], kind: str, name: str) -> dict | None:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found[0] if found else None


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"].get("labels", {})


def backing_deployments(objects: list[dict]) -> dict[str, dict]:
    """Deployments behind hellosvc, by their pods' version label."""
    service = named(objects, "Service", SERVICE)
    selector = service["spec"]["selector"]
    behind = [d for d in of_kind(objects, "Deployment") if selects(selector, pod_labels(d))]
    return {pod_labels(d).get("version", ""): d for d in behind}


def version_problems(objects: list[dict]) -> list[str]:
    service = named(objects, "Service", SERVICE)
    if service is None:
        return [f"no Service {SERVICE}"]
    problems = []
    if "version" in service["spec"]["selector"]:
        problems.append(f"{SERVICE} selects by version, so it cannot serve both versions")
    behind = [
        d
        for d in of_kind(objects, "Deployment")
        if selects(service["spec"]["selector"], pod_labels(d))
    ]
    versions = sorted(pod_labels(d).get("version", "") for d in behind)
    if versions != ["v1", "v2"]:
        problems.append(f"{SERVICE} is backed by pod versions {versions}, not one v1 and one v2")
    for deployment in behind:
        name, version = deployment["metadata"]["name"], pod_labels(deployment).get("version")
        if deployment["metadata"].get("labels", {}).get("version") != version:
            problems.append(f"Deployment {name}: its own version label is not its pods' {version}")
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        reported = env.get("VERSION", {})
        field = reported.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        effective = pod_labels(deployment).get("version") if field else reported.get("value")
        if field not in (None, "metadata.labels['version']") or effective != version:
            problems.append(f"Deployment {name}: VERSION is {effective!r}, its pods are {version}")
    for deployment in behind:
        others = [d for d in behind if d is not deployment]
        selector = deployment["spec"]["selector"]["matchLabels"]
        if pod_labels(deployment).get("version") == "v2":
            for other in others:
                if selects(selector, pod_labels(other)):
                    problems.append(
                        f"Deployment {deployment['metadata']['name']} claims the pods of "
                        f"{other['metadata']['name']}"
                    )
    return problems


def subsets_of(objects: list[dict]) -> dict[str, dict]:
    rules = [r for r in of_kind(objects, "DestinationRule") if r["spec"]["host"] == SERVICE]
    return {s["name"]: s.get("labels", {}) for r in rules for s in r["spec"].get("subsets", [])}


def subset_problems(objects: list[dict]) -> list[str]:
    rules = [r for r in of_kind(objects, "DestinationRule") if r["spec"]["host"] == SERVICE]
    if len(rules) != 1:
        return [f"{len(rules)} DestinationRules for {SERVICE}, not one"]
    problems = []
    backing = backing_deployments(objects)
    subsets = subsets_of(objects)
    if sorted(subsets) != ["v1", "v2"]:
        problems.append(f"subsets {sorted(subsets)}, not v1 and v2")
    for name, labels in subsets.items():
        matching = [v for v, d in backing.items() if selects(labels, pod_labels(d))]
        if matching != [name]:
            problems.append(f"subset {name} {labels} selects the {SERVICE} pods of {matching}")
    tls = rules[0]["spec"].get("trafficPolicy", {}).get("tls", {}).get("mode")
    if tls not in (None, "ISTIO_MUTUAL"):
        problems.append(f"DestinationRule {SERVICE} sets tls mode {tls} under STRICT mTLS")
    return problems


def routes_to_service(objects: list[dict]) -> dict[str, list[list[dict]]]:
    """VirtualService name -> its HTTP routes' destinations that go to hellosvc."""
    found = {}
    for service in of_kind(objects, "VirtualService"):
        routes = [
            r["route"]
            for r in service["spec"].get("http", [])
            if any(d["destination"]["host"] == SERVICE for d in r.get("route", []))
        ]
        if routes:
            found[service["metadata"]["name"]] = routes
    return found


def split(route: list[dict]) -> dict[str, int]:
    return {d["destination"].get("subset", ""): d.get("weight", 0) for d in route}


def weight_problems(objects: list[dict]) -> list[str]:
    problems = []
    subsets = subsets_of(objects)
    by_service = routes_to_service(objects)
    mesh = [
        v
        for v in of_kind(objects, "VirtualService")
        if SERVICE in v["spec"]["hosts"] and v["spec"].get("gateways", ["mesh"]) == ["mesh"]
    ]
    if len(mesh) != 1:
        problems.append(f"{len(mesh)} mesh VirtualServices for {SERVICE}, not one")
    splits = []
    for name, routes in by_service.items():
        for route in routes:
            weights = split(route)
            splits.append(weights)
            if len(route) > 1 and sum(weights.values()) != 100:
                problems.append(
                    f"VirtualService {name}: weights {weights} sum to {sum(weights.values())}"
                )
            for subset in weights:
                if subset not in subsets:
                    problems.append(f"VirtualService {name}: subset {subset!r} is not in the rule")
            if len(weights) < 2:
                problems.append(f"VirtualService {name}: a route to {SERVICE} that does not split")
    if any(s != splits[0] for s in splits):
        problems.append(f"the routes to {SERVICE} split differently: {splits}")
    return problems


def peer_authentication_problems(objects: list[dict]) -> list[str]:
    namespace_wide = [
        p
        for p in of_kind(objects, "PeerAuthentication")
        if p["metadata"].get("namespace") == NAMESPACE and not p["spec"].get("selector")
    ]
    if [p["spec"].get("mtls", {}).get("mode") for p in namespace_wide] != ["STRICT"]:
        return [f"namespace {NAMESPACE} has no single namespace-wide STRICT PeerAuthentication"]
    return [
        f"PeerAuthentication {p['metadata']['name']} relaxes mTLS"
        for p in of_kind(objects, "PeerAuthentication")
        if p["spec"].get("mtls", {}).get("mode", "STRICT") != "STRICT"
        or any(m.get("mode") != "STRICT" for m in p["spec"].get("portLevelMtls", {}).values())
    ]


def allowed_principals(objects: list[dict], pods: dict) -> dict[str, list]:
    """Principal -> the ports it may call on pods with these labels, from ALLOW policies."""
    allowed: dict[str, list] = {}
    for policy in of_kind(objects, "AuthorizationPolicy"):
        spec = policy["spec"]
        if spec.get("action", "ALLOW") != "ALLOW":
            continue
        if not selects(spec.get("selector", {}).get("matchLabels", {}), pods):
            continue
        for rule in spec.get("rules", []):
            ports = [p for t in rule.get("to", []) for p in t.get("operation", {}).get("ports", [])]
            for source in rule.get("from", []):
                for principal in source.get("source", {}).get("principals", []):
                    allowed.setdefault(principal, []).extend(ports)
    return allowed


def authorization_problems(objects: list[dict]) -> list[str]:
    problems = []
    deny_by_default = [
        p
        for p in of_kind(objects, "AuthorizationPolicy")
        if p["metadata"].get("namespace") == NAMESPACE and p.get("spec") == {}
    ]
    if len(deny_by_default) != 1:
        problems.append(f"namespace {NAMESPACE}: {len(deny_by_default)} allow-nothing policies")
    hello = backing_deployments(objects)
    if not hello:
        return [*problems, f"no pods behind {SERVICE}"]
    for version, deployment in sorted(hello.items()):
        allowed = allowed_principals(objects, pod_labels(deployment))
        if LOADGEN_PRINCIPAL not in allowed:
            problems.append(f"hello {version}: loadgen's principal is not allowed")
        for principal, ports in sorted(allowed.items()):
            problems += principal_problems(objects, principal, ports)
    return problems


def principal_problems(objects: list[dict], principal: str, ports: list[str]) -> list[str]:
    match = PRINCIPAL.match(principal)
    if not match:
        return [f"principal {principal!r} is not <domain>/ns/<namespace>/sa/<account>"]
    problems = []
    if match["domain"] != "cluster.local":
        problems.append(f"principal {principal}: a trust domain other than the mesh's own")
    if [str(p) for p in ports] != [str(SERVING_PORT)]:
        problems.append(f"principal {principal}: ports {ports}, not hello's {SERVING_PORT}")
    if match["namespace"] == NAMESPACE:
        accounts = {
            a["metadata"]["name"]
            for a in of_kind(objects, "ServiceAccount")
            if a["metadata"].get("namespace") == NAMESPACE
        }
        used = {
            d["spec"]["template"]["spec"].get("serviceAccountName")
            for d in of_kind(objects, "Deployment")
        }
        if match["account"] not in accounts & used:
            problems.append(f"principal {principal}: no workload runs as that ServiceAccount")
    return problems


CHECKS = (
    version_problems,
    subset_problems,
    weight_problems,
    peer_authentication_problems,
    authorization_problems,
)


def all_problems(objects: list[dict]) -> list[str]:
    return [problem for check in CHECKS for problem in check(objects)]


# --- the committed state -------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return render_with_cli(ROOT)


@pytest.fixture(scope="module", params=["rendered", "hydrated"])
def state(request, rendered) -> list[dict]:
    return rendered if request.param == "rendered" else read_hydrated()


def test_the_production_state_has_every_link_intact(state):
    assert all_problems(state) == []


def test_the_canary_sends_ten_percent_to_v2_on_both_routes(state):
    routes = routes_to_service(state)
    assert sorted(routes) == ["hello-ingress", SERVICE]
    assert [split(r) for rs in routes.values() for r in rs] == [{"v1": 90, "v2": 10}] * 2


def test_ingress_and_mesh_routes_do_not_share_a_gateway(state):
    # Istio's IST0109: two VirtualServices for one host on one gateway conflict.
    bindings = [
        (host, gateway)
        for v in of_kind(state, "VirtualService")
        for host in v["spec"]["hosts"]
        for gateway in v["spec"].get("gateways", ["mesh"])
    ]
    assert len(bindings) == len(set(bindings))
    # A `*` host on the mesh gateway would capture every service's port 80: Istio refuses it.
    assert ("*", "mesh") not in bindings


def test_the_ingress_gateway_may_call_hello(state):
    allowed = allowed_principals(state, pod_labels(backing_deployments(state)["v2"]))
    assert "cluster.local/ns/asm-ingress/sa/istio-ingressgateway" in allowed


def test_both_versions_run_the_same_image_and_pod_spec(state):
    backing = backing_deployments(state)
    # Derived from base/hello: whatever the base gains (drain settings, ...) v2 gains too.
    assert backing["v1"]["spec"]["template"]["spec"] == backing["v2"]["spec"]["template"]["spec"]
    assert backing["v2"]["metadata"]["name"] == "helloserver-v2"
    assert backing["v1"]["metadata"]["name"] == "helloserver"


# --- every link broken on purpose ----------------------------------------------------------


def mutated(objects: list[dict], kind: str, name: str, change) -> list[dict]:
    objects = copy.deepcopy(objects)
    change(named(objects, kind, name))
    return objects


def set_path(path: tuple, value):
    def change(obj: dict) -> None:
        node = obj
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def hard_code_version(deployment: dict, value: str) -> None:
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    (index,) = [i for i, e in enumerate(env) if e["name"] == "VERSION"]
    env[index] = {"name": "VERSION", "value": value}


BREAKS = {
    "subset label renamed": (
        "DestinationRule",
        SERVICE,
        set_path(("spec", "subsets", 1, "labels"), {"track": "v2"}),
        "subset v2",
    ),
    "subset renamed": (
        "DestinationRule",
        SERVICE,
        set_path(("spec", "subsets", 1, "name"), "canary"),
        "subset 'v2' is not in the rule",
    ),
    "weights over 100": (
        "VirtualService",
        SERVICE,
        set_path(("spec", "http", 0, "route", 1, "weight"), 20),
        "sum to 110",
    ),
    "ingress split differs": (
        "VirtualService",
        "hello-ingress",
        set_path(("spec", "http", 0, "route"), [{"destination": {"host": SERVICE}}]),
        "does not split",
    ),
    "v2 pods relabelled": (
        "Deployment",
        "helloserver-v2",
        set_path(("spec", "template", "metadata", "labels", "version"), "v1"),
        "not one v1 and one v2",
    ),
    "v2 selects v1 pods": (
        "Deployment",
        "helloserver-v2",
        set_path(("spec", "selector", "matchLabels"), {"app": "helloserver"}),
        "claims the pods of helloserver",
    ),
    "VERSION hard-coded wrong": (
        "Deployment",
        "helloserver-v2",
        lambda d: hard_code_version(d, "v1"),
        "VERSION is 'v1'",
    ),
    "service selects by version": (
        "Service",
        SERVICE,
        set_path(("spec", "selector", "version"), "v1"),
        "selects by version",
    ),
    "mTLS permissive": (
        "PeerAuthentication",
        "default",
        set_path(("spec", "mtls", "mode"), "PERMISSIVE"),
        "STRICT PeerAuthentication",
    ),
    "TLS disabled for hellosvc": (
        "DestinationRule",
        SERVICE,
        set_path(("spec", "trafficPolicy"), {"tls": {"mode": "DISABLE"}}),
        "tls mode DISABLE",
    ),
    "default deny given a rule": (
        "AuthorizationPolicy",
        "allow-nothing",
        set_path(("spec",), {"rules": [{}]}),
        "0 allow-nothing policies",
    ),
    "loadgen principal typo": (
        "AuthorizationPolicy",
        "helloserver-allow-loadgen",
        set_path(
            ("spec", "rules", 0, "from", 0, "source", "principals", 0),
            "cluster.local/ns/hello/sa/loadgen",
        ),
        "loadgen's principal is not allowed",
    ),
    "loadgen account renamed": (
        "ServiceAccount",
        "loadgenerator",
        set_path(("metadata", "name"), "loadgen"),
        "no workload runs as that ServiceAccount",
    ),
    "allow on the Service port": (
        "AuthorizationPolicy",
        "helloserver-allow-loadgen",
        set_path(("spec", "rules", 0, "to", 0, "operation", "ports"), ["80"]),
        "ports ['80']",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_link_is_reported(name, rendered):
    kind, object_name, change, expected = BREAKS[name]
    problems = all_problems(mutated(rendered, kind, object_name, change))
    assert any(expected in p for p in problems), problems


def test_a_missing_peer_authentication_is_reported(rendered):
    without = [o for o in rendered if o["kind"] != "PeerAuthentication"]
    assert peer_authentication_problems(without) == [
        f"namespace {NAMESPACE} has no single namespace-wide STRICT PeerAuthentication"
    ]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    for name in REPO_STATE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        # The subset's label, in the component's source.
        ("components/canary/destinationrule.yaml", "version: v2", "track: v2", "subset v2"),
        # The v2 pods' label, in the patch that derives v2 from base/hello.
        (
            "components/canary/hello-v2/kustomization.yaml",
            "path: /spec/template/metadata/labels/version\n      value: v2",
            "path: /spec/template/metadata/labels/version\n      value: v3",
            "not one v1 and one v2",
        ),
        # The overlay's chosen split.
        ("overlays/asm-ready/canary-weights.yaml", "weight: 10\n---", "weight: 20\n---", "110"),
    ],
)
def test_a_link_broken_in_the_sources_is_reported_after_rendering(
    repo_copy, path, old, new, expected
):
    source = repo_copy / path
    text = source.read_text()
    assert text.count(old) == 1, f"{path} no longer contains {old!r}"
    source.write_text(text.replace(old, new))
    problems = all_problems(render_with_cli(repo_copy))
    assert any(expected in p for p in problems), problems


def test_the_rollout_guide_names_the_lines_each_step_changes():
    # docs/gitops.md tells reviewers which hydrated lines a canary step edits; keep it true.
    guide = (ROOT / "docs/gitops.md").read_text()
    named_lines = re.findall(
        r"(clusters/asm-ready/\S+\.yaml)\s+line (\d+) \(v1\)\s+line (\d+) \(v2\)", guide
    )
    assert sorted(p for p, _, _ in named_lines) == sorted(
        f"clusters/asm-ready/virtualservice_{NAMESPACE}_{name}.yaml"
        for name in routes_to_service(read_hydrated())
    )
    for path, *numbers in named_lines:
        lines = (ROOT / path).read_text().splitlines()
        document = yaml.safe_load("\n".join(lines))
        weights = split(document["spec"]["http"][0]["route"])
        for subset, number in zip(("v1", "v2"), numbers, strict=True):
            assert lines[int(number) - 1].strip() == f"weight: {weights[subset]}", (path, number)
