"""`analyze --output json` matches its documented schema (schemas/output/analyze.schema.json),
with input errors, findings and suppressed findings in it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO, run_cli, write_tree

SCHEMA = json.loads((REPO / "schemas/output/analyze.schema.json").read_text())


def test_errors_findings_and_suppressed_findings_match_the_schema(mini_repo: Path):
    write_tree(
        mini_repo,
        {
            "overlays/broken/kustomization.yaml": "resources: [gone.yaml]\n",
            "plain/bad.yaml": "a: [unclosed\n",
            "plain/quiet.yaml": """
                apiVersion: v1
                kind: Service
                metadata:
                  name: quiet
                  annotations: {meshready.dev/ignore: "MR102: a test of suppression"}
                spec:
                  selector: {app: nothing}
                  ports:
                  - name: web
                    port: 80
            """,
        },
    )
    result = run_cli(
        "analyze", "overlays/dev", "overlays/broken", "plain", "-o", "json", "-v", cwd=mini_repo
    )
    assert result.returncode == 1
    records = json.loads(result.stdout)
    jsonschema.validate(records, SCHEMA)
    types = {r["type"] for r in records}
    assert types == {"error", "finding"}
    assert any(r["type"] == "finding" and r["suppressed"] for r in records)
    assert {r["file"] for r in records if r["type"] == "error"} >= {"plain/bad.yaml"}


def test_a_clean_input_is_an_empty_list_that_matches_the_schema(tmp_path: Path):
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    result = run_cli("analyze", "ns.yaml", "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    jsonschema.validate([], SCHEMA)


def test_the_schema_rejects_a_record_without_its_version():
    record = {
        "type": "error",
        "rule": None,
        "severity": "error",
        "target": "t",
        "file": None,
        "line": None,
        "message": "m",
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([record], SCHEMA)
