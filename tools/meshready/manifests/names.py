"""Kubernetes' object-name rules (apimachinery's validation), as pure checks.

Every kind's name is at least a path segment: not `.` or `..`, without `/` or `%`, because
the API server puts it in a URL path. Most kinds are stricter. Hydration turns names into
file names, so a name that breaks these rules must never reach the file system."""

from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_MAX, SUBDOMAIN_MAX = 63, 253

# Kinds whose names are DNS labels; RBAC kinds take any path segment ("system:..." names).
_DNS1035_LABEL_KINDS = frozenset({"Service"})
_DNS1123_LABEL_KINDS = frozenset({"Namespace"})
_PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
# Built-in kinds whose names the API server validates as RFC 1123 subdomains. Other kinds
# (custom resources among them) are held to the path-segment rule only: a stricter guess
# about a kind we do not know would cry wolf.
SUBDOMAIN_KINDS = frozenset(
    {
        "ConfigMap", "Secret", "ServiceAccount", "Pod", "PodTemplate", "ReplicationController",
        "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
        "PersistentVolume", "PersistentVolumeClaim", "Endpoints", "LimitRange", "ResourceQuota",
        "Ingress", "IngressClass", "NetworkPolicy", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "PriorityClass", "StorageClass", "Lease",
        "CustomResourceDefinition", "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)  # fmt: skip


def path_segment_problem(name: str) -> str | None:
    """Why `name` is not a valid path segment (the rule every kind's name obeys), or None."""
    if not name:
        return "the name is empty"
    if name in (".", ".."):
        return f"the name may not be {name!r}"
    for bad in ("/", "%"):
        if bad in name:
            return f"the name may not contain {bad!r}"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "the name may not contain control characters"
    return None


def name_problem(kind: str, name: str) -> str | None:
    """Why the API server would reject `name` for an object of `kind`, or None."""
    problem = path_segment_problem(name)
    if problem or kind in _PATH_SEGMENT_KINDS:
        return problem
    if kind not in _DNS1035_LABEL_KINDS | _DNS1123_LABEL_KINDS | SUBDOMAIN_KINDS:
        return None
    if kind in _DNS1035_LABEL_KINDS:
        pattern, limit, rule = DNS1035_LABEL, LABEL_MAX, "an RFC 1035 label"
    elif kind in _DNS1123_LABEL_KINDS:
        pattern, limit, rule = DNS1123_LABEL, LABEL_MAX, "an RFC 1123 label"
    else:
        pattern, limit, rule = DNS1123_SUBDOMAIN, SUBDOMAIN_MAX, "an RFC 1123 subdomain"
    if len(name) > limit:
        return f"the name is {len(name)} characters long; {kind} names are at most {limit}"
    if not pattern.fullmatch(name):
        dots = ", '.' between labels" if pattern is DNS1123_SUBDOMAIN else ""
        start = "a letter" if pattern is DNS1035_LABEL else "a letter or digit"
        return (
            f"{name!r} is not {rule} (lower-case letters, digits and '-'{dots}, "
            f"starting with {start} and ending with a letter or digit)"
        )
    return None
