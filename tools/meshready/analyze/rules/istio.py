"""Istio configuration (MR3xx): the static cross-reference checks of `istioctl analyze`.

Sources: Istio's configuration analysis message reference (IST0101 ReferencedResourceNotFound,
IST0109, IST0110-IST0112, IST0127, IST0130-IST0132, IST0135, IST0145, IST0162, IST0173,
IST0174, ...) and the networking/security API references. The rules are our own: they look
only at the objects of one input (a rendered target or a group of files), so a reference that
may point outside the input is judged with care: a namespace counts as part of the input only
when the input declares its Namespace or holds a Service or workload in it, and references
into other namespaces, or to hosts outside the cluster, are not reported as missing.

This module holds the per-target index every MR3xx rule reads (hosts, Services,
ServiceEntries, Gateways, DestinationRules), built once per target into `ctx.derived`, and the
Gateway rules. VirtualService and DestinationRule rules are in istio_routing.py, security,
Sidecar and deprecation rules in istio_security.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from meshready.analyze.rules.base import Hit, Scope, Severity, rule
from meshready.analyze.rules.model import (
    Context,
    K8sObject,
    Service,
    Workload,
    as_dict,
    as_list,
    get,
    labels_match,
    string_map,
)

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
TELEMETRY = "telemetry.istio.io"
CLUSTER_SUFFIX = ".svc.cluster.local"
MESH_GATEWAY = "mesh"
# Istio's default root namespace: policies there apply to the whole mesh.
ROOT_NAMESPACE = "istio-system"


def namespace_of(item: K8sObject) -> str:
    """An object without a namespace lands in `default` when applied."""
    return item.namespace or "default"


def fqdn(host: str, namespace: str) -> str:
    """Istio's short-name rule: a host without a dot is a Service of the rule's namespace
    (`reviews` in `shop` is reviews.shop.svc.cluster.local); anything with a dot, `*` and
    IP addresses are taken as written."""
    host = host.strip().lower()
    if not host or host == "*" or "." in host or ":" in host:  # IPv4 has dots, IPv6 colons
        return host
    return f"{host}.{namespace}{CLUSTER_SUFFIX}"


def cluster_service(name: str) -> tuple[str, str] | None:
    """(namespace, service) of NAME.NAMESPACE.svc.cluster.local, else None."""
    if not name.endswith(CLUSTER_SUFFIX):
        return None
    parts = name[: -len(CLUSTER_SUFFIX)].split(".")
    if len(parts) != 2 or not all(parts) or "*" in name:
        return None
    return parts[1], parts[0]


def hosts_overlap(a: str, b: str) -> bool:
    """Whether two host names, either possibly a wildcard (`*`, `*.example.com`), can name the
    same host: Istio's matching of Gateway, VirtualService and ServiceEntry hosts."""
    if a == b or a == "*" or b == "*":
        return True
    if a.startswith("*") and b.startswith("*"):
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return False


def selector_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(empty)"


@dataclass
class Resolved:
    """What a host names in this input."""

    host: str  # the fully qualified form
    service: Service | None = None
    service_entry: K8sObject | None = None
    # cluster-local name in a namespace that is part of the input, yet nothing there
    missing_in_input: bool = False
    # not a cluster-local name and no ServiceEntry in the input
    external: bool = False

    @property
    def found(self) -> bool:
        return self.service is not None or self.service_entry is not None


@dataclass
class IstioIndex:
    services: dict[tuple[str, str], Service] = field(default_factory=dict)
    # ServiceEntry hosts: exact names in a table, wildcard patterns in a list to scan
    entry_hosts: dict[str, K8sObject] = field(default_factory=dict)
    entry_patterns: list[tuple[str, K8sObject]] = field(default_factory=list)
    gateways: dict[tuple[str, str], K8sObject] = field(default_factory=dict)
    # DestinationRules by fully qualified host; wildcard hosts in a list to scan
    destination_rules: dict[str, list[K8sObject]] = field(default_factory=dict)
    destination_patterns: list[tuple[str, K8sObject]] = field(default_factory=list)
    # namespaces whose objects the input holds (see the module docstring)
    namespaces: set[str] = field(default_factory=set)
    workloads_by_namespace: dict[str, list[Workload]] = field(default_factory=dict)
    # (host, namespace) -> its resolution: several rules resolve every destination
    resolved: dict[tuple[str, str], Resolved] = field(default_factory=dict)

    def resolve(self, host: str, namespace: str) -> Resolved:
        found = self.resolved.get((host, namespace))
        if found is None:
            found = self.resolved[(host, namespace)] = self._resolve(host, namespace)
        return found

    def _resolve(self, host: str, namespace: str) -> Resolved:
        name = fqdn(host, namespace)
        found = Resolved(name)
        local = cluster_service(name)
        if local is not None:
            found.service = self.services.get(local)
        if found.service is None:
            found.service_entry = self.entry_hosts.get(name) or next(
                (e for pattern, e in self.entry_patterns if hosts_overlap(pattern, name)), None
            )
        if not found.found:
            if local is not None:
                found.missing_in_input = local[0] in self.namespaces
            elif not name.endswith(CLUSTER_SUFFIX) and name != "*":
                found.external = True
        return found

    def subsets(self, host: str) -> dict[str, list[K8sObject]] | None:
        """Subset name -> the DestinationRules defining it for `host` (fully qualified), or
        None when no DestinationRule of the input is for that host."""
        rules = list(self.destination_rules.get(host, ())) + [
            dr for pattern, dr in self.destination_patterns if hosts_overlap(pattern, host)
        ]
        if not rules:
            return None
        names: dict[str, list[K8sObject]] = {}
        for dr in rules:
            for subset in as_list(get(dr.obj, ("spec", "subsets"))):
                name = as_dict(subset).get("name")
                if name:
                    names.setdefault(str(name), []).append(dr)
        return names


