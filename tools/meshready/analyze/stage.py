"""The analyze stage of `meshready check`: findings at or above the threshold fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshready.analyze.engine import AnalysisReport, analysis_config, analyze
from meshready.analyze.rules import Severity
from meshready.stage import StageReport

if TYPE_CHECKING:
    from meshready.config import RepoConfig
    from meshready.render import RenderResult


def stage(results: list[RenderResult], config: RepoConfig) -> StageReport:
    """The analyze stage of `meshready check`: findings at or above the threshold fail, and
    every finding the summary counts is listed, most severe first."""
    report: AnalysisReport = analyze(results, analysis_config(config), config.root)
    stage = StageReport(name="analyze", failures=len(report.failing))
    for finding in sorted(report.findings, key=lambda f: -f.severity):
        where = f"{finding.file}:{finding.line}" if finding.line else (finding.file or "-")
        stage.lines.append(
            f"{finding.target}: {where}: {finding.severity.label}: {finding.rule.id} "
            f"{finding.rule.name}: {finding.message} ({finding.object})"
        )
    for target in report.targets:
        found = [f for f in report.findings if f.target == target]
        by_severity = [
            f"{n} {s.label}{'' if n == 1 or s is Severity.INFO else 's'}"
            for s in sorted(Severity, reverse=True)
            if (n := sum(f.severity is s for f in found))
        ]
        stage.per_target[target] = ", ".join(by_severity) or "ok"
    counts = report.counts()
    stage.summary = (
        f"{len(report.findings)} findings ({counts[Severity.ERROR]} errors, "
        f"{counts[Severity.WARNING]} warnings, {counts[Severity.INFO]} info), "
        f"{len(report.suppressed)} suppressed"
    )
    return stage
