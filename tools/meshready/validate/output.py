"""Validation report formats behind one interface, as kubeconform's pkg/output:
`write(result)` per resource, then `flush()` once. text, json, junit and tap.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Protocol
from xml.etree import ElementTree as ET

from meshready.validate.core import EMPTY, ERROR, INVALID, SKIPPED, VALID, ResourceResult


class Writable(Protocol):
    """Where a report goes: stdout, or the cache's capture of it."""

    def write(self, text: str, /) -> int: ...


FORMATS = ("text", "json", "junit", "tap", "pretty")
STDIN = "stdin"


def resource_label(result: ResourceResult) -> str:
    """'Deployment ns/name', 'Namespace name', or '' for a document that is no resource."""
    if not result.kind:
        return ""
    name = result.name or "(unnamed)"
    return (
        f"{result.kind} {result.namespace}/{name}" if result.namespace else f"{result.kind} {name}"
    )


def error_lines(result: ResourceResult, show_version: bool = False) -> list[str]:
    """`FILE:LINE: Kind namespace/name: path: message`, one per error."""
    label = resource_label(result)
    suffix = ""
    if show_version and result.kubernetes_version:
        suffix += f" [Kubernetes {result.kubernetes_version}]"
    if result.target:
        suffix += f" (target {result.target})"
    lines = []
    for error in result.errors:
        parts = [f"{result.filename}:{error.line}"]
        if label:
            parts.append(label)
        if error.path:
            parts.append(error.path)
        parts.append(error.msg)
        lines.append(": ".join(parts) + suffix)
    return lines


def summary_counts(results: Sequence[ResourceResult]) -> Counter[str]:
    return Counter(r.status for r in results)


def summary_line(
    results: Sequence[ResourceResult], files: int, unit: str = "file", stdin: bool = False
) -> str:
    """kubeconform's summary line, word for word ("1 resource", "0 resource", "2 resources";
    "parsing stdin" when the input was stdin)."""
    counts = summary_counts(results)
    resources = sum(counts[s] for s in (VALID, INVALID, ERROR, SKIPPED))
    where = "parsing stdin" if stdin else f"in {files} {unit}{'s' * (files > 1)}"
    return (
        f"Summary: {resources} resource{'s' * (resources > 1)} found {where} - "
        f"Valid: {counts[VALID]}, Invalid: {counts[INVALID]}, "
        f"Errors: {counts[ERROR]}, Skipped: {counts[SKIPPED]}"
    )


def qualified_name(result: ResourceResult) -> str:
    """kubeconform's `apiVersion/Kind/namespace/name`, as its TAP output names a resource."""
    return f"{result.api_version}/{result.kind}/{result.namespace}/{result.name}"


class Output:
    def __init__(
        self,
        stream: Writable,
        summary: bool,
        verbose: bool,
        files: int,
        show_version: bool,
        unit: str = "file",
        stdin: bool = False,
    ):
        self.unit = unit  # what `files` counts: input files, or rendered targets
        self.stdin = stdin  # the input was stdin: the summary says "parsing stdin"
        self.stream = stream
        self.summary = summary
        self.verbose = verbose
        self.files = files
        self.show_version = show_version
        self.results: list[ResourceResult] = []

    def write(self, result: ResourceResult) -> None:
        self.results.append(result)

    def flush(self) -> None:
        raise NotImplementedError


class TextOutput(Output):
    def write(self, result: ResourceResult) -> None:
        self.results.append(result)
        if result.errors:
            self.stream.write(
                "".join(line + "\n" for line in error_lines(result, self.show_version))
            )
        elif self.verbose and result.status in (VALID, SKIPPED):
            label = resource_label(result)
            self.stream.write(f"{result.filename}:{result.line}: {label} is {result.status}\n")

    def flush(self) -> None:
        if self.summary:
            self.stream.write(summary_line(self.results, self.files, self.unit, self.stdin) + "\n")


# The format of the json report, described by schemas/output/validate.schema.json. (Each
# resource's own `version` is kubeconform's: the resource's apiVersion.)
JSON_VERSION = 1


class JSONOutput(Output):
    """`{"resources": [...], "summary": {...}}`. Each record has kubeconform's keys
    (filename, kind, name, version, status, msg) and meshready's (line, namespace,
    apiVersion, kubernetesVersion, errors); the summary has kubeconform's counts (valid,
    invalid, errors, skipped) and meshready's (files, empty)."""

    def flush(self) -> None:
        document: dict = {
            "version": JSON_VERSION,
            "resources": [r.to_json() for r in self.results],
        }
        if self.summary:
            counts = summary_counts(self.results)
            document["summary"] = {
                "valid": counts[VALID],
                "invalid": counts[INVALID],
                "errors": counts[ERROR],
                "skipped": counts[SKIPPED],
                "empty": counts[EMPTY],
                "files": self.files,
            }
        self.stream.write(json.dumps(document, indent=2) + "\n")


