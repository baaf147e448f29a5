"""The plain data the rules look at: workloads, Services and the per-target context.

Everything here is read straight from rendered Kubernetes objects (dicts). Paths are
tuples of keys and list indexes into the rendered object, so a finding can be mapped
back to a line of the source file it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]

# Kinds whose pods are meant to stay up and serve; Jobs run to completion. An Argo Rollout
# is a Deployment with a rollout strategy: same replicas, selector and template fields.
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout"})
REPLICATED_KINDS = frozenset(
    {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "Rollout"}
)
# Namespaces Istio never injects and its analyzers skip: mesh readiness does not apply there.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "istio-system"})
INJECT = "sidecar.istio.io/inject"
# The values Istio's injector reads as "inject" (YAML 1.1 booleans, any case); any other
# non-empty value means "do not inject".
INJECT_TRUE = frozenset({"y", "yes", "true", "on"})
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
PROBE_HANDLERS = ("httpGet", "tcpSocket", "grpc")


class cached_property:
    """functools.cached_property without its per-instance lock (Python 3.11 takes one on
    every first access: about a fifth of the analysis time of a large target). Objects
    are analysed by one thread, so the lock buys nothing here."""

    def __init__(self, function: Any):
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.function(instance)
        return value


def get(obj: Any, path: Path, default: Any = None) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(obj, list) or key >= len(obj):
                return default
        elif not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def string_map(value: Any) -> dict[str, str]:
    """Labels, annotations and selectors as str -> str, whatever YAML typed them as."""
    return {str(k): str(v) for k, v in as_dict(value).items()}


@dataclass(eq=False)
class K8sObject:
    """One rendered object with the identity every finding names."""

    obj: dict[str, Any]
    kind: str
    name: str
    namespace: str
    source_path: str | None = None
    index: int = 0  # position in the target's render, for a stable order

    @cached_property
    def metadata(self) -> dict[str, Any]:
        return as_dict(self.obj.get("metadata"))

    @cached_property
    def labels(self) -> dict[str, str]:
        return string_map(self.metadata.get("labels"))

    @cached_property
    def annotations(self) -> dict[str, str]:
        return string_map(self.metadata.get("annotations"))

    @cached_property
    def api_group(self) -> str:
        """The API group of apiVersion ("" for the core group): versions of a group alike."""
        group, _, _ = str(self.obj.get("apiVersion", "")).rpartition("/")
        return group

    @property
    def namespace_key(self) -> str:
        """The namespace the object lands in: an omitted namespace is `default`, as for
        `kubectl apply` without `-n`, so it meets objects that say `namespace: default`."""
        return self.namespace or "default"

    @property
    def display(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )


# Rules read the same fields many times; objects are never mutated during analysis, so
# derived views are computed once (cached_property).
@dataclass(eq=False)
class Container:
    spec: dict[str, Any]
    path: Path  # path of this container inside the rendered object
    init: bool = False

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "?"))

    @cached_property
    def ports(self) -> list[dict[str, Any]]:
        return [p for p in as_list(self.spec.get("ports")) if isinstance(p, dict)]

    def port_numbers(self) -> set[int]:
        return self._port_numbers

    def port_names(self) -> set[str]:
        return self._port_names

    @cached_property
    def _port_numbers(self) -> set[int]:
        return {p["containerPort"] for p in self.ports if isinstance(p.get("containerPort"), int)}

    @cached_property
    def _port_names(self) -> set[str]:
        return {str(p["name"]) for p in self.ports if p.get("name")}

    @cached_property
    def security_context(self) -> dict[str, Any]:
        return as_dict(self.spec.get("securityContext"))

    @cached_property
    def probe_ports(self) -> tuple[tuple[str, Any, Path], ...]:
        """(probe name, port, path inside the container) for every probe that names a port."""
        found = []
        spec = self.spec
        for probe in PROBES:
            handler = spec.get(probe)
            if not isinstance(handler, dict):
                continue
            for kind in PROBE_HANDLERS:
                action = handler.get(kind)
                if isinstance(action, dict) and "port" in action:
                    found.append((probe, action["port"], (probe, kind, "port")))
        return tuple(found)


@dataclass(eq=False)
class Workload(K8sObject):
    template_path: Path = ()

    @cached_property
    def pod_metadata(self) -> dict[str, Any]:
        return as_dict(get(self.obj, (*self.template_path, "metadata")))

    @cached_property
    def pod_labels(self) -> dict[str, str]:
        return string_map(self.pod_metadata.get("labels"))

    @cached_property
    def pod_annotations(self) -> dict[str, str]:
        return string_map(self.pod_metadata.get("annotations"))

    @cached_property
    def pod_spec_path(self) -> Path:
        return (*self.template_path, "spec")

    @cached_property
    def pod_spec(self) -> dict[str, Any]:
        return as_dict(get(self.obj, self.pod_spec_path))

    @cached_property
    def app_containers(self) -> tuple[Container, ...]:
        """The pod's containers, without its init containers."""
        return self._container_group("containers", init=False)

    @cached_property
    def all_containers(self) -> tuple[Container, ...]:
        """Containers, then init containers."""
        return self.app_containers + self._container_group("initContainers", init=True)

    @cached_property
    def pod_security_context(self) -> dict[str, Any]:
        return as_dict(self.pod_spec.get("securityContext"))

    def _container_group(self, key: str, init: bool) -> tuple[Container, ...]:
        return tuple(
            Container(container, (*self.pod_spec_path, key, i), init)
            for i, container in enumerate(as_list(self.pod_spec.get(key)))
            if isinstance(container, dict)
        )

    @property
    def serves_ports(self) -> bool:
        return any(c.ports for c in self.app_containers)

    @cached_property
    def pod_injection(self) -> bool | None:
        """What the pod itself says about sidecar injection, read as Istio's injector reads
        it: the `sidecar.istio.io/inject` label, else the annotation; None when neither
        is set (the namespace decides)."""
        value = self.pod_labels.get(INJECT, self.pod_annotations.get(INJECT, ""))
        if not value:
            return None
        return value.lower() in INJECT_TRUE

    @property
    def opted_out(self) -> bool:
        """The pod says it runs without a sidecar (`sidecar.istio.io/inject: "false"`)."""
        return self.pod_injection is False


