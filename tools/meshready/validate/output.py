"""Validation report formats behind one interface, as kubeconform's pkg/output:
`write(result)` per resource, then `flush()` once. text, json, junit and tap.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import TextIO
from xml.etree import ElementTree as ET

from meshready.validate.core import EMPTY, ERROR, INVALID, SKIPPED, VALID, ResourceResult

FORMATS = ("text", "json", "junit", "tap")


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


def summary_line(results: Sequence[ResourceResult], files: int, unit: str = "file") -> str:
    counts = summary_counts(results)
    resources = sum(counts[s] for s in (VALID, INVALID, ERROR, SKIPPED))
    text = (
        f"Summary: {resources} resource{'s' * (resources != 1)} found in {files} "
        f"{unit}{'s' * (files != 1)} - Valid: {counts[VALID]}, Invalid: {counts[INVALID]}, "
        f"Errors: {counts[ERROR]}, Skipped: {counts[SKIPPED]}"
    )
    return text + (f", Empty: {counts[EMPTY]}" if counts[EMPTY] else "")


class Output:
    def __init__(
        self,
        stream: TextIO,
        summary: bool,
        verbose: bool,
        files: int,
        show_version: bool,
        unit: str = "file",
    ):
        self.unit = unit  # what `files` counts: input files, or rendered targets
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
            self.stream.write(summary_line(self.results, self.files, self.unit) + "\n")


class JSONOutput(Output):
    def flush(self) -> None:
        document: dict = {"resources": [r.to_json() for r in self.results]}
        if self.summary:
            counts = summary_counts(self.results)
            document["summary"] = {
                "files": self.files,
                **{status: counts[status] for status in (VALID, INVALID, ERROR, SKIPPED, EMPTY)},
            }
        self.stream.write(json.dumps(document, indent=2) + "\n")


class JUnitOutput(Output):
    """One <testsuite> per file, one <testcase> per resource, as kubeconform writes it."""

    def flush(self) -> None:
        by_file: dict[str, list[ResourceResult]] = {}
        for result in self.results:
            by_file.setdefault(result.filename, []).append(result)
        counts = summary_counts(self.results)
        root = ET.Element(
            "testsuites",
            name="meshready validate",
            tests=str(len(self.results)),
            failures=str(counts[INVALID]),
            errors=str(counts[ERROR]),
            skipped=str(counts[SKIPPED] + counts[EMPTY]),
        )
        for index, (filename, results) in enumerate(by_file.items()):
            file_counts = summary_counts(results)
            suite = ET.SubElement(
                root,
                "testsuite",
                name=filename,
                id=str(index),
                tests=str(len(results)),
                failures=str(file_counts[INVALID]),
                errors=str(file_counts[ERROR]),
                skipped=str(file_counts[SKIPPED] + file_counts[EMPTY]),
            )
            for result in results:
                name = resource_label(result) or f"document at line {result.line}"
                if result.kubernetes_version and self.show_version:
                    name += f" [Kubernetes {result.kubernetes_version}]"
                case = ET.SubElement(
                    suite,
                    "testcase",
                    name=name,
                    classname=f"{result.kind}@{result.api_version}" if result.kind else filename,
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
                elif result.status in (SKIPPED, EMPTY):
                    ET.SubElement(case, "skipped", message=result.status)
        ET.indent(root)
        self.stream.write(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


class TAPOutput(Output):
    def flush(self) -> None:
        lines = ["TAP version 13"]
        for number, result in enumerate(self.results, 1):
            label = resource_label(result) or f"document at line {result.line}"
            where = f"{result.filename}:{result.line}"
            if self.show_version and result.kubernetes_version:
                label += f" [Kubernetes {result.kubernetes_version}]"
            if result.status in (INVALID, ERROR):
                lines.append(f"not ok {number} - {where} ({label}) - {result.status}")
                lines.extend(f"  # {line}" for line in error_lines(result))
            elif result.status in (SKIPPED, EMPTY):
                lines.append(f"ok {number} - {where} ({label}) # SKIP {result.status}")
            else:
                lines.append(f"ok {number} - {where} ({label})")
        lines.append(f"1..{len(self.results)}")
        if self.summary:
            lines.append("# " + summary_line(self.results, self.files, self.unit))
        self.stream.write("\n".join(lines) + "\n")


def new_output(
    fmt: str,
    stream: TextIO,
    summary: bool = False,
    verbose: bool = False,
    files: int = 0,
    show_version: bool = False,
    unit: str = "file",
) -> Output:
    classes = {"text": TextOutput, "json": JSONOutput, "junit": JUnitOutput, "tap": TAPOutput}
    return classes[fmt](stream, summary, verbose, files, show_version, unit)
