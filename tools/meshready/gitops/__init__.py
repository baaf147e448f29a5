"""GitOps bootstrap checks: RootSync / Argo CD Application objects point at hydrated
directories, and synced directories hold nothing that breaks the sync (docs/gitops.md).

- `check`: the checks (pure over loaded manifests; files read at the edge, `check_repo`)
- `stage`: the gitops stage of `meshready check`
"""

from meshready.gitops.check import GitopsReport, check_repo, report_for

__all__ = ["GitopsReport", "check_repo", "report_for"]
