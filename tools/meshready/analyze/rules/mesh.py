"""Mesh readiness (MR1xx): what Cloud Service Mesh / Istio needs from a workload.

Sources: Cloud Service Mesh's "prepare an application" guide, Istio's protocol
selection and application requirements (pod ports, UID 1337, reserved ports).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from meshready.analyze.rules.base import Hit, Scope, Severity, rule
from meshready.analyze.rules.model import (
    INJECT,
    SYSTEM_NAMESPACES,
    Context,
    K8sObject,
    Service,
    ServicePort,
    Workload,
    as_dict,
    get,
    label_selector_matches,
    labels_match,
    string_map,
)

# Istio's explicit protocol selection (istio.io "Protocol Selection"): the port's
# `appProtocol`, else its name `<protocol>[-<suffix>]`; `protocol: UDP` is UDP whatever the
# name. Protocol names are compared case-insensitively; the prefix ends at the first `-`,
# except for `grpc-web`, whose own name has one.
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
# Kubernetes' standard appProtocol values, as Istio reads them (only in appProtocol).
KUBERNETES_APP_PROTOCOLS = {
    "kubernetes.io/h2c": "http2",  # HTTP/2 over cleartext: Istio's http2
    "kubernetes.io/ws": "http",  # WebSocket over cleartext
    "kubernetes.io/wss": "https",  # WebSocket over TLS
}
# Server-first protocols Istio treats as TCP when neither name nor appProtocol says.
DEFAULT_TCP_PORTS = frozenset({25, 53, 3306, 27017})
ENVOY_UID = 1337
ENVOY_RESERVED_PORTS = frozenset({15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090})
APP_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
VERSION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")
REVISION = "istio.io/rev"
DATAPLANE_MODE = "istio.io/dataplane-mode"

# Istio's resource annotations (istio.io/latest/docs/reference/config/annotations, from
# istio/api annotation/annotations.yaml) and the resources Istio reads each one on. "Pod"
# means the pod, so on a workload the pod template; "Any" is any object.
_POD = frozenset({"Pod"})
ISTIO_ANNOTATIONS: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        (
            "galley.istio.io/analyze-suppress",
            "install.operator.istio.io/chart-owner",
            "install.operator.istio.io/owner-generation",
            "install.operator.istio.io/version",
            "topology.istio.io/controlPlaneClusters",
        ),
        frozenset({"Any"}),
    ),
    **dict.fromkeys(
        (
            "networking.istio.io/exportTo",
            "alpha.istio.io/kubernetes-serviceaccounts",
            "alpha.istio.io/canonical-serviceaccounts",
        ),
        frozenset({"Service"}),
    ),
    "networking.istio.io/traffic-distribution": frozenset({"Service", "ServiceEntry"}),
    "networking.istio.io/service-type": frozenset({"Gateway"}),
    "gateway.istio.io/controller-version": frozenset({"Gateway"}),
    "gateway.istio.io/service-account": frozenset({"Gateway"}),
    "istio.io/dry-run": frozenset({"AuthorizationPolicy"}),
    **dict.fromkeys(
        (
            "istio.io/autoRegistrationGroup",
            "istio.io/workloadController",
            "istio.io/connectedAt",
            "istio.io/disconnectedAt",
        ),
        frozenset({"WorkloadEntry"}),
    ),
    **dict.fromkeys(
        (
            "networking.alpha.istio.io/serviceVersion",
            "networking.alpha.istio.io/endpointsVersion",
            "networking.alpha.istio.io/notReadyEndpoints",
        ),
        frozenset({"ServiceEntry"}),
    ),
    **dict.fromkeys(
        (
            "alpha.istio.io/identity",
            "ambient.istio.io/bypass-inbound-capture",
            "ambient.istio.io/redirection",
            "inject.istio.io/templates",
            "prometheus.istio.io/merge-metrics",
            "proxy.istio.io/config",
            "proxy.istio.io/overrides",
            "readiness.status.sidecar.istio.io/applicationPorts",
            "readiness.status.sidecar.istio.io/failureThreshold",
            "readiness.status.sidecar.istio.io/initialDelaySeconds",
            "readiness.status.sidecar.istio.io/periodSeconds",
            "security.istio.io/autoMTLS",
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
            "status.sidecar.istio.io/port",
            "traffic.sidecar.istio.io/excludeInboundPorts",
            "traffic.sidecar.istio.io/excludeInterfaces",
            "traffic.sidecar.istio.io/excludeOutboundIPRanges",
            "traffic.sidecar.istio.io/excludeOutboundPorts",
            "traffic.sidecar.istio.io/includeInboundPorts",
            "traffic.sidecar.istio.io/includeOutboundIPRanges",
            "traffic.sidecar.istio.io/includeOutboundPorts",
            "traffic.sidecar.istio.io/kubevirtInterfaces",
        ),
        _POD,
    ),
}
# Mixer's pod annotations: removed in Istio 1.8, reported by MR323, not as unknown.
REMOVED_MIXER_PREFIX = "policy.istio.io/"
# Kept for callers of the former name: the pod annotations under sidecar.istio.io/.
KNOWN_SIDECAR_ANNOTATIONS = frozenset(
    name for name, kinds in ISTIO_ANNOTATIONS.items() if name.startswith("sidecar.istio.io/")
)


def istio_annotation(key: str) -> bool:
    """An annotation in one of Istio's domains (`istio.io/...`, `*.istio.io/...`), the keys
    Istio's own unknown-annotation check (IST0108) looks at."""
    domain, slash, _ = key.partition("/")
    return bool(slash) and (domain == "istio.io" or domain.endswith(".istio.io"))


