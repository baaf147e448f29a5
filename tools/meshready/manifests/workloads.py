"""The one pod-template walker: where a kind keeps its pod template, and the containers
in it. The analysis rules and image pinning both read workloads through this module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Path = tuple[str | int, ...]

# kind -> path of the pod template (metadata + spec) inside the object; () for a bare Pod.
POD_TEMPLATE_PATHS: dict[str, Path] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}
WORKLOAD_KINDS = frozenset(POD_TEMPLATE_PATHS)
# App containers first, then init containers: the order findings are reported in.
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        if isinstance(key, str) and isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(key, int) and isinstance(obj, list) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def pod_template_path(obj: dict[str, Any]) -> Path | None:
    """Where `obj` keeps its pod template, or None when it holds none. Kinds other than the
    built-in ones (an Argo Rollout, an operator's CRD) count when `spec.template` holds a
    pod spec with containers, the shape every such controller copies."""
    known = POD_TEMPLATE_PATHS.get(str(obj.get("kind")))
    if known is not None:
        return known
    if isinstance(_get(obj, ("spec", "template", "spec", "containers")), list):
        return ("spec", "template")
    return None


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload or Pod, or None."""
    template = pod_template_path(obj)
    if template is None:
        return None
    spec = _get(obj, (*template, "spec"))
    return spec if isinstance(spec, dict) else None


def containers(
    spec: dict[str, Any], fields: tuple[str, ...] = CONTAINER_FIELDS
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(field, index, container) for every container of a pod spec, in `fields` order."""
    for field in fields:
        group = spec.get(field)
        if not isinstance(group, list):
            continue
        for index, container in enumerate(group):
            if isinstance(container, dict):
                yield field, index, container
