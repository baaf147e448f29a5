"""The rule unit and its catalog: what `rule(...)(check)` registers, the categories the
rule IDs give, and the refusal of a second rule with the same ID or name.

The real rules register at import time, before a test runs, so these tests register
their own rules into a catalog of their own (`isolated_catalog`)."""

from __future__ import annotations

import pytest
from meshready.analyze.rules import base
from meshready.analyze.rules.base import Hit, Rule, Scope, Severity, add, rule


@pytest.fixture
def isolated_catalog(monkeypatch: pytest.MonkeyPatch) -> dict[str, Rule]:
    catalog: dict[str, Rule] = {}
    monkeypatch.setattr(base, "CATALOG", catalog)
    return catalog


def check(workload, ctx):
    yield Hit(("spec",), "detail")


def test_rule_registers_every_field_and_returns_the_check(isolated_catalog):
    returned = rule(
        id="MR299",
        name="a-rule",
        severity=Severity.WARNING,
        scope=Scope.WORKLOAD,
        message="the message",
        description="the description",
        remediation="the remediation",
        upstream="what upstream does",
        deliberate="how to answer it",
        reference="https://example.invalid/doc",
        needs_sidecar=True,
    )(check)
    assert returned is check
    assert isolated_catalog == {
        "MR299": Rule(
            id="MR299",
            name="a-rule",
            severity=Severity.WARNING,
            scope=Scope.WORKLOAD,
            message="the message",
            description="the description",
            remediation="the remediation",
            check=check,
            category="workload policy",
            upstream="what upstream does",
            deliberate="how to answer it",
            reference="https://example.invalid/doc",
            needs_sidecar=True,
        )
    }


def test_rule_leaves_the_optional_texts_empty_and_needs_no_sidecar(isolated_catalog):
    rule("MR199", "minimal", Severity.INFO, Scope.SERVICE, "m", "d", "r")(check)
    registered = isolated_catalog["MR199"]
    assert (registered.upstream, registered.deliberate, registered.reference) == ("", "", "")
    assert registered.needs_sidecar is False
    assert registered.category == "mesh readiness"


@pytest.mark.parametrize(
    ("rule_id", "category"),
    [
        ("MR001", "suppression"),
        ("MR101", "mesh readiness"),
        ("MR201", "workload policy"),
        ("MR301", "istio configuration"),
        ("MR401", "kubernetes api"),
    ],
)
def test_the_third_character_of_the_id_gives_the_category(isolated_catalog, rule_id, category):
    registered = add(Rule(rule_id, f"rule-{rule_id}", Severity.ERROR, Scope.OBJECT, "m", "d", "r"))
    assert registered.category == category
    assert isolated_catalog[rule_id] is registered


def test_a_second_rule_with_the_same_id_is_refused(isolated_catalog):
    add(Rule("MR201", "first", Severity.ERROR, Scope.WORKLOAD, "m", "d", "r"))
    with pytest.raises(ValueError, match=r"^duplicate rule MR201 second$"):
        add(Rule("MR201", "second", Severity.ERROR, Scope.WORKLOAD, "m", "d", "r"))
    assert isolated_catalog["MR201"].name == "first"


def test_a_second_rule_with_the_same_name_is_refused(isolated_catalog):
    add(Rule("MR201", "same-name", Severity.ERROR, Scope.WORKLOAD, "m", "d", "r"))
    with pytest.raises(ValueError, match=r"^duplicate rule MR202 same-name$"):
        add(Rule("MR202", "same-name", Severity.ERROR, Scope.WORKLOAD, "m", "d", "r"))
    assert list(isolated_catalog) == ["MR201"]


def test_severity_parse_takes_any_case_and_names_the_choices_when_unknown():
    assert Severity.parse("Warning") is Severity.WARNING
    assert Severity.parse("error") is Severity.ERROR
    with pytest.raises(ValueError, match=r"^unknown severity 'fatal' \(error, warning or info\)$"):
        Severity.parse("fatal")


def test_a_message_gets_its_detail_after_a_colon_and_stays_bare_without_one():
    unit = Rule("MR201", "r", Severity.ERROR, Scope.WORKLOAD, "container may run as root", "", "")
    assert (
        unit.format(Hit(("spec",), "container web")) == "container may run as root: container web"
    )
    assert unit.format(Hit(("spec",))) == "container may run as root"
    assert unit.mesh is False
    assert Rule("MR101", "m", Severity.ERROR, Scope.WORKLOAD, "", "", "").mesh is True