def protocol_of(name: str) -> str | None:
    """An Istio protocol from a port name or appProtocol value, or None (unsupported)."""
    lowered = name.lower()
    if lowered.startswith("grpc-web"):
        return "grpc-web"
    prefix = lowered.split("-", 1)[0]
    return prefix if prefix in ISTIO_PROTOCOLS else None


def port_protocol(port: ServicePort) -> str | None:
    """The protocol Istio selects for a Service port, or None when it would have to sniff
    (Istio's ConvertProtocol: UDP first, then appProtocol over the name, then the
    well-known server-first ports as TCP)."""
    spec = port.spec
    if str(spec.get("protocol", "TCP")).upper() == "UDP":
        return "udp"
    app_protocol = spec.get("appProtocol")
    if app_protocol:
        known = KUBERNETES_APP_PROTOCOLS.get(str(app_protocol).lower())
        found = known or protocol_of(str(app_protocol))
    else:
        found = protocol_of(str(spec.get("name") or ""))
    if found is None and port.number in DEFAULT_TCP_PORTS:
        return "tcp"
    return found


# Protocols a sidecar handles alike: it does not terminate TLS, so https is tls to it.
_SAME_TO_A_SIDECAR = {"https": "tls"}


def listener_protocol(port: ServicePort) -> str:
    """What the sidecar's inbound listener for the port does, for comparing Services."""
    found = port_protocol(port)
    if found is None:
        return "unnamed (sniffed)"
    return _SAME_TO_A_SIDECAR.get(found, found)


