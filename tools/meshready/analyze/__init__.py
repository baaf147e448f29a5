"""Mesh-readiness and workload-policy analysis (docs/rules.md).

- `rules/`: the catalog, one `Rule` unit each (ID, severity, message, why, fix, what
  Istio or Pod Security does, the deliberate answer, a reference link, check)
- `sources`: the inputs: kustomize targets apart from plain manifests (files, directories,
  stdin), loaded into one "files" group; input errors; the GC pause
- `engine`: indexing a target's objects, running the rules, suppression, per-target config,
  locating findings (manifests.locate: source files, overlay patches, plain documents)
- `output`: text, json, sarif and github formats, input errors included
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