def istio_index(ctx: Context) -> IstioIndex:
    """The index of one target, built on first use and kept in ctx.derived."""
    index = ctx.derived.get("istio")
    if index is not None:
        return index
    index = IstioIndex()
    for service in ctx.services:
        index.services[(namespace_of(service), service.name)] = service
        index.namespaces.add(namespace_of(service))
    for workload in ctx.workloads:
        index.namespaces.add(namespace_of(workload))
        index.workloads_by_namespace.setdefault(namespace_of(workload), []).append(workload)
    index.namespaces.update(ctx.namespaces)
    for entry in ctx.objects_by_kind.get((NETWORKING, "ServiceEntry"), ()):
        for host in as_list(get(entry.obj, ("spec", "hosts"))):
            name = fqdn(str(host), namespace_of(entry))
            if "*" in name:
                index.entry_patterns.append((name, entry))
            else:
                index.entry_hosts.setdefault(name, entry)
    for gateway in ctx.objects_by_kind.get((NETWORKING, "Gateway"), ()):
        index.gateways[(namespace_of(gateway), gateway.name)] = gateway
    for dr in ctx.objects_by_kind.get((NETWORKING, "DestinationRule"), ()):
        host = get(dr.obj, ("spec", "host"))
        if isinstance(host, str) and host:
            name = fqdn(host, namespace_of(dr))
            if "*" in name:
                index.destination_patterns.append((name, dr))
            else:
                index.destination_rules.setdefault(name, []).append(dr)
    ctx.derived["istio"] = index
    return index


def gateway_workloads(gateway: K8sObject, ctx: Context) -> list[Workload]:
    """Workloads (in any namespace) whose pods a Gateway's selector picks. An empty
    selector picks nothing here: Istio would apply such a Gateway to every gateway pod."""
    selector = string_map(get(gateway.obj, ("spec", "selector")))
    if not selector:
        return []
    return [w for w in ctx.workloads if labels_match(selector, w.pod_labels)]


# ---------------------------------------------------------------- Gateway rules


