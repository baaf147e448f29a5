"""Istio security, Sidecar/Telemetry and deprecation rules (MR317-MR323): policies and Sidecars against
the workloads and ServiceAccounts of the same input. See istio.py for the index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshready.analyze.rules.base import Hit, Scope, Severity, rule
from meshready.analyze.rules.istio import (
    NETWORKING,
    ROOT_NAMESPACE,
    SECURITY,
    TELEMETRY,
    cluster_service,
    fqdn,
    hosts_overlap,
    istio_index,
    namespace_of,
    selector_text,
)
from meshready.analyze.rules.model import (
    Context,
    K8sObject,
    Path,
    Service,
    Workload,
    as_dict,
    as_list,
    get,
    labels_match,
    string_map,
)

# Where each kind keeps its workload selector.
SELECTOR_PATHS: dict[tuple[str, str], Path] = {
    (SECURITY, "AuthorizationPolicy"): ("spec", "selector", "matchLabels"),
    (SECURITY, "PeerAuthentication"): ("spec", "selector", "matchLabels"),
    (SECURITY, "RequestAuthentication"): ("spec", "selector", "matchLabels"),
    (TELEMETRY, "Telemetry"): ("spec", "selector", "matchLabels"),
    (NETWORKING, "Sidecar"): ("spec", "workloadSelector", "labels"),
    (NETWORKING, "EnvoyFilter"): ("spec", "workloadSelector", "labels"),
}


def _selector(item: K8sObject) -> dict[str, str]:
    path = SELECTOR_PATHS.get((item.api_group, item.kind))
    return string_map(get(item.obj, path)) if path else {}


def _candidates(item: K8sObject, ctx: Context) -> list[Workload]:
    """Workloads a policy of this namespace may select: those of its namespace, or of every
    namespace for a policy in the root namespace (mesh-wide). Nothing when the namespace has
    no workload in the input: its pods (istio-system's gateways, say) are deployed elsewhere."""
    own = istio_index(ctx).workloads_by_namespace.get(namespace_of(item), [])
    if own and namespace_of(item) == ROOT_NAMESPACE:
        return list(ctx.workloads)
    return own


# Kinds of which a workload gets one: two that select the same pods conflict.
ONE_PER_WORKLOAD = {(NETWORKING, "Sidecar"): "IST0110", (TELEMETRY, "Telemetry"): "IST0159"}


def _same_kind(item: K8sObject, ctx: Context) -> list[K8sObject]:
    """The other objects of the item's group and kind in its namespace."""
    return [
        other
        for other in ctx.objects_by_kind.get((item.api_group, item.kind), ())
        if other is not item and namespace_of(other) == namespace_of(item)
    ]


def workload_selector_conflict(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if (item.api_group, item.kind) not in ONE_PER_WORKLOAD:
        return
    mine = _selector(item)
    if not mine:
        return
    pods = [w for w in _candidates(item, ctx) if labels_match(mine, w.pod_labels)]
    for other in _same_kind(item, ctx):
        theirs = _selector(other)
        shared = next((w for w in pods if labels_match(theirs, w.pod_labels)), None)
        if theirs and shared is not None:
            yield Hit(
                SELECTOR_PATHS[(item.api_group, item.kind)],
                f"{shared.display} is also selected by {other.kind} {other.name}",
            )


rule(
    id="MR317",
    name="workload-selector-conflict",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="another Sidecar or Telemetry of the namespace selects the same workload",
    description=(
        "A workload gets the configuration of one Sidecar and of one Telemetry of its "
        "namespace. When two of the same kind select the same pods with their workload "
        "selectors, which one applies is undefined (IST0110 "
        "ConflictingSidecarWorkloadSelectors, IST0159 ConflictingTelemetryWorkloadSelectors)."
    ),
    remediation="Make the workload selectors disjoint, or merge the two objects.",
)(workload_selector_conflict)


def multiple_namespace_defaults(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if (item.api_group, item.kind) not in ONE_PER_WORKLOAD or _selector(item):
        return
    others = [o.name for o in _same_kind(item, ctx) if not _selector(o)]
    if others:
        yield Hit(("spec",), f"also {item.kind} {', '.join(others)}")


rule(
    id="MR318",
    name="multiple-namespace-defaults",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="more than one Sidecar or Telemetry of the namespace has no workload selector",
    description=(
        "A Sidecar or Telemetry without a workload selector is the default of its namespace. "
        "With two of one kind, which one applies to the namespace's workloads is undefined "
        "(IST0111 MultipleSidecarsWithoutWorkloadSelectors, IST0160 "
        "MultipleTelemetriesWithoutWorkloadSelectors)."
    ),
    remediation="Keep one selector-less object of each kind per namespace; give the others a selector.",
)(multiple_namespace_defaults)


def policy_selects_no_workload(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    path = SELECTOR_PATHS.get((item.api_group, item.kind))
    if path is None:
        return
    spec = as_dict(item.obj.get("spec"))
    if "targetRef" in spec or "targetRefs" in spec:
        return
    selector = _selector(item)
    candidates = _candidates(item, ctx)
    if (
        selector
        and candidates
        and not any(labels_match(selector, w.pod_labels) for w in candidates)
    ):
        yield Hit(path, selector_text(selector))


rule(
    id="MR319",
    name="policy-selects-no-workload",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="policy selector matches no workload of its namespace",
    description=(
        "An AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Telemetry, "
        "Sidecar or EnvoyFilter with a workload selector applies to the pods of its namespace "
        "that carry those labels (in the root namespace istio-system: the pods of every "
        "namespace). If "
        "none does, the policy protects or configures nothing, usually because of a label "
        "typo (IST0127 NoMatchingWorkloadsFound). Policies of a namespace without any workload "
        "in the input (its pods are deployed elsewhere), and policies attached with "
        "`targetRef(s)`, are not checked."
    ),
    remediation="Make the selector equal to labels of the intended pod template.",
)(policy_selects_no_workload)


def _identities(item: K8sObject) -> Iterator[tuple[Path, str]]:
    for i, rule_ in enumerate(as_list(get(item.obj, ("spec", "rules")))):
        for j, source in enumerate(as_list(as_dict(rule_).get("from"))):
            source = as_dict(as_dict(source).get("source"))
            for key in ("principals", "notPrincipals"):
                for k, principal in enumerate(as_list(source.get(key))):
                    yield ("spec", "rules", i, "from", j, "source", key, k), str(principal)


def parse_principal(principal: str) -> tuple[str, str] | None:
    """(namespace, service account) of TRUST_DOMAIN/ns/NAMESPACE/sa/ACCOUNT, without
    wildcards; None for anything else."""
    parts = principal.split("/")
    if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa" or "*" in principal:
        return None
    return (parts[2], parts[4]) if parts[2] and parts[4] else None


def authz_principal_unknown_sa(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if item.kind != "AuthorizationPolicy" or item.api_group != SECURITY:
        return
    index = istio_index(ctx)
    for path, principal in _identities(item):
        parsed = parse_principal(principal)
        if parsed is None:
            continue
        namespace, account = parsed
        if namespace not in index.namespaces or account == "default":
            continue
        if (namespace, account) in ctx.service_accounts:  # keyed by namespace_key
            continue
        if any(
            w.pod_spec.get("serviceAccountName") == account
            for w in index.workloads_by_namespace.get(namespace, ())
        ):
            continue
        yield Hit(path, f"{principal}: no ServiceAccount {namespace}/{account}")


rule(
    id="MR320",
    name="authz-principal-unknown-sa",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="AuthorizationPolicy principal names a ServiceAccount that is not in the input",
    description=(
        "A principal `cluster.local/ns/NAMESPACE/sa/ACCOUNT` is the mTLS identity of pods "
        "running as that ServiceAccount. If the account does not exist, no client has that "
        "identity: an ALLOW rule allows nobody and a DENY rule denies nobody, silently. "
        "Checked only for namespaces that are part of the input (a gateway's account in "
        "istio-system is assumed to exist), and the `default` account always exists; an "
        "account some workload of the input runs as is taken as existing."
    ),
    remediation=(
        "Correct the namespace or account name (a workload's `serviceAccountName`), or add "
        "the ServiceAccount."
    ),
)(authz_principal_unknown_sa)


def _disabled_tls(dr: K8sObject) -> Iterator[Path]:
    """Paths of every `tls.mode: DISABLE` in a DestinationRule (top level, ports, subsets)."""
    spec = as_dict(dr.obj.get("spec"))
    policies: list[tuple[Path, Any]] = [(("spec", "trafficPolicy"), spec.get("trafficPolicy"))]
    for k, subset in enumerate(as_list(spec.get("subsets"))):
        policies.append(
            (("spec", "subsets", k, "trafficPolicy"), as_dict(subset).get("trafficPolicy"))
        )
    for base, policy in policies:
        policy = as_dict(policy)
        if str(get(policy, ("tls", "mode"), "")).upper() == "DISABLE":
            yield (*base, "tls", "mode")
        for p, port in enumerate(as_list(policy.get("portLevelSettings"))):
            if str(get(port, ("tls", "mode"), "")).upper() == "DISABLE":
                yield (*base, "portLevelSettings", p, "tls", "mode")


def _strict_policy(service: Service, ctx: Context) -> K8sObject | None:
    """The PeerAuthentication whose STRICT mode governs the Service's pods, if any: the most
    specific one with a mode (workload selector, then namespace, then root namespace)."""
    namespace = namespace_of(service)
    pods = ctx.workloads_of.get(id(service), [])
    layers: list[list[K8sObject]] = [[], [], []]
    for pa in ctx.objects_by_kind.get((SECURITY, "PeerAuthentication"), ()):
        selector = _selector(pa)
        if namespace_of(pa) == namespace and selector:
            if any(labels_match(selector, w.pod_labels) for w in pods):
                layers[0].append(pa)
        elif namespace_of(pa) == namespace:
            layers[1].append(pa)
        elif namespace_of(pa) == ROOT_NAMESPACE and not selector:
            layers[2].append(pa)
    for layer in layers:
        for pa in layer:
            mode = str(get(pa.obj, ("spec", "mtls", "mode"), "") or "").upper()
            if mode and mode != "UNSET":
                return pa if mode == "STRICT" else None
    return None


def mtls_strict_tls_disabled(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    if item.kind != "DestinationRule" or item.api_group != NETWORKING:
        return
    paths = list(_disabled_tls(item))
    host = get(item.obj, ("spec", "host"))
    if not paths or not isinstance(host, str) or not host:
        return
    pattern = fqdn(host, namespace_of(item))
    index = istio_index(ctx)
    exact = cluster_service(pattern)
    services = (
        [index.services[exact]]
        if exact in index.services
        else [
            s
            for (ns, name), s in index.services.items()
            if "*" in pattern and hosts_overlap(pattern, f"{name}.{ns}.svc.cluster.local")
        ]
    )
    for service in services:
        strict = _strict_policy(service, ctx)
        if strict is not None:
            for path in paths:
                yield Hit(
                    path,
                    f"Service {namespace_of(service)}/{service.name} is STRICT by "
                    f"PeerAuthentication {namespace_of(strict)}/{strict.name}",
                )
            return


rule(
    id="MR321",
    name="mtls-strict-tls-disabled",
    severity=Severity.ERROR,
    scope=Scope.ISTIO,
    message="DestinationRule disables TLS to pods whose PeerAuthentication is STRICT",
    description=(
        "With PeerAuthentication STRICT the server-side proxies accept only mutual TLS. A "
        "DestinationRule with `tls.mode: DISABLE` for the same host makes clients send "
        "plain text, and every connection is reset (Istio's MTLSPolicyConflict, IST0113)."
    ),
    remediation=(
        "Remove the `tls` block (auto mTLS picks ISTIO_MUTUAL) or set `tls.mode: ISTIO_MUTUAL`; "
        "or relax the PeerAuthentication to PERMISSIVE for that workload or port."
    ),
)(mtls_strict_tls_disabled)


# API groups of Istio kinds that are gone, with what replaced them.
REMOVED_KINDS: dict[str, str] = {
    "rbac.istio.io": "AuthorizationPolicy (security.istio.io)",
    "authentication.istio.io": "PeerAuthentication and RequestAuthentication (security.istio.io)",
    "config.istio.io": "Telemetry and Wasm plugins (Mixer was removed in Istio 1.8)",
}


def _deprecated_fields(item: K8sObject) -> Iterator[tuple[Path, str]]:
    spec = as_dict(item.obj.get("spec"))
    if item.kind == "VirtualService":
        for i, route in enumerate(as_list(spec.get("http"))):
            route = as_dict(route)
            if get(route, ("fault", "delay", "percent")) is not None:
                yield (
                    ("spec", "http", i, "fault", "delay", "percent"),
                    "fault.delay.percent: use percentage",
                )
            for old in ("mirrorPercent", "mirror_percent"):
                if old in route:
                    yield ("spec", "http", i, old), f"{old}: use mirrorPercentage"
            if get(route, ("corsPolicy", "allowOrigin")) is not None:
                yield (
                    ("spec", "http", i, "corsPolicy", "allowOrigin"),
                    "corsPolicy.allowOrigin: use allowOrigins",
                )
    elif item.kind == "DestinationRule":
        policies: list[tuple[Path, Any]] = [(("spec", "trafficPolicy"), spec.get("trafficPolicy"))]
        for k, subset in enumerate(as_list(spec.get("subsets"))):
            policies.append(
                (("spec", "subsets", k, "trafficPolicy"), as_dict(subset).get("trafficPolicy"))
            )
        for base, policy in policies:
            policy = as_dict(policy)
            places = [(base, policy)] + [
                ((*base, "portLevelSettings", p), as_dict(port))
                for p, port in enumerate(as_list(policy.get("portLevelSettings")))
            ]
            for where, settings in places:
                if get(settings, ("outlierDetection", "consecutiveErrors")) is not None:
                    yield (
                        (*where, "outlierDetection", "consecutiveErrors"),
                        "outlierDetection.consecutiveErrors: use consecutive5xxErrors",
                    )
    elif item.kind == "Sidecar":
        if get(spec, ("outboundTrafficPolicy", "egressProxy")) is not None:
            yield (
                ("spec", "outboundTrafficPolicy", "egressProxy"),
                "outboundTrafficPolicy.egressProxy is ignored",
            )
    elif item.kind == "EnvoyFilter":
        if "workloadLabels" in spec:
            yield ("spec", "workloadLabels"), "workloadLabels was removed: use workloadSelector"
        if "filters" in spec:
            yield ("spec", "filters"), "filters was removed: use configPatches"


def istio_deprecated_field(item: K8sObject, ctx: Context) -> Iterator[Hit]:
    replacement = REMOVED_KINDS.get(item.api_group)
    if replacement is not None:
        yield Hit(("apiVersion",), f"{item.api_group} {item.kind}: use {replacement}")
        return
    if item.api_group == NETWORKING:
        for path, detail in _deprecated_fields(item):
            yield Hit(path, detail)


rule(
    id="MR322",
    name="istio-deprecated-field",
    severity=Severity.WARNING,
    scope=Scope.ISTIO,
    message="Istio object uses a deprecated or removed field or kind",
    description=(
        "Istio keeps deprecated fields for a while and then drops them; a removed field or "
        "kind is ignored (or refused) after an upgrade, and the behaviour it configured is "
        "gone (IST0002 Deprecated): VirtualService `fault.delay.percent`, `mirrorPercent`, "
        "`corsPolicy.allowOrigin`; DestinationRule `outlierDetection.consecutiveErrors`; "
        "Sidecar `outboundTrafficPolicy.egressProxy`; EnvoyFilter `workloadLabels` and "
        "`filters`; the rbac.istio.io, authentication.istio.io and config.istio.io kinds."
    ),
    remediation="Use the replacement the finding names.",
)(istio_deprecated_field)


# Pod annotations Istio's annotation reference marks deprecated, with their replacement.
DEPRECATED_ANNOTATIONS: dict[str, str] = {
    "sidecar.istio.io/controlPlaneAuthPolicy": "the control plane always uses mTLS",
    "sidecar.istio.io/discoveryAddress": "use proxy.istio.io/config discoveryAddress",
    "sidecar.istio.io/statsInclusionPrefixes": "use proxy.istio.io/config proxyStatsMatcher",
    "sidecar.istio.io/statsInclusionSuffixes": "use proxy.istio.io/config proxyStatsMatcher",
    "sidecar.istio.io/statsInclusionRegexps": "use proxy.istio.io/config proxyStatsMatcher",
    "alpha.istio.io/identity": "the identity is the pod's ServiceAccount",
}
MIXER_ANNOTATION_PREFIX = "policy.istio.io/"


def istio_deprecated_annotation(workload: Workload, ctx: Context) -> Iterator[Hit]:
    annotations = workload.pod_annotations
    if not annotations:
        return
    base = (*workload.template_path, "metadata", "annotations")
    for key in annotations:
        if key in DEPRECATED_ANNOTATIONS:
            yield Hit((*base, key), f"{key}: {DEPRECATED_ANNOTATIONS[key]}")
        elif key.startswith(MIXER_ANNOTATION_PREFIX):
            yield Hit((*base, key), f"{key}: Mixer was removed in Istio 1.8")


rule(
    id="MR323",
    name="istio-deprecated-annotation",
    severity=Severity.INFO,
    scope=Scope.WORKLOAD,
    message="pod template uses a deprecated Istio annotation",
    description=(
        "Istio's annotation reference marks some pod annotations deprecated (the "
        "sidecar.istio.io statsInclusion* family, controlPlaneAuthPolicy, discoveryAddress) "
        "and Mixer's policy.istio.io/* annotations are gone; they may stop working on the "
        "next upgrade (IST0135 DeprecatedAnnotation)."
    ),
    remediation="Replace the annotation as the finding says, or remove it.",
)(istio_deprecated_annotation)
