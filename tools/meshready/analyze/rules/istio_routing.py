"""Istio traffic routing (MR301-MR312, MR324): VirtualServices and DestinationRules against the
Gateways, Services, ServiceEntries and pods of the same input. See istio.py for the index and
for how hosts are resolved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from meshready.analyze.rules.base import Hit, Scope, Severity, rule
from meshready.analyze.rules.istio import (
    CLUSTER_SUFFIX,
    MESH_GATEWAY,
    NETWORKING,
    fqdn,
    hosts_overlap,
    istio_index,
    namespace_of,
    selector_text,
    server_hosts,
)
from meshready.analyze.rules.model import (
    Context,
    K8sObject,
    Path,
    as_dict,
    as_list,
    get,
    labels_match,
    string_map,
)

ROUTE_SECTIONS = ("http", "tcp", "tls")


def _is(item: K8sObject, kind: str) -> bool:
    return item.kind == kind and item.api_group == NETWORKING


def gateway_refs(vs: K8sObject) -> list[str]:
    return [str(g) for g in as_list(get(vs.obj, ("spec", "gateways")))]


def bound_to_mesh(vs: K8sObject) -> bool:
    """No `gateways` means the sidecars of the mesh (the `mesh` gateway) only."""
    refs = gateway_refs(vs)
    return not refs or MESH_GATEWAY in refs


def split_gateway_ref(ref: str, namespace: str) -> tuple[str, str]:
    """`name` is a Gateway of the VirtualService's namespace, `ns/name` one of `ns`; the
    legacy form `name.ns.svc.cluster.local` is read as `ns/name`."""
    ns, slash, name = ref.partition("/")
    if slash:
        return ns, name
    labels = ref.split(".")
    if len(labels) >= 2 and all(labels[:2]):
        return labels[1], labels[0]
    return namespace, ref


def destinations(vs: K8sObject) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, destination) of every route destination and HTTP mirror."""
    spec = as_dict(vs.obj.get("spec"))
    for section in ROUTE_SECTIONS:
        for i, route in enumerate(as_list(spec.get(section))):
            route = as_dict(route)
            for j, weighted in enumerate(as_list(route.get("route"))):
                destination = as_dict(as_dict(weighted).get("destination"))
                if destination:
                    yield ("spec", section, i, "route", j, "destination"), destination
            if section != "http":
                continue
            mirror = as_dict(route.get("mirror"))
            if mirror:
                yield ("spec", "http", i, "mirror"), mirror
            for k, mirrored in enumerate(as_list(route.get("mirrors"))):
                destination = as_dict(as_dict(mirrored).get("destination"))
                if destination:
                    yield ("spec", "http", i, "mirrors", k, "destination"), destination


def _host(destination: dict[str, Any]) -> str:
    host = destination.get("host")
    return host if isinstance(host, str) else ""


