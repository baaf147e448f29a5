"""Mesh-readiness and workload-policy analysis (docs/rules.md).

- `rules/`: the catalog, one `Rule` unit each (ID, severity, message, why, fix, check)
- `engine`: indexing a target's objects, running the rules, suppression, per-target config
- `locate`: mapping a finding's field path to a line of the file a person edits
- `output`: text, json, sarif and github formats
- `stage`: the analyze stage of `meshready check`
"""

from meshready.analyze.engine import (
    AnalysisConfig,
    AnalysisReport,
    Finding,
    analysis_config,
    analyze,
)

__all__ = ["AnalysisConfig", "AnalysisReport", "Finding", "analysis_config", "analyze"]