def gateway_selector_no_workload(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if item.kind != "Gateway" or item.api_group != NETWORKING or ctx.settings.external_gateways:
        return
    selector = string_map(get(item.obj, ("spec", "selector")))
    if selector and not gateway_workloads(item, ctx):
        yield Hit(("spec", "selector"), selector_text(selector))


rule(
    id="MR313",
    name="gateway-selector-no-workload",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="Gateway selector matches no gateway workload in the input",
    description=(
        "A Gateway configures the gateway pods its `selector` picks (in any namespace). If no "
        "pod matches, nothing listens for it and its VirtualServices receive no traffic; "
        "`istioctl analyze` reports IST0101 (selector not found). Ingress gateways are often "
        "installed apart from the application (istio-system, asm-ingress), so this is a "
        "warning, and a target whose gateways live elsewhere says so with "
        '`external_gateways = true` in its [tool.meshready.rules."TARGET"] table.'
    ),
    remediation=(
        "Make the selector equal to labels of the gateway Deployment's pods (e.g. "
        "`istio: ingressgateway`), deploy the gateway in this target, or set "
        "`external_gateways = true` for the target when the gateway is installed elsewhere."
    ),
)(gateway_selector_no_workload)


def _service_ports_of(workloads: list[Workload], ctx: Context) -> tuple[set[int], bool]:
    """Port and targetPort numbers of the Services selecting any of these workloads, and
    whether any Service selects them at all."""
    numbers: set[int] = set()
    any_service = False
    for workload in workloads:
        for service in ctx.services_of.get(id(workload), ()):
            any_service = True
            for port in service.ports:
                for value in (port.number, port.target):
                    if isinstance(value, int):
                        numbers.add(value)
    return numbers, any_service


def gateway_port_not_on_service(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if item.kind != "Gateway" or item.api_group != NETWORKING:
        return
    workloads = gateway_workloads(item, ctx)
    ports, any_service = _service_ports_of(workloads, ctx)
    if not any_service:
        return  # no workload (MR313) or a workload without a Service (MR101)
    for i, server in enumerate(as_list(get(item.obj, ("spec", "servers")))):
        number = get(server, ("port", "number"))
        if isinstance(number, int) and number not in ports:
            yield Hit(
                ("spec", "servers", i, "port", "number"),
                f"port {number} (Services expose {', '.join(map(str, sorted(ports)))})",
            )


rule(
    id="MR314",
    name="gateway-port-not-on-service",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="Gateway server port is not a port of the gateway workload's Service",
    description=(
        "A Gateway server opens a listener on its port in the gateway pods, but clients reach "
        "the gateway through its Kubernetes Service: a port the Service does not expose (as "
        "`port` or `targetPort`) cannot be reached from outside (IST0162 "
        "GatewayPortNotDefinedOnService). Checked only when the gateway workload and its "
        "Service are part of the input."
    ),
    remediation="Add the port to the gateway's Service, or use a port the Service exposes.",
)(gateway_port_not_on_service)


def server_hosts(server: dict, gateway_namespace: str) -> list[tuple[str, str]]:
    """(namespace or '*', host) of a Gateway server's hosts: `ns/host`, `./host` (the
    Gateway's namespace), `*/host` and plain `host` (any namespace)."""
    found = []
    for raw in as_list(server.get("hosts")):
        text = str(raw).strip().lower()
        namespace, slash, host = text.partition("/")
        if not slash:
            namespace, host = "*", text
        elif namespace == ".":
            namespace = gateway_namespace
        found.append((namespace, host))
    return found


def gateway_conflict(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if item.kind != "Gateway" or item.api_group != NETWORKING:
        return
    selector = string_map(get(item.obj, ("spec", "selector")))
    others = [
        g
        for g in ctx.objects_by_kind.get((NETWORKING, "Gateway"), ())
        if g is not item and string_map(get(g.obj, ("spec", "selector"))) == selector
    ]
    if not others:
        return
    for i, server in enumerate(as_list(get(item.obj, ("spec", "servers")))):
        number = get(server, ("port", "number"))
        mine = [h for _, h in server_hosts(as_dict(server), namespace_of(item))]
        clashes = []
        for other in others:
            for theirs in as_list(get(other.obj, ("spec", "servers"))):
                if get(theirs, ("port", "number")) != number:
                    continue
                hosts = [h for _, h in server_hosts(as_dict(theirs), namespace_of(other))]
                if any(hosts_overlap(a, b) for a in mine for b in hosts):
                    clashes.append(f"{namespace_of(other)}/{other.name}")
                    break
        if clashes:
            yield Hit(
                ("spec", "servers", i, "port", "number"),
                f"port {number} hosts {', '.join(mine)} also in Gateway {', '.join(clashes)}",
            )


rule(
    id="MR315",
    name="gateway-conflict",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="another Gateway has the same selector, port and an overlapping host",
    description=(
        "Two Gateways that select the same gateway pods and open the same port for hosts that "
        "overlap give the proxy two servers for one host: which one wins is undefined and TLS "
        "settings may be taken from the wrong one (IST0145 ConflictingGateways)."
    ),
    remediation="Merge the servers into one Gateway, or give them distinct hosts or ports.",
)(gateway_conflict)


_TLS_MODES_NEEDING_CERT = frozenset({"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"})
# Istio validates that a server of these protocols has a `tls` block (protocol.IsTLS).
_PROTOCOLS_NEEDING_TLS = frozenset({"HTTPS", "TLS"})


def gateway_tls_credential(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if item.kind != "Gateway" or item.api_group != NETWORKING:
        return
    for i, server in enumerate(as_list(get(item.obj, ("spec", "servers")))):
        server = as_dict(server)
        tls = server.get("tls")
        protocol = str(get(server, ("port", "protocol"), "")).upper()
        if tls is None:
            if protocol in _PROTOCOLS_NEEDING_TLS:
                yield Hit(
                    ("spec", "servers", i, "port", "protocol"), f"{protocol} server has no tls"
                )
            continue
        tls = as_dict(tls)
        mode = str(tls.get("mode", "")).upper()
        has_files = bool(tls.get("serverCertificate")) and bool(tls.get("privateKey"))
        if mode in _TLS_MODES_NEEDING_CERT and not tls.get("credentialName") and not has_files:
            yield Hit(
                ("spec", "servers", i, "tls"),
                f"tls.mode {mode} on port {get(server, ('port', 'number'))}",
            )


rule(
    id="MR316",
    name="gateway-tls-credential",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="Gateway server terminates TLS without a certificate",
    description=(
        "A server with `tls.mode` SIMPLE, MUTUAL or OPTIONAL_MUTUAL must name its certificate, "
        "as `credentialName` (a Secret in the gateway workload's namespace) or as "
        "`serverCertificate` and `privateKey` files; an HTTPS or TLS server needs a `tls` block. "
        "Istio rejects or ignores such a server, and its port serves nothing."
    ),
    remediation=(
        "Set `tls.credentialName` to the Secret holding the certificate (or the file paths), "
        "or use `tls.mode: PASSTHROUGH` / `ISTIO_MUTUAL` where the gateway does not terminate TLS."
    ),
)(gateway_tls_credential)