def vs_gateway_not_found(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService"):
        return
    index = istio_index(ctx)
    namespace = namespace_of(item)
    for i, ref in enumerate(gateway_refs(item)):
        if ref == MESH_GATEWAY:
            continue
        key = split_gateway_ref(ref, namespace)
        if key in index.gateways:
            continue
        if key[0] in index.namespaces or any(ns == key[0] for ns, _ in index.gateways):
            yield Hit(("spec", "gateways", i), f"{ref!r} (looked for Gateway {key[0]}/{key[1]})")


rule(
    id="MR301",
    name="vs-gateway-not-found",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="VirtualService names a Gateway that is not in the input",
    description=(
        "A VirtualService is bound to the Gateways in its `gateways` list (`name` in its own "
        "namespace, `namespace/name` elsewhere, `mesh` for the sidecars). A name that matches "
        "no Gateway binds the routes to nothing, and the traffic they were meant for gets 404 "
        "(IST0101 ReferencedResourceNotFound). Reported when the Gateway's namespace is part of "
        "the input (its Namespace, a Service, a workload or a Gateway is in it); a Gateway "
        "elsewhere (e.g. a shared `istio-system/public-gateway`) is assumed to exist."
    ),
    remediation="Correct the Gateway name (and its namespace prefix), or add the Gateway.",
)(vs_gateway_not_found)


def vs_destination_host_not_found(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService"):
        return
    index = istio_index(ctx)
    for path, destination in destinations(item):
        host = _host(destination)
        if host and index.resolve(host, namespace_of(item)).missing_in_input:
            yield Hit((*path, "host"), f"{host} ({fqdn(host, namespace_of(item))})")


rule(
    id="MR302",
    name="vs-destination-host-not-found",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="VirtualService routes to a host that is no Service or ServiceEntry of the input",
    description=(
        "A destination `host` must name a service of the mesh registry: a Kubernetes Service "
        "or a ServiceEntry host. A short name is a Service of the VirtualService's own "
        "namespace (`reviews` in `shop` is reviews.shop.svc.cluster.local). A name that "
        "resolves to nothing leaves the route without a cluster and requests fail with 503 "
        "(IST0101). Reported for cluster-local names in namespaces that are part of the input "
        "(the input declares the Namespace or holds a Service or workload in it); other "
        "namespaces are assumed to be managed elsewhere, and external hosts are MR303's."
    ),
    remediation=(
        "Correct the host (use the fully qualified name for a Service of another namespace), "
        "or add the Service."
    ),
)(vs_destination_host_not_found)


def vs_destination_external_host(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService"):
        return
    index = istio_index(ctx)
    for path, destination in destinations(item):
        host = _host(destination)
        if host and index.resolve(host, namespace_of(item)).external:
            yield Hit((*path, "host"), host + _did_you_mean(host, index.services))


rule(
    id="MR303",
    name="vs-destination-external-host",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="VirtualService routes to an external host that no ServiceEntry of the input declares",
    description=(
        "Istio routes only to hosts of its registry. A host outside the cluster "
        "(`api.example.com`) needs a ServiceEntry; without one the route has no cluster and "
        "fails (IST0101). The ServiceEntry may be defined elsewhere (another repository, "
        "another namespace exporting it), so this is a warning, not an error."
    ),
    remediation=(
        "Add a ServiceEntry for the host next to the VirtualService, or, if it is defined "
        "elsewhere on purpose, lower this rule's severity for the target."
    ),
)(vs_destination_external_host)


def _did_you_mean(host: str, services: dict) -> str:
    """`name.namespace` is not expanded by Istio; say so when it names a Service."""
    labels = host.lower().split(".")
    if len(labels) == 2 and (labels[1], labels[0]) in services:
        return f" (Istio does not expand it: did you mean {host}{CLUSTER_SUFFIX}?)"
    return ""


def _declared_ports(found: Any) -> list[int]:
    if found.service is not None:
        values = [p.number for p in found.service.ports]
    else:
        values = [
            as_dict(p).get("number")
            for p in as_list(get(found.service_entry.obj, ("spec", "ports")))
        ]
    return sorted({v for v in values if isinstance(v, int)})


def vs_destination_port(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService"):
        return
    index = istio_index(ctx)
    for path, destination in destinations(item):
        host = _host(destination)
        found = index.resolve(host, namespace_of(item)) if host else None
        if found is None or not found.found:
            continue
        ports = _declared_ports(found)
        number = get(destination, ("port", "number"))
        if "port" not in destination:
            if len(ports) > 1:
                yield Hit(path, f"{host} has ports {', '.join(map(str, ports))}")
        elif isinstance(number, int) and ports and number not in ports:
            yield Hit(
                (*path, "port", "number"),
                f"{host}:{number} (ports {', '.join(map(str, ports))})",
            )


rule(
    id="MR304",
    name="vs-destination-port",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="VirtualService destination port is missing or not a port of its service",
    description=(
        "A destination to a service with more than one port must say which one "
        "(`port.number`); Istio cannot pick for it (IST0112 "
        "VirtualServiceDestinationPortSelectorRequired). A port number the Service or "
        "ServiceEntry does not declare routes to nothing (IST0101, host:port not found)."
    ),
    remediation="Set `destination.port.number` to one of the service's ports.",
)(vs_destination_port)


def vs_subset_not_found(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService"):
        return
    index = istio_index(ctx)
    for path, destination in destinations(item):
        host, subset = _host(destination), destination.get("subset")
        if not host or not subset:
            continue
        found = index.resolve(host, namespace_of(item))
        if not found.found:
            continue  # MR302/MR303 report the host
        subsets = index.subsets(found.host)
        if subsets is None:
            yield Hit((*path, "subset"), f"{subset!r}: no DestinationRule for {found.host}")
        elif str(subset) not in subsets:
            defined = ", ".join(sorted(subsets)) or "none"
            yield Hit((*path, "subset"), f"{subset!r} (subsets of {found.host}: {defined})")


rule(
    id="MR305",
    name="vs-subset-not-found",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="VirtualService routes to a subset no DestinationRule defines for the host",
    description=(
        "A destination `subset` is a named subset of a DestinationRule for the same host. "
        "Without it the proxy has no cluster for the subset, and every request routed there "
        "fails with 503 NR (IST0101, subset not found)."
    ),
    remediation=(
        "Define the subset in the host's DestinationRule (with the version labels of its "
        "pods), or correct the subset name."
    ),
)(vs_subset_not_found)


def _mesh_host(host: str) -> bool:
    return "." not in host or host.endswith(CLUSTER_SUFFIX)


def vs_host_not_in_gateway(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService"):
        return
    index = istio_index(ctx)
    namespace = namespace_of(item)
    hosts = [str(h).strip().lower() for h in as_list(get(item.obj, ("spec", "hosts")))]
    mesh = bound_to_mesh(item)
    for i, ref in enumerate(gateway_refs(item)):
        if ref == MESH_GATEWAY:
            continue
        gateway = index.gateways.get(split_gateway_ref(ref, namespace))
        if gateway is None:
            continue  # MR301
        served = [
            pair
            for server in as_list(get(gateway.obj, ("spec", "servers")))
            for pair in server_hosts(as_dict(server), namespace_of(gateway))
        ]
        missing = [
            host
            for host in hosts
            if not (mesh and _mesh_host(host))
            and not any(ns in ("*", namespace) and hosts_overlap(g, host) for ns, g in served)
        ]
        if missing:
            yield Hit(
                ("spec", "gateways", i),
                f"{', '.join(missing)} not served by Gateway "
                f"{namespace_of(gateway)}/{gateway.name}",
            )


rule(
    id="MR306",
    name="vs-host-not-in-gateway",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="VirtualService host is not among the hosts of its Gateway",
    description=(
        "A Gateway accepts only the hosts its servers list (`host`, `*.example.com`, `*`, and "
        "`namespace/host` to admit VirtualServices of one namespace only; `./host` is the "
        "Gateway's own namespace). A VirtualService host the Gateway does not list is never "
        "routed through that Gateway (IST0132 VirtualServiceHostNotFoundInGateway). Hosts of a "
        "VirtualService that is also bound to `mesh` and are Service names are for the "
        "sidecars, and not expected on the Gateway."
    ),
    remediation=(
        "Add the host to the Gateway's server `hosts` (with the VirtualService's namespace if "
        "prefixed), or bind the VirtualService to the Gateway that serves the host."
    ),
)(vs_host_not_in_gateway)


def _export_scopes(vs: K8sObject) -> set[str]:
    export = [str(e) for e in as_list(get(vs.obj, ("spec", "exportTo")))]
    if not export or "*" in export:
        return {"*"}
    return {namespace_of(vs) if e == "." else e for e in export}


def _mesh_hosts(ctx: Context) -> dict[str, list[tuple[set[str], K8sObject]]]:
    """Fully qualified host -> (export scopes, VirtualService) of every mesh-bound
    VirtualService defining it."""
    table = ctx.derived.get("istio-mesh-hosts")
    if table is None:
        table = {}
        for vs in ctx.objects_by_kind.get((NETWORKING, "VirtualService"), ()):
            if not bound_to_mesh(vs):
                continue
            scopes = _export_scopes(vs)
            for host in as_list(get(vs.obj, ("spec", "hosts"))):
                entries = table.setdefault(fqdn(str(host), namespace_of(vs)), [])
                if all(other is not vs for _, other in entries):
                    entries.append((scopes, vs))
        ctx.derived["istio-mesh-hosts"] = table
    return table


def _visible_together(a: set[str], b: set[str]) -> bool:
    """Whether some namespace sees both: `*` is every namespace."""
    return "*" in a or "*" in b or bool(a & b)


def vs_conflicting_mesh_hosts(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService") or not bound_to_mesh(item):
        return
    table = _mesh_hosts(ctx)
    mine = _export_scopes(item)
    for k, host in enumerate(as_list(get(item.obj, ("spec", "hosts")))):
        others: list[str] = []
        for scopes, other in table.get(fqdn(str(host), namespace_of(item)), ()):
            name = f"{namespace_of(other)}/{other.name}"
            if other is not item and _visible_together(mine, scopes) and name not in others:
                others.append(name)
        if others:
            yield Hit(("spec", "hosts", k), f"{host} also in VirtualService {', '.join(others)}")


rule(
    id="MR307",
    name="vs-conflicting-mesh-hosts",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="another VirtualService bound to the mesh defines the same host",
    description=(
        "Istio merges VirtualServices of one host only on gateways. For the sidecars (the "
        "`mesh` gateway, also when `gateways` is omitted) two VirtualServices for one host, "
        "visible to the same namespaces, conflict: one of them is used, which one is "
        "undefined (IST0109 ConflictingMeshGatewayVirtualServiceHosts)."
    ),
    remediation=(
        "Merge the routes into one VirtualService for the host, or bind the second one to a "
        "Gateway only."
    ),
)(vs_conflicting_mesh_hosts)


def _canonical(match: Any) -> str:
    """A match without its name, as comparable text (keys sorted)."""
    body = {k: v for k, v in as_dict(match).items() if k != "name"}
    return json.dumps(body, sort_keys=True, default=str)


_CATCH_ALL = frozenset(
    {"{}", _canonical({"uri": {"prefix": "/"}}), _canonical({"uri": {"regex": ".*"}})}
)


def _route_label(section: str, i: int, route: dict[str, Any]) -> str:
    name = route.get("name")
    return f"{section}[{i}]" + (f" ({name})" if name else "")


def _route_walk(vs: K8sObject) -> Iterator[tuple[str, Path, str]]:
    """('unreachable' | 'shadowed', path, detail) for the route rules of a VirtualService,
    in order: a rule after one that matches everything is never used, and so is a rule all
    of whose matches repeat matches of earlier rules; a single repeated match is shadowed."""
    spec = as_dict(vs.obj.get("spec"))
    for section in ROUTE_SECTIONS:
        seen: dict[str, str] = {}  # canonical match -> label of the first rule with it
        catch_all: str | None = None
        for i, route in enumerate(as_list(spec.get(section))):
            route = as_dict(route)
            label = _route_label(section, i, route)
            if catch_all is not None:
                yield (
                    "unreachable",
                    ("spec", section, i),
                    f"{label}: {catch_all} matches every request",
                )
                continue
            matches = as_list(route.get("match"))
            canon = [_canonical(m) for m in matches]
            repeated = [k for k, c in enumerate(canon) if c in seen]
            if matches and len(repeated) == len(matches):
                earlier = ", ".join(sorted({seen[canon[k]] for k in repeated}))
                yield "unreachable", ("spec", section, i), f"{label}: every match is in {earlier}"
            else:
                for k in repeated:
                    yield (
                        "shadowed",
                        ("spec", section, i, "match", k),
                        f"{label} match {k} repeats {seen[canon[k]]}",
                    )
            for c in canon:
                seen.setdefault(c, label)
            if not matches or any(c in _CATCH_ALL for c in canon):
                catch_all = label


def vs_unreachable_route(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if _is(item, "VirtualService"):
        for what, path, detail in _route_walk(item):
            if what == "unreachable":
                yield Hit(path, detail)


rule(
    id="MR308",
    name="vs-unreachable-route",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="VirtualService route rule is never used",
    description=(
        "Route rules are tried in order and the first match wins. A rule after one without a "
        "`match` (or matching every request, like `uri.prefix: /`) is never reached, nor is "
        "a rule whose matches all repeat earlier ones (IST0130 VirtualServiceUnreachableRule)."
    ),
    remediation="Move the catch-all rule last, or remove or change the rule that is never used.",
)(vs_unreachable_route)


def vs_shadowed_match(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if _is(item, "VirtualService"):
        for what, path, detail in _route_walk(item):
            if what == "shadowed":
                yield Hit(path, detail)


rule(
    id="MR309",
    name="vs-shadowed-match",
    severity=Severity.INFO,
    scope=Scope.ISTIO,
    message="VirtualService match repeats a match of an earlier rule",
    description=(
        "A match identical to one of an earlier rule never selects anything: the earlier rule "
        "takes those requests (IST0131 VirtualServiceIneffectiveMatch). The rule still works "
        "through its other matches; the repeated one is dead configuration, or a typo."
    ),
    remediation="Remove the repeated match or change it to what it was meant to match.",
)(vs_shadowed_match)


def vs_route_weights(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService"):
        return
    spec = as_dict(item.obj.get("spec"))
    for section in ROUTE_SECTIONS:
        for i, route in enumerate(as_list(spec.get(section))):
            targets = [as_dict(t) for t in as_list(as_dict(route).get("route"))]
            if len(targets) < 2:
                continue
            weights = [t.get("weight", 0) for t in targets]
            if not all(isinstance(w, int) and not isinstance(w, bool) for w in weights):
                continue  # a malformed weight is the validator's to report
            if sum(weights) != 100:
                yield Hit(
                    ("spec", section, i, "route"),
                    f"{_route_label(section, i, as_dict(route))}: "
                    f"{' + '.join(map(str, weights))} = {sum(weights)}",
                )


rule(
    id="MR310",
    name="vs-route-weights",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="VirtualService route weights do not sum to 100",
    description=(
        "When a route has more than one destination, their `weight`s are percentages of the "
        "traffic and must sum to 100 (a missing weight counts as 0); Istio rejects the "
        "VirtualService otherwise. A single destination may omit its weight."
    ),
    remediation="Make the weights of the route's destinations add up to 100.",
)(vs_route_weights)


def dr_host_not_found(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "DestinationRule"):
        return
    host = get(item.obj, ("spec", "host"))
    if not isinstance(host, str) or not host or "*" in host:
        return
    found = istio_index(ctx).resolve(host, namespace_of(item))
    if found.missing_in_input or found.external:
        yield Hit(("spec", "host"), f"{host} ({found.host})")


rule(
    id="MR311",
    name="dr-host-not-found",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="DestinationRule host matches no Service or ServiceEntry of the input",
    description=(
        "A DestinationRule applies to the service its `host` names (short names in its own "
        "namespace). A host that matches no Service or ServiceEntry applies to nothing: its "
        "subsets, TLS and load-balancing settings are silently unused (IST0174 "
        "UnknownDestinationRuleHost). Hosts in namespaces the input does not hold and "
        "wildcard hosts are not checked."
    ),
    remediation=(
        "Correct the host (the fully qualified name for a Service of another namespace), or "
        "add a ServiceEntry for a host outside the mesh."
    ),
)(dr_host_not_found)


def dr_subset_selects_no_pods(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "DestinationRule"):
        return
    host = get(item.obj, ("spec", "host"))
    if not isinstance(host, str) or not host:
        return
    service = istio_index(ctx).resolve(host, namespace_of(item)).service
    if service is None or not service.selector:
        return  # ServiceEntry subsets select WorkloadEntries; no selector: manual endpoints
    pods = ctx.workloads_of.get(id(service), [])
    if not pods:
        return  # the Service selects nothing at all: MR106
    for k, subset in enumerate(as_list(get(item.obj, ("spec", "subsets")))):
        labels = string_map(as_dict(subset).get("labels"))
        if labels and not any(labels_match(labels, w.pod_labels) for w in pods):
            yield Hit(
                ("spec", "subsets", k, "labels"),
                f"subset {as_dict(subset).get('name')!r} ({selector_text(labels)}) "
                f"among the pods of Service {namespace_of(service)}/{service.name}",
            )


rule(
    id="MR312",
    name="dr-subset-selects-no-pods",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="DestinationRule subset labels select no pod of its Service",
    description=(
        "A subset is the pods of the host's Service that also carry the subset's labels. If no "
        "pod template selected by the Service has them, the subset is empty and requests "
        "routed to it fail with 503 UH, no healthy upstream (IST0173 "
        "DestinationRuleSubsetNotSelectPods). The partner of the version-label rule MR103."
    ),
    remediation=(
        "Make the subset labels equal to the version labels of the intended pods, deploy those "
        "pods, or remove the subset."
    ),
)(dr_subset_selects_no_pods)


def _subset_routed_hosts(ctx: Context) -> dict[str, list[K8sObject]]:
    """Fully qualified host -> mesh-bound VirtualServices that route that host of theirs
    to subsets (a version split for the sidecars)."""
    table = ctx.derived.get("istio-subset-hosts")
    if table is None:
        table = {}
        for vs in ctx.objects_by_kind.get((NETWORKING, "VirtualService"), ()):
            if not bound_to_mesh(vs):
                continue
            namespace = namespace_of(vs)
            own = {fqdn(str(h), namespace) for h in as_list(get(vs.obj, ("spec", "hosts")))}
            for _, destination in destinations(vs):
                host = fqdn(_host(destination), namespace)
                if destination.get("subset") and host in own and vs not in table.get(host, []):
                    table.setdefault(host, []).append(vs)
        ctx.derived["istio-subset-hosts"] = table
    return table


def ingress_skips_subset_routing(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not _is(item, "VirtualService") or bound_to_mesh(item):
        return
    table = _subset_routed_hosts(ctx)
    if not table:
        return
    for path, destination in destinations(item):
        host = _host(destination)
        if not host or destination.get("subset"):
            continue
        splitting = table.get(fqdn(host, namespace_of(item)), [])
        if splitting:
            names = ", ".join(f"{namespace_of(vs)}/{vs.name}" for vs in splitting)
            yield Hit((*path, "host"), f"{host}: split by subset in VirtualService {names}")


rule(
    id="MR324",
    name="ingress-skips-subset-routing",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="gateway route to a host skips the subset routing the mesh applies to it",
    description=(
        "A VirtualService bound to the mesh that splits a host by subset (a canary, say) is "
        "applied by the sidecars of the clients. Requests that come in through a Gateway are "
        "routed by the Gateway's VirtualService alone: a destination there without a subset "
        "goes to every pod of the Service, so the split does not apply to ingress traffic "
        "(IST0140 IngressRouteRulesNotAffected)."
    ),
    remediation=(
        "Route the Gateway's VirtualService by the same subsets and weights, or bind the "
        "splitting VirtualService to the Gateway as well as to `mesh`."
    ),
)(ingress_skips_subset_routing)
