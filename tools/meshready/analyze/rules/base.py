"""The rule unit (kube-linter style) and the catalog every rule module registers in."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from meshready.analyze.rules.model import Path


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[str(text).upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (error, warning or info)") from None


class Scope(enum.StrEnum):
    WORKLOAD = "workload"  # Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod
    SERVICE = "service"
    OBJECT = "object"  # every object of the target (annotations, Namespaces)
    ISTIO = "istio"  # objects of the *.istio.io API groups (Gateway, VirtualService, ...)
    ENGINE = "engine"  # raised by the engine itself (suppression problems), no check function


class Hit(NamedTuple):
    path: Path  # field of the rendered object at fault (its nearest source line is reported)
    detail: str = ""  # what exactly is wrong, appended to the rule's message


Check = Callable[[Any, Any], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    scope: Scope
    message: str
    description: str
    remediation: str
    check: Check | None = None
    category: str = ""
    # What Istio or Pod Security itself does about it, for docs/rules.md.
    upstream: str = ""
    # How to answer the rule when what it flags is a deliberate choice.
    deliberate: str = ""
    # Absolute link to the upstream documentation the rule follows.
    reference: str = ""
    # Rules whose premise is a sidecar in the pod: they do not apply to a pod that opts
    # out with `sidecar.istio.io/inject: "false"`.
    needs_sidecar: bool = False

    @property
    def mesh(self) -> bool:
        """A mesh-readiness rule: it does not apply where Istio never injects."""
        return self.id[2] == "1"

    def format(self, hit: Hit) -> str:
        return f"{self.message}: {hit.detail}" if hit.detail else self.message


CATALOG: dict[str, Rule] = {}


def rule(
    id: str,
    name: str,
    severity: Severity,
    scope: Scope,
    message: str,
    description: str,
    remediation: str,
    upstream: str = "",
    deliberate: str = "",
    reference: str = "",
    needs_sidecar: bool = False,
) -> Callable[[Check], Check]:
    """Register the decorated check function as a rule of the catalog."""

    def register(check: Check) -> Check:
        add(
            Rule(
                id,
                name,
                severity,
                scope,
                message,
                description,
                remediation,
                check,
                upstream=upstream,
                deliberate=deliberate,
                reference=reference,
                needs_sidecar=needs_sidecar,
            )
        )
        return check

    return register


def add(new: Rule) -> Rule:
    if new.id in CATALOG or any(r.name == new.name for r in CATALOG.values()):
        raise ValueError(f"duplicate rule {new.id} {new.name}")
    category = {
        "0": "suppression",
        "1": "mesh readiness",
        "2": "workload policy",
        "3": "istio configuration",
        "4": "kubernetes api",
    }[new.id[2]]
    registered = Rule(**{**new.__dict__, "category": category})
    CATALOG[new.id] = registered
    return registered


# Former names of renamed rules, so that suppressions and configuration naming them still work.
RENAMED: dict[str, str] = {
    "inject-annotation-on-workload": "MR114",
    "unknown-sidecar-annotation": "MR115",
}


def by_id_or_name(key: str) -> Rule | None:
    key = key.strip()
    if key.upper() in CATALOG:
        return CATALOG[key.upper()]
    if key in RENAMED:
        return CATALOG.get(RENAMED[key])
    return next((r for r in CATALOG.values() if r.name == key), None)
