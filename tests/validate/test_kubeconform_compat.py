"""kubeconform's acceptance suite (acceptance.bats, acceptance-nonetwork.bats) as meshready's
contract: every case that needs no network, rewritten with this repository's own fixtures
(tests/fixtures/validate/kubeconform/, written for these tests, not copied).

Each case states kubeconform's exit code and, where kubeconform's test checks output in a
specified format (summary line, TAP lines, JUnit shape), that output. A case where meshready
deliberately differs names the row of docs/validate.md's differences table it falls under,
and checks meshready's documented behaviour instead. Cases that need the network (HTTP
schema locations, HTTPS_PROXY, the CRDs-catalog) are not taken.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MESHREADY

FIXTURES = Path(__file__).parents[1] / "fixtures" / "validate" / "kubeconform"
REGISTRY = "./registry/{{ .ResourceKind }}{{ .KindSuffix }}.json"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(cache))
    return cache


def kubeconform(*argv: str, stdin: str | None = None, cwd: Path = FIXTURES):
    """`meshready validate ARGV` through the console script, as the bats suite runs
    kubeconform; stdin is empty unless given (never the terminal)."""
    return subprocess.run(
        [MESHREADY, "validate", *argv],
        input=stdin or "",
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


@dataclass(frozen=True)
class Case:
    name: str  # the bats test's name
    argv: tuple[str, ...]
    exit: int  # kubeconform's exit code
    output: tuple[str, ...] | None = None  # kubeconform's exact stdout lines, where checked
    stdin: str | None = None  # a fixture fed on stdin
    contains: str | None = None  # text kubeconform's test looks for in the output
    differs: str | None = None  # the differences-table row, when meshready deliberately differs
    our_exit: int | None = None  # meshready's exit code where it differs


def summary(resources: int, files: int | None, valid: int, invalid=0, errors=0, skipped=0) -> str:
    noun = "resource" + ("s" if resources > 1 else "")
    where = "parsing stdin" if files is None else f"in {files} file" + ("s" if files > 1 else "")
    return (
        f"Summary: {resources} {noun} found {where} - Valid: {valid}, Invalid: {invalid}, "
        f"Errors: {errors}, Skipped: {skipped}"
    )


CASES = [
    Case("Pass when displaying help with -h", ("-h",), 0, differs="help text"),
    Case(
        "Fail and display help when using an incorrect flag",
        ("-xyz",),
        1,
        differs="exit 2",
        our_exit=2,
    ),
    Case(
        "Pass when parsing a valid Kubernetes config YAML file",
        ("-summary", "valid.yaml"),
        0,
        (summary(1, 1, 1),),
    ),
    Case(
        "Pass when parsing a folder containing valid YAML files",
        ("-summary", "folder"),
        0,
        (summary(7, 2, 7),),
    ),
    Case(
        "Pass when parsing a valid Kubernetes config file with int_to_string vars",
        ("-verbose", "int_or_string.yaml"),
        0,
        differs="text lines",
    ),
    Case(
        "Pass when parsing a valid Kubernetes config JSON file",
        ("-kubernetes-version", "1.25.0", "-summary", "valid.json"),
        0,
        (summary(1, 1, 1),),
        differs="versions",
    ),
    Case(
        "Pass when parsing a valid Kubernetes config YAML file with generate name",
        ("-verbose", "generate_name.yaml"),
        0,
        differs="text lines",
    ),
    Case(
        "Pass when parsing a Kubernetes file with string and integer quantities",
        ("-verbose", "quantity.yaml"),
        0,
        differs="text lines",
    ),
    Case(
        "Pass when parsing a valid Kubernetes config file with null arrays",
        ("-verbose", "null_string.yaml"),
        0,
        differs="text lines",
    ),
    Case(
        "Pass when parsing a valid Kubernetes config file with null strings",
        ("-summary", "null_string.yaml"),
        0,
        (summary(1, 1, 1),),
    ),
    Case(
        "Pass when parsing a multi-document config file",
        ("-summary", "multi_valid.yaml"),
        0,
        (summary(6, 1, 6),),
    ),
    Case(
        "Fail when parsing a multi-document config file with one invalid resource",
        ("multi_invalid.yaml",),
        1,
    ),
    Case("Fail when parsing an invalid Kubernetes config file", ("invalid.yaml",), 1),
    Case("Return relevant error for non-existent file", ("not-here",), 1, differs="text lines"),
    Case(
        "Pass when parsing a blank config file",
        ("-summary", "blank.yaml"),
        0,
        (summary(0, 1, 0),),
        differs="no resources",
        our_exit=1,
    ),
    Case(
        "Pass when parsing a blank config file with a comment",
        ("-summary", "comment.yaml"),
        0,
        (summary(0, 1, 0),),
        differs="no resources",
        our_exit=1,
    ),
    Case(
        "Fail when parsing a config that is missing a Kind",
        ("-summary", "missing_kind.yaml"),
        1,
        contains="missing 'kind' key",
    ),
    Case(
        "Fail when parsing a config that is missing an apiVersion",
        ("-summary", "missing_apiversion.yaml"),
        1,
        contains="missing 'apiVersion' key",
    ),
    Case(
        "Fail when parsing a config that is missing a Kind value",
        ("-summary", "missing_kind_value.yaml"),
        1,
        contains="missing 'kind' key",
    ),
    Case("Fail when parsing a config with CRD", ("test_crd.yaml",), 1),
    Case(
        "Pass when parsing a config with Custom Resource and ignoring missing schemas",
        ("-ignore-missing-schemas", "test_crd.yaml"),
        0,
    ),
    Case(
        "Pass when parsing a config with additional properties",
        ("-summary", "extra_property.yaml"),
        0,
        (summary(1, 1, 1),),
    ),
    Case(
        "Fail when parsing a config with additional properties and strict set",
        ("-strict", "-kubernetes-version", "1.25.0", "extra_property.yaml"),
        1,
        differs="versions",
    ),
    Case(
        "Fail when parsing a config with duplicate properties and strict set",
        ("-strict", "-kubernetes-version", "1.25.0", "duplicate_property.yaml"),
        1,
        differs="versions",
    ),
    Case(
        "Pass when parsing a config with duplicate properties and strict NOT set",
        ("-kubernetes-version", "1.25.0", "duplicate_property.yaml"),
        0,
        differs="versions",
    ),
    Case(
        "Pass when using a valid, preset -schema-location",
        ("-schema-location", "default", "valid.yaml"),
        0,
    ),
    Case(
        "Fail when using an invalid HTTP -schema-location",
        ("-schema-location", "http://foo", "valid.yaml"),
        1,
        differs="offline",
        our_exit=2,
    ),
    Case(
        "Fail when using an invalid non-HTTP -schema-location",
        ("-schema-location", "foo", "valid.yaml"),
        1,
    ),
    Case(
        "Fail early when passing a non valid -schema-location template",
        ("-schema-location", "foo {{ .Foo }}", "valid.yaml"),
        1,
        differs="exit 2",
        our_exit=2,
    ),
    Case(
        "Fail early when passing a non valid -kubernetes-version",
        ("-kubernetes-version", "1.25", "valid.yaml"),
        1,
        differs="versions",
        our_exit=0,
    ),
    Case(
        "Pass when parsing a valid Kubernetes config YAML file on stdin",
        ("-summary",),
        0,
        (summary(1, None, 1),),
        stdin="valid.yaml",
    ),
    Case(
        "Pass when parsing a valid Kubernetes config YAML file explicitly on stdin",
        ("-summary", "-"),
        0,
        (summary(1, None, 1),),
        stdin="valid.yaml",
    ),
    Case(
        "Fail when parsing an invalid Kubernetes config file on stdin",
        ("-",),
        1,
        stdin="invalid.yaml",
    ),
    Case(
        "Fail when not passing data to stdin, when implicitly configured to read from stdin",
        ("-summary",),
        1,
    ),
    Case(
        "Fail when not passing data to stdin, when explicitly configured to read from stdin",
        ("-summary", "-"),
        1,
    ),
    Case(
        "Skip when parsing a resource from a kind to skip",
        ("-verbose", "-skip", "ReplicationController", "valid.yaml"),
        0,
        differs="text lines",
    ),
    Case(
        "Skip when parsing a resource with a GVK to skip",
        ("-verbose", "-skip", "v1/ReplicationController", "valid.yaml"),
        0,
        differs="text lines",
    ),
    Case(
        "Do not skip when parsing a resource with a GVK to skip, where the Kind matches but not the version",
        ("-verbose", "-skip", "v2/ReplicationController", "valid.yaml"),
        0,
        differs="text lines",
    ),
    Case(
        "Fail when parsing a resource from a kind to reject",
        ("-verbose", "-reject", "ReplicationController", "valid.yaml"),
        1,
        contains="prohibited resource kind ReplicationController",
    ),
    Case(
        "Ignores file that match the --ignore-filename-pattern given",
        (
            "-summary",
            "--ignore-filename-pattern",
            "crd",
            "--ignore-filename-pattern",
            ".*invalid.*",
            "multi_invalid.yaml",
            "list_invalid.yaml",
            "quantity.yaml",
            "crd_schema.yaml",
        ),
        0,
        (summary(1, 1, 1),),
    ),
    Case(
        "Pass when parsing a valid Kubernetes config YAML file and store cache",
        ("-cache", "CACHE", "-summary", "valid.yaml"),
        0,
        (summary(1, 1, 1),),
    ),
    Case(
        "Fail when cache folder does not exist",
        ("-cache", "cache_does_not_exist", "-summary", "valid.yaml"),
        1,
        differs="exit 2",
        our_exit=2,
    ),
    Case(
        "Produces correct TAP output",
        ("-output", "tap", "valid.yaml"),
        0,
        ("TAP version 13", "ok 1 - valid.yaml (v1/ReplicationController//bob)", "1..1"),
    ),
    Case(
        "Pass when parsing a file containing a List",
        ("-summary", "list_valid.yaml"),
        0,
        (summary(6, 1, 6),),
    ),
    Case(
        "Pass when parsing a List resource from stdin",
        ("-summary",),
        0,
        (summary(6, None, 6),),
        stdin="list_valid.yaml",
    ),
    Case(
        "Fail when parsing a List that contains an invalid resource",
        ("-summary", "list_invalid.yaml"),
        1,
        contains=summary(2, 1, 1, 1),
        differs="text lines",
    ),
    Case(
        "Fail when parsing a List that contains an invalid resource from stdin",
        ("-summary", "-"),
        1,
        stdin="list_invalid.yaml",
        contains=summary(2, None, 1, 1),
        differs="text lines",
    ),
    Case(
        "Pass on valid, empty list",
        ("-summary", "list_empty_valid.yaml"),
        0,
        (summary(0, 1, 0),),
        differs="no resources",
        our_exit=1,
    ),
    Case(
        "Pass on multi-yaml containing one resource, one list",
        ("-summary", "multi_with_list.yaml"),
        0,
        (summary(2, 1, 2),),
    ),
    # acceptance-nonetwork.bats
    Case(
        "Fail when parsing a valid Kubernetes config YAML file without network access",
        ("valid.yaml",),
        1,
        differs="offline",
        our_exit=0,
    ),
    Case(
        "Pass when parsing a valid config YAML file without network access, with cache",
        ("-cache", "CACHE", "valid.yaml"),
        0,
    ),
    Case(
        "Pass when parsing a Custom Resource and using a local schema registry with appropriate CRD",
        ("-schema-location", REGISTRY, "test_crd.yaml"),
        0,
    ),
    Case(
        "Pass when parsing a Custom Resource and specifying several local registries, the last one having the appropriate CRD",
        (
            "-schema-location",
            "{{ .ResourceKind }}.json",
            "-schema-location",
            REGISTRY,
            "test_crd.yaml",
        ),
        0,
    ),
    Case(
        "Pass when using a cached schema with external references",
        (
            "-cache",
            "CACHE",
            "-summary",
            "-schema-location",
            "https://example.invalid/{{ .ResourceKind }}.json",
            "valid.yaml",
        ),
        0,
        differs="offline",
        our_exit=2,
    ),
    # kubeconform's fixture of its validator tests (pkg/validator), named in issue 14
    Case(
        "unconventional_keys.yaml is valid",
        ("-summary", "unconventional_keys.yaml"),
        0,
        (summary(1, 1, 1),),
    ),
]


def _argv(case: Case, cache: Path) -> list[str]:
    cache.mkdir(exist_ok=True)
    return [str(cache) if a == "CACHE" else a for a in case.argv]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kubeconform_acceptance_case(case: Case, isolated_cache: Path):
    stdin = (FIXTURES / case.stdin).read_text() if case.stdin else None
    done = kubeconform(*_argv(case, isolated_cache), stdin=stdin)
    assert "Traceback" not in done.stderr
    expected_exit = case.exit if case.our_exit is None else case.our_exit
    assert done.returncode == expected_exit, (done.stdout, done.stderr)
    if case.output is not None:
        assert tuple(done.stdout.splitlines()) == case.output
    if case.contains is not None:
        assert case.contains in done.stdout


def test_every_difference_is_in_the_documented_table():
    table = (Path(__file__).parents[2] / "docs" / "validate.md").read_text()
    section = table.split("## Differences from kubeconform", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    assert {c.differs for c in CASES if c.differs} <= rows


def test_the_store_cache_case_writes_one_cache_entry(isolated_cache: Path):
    isolated_cache.mkdir()
    done = kubeconform("-cache", str(isolated_cache), "-summary", "valid.yaml")
    assert done.returncode == 0
    assert len(os.listdir(isolated_cache)) == 1  # kubeconform's test: `ls cache/ | wc -l` is 1


def test_help_and_version():
    assert kubeconform("-h").stdout.startswith("usage: meshready validate [-h]")
    version = kubeconform("-v")
    assert (version.returncode, version.stdout.strip()) == (0, __import__("meshready").__version__)


def test_very_large_file_and_long_stdin_stream(tmp_path: Path):
    """kubeconform's valid_large.yaml: 100,000 resources in one file, and on stdin."""
    one = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{}\n"
    large = tmp_path / "valid_large.yaml"
    large.write_text("---\n".join(one.format(i) for i in range(100_000)))
    expected = summary(100_000, 1, 100_000)
    done = kubeconform("-summary", str(large), cwd=tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, expected)
    piped = kubeconform("-summary", stdin=large.read_text(), cwd=tmp_path)
    assert (piped.returncode, piped.stdout.strip()) == (0, summary(100_000, None, 100_000))


