"""Every rule of the catalog against its fixtures: one that fires, one that does not,
one suppressed (tests/fixtures/rules/<ID>/{fires,passes,suppressed}.yaml), and a fixture
for each boundary of the rule (tests/fixtures/rules/<ID>/boundary-*.yaml).

A fixture's first line may say `# settings: production, require_digest, disable=MR001`;
the objects are analysed as one rendered target whose objects come from that file.
A boundary fixture says what it expects in comment lines at its top:

    # expect: MR113=0 MR101=1     active findings per rule (exactly that many)
    # suppressed: MR203=1         suppressed findings per rule

A fixture also says where each finding of its own rule lands and what it says, with a
comment on that line (as Go's analysistest does with `// want`):

    add: [NET_ADMIN]  # want MR204: container web adds NET_ADMIN

`# want MR204` alone means the finding says the rule's message and nothing more. For each
rule a fixture names in a `want`, the active findings of that rule are exactly the wanted
ones: same lines, same wording.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from meshready.analyze.engine import AnalysisConfig, AnalysisReport, analyze
from meshready.analyze.rules import CATALOG, Scope
from meshready.commands import rules as rules_command
from meshready.render import RenderedObject, RenderResult

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "rules"
TARGET = "fixtures"


def analyze_fixture(path: Path) -> AnalysisReport:
    text = path.read_text()
    first = next((ln for ln in text.splitlines() if ln.startswith("# settings:")), "")
    flags = first.removeprefix("# settings:").split(",") if first else []
    flags = [f.strip() for f in flags]
    disabled = [f.removeprefix("disable=") for f in flags if f.startswith("disable=")]
    table = {
        "disable": disabled,
        "require_digest": "require_digest" in flags,
        "require_namespace": "require_namespace" in flags,
    }
    config = AnalysisConfig(
        production_targets=frozenset([TARGET] if "production" in flags else []),
        per_target={TARGET: table},
    )
    origin = {"path": path.relative_to(REPO).as_posix()}
    objects = [
        RenderedObject(obj=doc, origin=origin)
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]
    return analyze([RenderResult(target=TARGET, objects=objects)], config, root=REPO)


ALL_RULES = sorted(CATALOG)


@pytest.mark.parametrize("rule_id", ALL_RULES)
def test_fixture_fires_with_a_source_line(rule_id: str):
    report = analyze_fixture(FIXTURES / rule_id / "fires.yaml")
    hits = [f for f in report.findings if f.rule.id == rule_id]
    assert hits, f"{rule_id} did not fire on its fixture"
    for finding in hits:
        assert finding.file == f"tests/fixtures/rules/{rule_id}/fires.yaml"
        assert finding.line is not None and finding.line > 1
        assert finding.message.startswith(CATALOG[rule_id].message)


@pytest.mark.parametrize("rule_id", ALL_RULES)
def test_fixture_passes(rule_id: str):
    report = analyze_fixture(FIXTURES / rule_id / "passes.yaml")
    assert [f.message for f in report.findings + report.suppressed if f.rule.id == rule_id] == []


@pytest.mark.parametrize("rule_id", ALL_RULES)
def test_fixture_suppressed_is_counted_not_reported(rule_id: str):
    report = analyze_fixture(FIXTURES / rule_id / "suppressed.yaml")
    assert [f for f in report.findings if f.rule.id == rule_id] == []
    suppressed = [f for f in report.suppressed if f.rule.id == rule_id]
    assert suppressed and all(f.suppressed for f in suppressed)


def test_passing_fixtures_are_clean_for_every_rule():
    # The shared baseline is a fully compliant workload: any finding on it is a false positive.
    report = analyze_fixture(FIXTURES / "MR101" / "passes.yaml")
    assert [(f.rule.id, f.message) for f in report.findings] == []


def test_every_rule_is_documented_and_has_fixtures():
    for rule in CATALOG.values():
        assert rule.message and rule.description and rule.remediation, rule.id
        assert "\n" not in rule.message
        for name in ("fires.yaml", "passes.yaml", "suppressed.yaml"):
            assert (FIXTURES / rule.id / name).is_file(), f"{rule.id}/{name} missing"
        assert (rule.check is None) == (rule.scope is Scope.ENGINE)


@pytest.mark.parametrize("rule_id", [r for r in ALL_RULES if r[2] in "012"])
def test_rule_says_what_upstream_does_and_how_to_answer_it(rule_id: str):
    rule = CATALOG[rule_id]
    assert rule.upstream and rule.deliberate, rule_id
    # Hints are read by people analysing their own files: nothing of this repository.
    for text in (rule.remediation, rule.deliberate, rule.description):
        assert "nox" not in text and "docs/" not in text, (rule_id, text)
    if rule.check is not None:
        assert rule.reference.startswith("https://"), rule_id


def test_text_hints_link_absolute_documentation():
    report = analyze_fixture(FIXTURES / "MR211" / "fires.yaml")
    from meshready.analyze import output as analyze_output

    hints = analyze_output.text(report).split("how to fix:\n", 1)[1]
    assert "docs/rules.md" not in hints and "nox" not in hints
    assert "(https://kubernetes.io/docs/concepts/containers/images/#image-names)" in hints


def test_renamed_rules_keep_their_former_names():
    from meshready.analyze.rules import by_id_or_name

    assert by_id_or_name("inject-annotation-on-workload").id == "MR114"
    assert by_id_or_name("unknown-sidecar-annotation").id == "MR115"


def test_rule_ids_and_names_are_unique_and_stable_format():
    names = [r.name for r in CATALOG.values()]
    assert len(set(names)) == len(names)
    for rule in CATALOG.values():
        assert rule.id[:2] == "MR" and rule.id[2:].isdigit() and len(rule.id) == 5
        assert rule.name == rule.name.lower() and " " not in rule.name


def test_docs_rules_md_is_generated_from_the_catalog():
    committed = (REPO / "docs" / "rules.md").read_text()
    assert committed == rules_command.markdown(), (
        "docs/rules.md is stale: run `meshready rules --markdown > docs/rules.md`"
    )


def test_rules_command_lists_the_catalog(tmp_path: Path):
    result = run_cli("rules", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for rule in CATALOG.values():
        assert f"{rule.id}  {rule.name}" in result.stdout


BOUNDARIES = sorted(FIXTURES.glob("MR*/boundary-*.yaml"))


def expectations(path: Path, marker: str) -> dict[str, int]:
    """`# <marker>: MR113=0 MR101=1` lines at the top of a fixture, as {rule: count}."""
    found: dict[str, int] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(f"# {marker}:"):
            for pair in line.split(":", 1)[1].split():
                rule_id, count = pair.split("=")
                found[rule_id] = int(count)
    return found


@pytest.mark.parametrize(
    "path",
    BOUNDARIES,
    ids=[f"{p.parent.name}/{p.stem.removeprefix('boundary-')}" for p in BOUNDARIES],
)
def test_boundary(path: Path):
    expected = expectations(path, "expect")
    expected_suppressed = expectations(path, "suppressed")
    assert expected or expected_suppressed, f"{path.name} states no expectation"
    report = analyze_fixture(path)
    for rule_id, count in expected.items():
        found = [f"{f.object}: {f.message}" for f in report.findings if f.rule.id == rule_id]
        assert len(found) == count, f"{rule_id}: expected {count}, got {found}"
    for rule_id, count in expected_suppressed.items():
        found = [f"{f.object}: {f.message}" for f in report.suppressed if f.rule.id == rule_id]
        assert len(found) == count, f"{rule_id} suppressed: expected {count}, got {found}"
    # A boundary fixture is about its own rule: it must pin that rule down.
    assert path.parent.name in {**expected, **expected_suppressed}


def test_every_rule_has_boundary_fixtures():
    covered = {p.parent.name for p in BOUNDARIES}
    assert [r for r in ALL_RULES if r[2] in "012" and r not in covered] == []


WANT = re.compile(r"#\s*want (MR\d{3})(?:: (.*?))?\s*$")
ANNOTATED = sorted(p for p in FIXTURES.glob("MR*/*.yaml") if "# want MR" in p.read_text())


def wanted(path: Path) -> dict[str, list[tuple[int, str]]]:
    """{rule: sorted [(line, detail)]} from the `# want` comments of a fixture."""
    found: dict[str, list[tuple[int, str]]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for part in line.split("# want ")[1:]:
            match = WANT.match("# want " + part)
            assert match, f"{path.name}:{number}: unreadable want comment {part!r}"
            found.setdefault(match[1], []).append((number, match[2] or ""))
    return {rule_id: sorted(lines) for rule_id, lines in found.items()}


def detail_of(finding) -> str:
    return finding.message.removeprefix(finding.rule.message).removeprefix(": ")


@pytest.mark.parametrize("path", ANNOTATED, ids=[f"{p.parent.name}/{p.stem}" for p in ANNOTATED])
def test_findings_land_where_the_fixture_wants_them(path: Path):
    report = analyze_fixture(path)
    for rule_id, expected in wanted(path).items():
        got = sorted((f.line, detail_of(f)) for f in report.findings if f.rule.id == rule_id)
        assert got == expected, f"{rule_id} in {path.name}"


def test_every_fires_fixture_says_where_its_rule_fires():
    # A fixture that only counts findings lets a finding move to the wrong line or lose its
    # wording unnoticed.
    unpinned = [
        f"{p.parent.name}/{p.name}"
        for p in sorted(FIXTURES.glob("MR*/fires.yaml"))
        if CATALOG[p.parent.name].check is not None and p.parent.name not in wanted(p)
    ]
    assert unpinned == []