def first_label(labels: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


ISTIO_DOCS = "https://istio.io/latest/docs"


def workload_without_service(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if not ctx.services_of.get(id(workload)):
        yield Hit((*workload.template_path, "metadata", "labels"))


rule(
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
        "labels. For a client-only workload (no containerPort) a ClusterIP Service with one "
        "named port is enough; MR107 and MR210 do not apply to it."
    ),
    upstream=(
        "Istio runs a pod without a Service, but only as a client: it gets no inbound "
        "listeners, and its telemetry names no service. `istioctl analyze` has no such check; "
        "Cloud Service Mesh's application requirements ask for the Service."
    ),
    deliberate=(
        "A workload that is never called and needs no mesh identity (a batch client): "
        "suppress with `MR101: client only, calls X`, or add the identity-only Service."
    ),
    reference=f"{ISTIO_DOCS}/ops/deployment/application-requirements/",
)(workload_without_service)


def service_port_protocol(service: Service, ctx: Context) -> Iterator[Hit]:
    for port in service.ports:
        if port_protocol(port) is None:
            name = port.spec.get("name")
            app_protocol = port.spec.get("appProtocol")
            if app_protocol:
                detail = f"port {port.number} has appProtocol {app_protocol!r}, unknown to Istio"
                yield Hit((*port.path, "appProtocol"), detail)
                continue
            detail = (
                f"port {port.number} named {name!r}" if name else f"port {port.number} has no name"
            )
            yield Hit((*port.path, "name"), detail)  # unnamed: the line falls back to the port's


rule(
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
    upstream=(
        "Istio selects the protocol from `appProtocol` first (including Kubernetes' "
        "`kubernetes.io/h2c`, `kubernetes.io/ws`, `kubernetes.io/wss`), then the port name, "
        "and sniffs HTTP/1.1 and HTTP/2 otherwise, treating what it cannot detect as TCP. An "
        "`appProtocol` it does not know is sniffed too. Services in kube-system, kube-public, "
        "kube-node-lease and istio-system are skipped, as Istio never injects there."
    ),
    deliberate=(
        "Sniffing is acceptable for a client-first protocol you do not want to name: set "
        "`appProtocol: tcp` to say so (no sniffing delay), or suppress with a reason."
    ),
    reference=f"{ISTIO_DOCS}/ops/configuration/traffic-management/protocol-selection/",
)(service_port_protocol)


def pod_app_version_labels(workload: Workload, ctx: Context) -> Iterator[Hit]:
    labels = workload.pod_labels
    missing = [
        what
        for what, keys in (("app", APP_LABELS), ("version", VERSION_LABELS))
        if first_label(labels, keys) is None
    ]
    if missing:
        yield Hit((*workload.template_path, "metadata", "labels"), "no " + " and no ".join(missing))


rule(
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
    upstream=(
        "Istio falls back to the workload's name for the canonical service and to `latest` "
        "for the revision, so metrics and version routing lump versions together."
    ),
    deliberate=(
        "A single-version workload whose metrics by name are enough: suppress with "
        "`MR103: one version only`."
    ),
    reference=f"{ISTIO_DOCS}/ops/deployment/application-requirements/",
)(pod_app_version_labels)


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


rule(
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
    upstream="Istio itself reads only the pod's labels; this is a Cloud Service Mesh convention.",
    deliberate='Lower it for the target (`severity = { MR104 = "info" }`) if you do not select workloads by label.',
    reference=f"{ISTIO_DOCS}/ops/deployment/application-requirements/",
)(workload_app_version_labels)


def conflicting_port_protocols(workload: Workload, ctx: Context) -> Iterator[Hit]:
    seen: dict[object, tuple[str, str]] = {}
    reported: set[object] = set()
    for service in ctx.services_of.get(id(workload), ()):
        for port in service.ports:
            if not isinstance(port.number, int):
                continue  # a malformed port number is the validator's to report
            protocol = listener_protocol(port)
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


rule(
    id="MR105",
    name="conflicting-port-protocols",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="two Services selecting this workload use one port number with different protocols",
    description=(
        "Istio builds one inbound listener per port of a pod. If two Services that select the "
        "pod give the same port number different protocols (HTTP in one, TCP in the other), "
        "only one protocol can win, and traffic of the other breaks. Protocols are compared "
        "as Istio selects them: `http2` and `appProtocol: kubernetes.io/h2c` are the same, "
        "and so are `https` and `tls` (a sidecar does not terminate TLS)."
    ),
    remediation="Use one protocol per port number across all Services that select the pod, or different port numbers.",
    upstream=(
        "Istio picks one protocol per inbound port and reports the conflict only in its "
        'logs. Pods that opt out of injection (`sidecar.istio.io/inject: "false"`) have no '
        "listener and are not checked."
    ),
    deliberate="There is no safe deliberate form; give each protocol its own port number.",
    reference=f"{ISTIO_DOCS}/ops/configuration/traffic-management/protocol-selection/",
    needs_sidecar=True,
)(conflicting_port_protocols)


def service_selects_nothing(service: Service, ctx: Context) -> Iterator[Hit]:
    # A Service without a selector has manually managed endpoints (or is ExternalName).
    if service.selector and not ctx.workloads_of.get(id(service)):
        yield Hit(("spec", "selector"), ", ".join(f"{k}={v}" for k, v in service.selector.items()))


rule(
    id="MR106",
    name="service-selects-nothing",
    severity=Severity.WARNING,
    scope=Scope.SERVICE,
    message="Service selector matches no workload in the target",
    description=(
        "A Service whose selector matches no pod template has no endpoints: clients get "
        "connection failures and the mesh routes nowhere. It is usually a label typo or a "
        "label changed on one side only. Workloads are any object with a pod template "
        "(Deployments, Argo Rollouts, other controllers' `spec.template`)."
    ),
    remediation="Make the selector equal to labels of the intended pod template, or remove the Service.",
    upstream="Kubernetes accepts the Service and leaves its endpoints empty; Istio routes to no host.",
    deliberate=(
        "The pods come from elsewhere (another repository, an operator): suppress with "
        "`MR106: pods deployed by X`."
    ),
    reference="https://kubernetes.io/docs/concepts/services-networking/service/",
)(service_selects_nothing)


def service_target_port(service: Service, ctx: Context) -> Iterator[Hit]:
    serving = [
        (workload, numbers, names)
        for workload in ctx.workloads_of.get(id(service), ())
        if (containers := workload.app_containers)
        and (numbers := set().union(*(c.port_numbers() for c in containers))) is not None
        and (names := set().union(*(c.port_names() for c in containers))) is not None
        and (numbers or names)
    ]
    for port in service.ports:
        target = port.target
        missing = [
            workload.display
            for workload, numbers, names in serving
            if (isinstance(target, int) and target not in numbers)
            or (isinstance(target, str) and target not in names)
        ]
        if missing:
            path = (*port.path, "targetPort")  # without one the line falls back to the port's
            shown = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            yield Hit(path, f"targetPort {target!r} in {shown}")


rule(
    id="MR107",
    name="service-target-port",
    severity=Severity.ERROR,
    scope=Scope.SERVICE,
    message="Service targetPort is not a containerPort of the pods it selects",
    description=(
        "Traffic is sent to the targetPort (by number, or by the name of a containerPort). "
        "If the selected pods do not declare it, a named targetPort resolves to nothing, "
        "and Istio does not know the port as an inbound port of the workload. Pods that "
        "declare no port at all are client-only: their Service exists for identity (MR101) "
        "and is not checked, so that MR101, MR107 and MR210 never ask for each other's "
        "opposite. Reported once per Service port."
    ),
    remediation="Point targetPort at a declared containerPort (by name or number), or declare the port in the container.",
    upstream=(
        "Kubernetes sends a numeric targetPort to the pod whether declared or not, and a named "
        "one only to pods declaring that name; Istio builds inbound listeners from the "
        "Service ports matching the pod's ports."
    ),
    deliberate=(
        "An application that listens on a port it does not declare: declare it (declaring "
        "is harmless), or suppress with `MR107: <why>`."
    ),
    reference=f"{ISTIO_DOCS}/ops/deployment/application-requirements/",
)(service_target_port)


def probe_port_undeclared(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.app_containers:
        numbers, names = container.port_numbers(), container.port_names()
        for probe, port, path in container.probe_ports:
            declared = port in numbers if isinstance(port, int) else str(port) in names
            if not declared:
                yield Hit(
                    (*container.path, *path), f"{probe} port {port!r} of container {container.name}"
                )


rule(
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
    upstream=(
        "The injector rewrites httpGet and tcpSocket probes to the agent's port 15020 and "
        "the agent calls the original port; a named port must resolve in the container."
    ),
    deliberate="A debug or admin port probed on purpose: declare it anyway, or suppress with a reason.",
    reference=f"{ISTIO_DOCS}/ops/configuration/mesh/app-health-check/",
    needs_sidecar=True,
)(probe_port_undeclared)


# Kinds whose selector must match their template (the API server or controller checks).
_SELECTOR_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "Rollout",
    }
)


