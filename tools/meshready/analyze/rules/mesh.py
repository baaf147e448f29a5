"""Mesh readiness (MR1xx): what Cloud Service Mesh / Istio needs from a workload.

Sources: Cloud Service Mesh's "prepare an application" guide, Istio's protocol
selection and application requirements (pod ports, UID 1337, reserved ports).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshready.analyze.rules.base import Hit, Scope, Severity, rule
from meshready.analyze.rules.model import (
    Context,
    Service,
    ServicePort,
    Workload,
    as_dict,
    get,
    label_selector_matches,
    labels_match,
    string_map,
)

# Istio's explicit protocol selection: a port name `<protocol>[-<suffix>]`.
ISTIO_PROTOCOLS = frozenset(
    {
        "http",
        "http2",
        "https",
        "grpc",
        "grpc-web",
        "http_proxy",
        "tcp",
        "tls",
        "udp",
        "mongo",
        "mysql",
        "redis",
    }
)
# Server-first protocols Istio treats as TCP without a name.
DEFAULT_TCP_PORTS = frozenset({25, 53, 3306, 27017})
ENVOY_UID = 1337
ENVOY_RESERVED_PORTS = frozenset({15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090})
APP_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
VERSION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")
INJECT = "sidecar.istio.io/inject"
# The sidecar.istio.io/* pod annotations Istio reads (istio.io/latest/docs/reference/
# config/annotations); anything else under that prefix is a typo or stale.
KNOWN_SIDECAR_ANNOTATIONS = frozenset(
    {
        "sidecar.istio.io/agentLogLevel",
        "sidecar.istio.io/bootstrapOverride",
        "sidecar.istio.io/componentLogLevel",
        "sidecar.istio.io/controlPlaneAuthPolicy",
        "sidecar.istio.io/discoveryAddress",
        "sidecar.istio.io/enableCoreDump",
        "sidecar.istio.io/extraStatTags",
        "sidecar.istio.io/inject",
        "sidecar.istio.io/interceptionMode",
        "sidecar.istio.io/logLevel",
        "sidecar.istio.io/nativeSidecar",
        "sidecar.istio.io/proxyCPU",
        "sidecar.istio.io/proxyCPULimit",
        "sidecar.istio.io/proxyImage",
        "sidecar.istio.io/proxyImageType",
        "sidecar.istio.io/proxyMemory",
        "sidecar.istio.io/proxyMemoryLimit",
        "sidecar.istio.io/rewriteAppHTTPProbers",
        "sidecar.istio.io/statsCompression",
        "sidecar.istio.io/statsEvictionInterval",
        "sidecar.istio.io/statsFlushInterval",
        "sidecar.istio.io/statsHistogramBuckets",
        "sidecar.istio.io/statsInclusionPrefixes",
        "sidecar.istio.io/statsInclusionRegexps",
        "sidecar.istio.io/statsInclusionSuffixes",
        "sidecar.istio.io/status",
        "sidecar.istio.io/userVolume",
        "sidecar.istio.io/userVolumeMount",
    }
)


def port_protocol(port: ServicePort) -> str | None:
    """The protocol Istio selects for a Service port, or None when it would have to sniff."""
    spec = port.spec
    if spec.get("appProtocol"):
        return str(spec["appProtocol"]).lower()
    if str(spec.get("protocol", "TCP")).upper() == "UDP":
        return "udp"
    name = str(spec.get("name") or "").lower()
    if name in ISTIO_PROTOCOLS:
        return name
    prefix = name.split("-", 1)[0]
    if prefix in ISTIO_PROTOCOLS:
        return prefix
    if port.number in DEFAULT_TCP_PORTS:
        return "tcp"
    return None


def first_label(labels: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


@rule(
    id="MR101",
    name="workload-without-service",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="no Service in the namespace selects this workload",
    description=(
        "Cloud Service Mesh asks for a Kubernetes Service for every workload, even one that "
        "receives no traffic: the mesh identifies workloads and builds their inbound "
        "listeners, telemetry and policy from the Services that select them."
    ),
    remediation=(
        "Add a Service in the same namespace whose selector matches the pod template "
        "labels (a ClusterIP Service with a named port is enough for a client-only workload)."
    ),
)
def workload_without_service(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if not ctx.services_of.get(id(workload)):
        yield Hit((*workload.template_path, "metadata", "labels"))


@rule(
    id="MR102",
    name="service-port-protocol",
    severity=Severity.ERROR,
    scope=Scope.SERVICE,
    message="Service port does not declare its protocol",
    description=(
        "Istio routes HTTP, gRPC and TCP differently. It takes the protocol from the port's "
        "`appProtocol`, or a name `<protocol>[-<suffix>]` (http, http2, https, grpc, grpc-web, "
        "http_proxy, tcp, tls, udp, mongo, mysql, redis); `protocol: UDP` is UDP and ports 25, "
        "53, 3306 and 27017 are TCP. Any other port makes the proxy sniff the protocol, which "
        "delays server-first protocols and can pick the wrong one."
    ),
    remediation="Name the port after its protocol (`name: http`, `name: grpc-api`) or set `appProtocol`.",
)
def service_port_protocol(service: Service, ctx: Context) -> Iterator[Hit]:
    for port in service.ports:
        if port_protocol(port) is None:
            name = port.spec.get("name")
            detail = (
                f"port {port.number} named {name!r}" if name else f"port {port.number} has no name"
            )
            yield Hit((*port.path, "name") if name else port.path, detail)


@rule(
    id="MR103",
    name="pod-app-version-labels",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="pod template lacks an app or version label",
    description=(
        "Istio names a workload in telemetry and traffic rules after its app and version "
        "labels: the name from `service.istio.io/canonical-name`, `app.kubernetes.io/name` "
        "or `app`, the version from `service.istio.io/canonical-revision`, "
        "`app.kubernetes.io/version` or `version`. Without a version label traffic cannot be "
        "split between versions."
    ),
    remediation="Add `app` and `version` (or the app.kubernetes.io equivalents) to the pod template labels.",
)
def pod_app_version_labels(workload: Workload, ctx: Context) -> Iterator[Hit]:
    labels = workload.pod_labels
    missing = [
        what
        for what, keys in (("app", APP_LABELS), ("version", VERSION_LABELS))
        if first_label(labels, keys) is None
    ]
    if missing:
        yield Hit((*workload.template_path, "metadata", "labels"), "no " + " and no ".join(missing))


@rule(
    id="MR104",
    name="workload-app-version-labels",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="workload object lacks an app or version label",
    description=(
        "Cloud Service Mesh asks for labelled Deployments as well as pods, so that tools "
        "and people selecting workloads by app and version find the object, not only its pods."
    ),
    remediation="Add the same `app` and `version` labels to the workload's own metadata.",
)
def workload_app_version_labels(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if workload.kind == "Pod":
        return  # its metadata is the pod template, checked by MR103
    labels = workload.labels
    missing = [
        what
        for what, keys in (("app", APP_LABELS), ("version", VERSION_LABELS))
        if first_label(labels, keys) is None
    ]
    if missing:
        yield Hit(("metadata", "labels"), "no " + " and no ".join(missing))


@rule(
    id="MR105",
    name="conflicting-port-protocols",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="two Services selecting this workload use one port number with different protocols",
    description=(
        "Istio builds one inbound listener per port of a pod. If two Services that select the "
        "pod give the same port number different protocols (HTTP in one, TCP in the other), "
        "only one protocol can win, and traffic of the other breaks."
    ),
    remediation="Use one protocol per port number across all Services that select the pod, or different port numbers.",
)
def conflicting_port_protocols(workload: Workload, ctx: Context) -> Iterator[Hit]:
    seen: dict[object, tuple[str, str]] = {}
    reported: set[object] = set()
    for service in ctx.services_of.get(id(workload), ()):
        for port in service.ports:
            if not isinstance(port.number, int):
                continue  # a malformed port number is the validator's to report
            protocol = port_protocol(port) or "unnamed (sniffed)"
            if port.number not in seen:
                seen[port.number] = (protocol, service.name)
                continue
            other_protocol, other_service = seen[port.number]
            if other_protocol != protocol and port.number not in reported:
                reported.add(port.number)
                yield Hit(
                    (*workload.template_path, "metadata", "labels"),
                    f"port {port.number} is {other_protocol} in Service {other_service} "
                    f"and {protocol} in Service {service.name}",
                )


@rule(
    id="MR106",
    name="service-selects-nothing",
    severity=Severity.WARNING,
    scope=Scope.SERVICE,
    message="Service selector matches no workload in the target",
    description=(
        "A Service whose selector matches no pod template has no endpoints: clients get "
        "connection failures and the mesh routes nowhere. It is usually a label typo or a "
        "label changed on one side only."
    ),
    remediation="Make the selector equal to labels of the intended pod template, or remove the Service.",
)
def service_selects_nothing(service: Service, ctx: Context) -> Iterator[Hit]:
    # A Service without a selector has manually managed endpoints (or is ExternalName).
    if service.selector and not ctx.workloads_of.get(id(service)):
        yield Hit(("spec", "selector"), ", ".join(f"{k}={v}" for k, v in service.selector.items()))


@rule(
    id="MR107",
    name="service-target-port",
    severity=Severity.ERROR,
    scope=Scope.SERVICE,
    message="Service targetPort is not a containerPort of the pods it selects",
    description=(
        "Traffic is sent to the targetPort (by number, or by the name of a containerPort). "
        "If the selected pods do not declare it, a named targetPort resolves to nothing, "
        "and Istio does not know the port as an inbound port of the workload."
    ),
    remediation="Point targetPort at a declared containerPort (by name or number), or declare the port in the container.",
)
def service_target_port(service: Service, ctx: Context) -> Iterator[Hit]:
    for workload in ctx.workloads_of.get(id(service), ()):
        containers = list(workload.app_containers)
        numbers = set().union(*(c.port_numbers() for c in containers))
        names = set().union(*(c.port_names() for c in containers))
        for port in service.ports:
            target = port.target
            if (isinstance(target, int) and target not in numbers) or (
                isinstance(target, str) and target not in names
            ):
                path = (*port.path, "targetPort") if "targetPort" in port.spec else port.path
                yield Hit(path, f"targetPort {target!r} in {workload.display}")


@rule(
    id="MR108",
    name="probe-port-undeclared",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="probe port is not declared as a containerPort",
    description=(
        "Istio rewrites HTTP probes to go through the sidecar agent and needs to know the "
        "application's ports; a probe on an undeclared port is often a port that changed "
        "in one place only, and a named probe port that is not declared fails outright."
    ),
    remediation="Declare the port in the container's `ports` (with a name) and probe it by that name.",
)
def probe_port_undeclared(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.app_containers:
        numbers, names = container.port_numbers(), container.port_names()
        for probe, port, path in container.probe_ports:
            declared = port in numbers if isinstance(port, int) else str(port) in names
            if not declared:
                yield Hit(
                    (*container.path, *path), f"{probe} port {port!r} of container {container.name}"
                )


@rule(
    id="MR109",
    name="selector-template-mismatch",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="workload selector does not match its own pod template labels",
    description=(
        "The API server rejects a Deployment, StatefulSet, DaemonSet or ReplicaSet whose "
        "selector does not match its template; an overlay that relabels only one side is "
        "the usual cause, and it is cheaper to learn that here than at apply time."
    ),
    remediation="Make `spec.selector.matchLabels` a subset of `spec.template.metadata.labels`.",
)
def selector_template_mismatch(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if workload.kind in ("Pod", "CronJob"):
        return
    selector = get(workload.obj, ("spec", "selector"))
    if workload.kind == "Job" and not get(workload.obj, ("spec", "manualSelector")):
        return  # the Job controller generates its own selector
    if not as_dict(selector):
        if workload.kind != "ReplicationController":
            yield Hit(("spec",), "no spec.selector")
        return
    if workload.kind == "ReplicationController":
        matches = labels_match(string_map(selector), workload.pod_labels)
    else:
        matches = label_selector_matches(selector, workload.pod_labels)
    if not matches:
        yield Hit(("spec", "selector"))


def _security_contexts(workload: Workload):
    yield workload.pod_security_context, (*workload.pod_spec_path, "securityContext"), "pod"
    for container in workload.all_containers:
        yield (
            container.security_context,
            (*container.path, "securityContext"),
            f"container {container.name}",
        )


@rule(
    id="MR110",
    name="envoy-uid",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="runAsUser or runAsGroup is 1337, the UID of the Envoy sidecar",
    description=(
        "Istio's iptables rules let traffic of UID 1337 bypass the proxy, so that Envoy's own "
        "traffic is not captured again. An application running as 1337 escapes the mesh: "
        "no mTLS, no policy, no telemetry."
    ),
    remediation="Run the application under any other UID and GID.",
)
def envoy_uid(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for context, path, where in _security_contexts(workload):
        for field_ in ("runAsUser", "runAsGroup"):
            if context.get(field_) == ENVOY_UID:
                yield Hit((*path, field_), f"{field_} of {where}")


@rule(
    id="MR111",
    name="envoy-reserved-port",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="container or probe uses a port reserved by the Envoy sidecar",
    description=(
        "The sidecar listens on 15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053 and "
        "15090 in the pod's network namespace; an application port among them clashes with "
        "the proxy and either fails to bind or is shadowed."
    ),
    remediation="Move the application port out of the 150xx range Istio reserves.",
)
def envoy_reserved_port(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.all_containers:
        for i, port in enumerate(container.ports):
            if port.get("containerPort") in ENVOY_RESERVED_PORTS:
                yield Hit(
                    (*container.path, "ports", i, "containerPort"),
                    f"containerPort {port['containerPort']} of container {container.name}",
                )
        for probe, port, path in container.probe_ports:
            if port in ENVOY_RESERVED_PORTS:
                yield Hit(
                    (*container.path, *path), f"{probe} port {port} of container {container.name}"
                )


@rule(
    id="MR112",
    name="host-network",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="pod uses hostNetwork and gets no sidecar",
    description=(
        "Istio does not inject a sidecar into hostNetwork pods: they share the node's network "
        "namespace, so their traffic cannot be captured. The workload is outside the mesh."
    ),
    remediation="Drop `hostNetwork: true` unless the workload really must live outside the mesh (then suppress with a reason).",
)
def host_network(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if workload.pod_spec.get("hostNetwork") is True:
        yield Hit((*workload.pod_spec_path, "hostNetwork"))


@rule(
    id="MR113",
    name="namespace-injection",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="workload's namespace does not enable sidecar injection exactly once",
    description=(
        "Sidecars are injected when the namespace carries `istio-injection=enabled` "
        "(default revision) or `istio.io/rev=<revision>` (a revision of managed Cloud "
        "Service Mesh). With neither the pods run without a proxy; with both, "
        "`istio-injection` wins and the revision label is silently ignored. The target must "
        "declare the Namespace: in production targets (and where `require_namespace` is set) "
        "a namespace that is not part of the target is a finding too."
    ),
    remediation=(
        "Declare the Namespace in the target with exactly one of `istio-injection: enabled` "
        "or `istio.io/rev: <revision>` in its labels."
    ),
)
def namespace_injection(workload: Workload, ctx: Context) -> Iterator[Hit]:
    namespace = workload.namespace or "default"
    path = ("metadata", "namespace") if workload.namespace else ("metadata",)
    declared = ctx.namespaces.get(namespace)
    if declared is None:
        if ctx.settings.production or ctx.settings.require_namespace:
            yield Hit(path, f"Namespace {namespace} is not declared in this target")
        return
    labels = declared.labels
    injection, revision = labels.get("istio-injection"), labels.get("istio.io/rev")
    if injection is not None and revision:
        yield Hit(path, f"Namespace {namespace} has both istio-injection and istio.io/rev")
    elif injection is not None and injection != "enabled":
        yield Hit(path, f"Namespace {namespace} has istio-injection={injection}")
    elif injection is None and not revision:
        yield Hit(path, f"Namespace {namespace} has neither istio-injection nor istio.io/rev")


@rule(
    id="MR114",
    name="inject-annotation-on-workload",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="sidecar.istio.io/inject is on the workload, not its pod template",
    description=(
        "The injector only reads `sidecar.istio.io/inject` from the pod. On the Deployment's "
        "own metadata it does nothing, and the pods get (or do not get) a sidecar regardless."
    ),
    remediation="Move the label/annotation to `spec.template.metadata` (Istio prefers the label form).",
)
def inject_annotation_on_workload(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if workload.kind == "Pod":
        return
    if INJECT in workload.annotations:
        yield Hit(("metadata", "annotations", INJECT))
    if INJECT in workload.labels:
        yield Hit(("metadata", "labels", INJECT))


@rule(
    id="MR115",
    name="unknown-sidecar-annotation",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="unknown sidecar.istio.io annotation",
    description=(
        "Istio ignores annotations it does not know, so a typo such as "
        "`sidecar.istio.io/proxyCpu` silently leaves the proxy with its defaults."
    ),
    remediation="Use an annotation from Istio's reference (proxyCPU, proxyMemory, logLevel, ...) or remove it.",
)
def unknown_sidecar_annotation(workload: Workload, ctx: Context) -> Iterator[Hit]:
    places = [((*workload.template_path, "metadata", "annotations"), workload.pod_annotations)]
    if workload.kind != "Pod":
        places.append((("metadata", "annotations"), workload.annotations))
    for path, present in places:
        for key in present:
            if key.startswith("sidecar.istio.io/") and key not in KNOWN_SIDECAR_ANNOTATIONS:
                yield Hit((*path, key), key)