@dataclass
class ServicePort:
    spec: dict[str, Any]
    path: Path

    @property
    def number(self) -> Any:
        return self.spec.get("port")

    @property
    def target(self) -> Any:
        """targetPort, which defaults to the port itself."""
        return self.spec.get("targetPort", self.spec.get("port"))


@dataclass(eq=False)
class Service(K8sObject):
    @cached_property
    def selector(self) -> dict[str, str]:
        return string_map(get(self.obj, ("spec", "selector")))

    @cached_property
    def ports(self) -> list[ServicePort]:
        return [
            ServicePort(p, ("spec", "ports", i))
            for i, p in enumerate(as_list(get(self.obj, ("spec", "ports"))))
            if isinstance(p, dict)
        ]


@dataclass
class TargetSettings:
    """How a target is analysed, from [tool.meshready] (see analyze.settings_for)."""

    production: bool = False
    require_digest: bool = False
    # Workloads whose Namespace object is not in the target are flagged too.
    require_namespace: bool = False
    # Istio ingress/egress gateways are installed outside this target (MR313 stays quiet).
    external_gateways: bool = False


@dataclass
class Context:
    """Everything a rule may look at besides its subject: one rendered target, indexed."""

    settings: TargetSettings
    workloads: list[Workload] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    namespaces: dict[str, K8sObject] = field(default_factory=dict)
    # id(workload) -> the Services in its namespace whose selector matches its pods
    services_of: dict[int, list[Service]] = field(default_factory=dict)
    # id(service) -> the workloads it selects
    workloads_of: dict[int, list[Workload]] = field(default_factory=dict)
    # id(workload) -> the PodDisruptionBudgets that select its pods
    pdbs_of: dict[int, list[K8sObject]] = field(default_factory=dict)
    # (namespace, name) -> ServiceAccount object
    service_accounts: dict[tuple[str, str], K8sObject] = field(default_factory=dict)
    # (namespace, kind, name) of a scale target -> HorizontalPodAutoscaler
    autoscalers: dict[tuple[str, str, str], K8sObject] = field(default_factory=dict)
    # namespaces (namespace_key) that hold at least one workload of the target
    workload_namespaces: set[str] = field(default_factory=set)
    # Every object by (apiVersion group, kind), in render order: cross-references between
    # custom resources (Istio's MR3xx) look here.
    objects_by_kind: dict[tuple[str, str], list[K8sObject]] = field(default_factory=dict)
    # Objects of the *.istio.io API groups: the subjects of Scope.ISTIO rules.
    istio_objects: list[K8sObject] = field(default_factory=list)
    # Views a rule family derives once per target from the indexes above, by family name.
    derived: dict[str, Any] = field(default_factory=dict)


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def expressions_match(expressions: list[Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    for expr in expressions:
        if not isinstance(expr, dict):
            return False
        key = str(expr.get("key"))
        values = {str(v) for v in as_list(expr.get("values"))}
        operator = expr.get("operator")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def label_selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions); an empty one matches everything."""
    selector = as_dict(selector)
    return labels_match(string_map(selector.get("matchLabels")), labels) and expressions_match(
        as_list(selector.get("matchExpressions")), labels
    )