class JUnitOutput(Output):
    """kubeconform's JUnit shape (its fixtures/junit.xsd, the Jenkins JUnit 4 schema): a
    <testsuites name time tests failures disabled errors> of one <testsuite name id tests
    failures errors disabled skipped> per file, one <testcase name classname> per resource
    with a <failure>, <error> or <skipped>. Empty documents are not test cases."""

    def flush(self) -> None:
        by_file: dict[str, list[ResourceResult]] = {}
        for result in self.results:
            by_file.setdefault(result.filename, [])
            if result.status != EMPTY:
                by_file[result.filename].append(result)
        counts = summary_counts(self.results)
        root = ET.Element(
            "testsuites",
            name="meshready",
            time="0",
            tests=str(sum(counts[s] for s in (VALID, INVALID, ERROR, SKIPPED))),
            failures=str(counts[INVALID]),
            disabled=str(counts[SKIPPED]),
            errors=str(counts[ERROR]),
        )
        for index, (filename, results) in enumerate(by_file.items(), 1):
            file_counts = summary_counts(results)
            suite = ET.SubElement(
                root,
                "testsuite",
                name=filename,
                id=str(index),
                tests=str(len(results)),
                failures=str(file_counts[INVALID]),
                errors=str(file_counts[ERROR]),
                disabled="0",
                skipped=str(file_counts[SKIPPED]),
            )
            for result in results:
                name = (
                    f"{result.namespace}/{result.name}" if result.namespace else result.name
                ) or f"document at line {result.line}"
                if result.kubernetes_version and self.show_version:
                    name += f" [Kubernetes {result.kubernetes_version}]"
                case = ET.SubElement(
                    suite, "testcase", name=name, classname=f"{result.kind}@{result.api_version}"
                )
                if result.status in (INVALID, ERROR):
                    tag = "failure" if result.status == INVALID else "error"
                    lines = error_lines(result, self.show_version)
                    element = ET.SubElement(
                        case,
                        tag,
                        message=result.errors[0].msg if result.errors else result.status,
                        type="ValidationError" if tag == "failure" else "Error",
                    )
                    element.text = "\n".join(lines)
                elif result.status == SKIPPED:
                    ET.SubElement(case, "skipped", message=result.status)
        ET.indent(root)
        self.stream.write(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


class TAPOutput(Output):
    """kubeconform's TAP lines (`ok N - FILE (apiVersion/Kind/namespace/name)`, `# skip`,
    `(empty)`, `not ok N - FILE (...): message`), each error then as a diagnostic line
    with its line number."""

    def flush(self) -> None:
        lines = ["TAP version 13"] if self.results else []
        for number, result in enumerate(self.results, 1):
            name = qualified_name(result)
            if self.show_version and result.kubernetes_version:
                name += f" [Kubernetes {result.kubernetes_version}]"
            if result.status == INVALID:
                first = result.errors[0].msg if result.errors else "invalid"
                lines.append(f"not ok {number} - {result.filename} ({name}): {first}")
            elif result.status == ERROR:
                first = result.errors[0].msg if result.errors else "error"
                lines.append(f"not ok {number} - {result.filename}: {first}")
            elif result.status == EMPTY:
                lines.append(f"ok {number} - {result.filename} (empty)")
            elif result.status == SKIPPED:
                lines.append(f"ok {number} - {result.filename} ({name}) # skip")
            else:
                lines.append(f"ok {number} - {result.filename} ({name})")
            if result.status in (INVALID, ERROR):
                lines.extend(f"  # {line}" for line in error_lines(result))
        lines.append(f"1..{len(self.results)}")
        if self.summary:
            lines.append("# " + summary_line(self.results, self.files, self.unit, self.stdin))
        self.stream.write("\n".join(lines) + "\n")


class PrettyOutput(TextOutput):
    """kubeconform's `pretty`: the text report with a coloured mark before each line
    (a red cross for errors, a green tick and a yellow dash with `--verbose`)."""

    RED, GREEN, YELLOW, RESET = "\033[31m", "\033[32m", "\033[33m", "\033[0m"

    def write(self, result: ResourceResult) -> None:
        self.results.append(result)
        if result.errors:
            mark = f"{self.RED}\u2716{self.RESET} "
            self.stream.write(
                "".join(
                    f"{mark}{self.RED}{line}{self.RESET}\n"
                    for line in error_lines(result, self.show_version)
                )
            )
        elif self.verbose and result.status in (VALID, SKIPPED):
            colour, mark = (self.GREEN, "\u2714") if result.status == VALID else (self.YELLOW, "-")
            label = resource_label(result)
            self.stream.write(
                f"{colour}{mark}{self.RESET} {result.filename}:{result.line}: "
                f"{colour}{label} is {result.status}{self.RESET}\n"
            )


def new_output(
    fmt: str,
    stream: Writable,
    summary: bool = False,
    verbose: bool = False,
    files: int = 0,
    show_version: bool = False,
    unit: str = "file",
    stdin: bool = False,
) -> Output:
    classes = {
        "text": TextOutput,
        "json": JSONOutput,
        "junit": JUnitOutput,
        "tap": TAPOutput,
        "pretty": PrettyOutput,
    }
    return classes[fmt](stream, summary, verbose, files, show_version, unit, stdin)
