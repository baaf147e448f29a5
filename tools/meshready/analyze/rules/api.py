"""MR4xx: what the Kubernetes API server itself would refuse, found before it does."""

from __future__ import annotations

from collections.abc import Iterator

from meshready.analyze.rules.base import Hit, Scope, Severity, rule
from meshready.analyze.rules.model import Context, K8sObject
from meshready.manifests.names import name_problem

K8S_NAMES = "https://kubernetes.io/docs/concepts/overview/working-with-objects/names/"


def invalid_object_name(subject: K8sObject, ctx: Context) -> Iterator[Hit]:
    if not subject.name:
        return
    problem = name_problem(subject.kind, subject.name)
    if problem:
        yield Hit(("metadata", "name"), problem)


rule(
    id="MR401",
    name="invalid-object-name",
    severity=Severity.ERROR,
    scope=Scope.OBJECT,
    message="the API server rejects this object's name",
    description=(
        "Every name must be a path segment (no `/`, `%`, `.` or `..`), and most kinds are "
        "stricter: a Service's name is an RFC 1035 label, a Namespace's an RFC 1123 label, a "
        "ConfigMap's or Deployment's an RFC 1123 subdomain (lower-case letters, digits, `-` "
        "and `.`, at most 253 characters). Such an object never reaches the cluster, and "
        "the sync stops at it; as a file name it could even point outside the directory."
    ),
    remediation="Rename the object: lower-case letters, digits and '-', starting with a letter.",
    upstream=(
        "The API server validates `metadata.name` on create (apimachinery's "
        "NameIsDNSSubdomain, NameIsDNSLabel, ValidatePathSegmentName); kubectl and the "
        "GitOps agents get an `Invalid value` error. Unknown kinds are held to the "
        "path-segment rule only."
    ),
    deliberate="None: no cluster accepts the name.",
    reference=K8S_NAMES,
)(invalid_object_name)
