"""Per-object suppression: the `meshready.dev/ignore` annotation and the rules about it.

Format (the value of the annotation on the object's own metadata):

    meshready.dev/ignore: "MR201,MR203: the image runs as root until #42 lands"

One or more clauses separated by `;` or newlines; each clause is a comma-separated
list of rule IDs (or rule names), a colon, and the reason. A clause without a reason
suppresses nothing and is itself a finding (MR001), so that every exception in the
repository says why it is there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from meshready.analyze.rules.base import Rule as _Rule
from meshready.analyze.rules.base import Scope, Severity, add, by_id_or_name

ANNOTATION = "meshready.dev/ignore"

MISSING_REASON = add(
    _Rule(
        id="MR001",
        name="suppression-without-reason",
        severity=Severity.ERROR,
        scope=Scope.ENGINE,
        message=f"{ANNOTATION} clause has no reason, so it suppresses nothing",
        description=(
            "A suppression hides a finding from every later reviewer. Without a reason "
            "nobody can tell whether the exception still holds, so a clause without one is "
            "ignored and reported."
        ),
        remediation=(
            f"Write each clause as `RULE-ID[,RULE-ID]: reason`, e.g. `{ANNOTATION}: "
            '"MR203: nginx writes its pid file to /var/run"`.'
        ),
        upstream=(
            "Istio's own suppression, `galley.istio.io/analyze-suppress: IST0103,IST0108`, "
            "takes no reason; kube-linter's `ignore-check.kube-linter.io/<check>` takes one "
            "as the value."
        ),
        deliberate="None: a suppression without a reason is what this rule exists to refuse.",
    )
)
UNKNOWN_RULE = add(
    _Rule(
        id="MR002",
        name="suppression-unknown-rule",
        severity=Severity.WARNING,
        scope=Scope.ENGINE,
        message=f"{ANNOTATION} names a rule that does not exist",
        description=(
            "A misspelt rule ID suppresses nothing, and the finding it was meant to hide "
            "still fails the job; a stale one hides nothing and only misleads."
        ),
        remediation="Use an ID or name listed by `meshready rules`, or remove the clause.",
        upstream="Istio ignores unknown codes in galley.istio.io/analyze-suppress silently.",
        deliberate="A rule of a newer meshready: keep the clause and lower MR002 for the target.",
    )
)


@dataclass
class Suppression:
    rules: dict[str, str] = field(default_factory=dict)  # rule ID -> reason
    missing_reason: list[str] = field(default_factory=list)  # clauses without a reason
    unknown: list[str] = field(default_factory=list)  # names that are not rules


_CLAUSE_SPLIT = re.compile(r"[;\n]")


def parse(value: str) -> Suppression:
    found = Suppression()
    for clause in _CLAUSE_SPLIT.split(value):
        clause = clause.strip()
        if not clause:
            continue
        ids_part, sep, reason = clause.partition(":")
        reason = reason.strip()
        names = [n.strip() for n in ids_part.split(",") if n.strip()]
        if not sep or not reason:
            found.missing_reason.append(clause)
            continue
        for name in names:
            known = by_id_or_name(name)
            if known is None:
                found.unknown.append(name)
            else:
                found.rules[known.id] = reason
    return found
