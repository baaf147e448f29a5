"""`validate` refuses object names the API server refuses, strict or not (issue 17: a name
becomes a file name in hydration, so a traversal must be caught wherever it is read)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO, run_cli

OBJECTS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a/../../../tmp/x
---
apiVersion: v1
kind: Service
metadata:
  name: web.v2
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings.v2
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:reader
rules: []
"""


def test_names_the_api_server_refuses_are_invalid(tmp_path: Path):
    (tmp_path / "objects.yaml").write_text(OBJECTS)
    result = run_cli(
        "validate", "--no-cache", "--output", "json", str(tmp_path / "objects.yaml"), cwd=REPO
    )
    assert result.returncode == 1
    statuses = {r["name"]: (r["status"], r["msg"]) for r in json.loads(result.stdout)["resources"]}
    assert statuses["a/../../../tmp/x"][0] == "invalid"
    assert "invalid name" in statuses["a/../../../tmp/x"][1]
    assert statuses["web.v2"][0] == "invalid" and "RFC 1035 label" in statuses["web.v2"][1]
    assert statuses["settings.v2"] == ("valid", "")
    assert statuses["system:reader"] == ("valid", "")
