"""The rule catalog: one small `Rule` per check, kube-linter style.

A rule has a stable ID (MR0xx suppression, MR1xx mesh readiness, MR2xx workload
policy, MR3xx Istio configuration), a kebab-case name, a default severity, a one-line message, a description
(why it matters) and a remediation (how to fix it). Its `check` looks at one subject
(a workload, a Service, or an Istio object, according to `scope`) with the indexed target
around it, and yields a `Hit` per problem: the path of the offending field and a detail.

`docs/rules.md` is generated from this catalog (`meshready rules --markdown`).
"""

# Importing the rule modules fills CATALOG.
from meshready.analyze.rules import (  # noqa: F401
    api,
    istio,
    istio_routing,
    istio_security,
    mesh,
    policy,
    suppression,
)
from meshready.analyze.rules.base import (
    CATALOG,
    Hit,
    Rule,
    Scope,
    Severity,
    add,
    by_id_or_name,
    rule,
)

__all__ = ["CATALOG", "Hit", "Rule", "Scope", "Severity", "add", "by_id_or_name", "rule"]
