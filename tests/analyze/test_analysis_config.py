"""[tool.meshready]'s analysis keys as `analysis_config` reads them: what a good table
gives, and the one-line usage error each bad one gets (naming the key to fix)."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshready.analyze.engine import AnalysisConfig, analysis_config
from meshready.analyze.rules import Severity
from meshready.config import RepoConfig
from meshready.errors import MeshreadyError


def read(raw: dict) -> AnalysisConfig:
    return analysis_config(RepoConfig(root=Path("/nonexistent"), raw=raw))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"production_targets": "overlays/prod"},
            "production_targets must be a list of target paths",
        ),
        ({"rules": ["overlays/prod"]}, "[tool.meshready.rules] must be a table of targets"),
        ({"rules": {"overlays/prod": "MR203"}}, 'rules."overlays/prod" must be a table'),
        (
            {"rules": {"*": {"disabled": [], "severity_of": {}}}},
            'rules."*": unknown key(s) disabled, severity_of',
        ),
        ({"rules": {"*": {"disable": "MR203"}}}, 'rules."*".disable must be a list of rule IDs'),
        (
            {"rules": {"*": {"severity": ["MR203"]}}},
            'rules."*".severity must be a table RULE = "severity"',
        ),
        ({"analyze_fail_on": "fatal"}, "unknown severity 'fatal' (error, warning or info)"),
    ],
)
def test_a_bad_analysis_key_is_one_usage_error_naming_it(raw: dict, message: str):
    with pytest.raises(MeshreadyError) as caught:
        read(raw)
    assert str(caught.value) == f"pyproject.toml [tool.meshready]: {message}"


@pytest.mark.parametrize("where", ["disable", "severity"])
def test_an_unknown_rule_fails_when_the_config_is_read_not_at_the_first_target(where: str):
    table = {"disable": ["MR999"]} if where == "disable" else {"severity": {"MR999": "info"}}
    with pytest.raises(MeshreadyError) as caught:
        read({"rules": {"overlays/never-rendered": table}})
    assert str(caught.value) == f"[tool.meshready.rules] {where}: unknown rule 'MR999'"


def test_targets_lose_their_trailing_slash_and_fail_on_defaults_to_error():
    analysis = read(
        {
            "production_targets": ["overlays/prod/"],
            "rules": {"overlays/dev/": {"disable": ["read-only-root-filesystem"]}},
        }
    )
    assert analysis.production_targets == frozenset({"overlays/prod"})
    assert analysis.fail_on is Severity.ERROR
    assert analysis.for_target("overlays/dev").disabled == frozenset({"MR203"})
    assert analysis.for_target("overlays/prod").settings.production is True
    assert analysis.for_target("overlays/dev").settings.production is False


def test_only_slashes_are_trimmed_from_target_names():
    analysis = read({"production_targets": ["/Xapps/X/"], "rules": {"Xapps/X/": {}}})
    assert analysis.production_targets == frozenset({"Xapps/X"})
    assert set(analysis.per_target) == {"Xapps/X"}


def test_fail_on_is_read_from_analyze_fail_on():
    assert read({"analyze_fail_on": "Warning"}).fail_on is Severity.WARNING


def test_an_empty_table_reads_as_the_defaults():
    assert read({}) == AnalysisConfig()
