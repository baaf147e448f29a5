"""Snapshots of every report format on a fixed, rule-rich report (fixtures, no kustomize)."""

from __future__ import annotations

import pytest
from meshready.analyze import output as analyze_output
from test_rules import FIXTURES, analyze_fixture


@pytest.fixture(scope="module")
def report():
    # Fires two rules, with one more finding suppressed on the object, so every section
    # of every format (grouping, suppression, locations) is exercised.
    report = analyze_fixture(FIXTURES / "MR105" / "fires.yaml")
    suppressed = analyze_fixture(FIXTURES / "MR203" / "suppressed.yaml")
    report.suppressed.extend(suppressed.suppressed)
    report.findings.extend(analyze_fixture(FIXTURES / "MR211" / "fires.yaml").findings)
    return report


@pytest.mark.parametrize("fmt", sorted(analyze_output.FORMATS))
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_format_matches_its_snapshot(report, fmt: str, verbose: bool, snapshot):
    assert analyze_output.render(report, fmt, verbose) == snapshot


def test_github_escapes_newlines_and_property_separators(report):
    finding = report.findings[0]
    original = finding.message, finding.file
    finding.message, finding.file = "two\nlines 100%", "dir,with:odd/file.yaml"
    try:
        first = analyze_output.github(report).splitlines()[0]
    finally:
        finding.message, finding.file = original
    assert "file=dir%2Cwith%3Aodd/file.yaml" in first
    assert "two%0Alines 100%25" in first
