"""The gitops stage of `meshready check`: the bootstrap check, reported against the
hydrated targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshready.gitops.check import report_for
from meshready.stage import StageReport

if TYPE_CHECKING:
    from meshready.config import RepoConfig
    from meshready.render import RenderResult


def stage(results: list[RenderResult], config: RepoConfig) -> StageReport:
    report = report_for(config)
    stage_report = StageReport(name="gitops", failures=len(report.findings))
    stage_report.lines = [str(f) for f in report.findings]
    cell = "ok" if not report.findings else f"{len(report.findings)} findings"
    for result in results:
        if result.target in config.hydrate:
            stage_report.per_target[result.target] = cell
    stage_report.summary = (
        f"{report.sources} sync sources ok"
        if not report.findings
        else f"{len(report.findings)} findings"
    )
    return stage_report
