"""Report formats for `meshready analyze`, behind one interface: `render(report, fmt, verbose)`.

- text: grouped by target and object, for people;
- json: a list with one record per finding;
- sarif: SARIF 2.1.0 for code scanning (suppressed findings carry `suppressions`);
- github: workflow commands (`::error file=...,line=...::`) that annotate a pull request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import groupby

from meshready import __version__
from meshready.analyze.engine import AnalysisReport, Finding
from meshready.analyze.rules import CATALOG, Rule, Severity
from meshready.analyze.sources import InputError

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 or word == 'info' else 's'}"


def summary_line(report: AnalysisReport) -> str:
    counts = report.counts()
    parts = ", ".join(_plural(counts[s], s.label) for s in sorted(Severity, reverse=True))
    errors = f"; {_plural(len(report.errors), 'input error')}" if report.errors else ""
    return (
        f"{_plural(len(report.findings), 'finding')} ({parts}) in "
        f"{_plural(len(report.targets), 'target')}, {_plural(report.objects, 'object')}; "
        f"{len(report.suppressed)} suppressed; "
        f"{len(report.failing)} at or above {report.fail_on.label}{errors}"
    )


def _location(finding: Finding) -> str:
    if finding.file and finding.line:
        return f"{finding.file}:{finding.line}"
    return finding.file or f"{finding.target} (generated)"


def text(report: AnalysisReport, verbose: bool = False) -> str:
    lines: list[str] = []
    if report.errors:
        # First: a target that did not render or a file that did not parse was not
        # analysed at all, whatever the findings below say.
        lines.append("errors (not analysed):")
        lines.extend(f"  {e.where}: error: {e.stage} failed: {e.message}" for e in report.errors)
    shown = report.findings + (report.suppressed if verbose else [])
    by_target = {t: [f for f in shown if f.target == t] for t in report.targets}
    for target, findings in by_target.items():
        if not findings:
            continue
        lines.append(target)
        findings.sort(key=lambda f: (f.order, f.suppressed is not None))
        for obj, group in groupby(findings, key=lambda f: (f.order[0], f.object)):
            lines.append(f"  {obj[1]}")
            for finding in group:
                mark = f"  [suppressed: {finding.suppressed}]" if finding.suppressed else ""
                lines.append(
                    f"    {_location(finding)}: {finding.severity.label}: "
                    f"{finding.rule.id} {finding.rule.name}: {finding.message}{mark}"
                )
    fired = sorted({f.rule.id: f.rule for f in report.findings}.values(), key=lambda r: r.id)
    if fired:
        # Once per rule rather than per finding: the reader sees the fix without scrolling
        # to docs/rules.md, and a rule that fires fifty times does not repeat itself.
        lines.append("how to fix:")
        lines.extend(
            f"  {rule.id} {rule.name}: {rule.remediation}"
            + (f" ({rule.reference})" if rule.reference else "")
            for rule in fired
        )
    if report.suppressed and not verbose:
        lines.append(f"({len(report.suppressed)} suppressed; --verbose lists them)")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


# The shape of each JSON record, described by schemas/output/analyze.schema.json. The
# output stays a plain list, so `[]` keeps meaning "nothing wrong"; every record carries the
# version. A change a consumer must adapt to (a key removed or retyped) raises it.
JSON_VERSION = 1


def json_records(report: AnalysisReport, verbose: bool = False) -> str:
    """Input errors first (`"type": "error"`, no rule), then findings (`"type": "finding"`):
    `[]` means nothing is wrong, and nothing else does."""
    shown = report.findings + (report.suppressed if verbose else [])
    records = [{"version": JSON_VERSION, **e.as_record()} for e in report.errors] + [
        {"version": JSON_VERSION, "type": "finding", **f.as_record()} for f in shown
    ]
    return json.dumps(records, indent=2) + "\n"


def _sarif_rule(rule: Rule) -> dict:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.message},
        "fullDescription": {"text": rule.description},
        "help": {
            "text": f"{rule.description}\n\nFix: {rule.remediation}",
            "markdown": f"{rule.description}\n\n**Fix:** {rule.remediation}",
        },
        "defaultConfiguration": {"level": SARIF_LEVEL[rule.severity]},
        "properties": {"tags": [rule.category]},
    }


def _sarif_result(finding: Finding, rule_index: dict[str, int]) -> dict:
    physical: dict = {
        "artifactLocation": {
            "uri": finding.file or f"{finding.target}/kustomization.yaml",
            "uriBaseId": "%SRCROOT%",
        }
    }
    if finding.line:
        physical["region"] = {"startLine": finding.line}
    result: dict = {
        "ruleId": finding.rule.id,
        "ruleIndex": rule_index[finding.rule.id],
        "level": SARIF_LEVEL[finding.severity],
        "message": {"text": f"{finding.message} ({finding.object} in {finding.target})"},
        "locations": [
            {
                "physicalLocation": physical,
                "logicalLocations": [
                    {
                        "name": finding.name,
                        "fullyQualifiedName": f"{finding.target}/{finding.object}",
                        "kind": "object",
                    }
                ],
            }
        ],
        "partialFingerprints": {
            "meshready/v1": f"{finding.rule.id}:{finding.target}:{finding.object}:"
            + ".".join(str(p) for p in finding.path)
        },
    }
    if finding.suppressed:
        kind = "external" if finding.suppressed.startswith("disabled for ") else "inSource"
        result["suppressions"] = [{"kind": kind, "justification": finding.suppressed}]
    return result


def _sarif_notification(error: InputError) -> dict:
    """An input that was not analysed: a tool execution notification at level error (the
    run's `executionSuccessful` is false), not a result, as no rule produced it."""
    physical: dict = {"artifactLocation": {"uri": error.file or error.target}}
    if error.line:
        physical["region"] = {"startLine": error.line}
    return {
        "level": "error",
        "message": {"text": f"{error.stage} failed: {error.message} (in {error.target})"},
        "locations": [{"physicalLocation": physical}],
        "descriptor": {"id": f"meshready/{error.stage}-failed"},
    }


def sarif(report: AnalysisReport, verbose: bool = False) -> str:
    rules = sorted(CATALOG.values(), key=lambda r: r.id)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    # Code scanning shows suppressed results as dismissed, so they are always included.
    findings = report.findings + report.suppressed
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "meshready",
                        "version": __version__,
                        "informationUri": "https://istio.io/latest/docs/ops/deployment/application-requirements/",
                        "rules": [_sarif_rule(r) for r in rules],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "repository root"}}},
                "invocations": [
                    {
                        "executionSuccessful": not report.errors,
                        "toolExecutionNotifications": [
                            _sarif_notification(e) for e in report.errors
                        ],
                    }
                ],
                "results": [_sarif_result(f, rule_index) for f in findings],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(report: AnalysisReport, verbose: bool = False) -> str:
    lines = []
    for error in report.errors:
        properties = [f"file={_escape_property(error.file or error.target)}"]
        if error.line:
            properties.append(f"line={error.line}")
        properties.append(f"title={_escape_property(f'meshready: {error.stage} failed')}")
        message = f"{error.stage} failed: {error.message} (in {error.target})"
        lines.append(f"::error {','.join(properties)}::{_escape_data(message)}")
    for finding in report.findings:
        properties = [f"file={_escape_property(finding.file or finding.target)}"]
        if finding.line:
            properties.append(f"line={finding.line}")
        properties.append(f"title={_escape_property(f'{finding.rule.id} {finding.rule.name}')}")
        message = f"{finding.message} ({finding.object} in {finding.target})"
        lines.append(
            f"::{GITHUB_COMMAND[finding.severity]} {','.join(properties)}::{_escape_data(message)}"
        )
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


FORMATS: dict[str, Callable[[AnalysisReport, bool], str]] = {
    "text": text,
    "json": json_records,
    "sarif": sarif,
    "github": github,
}


def render(report: AnalysisReport, fmt: str, verbose: bool = False) -> str:
    return FORMATS[fmt](report, verbose)
