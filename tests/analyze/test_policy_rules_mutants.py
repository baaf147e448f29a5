"""The policy rules' wording and locations through analyze(), the public API
(docs/testing.md): init containers are named as such, a finding points at the
securityContext block when there is one, and the replica rule applies to serving
workloads only."""

from __future__ import annotations

from pathlib import Path

import yaml
from meshready.analyze.engine import AnalysisConfig, analyze
from meshready.render import RenderedObject, RenderResult

WORKLOAD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: setup
        image: registry.example/setup:1.0
      containers:
      - name: web
        image: registry.example/web:1.0
        securityContext:
          readOnlyRootFilesystem: true
"""

SERVICE = """\
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80}
"""


def findings(text: str, tmp_path: Path, rule_id: str, production: bool = False) -> list:
    (tmp_path / "in.yaml").write_text(text)
    objects = [
        RenderedObject(obj=doc, origin={"path": "in.yaml"})
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]
    config = AnalysisConfig(production_targets=frozenset({"t"} if production else ()))
    report = analyze([RenderResult(target="t", objects=objects)], config, root=tmp_path)
    return sorted(
        (f.line, f.message.split(": ", 1)[1]) for f in report.findings if f.rule.id == rule_id
    )


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_run_as_non_root_names_init_containers_and_points_at_the_block(tmp_path: Path):
    assert findings(WORKLOAD, tmp_path, "MR201") == [
        (line_of(WORKLOAD, "- name: setup"), "init container setup has no runAsNonRoot: true"),
        (line_of(WORKLOAD, "securityContext:"), "container web has no runAsNonRoot: true"),
    ]


def test_the_replica_rule_applies_to_serving_workloads_in_production_only(tmp_path: Path):
    assert findings(WORKLOAD, tmp_path, "MR215", production=True) == []  # no Service
    assert findings(WORKLOAD + SERVICE, tmp_path, "MR215", production=False) == []
    served = findings(WORKLOAD + SERVICE, tmp_path, "MR215", production=True)
    assert len(served) == 1
    job = WORKLOAD.replace("apps/v1\nkind: Deployment", "apps/v1\nkind: DaemonSet")
    assert findings(job + SERVICE, tmp_path, "MR215", production=True) == []