def selector_template_mismatch(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if workload.kind not in _SELECTOR_KINDS:
        return  # a Pod, a CronJob, or a kind whose selector rules we do not know
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


rule(
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
    upstream=(
        "The API server refuses the object (`selector does not match template labels`); "
        "an Argo Rollout with a mismatch is accepted and never becomes healthy."
    ),
    deliberate="None: such an object cannot run. Fix the labels.",
    reference="https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#selector",
)(selector_template_mismatch)


def envoy_uid(workload: Workload, ctx: Context) -> Iterator[Hit]:
    pod = workload.pod_security_context
    pod_path = (*workload.pod_spec_path, "securityContext")
    reported: set[tuple] = set()
    for container in workload.all_containers:
        own = container.security_context
        for field_ in ("runAsUser", "runAsGroup"):
            if field_ in own:
                value, path, where = (
                    own[field_],
                    (*container.path, "securityContext"),
                    f"container {container.name}",
                )
            else:
                value, path, where = pod.get(field_), pod_path, "pod"
            if value == ENVOY_UID and (path, field_) not in reported:
                reported.add((path, field_))
                yield Hit((*path, field_), f"{field_} of {where}")


rule(
    id="MR110",
    name="envoy-uid",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="runAsUser or runAsGroup is 1337, the UID of the Envoy sidecar",
    description=(
        "Istio's iptables rules let traffic of UID 1337 (and GID 1337) bypass the proxy, so "
        "that Envoy's own traffic is not captured again. An application running as 1337 "
        "escapes the mesh: no mTLS, no policy, no telemetry. The effective value counts: a "
        "container's own setting over the pod's."
    ),
    remediation="Run the application under any other UID and GID.",
    upstream=(
        "istio-iptables excludes `--uid-owner 1337` and `--gid-owner 1337` from redirection; "
        "Istio does not warn about an application using them."
    ),
    deliberate='None for a meshed pod; a pod deliberately outside the mesh opts out with `sidecar.istio.io/inject: "false"`.',
    reference=f"{ISTIO_DOCS}/ops/deployment/application-requirements/",
    needs_sidecar=True,
)(envoy_uid)


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


rule(
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
    upstream="Istio documents the ports as reserved; the pod starts and one side fails to bind.",
    deliberate="None for a meshed pod.",
    reference=f"{ISTIO_DOCS}/ops/deployment/application-requirements/#ports-used-by-istio",
    needs_sidecar=True,
)(envoy_reserved_port)


def host_network(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if workload.pod_spec.get("hostNetwork") is True:
        yield Hit((*workload.pod_spec_path, "hostNetwork"))


rule(
    id="MR112",
    name="host-network",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="pod uses hostNetwork and gets no sidecar",
    description=(
        "Istio does not inject a sidecar into hostNetwork pods: they share the node's network "
        "namespace, so their traffic cannot be captured. The workload is outside the mesh."
    ),
    remediation="Drop `hostNetwork: true` unless the workload really must live outside the mesh.",
    upstream="The injector skips hostNetwork pods silently.",
    deliberate=(
        "A node agent that must use the host network: say so with "
        '`sidecar.istio.io/inject: "false"` on the pod template (the rule then does not apply).'
    ),
    reference=f"{ISTIO_DOCS}/setup/additional-setup/sidecar-injection/",
    needs_sidecar=True,
)(host_network)


def namespace_problem(labels: dict[str, str]) -> tuple[bool, str | None]:
    """(decided, problem) from a Namespace's labels, as Istio's injection webhooks select:
    decided when the namespace alone settles injection (enabled, revision, ambient, or any
    istio-injection value: a value other than `enabled` also stops the pods' own opt-in)."""
    injection, revision = labels.get("istio-injection"), labels.get(REVISION)
    if injection is not None and revision:
        return True, "has both istio-injection and istio.io/rev (istio-injection wins)"
    if injection == "enabled" or revision:
        return True, None
    if injection == "disabled":
        return True, "has istio-injection=disabled"
    if injection is not None:
        return True, (
            f"has istio-injection={injection}: only 'enabled' turns injection on, and any "
            "value turns off the pods' own opt-in"
        )
    if labels.get(DATAPLANE_MODE) == "ambient":
        return True, None  # ambient mode: in the mesh without a sidecar
    return False, "has neither istio-injection nor istio.io/rev"


def pod_opts_in(workload: Workload) -> bool:
    """Whether the pod enters the mesh on its own in an unlabelled namespace: the
    `sidecar.istio.io/inject: "true"` label (the webhook's object selector reads the label,
    not the annotation), an `istio.io/rev` label, or ambient mode for the pod."""
    labels = workload.pod_labels
    return (
        labels.get(INJECT) == "true"
        or bool(labels.get(REVISION))
        or labels.get(DATAPLANE_MODE) == "ambient"
    )


def namespace_injection(subject: K8sObject, ctx: Context) -> Iterator[Hit]:
    if isinstance(subject, Workload):
        yield from _workload_injection(subject, ctx)
    elif subject.kind == "Namespace" and subject.name not in SYSTEM_NAMESPACES:
        if subject.name in ctx.workload_namespaces:
            return  # reported on its workloads, with what their pods say
        _, problem = namespace_problem(subject.labels)
        if problem is not None:
            yield Hit(("metadata", "labels"), problem)  # no labels: the metadata's line


rule(
    id="MR113",
    name="namespace-injection",
    severity=Severity.ERROR,
    scope=Scope.OBJECT,
    message="sidecar injection is not enabled exactly once for this workload's pods",
    description=(
        "Sidecars are injected when the namespace carries `istio-injection=enabled` "
        "(default revision) or `istio.io/rev=<revision>` (a revision of managed Cloud "
        "Service Mesh), or, in a namespace with neither label, when the pod template itself "
        'carries the label `sidecar.istio.io/inject: "true"` or `istio.io/rev`. A namespace '
        "labelled `istio.io/dataplane-mode=ambient` is in the mesh without sidecars. With "
        "both namespace labels, `istio-injection` wins and the revision is ignored; with "
        "`istio-injection` set to anything but `enabled`, nothing is injected. A declared "
        "Namespace without any workload in the target is checked on its own. In production "
        "targets (and where `require_namespace` is set) a namespace the target does not "
        "declare is a finding too."
    ),
    remediation=(
        "Declare the Namespace in the target with exactly one of `istio-injection: enabled` "
        "or `istio.io/rev: <revision>` in its labels (or `istio.io/dataplane-mode: ambient`)."
    ),
    upstream=(
        "Istio's webhooks select namespaces `istio-injection=enabled` or `istio.io/rev`, and "
        "pods labelled `sidecar.istio.io/inject=true` or `istio.io/rev` in namespaces with "
        "neither; `istioctl analyze` reports pods without a proxy (IST0103) and namespaces "
        "without injection (IST0102). kube-system, kube-public, kube-node-lease and "
        "istio-system are never injected and not checked."
    ),
    deliberate=(
        "A workload that must stay out of the mesh says so on its pod template with "
        '`sidecar.istio.io/inject: "false"` (this rule then does not apply); a whole '
        "namespace kept out: suppress on the Namespace or its workloads with a reason."
    ),
    reference=f"{ISTIO_DOCS}/setup/additional-setup/sidecar-injection/",
    needs_sidecar=True,
)(namespace_injection)


def _workload_injection(workload: Workload, ctx: Context) -> Iterator[Hit]:
    namespace = workload.namespace_key
    path = ("metadata", "namespace")  # omitted: the line falls back to the metadata's
    declared = ctx.namespaces.get(namespace)
    if declared is None:
        if ctx.settings.production or ctx.settings.require_namespace:
            yield Hit(path, f"Namespace {namespace} is not declared in this target")
        return
    decided, problem = namespace_problem(declared.labels)
    if not decided and pod_opts_in(workload):
        return
    if problem is None:
        return
    detail = f"Namespace {namespace} {problem}"
    if not decided and (workload.pod_annotations.get(INJECT, "").lower() == "true"):
        detail += (
            "; the pod's sidecar.istio.io/inject annotation selects no webhook, the label does"
        )
    yield Hit(path, detail)


def _annotation_places(subject: K8sObject) -> list[tuple[str, tuple, dict[str, Any]]]:
    """(resource Istio would see, path, annotations) of an object: its own metadata, and
    for a workload its pod template, which Istio sees as the Pod. Only non-empty maps, and
    the raw ones, not the str views: most objects carry no annotation, and these rules run
    on every object."""
    places = []
    own = subject.metadata.get("annotations")
    if isinstance(subject, Workload) and subject.kind != "Pod":
        pod = subject.pod_metadata.get("annotations")
        if pod and isinstance(pod, dict):
            places.append(("Pod", (*subject.template_path, "metadata", "annotations"), pod))
    if own and isinstance(own, dict):
        places.append((subject.kind, ("metadata", "annotations"), own))
    return places


def misplaced_istio_annotation(subject: K8sObject, ctx: Context) -> Iterator[Hit]:
    for resource, path, present in _annotation_places(subject):
        for key in present:
            kinds = ISTIO_ANNOTATIONS.get(str(key))
            if kinds is None or "Any" in kinds or resource in kinds:
                continue
            if kinds == _POD and isinstance(subject, Workload):
                where = f"{key} belongs on the pod template"
            else:
                where = f"{key} is read on {', '.join(sorted(kinds))} only, not on {resource}"
            yield Hit((*path, key), where)
    if isinstance(subject, Workload) and subject.kind != "Pod" and INJECT in subject.labels:
        yield Hit(("metadata", "labels", INJECT), f"label {INJECT} belongs on the pod template")


rule(
    id="MR114",
    name="misplaced-istio-annotation",
    severity=Severity.WARNING,
    scope=Scope.OBJECT,
    message="Istio annotation is on a resource Istio does not read it from",
    description=(
        "Istio reads each of its annotations on one kind of resource: the injector reads "
        "`sidecar.istio.io/*`, `proxy.istio.io/config` and the like from the pod only. On a "
        "Deployment's own metadata, a Service or a Namespace they do nothing. The inject "
        "label on a workload's own labels is the same mistake."
    ),
    remediation=(
        "Move pod annotations to the pod template (`spec.template.metadata.annotations`), "
        "and use the Namespace label `istio-injection` instead of an annotation on it."
    ),
    upstream="`istioctl analyze` reports the same as IST0107 (MisplacedAnnotation).",
    deliberate="None: the annotation has no effect where it is. Move or remove it.",
    reference=f"{ISTIO_DOCS}/reference/config/annotations/",
)(misplaced_istio_annotation)


def unknown_istio_annotation(subject: K8sObject, ctx: Context) -> Iterator[Hit]:
    for _, path, present in _annotation_places(subject):
        for key in map(str, present):
            if key.startswith(REMOVED_MIXER_PREFIX):
                continue  # known, and gone with Mixer: MR323 says so
            if istio_annotation(key) and key not in ISTIO_ANNOTATIONS:
                close = difflib.get_close_matches(key, ISTIO_ANNOTATIONS, n=1, cutoff=0.8)
                yield Hit((*path, key), f"{key} (did you mean {close[0]}?)" if close else key)


rule(
    id="MR115",
    name="unknown-istio-annotation",
    severity=Severity.WARNING,
    scope=Scope.OBJECT,
    message="unknown Istio annotation",
    description=(
        "Istio ignores annotations it does not know, so a typo such as "
        "`sidecar.istio.io/proxyCpu` silently leaves the proxy with its defaults. Every "
        "annotation in an Istio domain (`istio.io/`, `*.istio.io/`) on any object is checked "
        "against Istio's annotation reference."
    ),
    remediation="Use an annotation from Istio's reference (proxyCPU, proxyMemory, logLevel, ...) or remove it.",
    upstream="`istioctl analyze` reports the same as IST0108 (UnknownAnnotation).",
    deliberate=(
        "An annotation newer than this catalog, or one of your own tooling under an Istio "
        "domain: suppress with `MR115: <annotation> is read by ...`."
    ),
    reference=f"{ISTIO_DOCS}/reference/config/annotations/",
)(unknown_istio_annotation)
