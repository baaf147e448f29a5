"""`validate --output json` matches its documented schema (schemas/output/validate.schema.json)
for valid, invalid, error and skipped resources, with and without the summary."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO, run_cli

SCHEMA = json.loads((REPO / "schemas/output/validate.schema.json").read_text())
FIXTURES = REPO / "tests/fixtures/validate"


@pytest.mark.parametrize("summary", [[], ["--summary"]])
def test_every_status_matches_the_schema(tmp_path: Path, summary: list[str]):
    (tmp_path / "broken.yaml").write_text("a: [unclosed\n")
    files = [
        str(FIXTURES / "good.yaml"),
        str(FIXTURES / "invalid.yaml"),
        str(tmp_path / "broken.yaml"),
    ]
    result = run_cli(
        "validate",
        "--no-cache",
        "--strict",
        "--output",
        "json",
        "--skip",
        "ConfigMap",
        *summary,
        *files,
        cwd=REPO,
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["version"] == 1
    assert {r["status"] for r in report["resources"]} >= {"valid", "invalid", "error"}
    assert ("summary" in report) is bool(summary)


def test_rendered_records_carry_their_target_and_match_the_schema():
    result = run_cli("validate", "--rendered", "--strict", "--output", "json", cwd=REPO)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert {r["target"] for r in report["resources"]} == {"overlays/asm-ready", "overlays/dev"}