# kubeconform checks its JUnit output with xmllint against fixtures/junit.xsd, the Jenkins
# JUnit 4 schema. The same constraints, checked element by element: which children and
# attributes each element may have, and which attributes it must have.
JUNIT_SHAPE = {
    "testsuites": (
        {"testsuite"},
        {"name", "time", "tests", "failures", "disabled", "errors"},
        set(),
    ),
    "testsuite": (
        {"properties", "testcase", "system-out", "system-err"},
        {
            "name",
            "tests",
            "failures",
            "errors",
            "time",
            "disabled",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
        },
        {"name", "tests"},
    ),
    "properties": ({"property"}, set(), set()),
    "property": (set(), {"name", "value"}, {"name", "value"}),
    "testcase": (
        {"skipped", "error", "failure", "system-out", "system-err"},
        {"name", "assertions", "time", "classname", "status"},
        {"name"},
    ),
    "skipped": (set(), {"message"}, set()),
    "error": (set(), {"message", "type"}, set()),
    "failure": (set(), {"message", "type"}, set()),
}


def _junit_violations(element: ET.Element) -> list[str]:
    children, allowed, required = JUNIT_SHAPE[element.tag]
    found = [f"<{element.tag}> may not have @{a}" for a in set(element.attrib) - allowed]
    found += [f"<{element.tag}> needs @{a}" for a in required - set(element.attrib)]
    for child in element:
        if child.tag not in children:
            found.append(f"<{element.tag}> may not contain <{child.tag}>")
        else:
            found.extend(_junit_violations(child))
    return found


def test_junit_output_has_the_shape_of_kubeconforms_junit_xsd():
    done = kubeconform(
        "-output",
        "junit",
        "-summary",
        "valid.yaml",
        "invalid.yaml",
        "test_crd.yaml",
        "-skip",
        "LimitRange",
        "quantity.yaml",
    )
    assert done.returncode == 1
    root = ET.fromstring(done.stdout.split("\n", 1)[1])
    assert root.tag == "testsuites"
    assert _junit_violations(root) == []
    assert [s.get("name") for s in root] == [
        "valid.yaml",
        "invalid.yaml",
        "test_crd.yaml",
        "quantity.yaml",
    ]
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("disabled")) == (
        "4",
        "1",
        "1",
        "1",
    )


def test_the_junit_shape_check_can_fail():
    bad = ET.fromstring(
        '<testsuites skipped="1"><testsuite name="f" tests="1"><testcase/></testsuite></testsuites>'
    )
    assert _junit_violations(bad) == [
        "<testsuites> may not have @skipped",
        "<testcase> needs @name",
    ]
