"""The three faces of a `DiffReport`: a plain unified diff, a pull-request comment in
markdown, and JSON for bots. `format_report` is the one entry point.

The diff and markdown formats can be capped (`limit_bytes`): the summary always stays,
resource diffs that do not fit are left out whole, and a notice near the top says which.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from meshready.diff.core import ADDED, REMOVED, STATUSES, DiffReport, ResourceChange, TargetDiff

FORMATS = ("diff", "markdown", "json")
# A CI job finds its earlier comment by this line and edits it instead of adding another.
MARKER = "<!-- meshready-diff -->"
# GitHub rejects comments over 65,536 characters; the margin leaves room for a bot's footer.
DEFAULT_MARKDOWN_LIMIT = 60_000
# The notice of what was cut is kept within this many bytes, reserved up front.
NOTICE_RESERVE = 1_200
MIN_LIMIT_BYTES = 2_000
MASKING = (
    "Secret data and stringData values, and annotations that copy them, masked as "
    "<masked sha256:first 8 hex digits>"
)
MASKING_MARKDOWN = MASKING.replace("<masked sha256:first 8 hex digits>", "`<masked sha256:…>`")
LOCAL_HINT = "run `nox -s diff` (or `meshready diff`) locally for the whole diff"


def _size(text: str) -> int:
    return len(text.encode())


@dataclass
class _Block:
    change: ResourceChange
    text: str


@dataclass
class _Section:
    target: str
    opening: str
    closing: str
    blocks: list[_Block] = field(default_factory=list)


def _fit(head: str, sections: list[_Section], limit: int | None, notice: Callable) -> str:
    """`head` + as many resource blocks as fit in `limit` bytes, with a notice of the rest."""
    full = head + "".join(
        s.opening + "".join(b.text for b in s.blocks) + s.closing for s in sections
    )
    if limit is None or _size(full) <= limit:
        return full
    budget = limit - NOTICE_RESERVE - _size(head)
    if budget < 0:  # the summary alone is too long: keep its first lines, then the notice
        kept = head.encode()[: max(0, limit - NOTICE_RESERVE)].decode(errors="ignore")
        head, budget = kept[: kept.rfind("\n") + 1], 0
    body: list[str] = []
    omitted: list[tuple[str, ResourceChange]] = []
    for section in sections:
        frame = _size(section.opening) + _size(section.closing)
        included = []
        for block in section.blocks:
            # Greedy: one huge resource must not hide the small ones after it.
            if frame + _size(block.text) <= budget:
                included.append(block.text)
                budget -= _size(block.text)
            else:
                omitted.append((section.target, block.change))
        if included:
            body.append(section.opening + "".join(included) + section.closing)
            budget -= frame
    return head + notice(omitted, limit) + "".join(body)


def _omitted_list(omitted: list[tuple[str, ResourceChange]], room: int, fmt: Callable) -> str:
    """As many `target: resource` entries as fit in `room` bytes, then "and N more"."""
    entries: list[str] = []
    used = 0
    for index, (target, change) in enumerate(omitted):
        entry = fmt(target, change)
        rest = f", and {len(omitted) - index} more"
        if used + _size(entry) + 2 + _size(rest) > room:
            return ", ".join(entries) + rest
        entries.append(entry)
        used += _size(entry) + 2
    return ", ".join(entries)


def _error_lines(target: TargetDiff, head_label: str) -> list[tuple[str, str]]:
    sides = (("the base", target.base_error), (f"the {head_label}", target.head_error))
    return [(side, error) for side, error in sides if error]


def _note(target: TargetDiff, head_label: str) -> str:
    if target.failed:
        sides = [s for s, e in (("base", target.base_error), (head_label, target.head_error)) if e]
        return f"render failed ({' and '.join(sides)})"
    return {"both": "", ADDED: "new target", REMOVED: "target removed"}[target.presence]


# --- plain unified diff -------------------------------------------------------------------


def format_diff(report: DiffReport, limit_bytes: int | None = None) -> str:
    lines = [
        f"meshready diff: base: {report.base_label} -> {report.head_label}",
        report.strip.describe(),
        f"masked: {MASKING}",
        "",
    ]
    width = max([len("target"), *(len(t.target) for t in report.targets)])
    lines.append(f"{'target':<{width}}  added  changed  removed  unchanged  note")
    for target in report.targets:
        if target.failed:
            cells = f"{'-':>5}  {'-':>7}  {'-':>7}  {'-':>9}"
        else:
            cells = (
                f"{target.count(ADDED):>5}  {target.count('changed'):>7}  "
                f"{target.count(REMOVED):>7}  {target.unchanged:>9}"
            )
        lines.append(
            f"{target.target:<{width}}  {cells}  {_note(target, report.head_label)}".rstrip()
        )
    lines.append("")
    for target in report.failed_targets:
        for side, error in _error_lines(target, report.head_label):
            lines.append(f"{target.target}: render failed on {side}: {error}")
    lines.append(report.summary_line())
    head = "\n".join(lines) + "\n"

    sections = []
    for target in report.changed_targets:
        section = _Section(target.target, opening=f"\n=== {target.target}\n", closing="")
        section.blocks = [_Block(c, f"# {c.key} {c.status}\n{c.diff}") for c in target.changes]
        sections.append(section)

    def notice(omitted: list[tuple[str, ResourceChange]], limit: int) -> str:
        listed = _omitted_list(omitted, NOTICE_RESERVE - 200, lambda t, c: f"{t} {c.key}")
        return (
            f"\ntruncated at {limit} bytes: {len(omitted)} resource diffs left out: {listed}; "
            f"{LOCAL_HINT}\n"
        )

    return _fit(head, sections, limit_bytes, notice)


# --- markdown for a pull-request comment --------------------------------------------------


def _fence(text: str, info: str = "") -> str:
    """A code fence longer than any backtick run inside, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text.rstrip(chr(10))}\n{ticks}\n"


def _code(text: str) -> str:
    """Inline code that survives backticks inside and cannot break a table row."""
    text = text.replace("|", "\\|").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _counts(target: TargetDiff) -> str:
    return ", ".join(f"{target.count(s)} {s}" for s in STATUSES if target.count(s))


def format_markdown(report: DiffReport, limit_bytes: int | None = DEFAULT_MARKDOWN_LIMIT) -> str:
    title = (
        f"**{report.summary_line()[0].upper()}{report.summary_line()[1:]}**"
        if report.has_changes or report.failed_targets
        else f"**No changes** in {len(report.targets)} targets"
    )
    lines = [
        MARKER,
        "### meshready diff",
        "",
        f"{title} · base {_code(report.base_label)} → {report.head_label}",
        "",
        "| target | added | changed | removed | unchanged | note |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for target in report.targets:
        if target.failed:
            cells = "| | | | |"
        else:
            cells = (
                f"| {target.count(ADDED)} | {target.count('changed')} | "
                f"{target.count(REMOVED)} | {target.unchanged} |"
            )
        lines.append(f"| {_code(target.target)} {cells} {_note(target, report.head_label)} |")
    lines.append("")
    for target in report.failed_targets:
        for side, error in _error_lines(target, report.head_label):
            lines.append(f"**{_code(target.target)} failed to render on {side}:**")
            lines.append("")
            lines.append(_fence(error, "text"))
    lines.append(f"<sub>{report.strip.describe()} · {MASKING_MARKDOWN}</sub>")
    lines.append("")
    head = "\n".join(lines) + "\n"

    sections = []
    for target in report.changed_targets:
        note = f" ({_note(target, report.head_label)})" if _note(target, report.head_label) else ""
        section = _Section(
            target.target,
            opening=(
                f"<details><summary><code>{html.escape(target.target)}</code>: "
                f"{_counts(target)}{html.escape(note)}"
                "</summary>\n\n"
            ),
            closing="</details>\n\n",
        )
        for change in target.changes:
            text = (
                f"{_code(str(change.key))} {change.status} "
                f"(+{change.lines_added} -{change.lines_removed})\n\n{_fence(change.diff, 'diff')}\n"
            )
            section.blocks.append(_Block(change, text))
        sections.append(section)

    def notice(omitted: list[tuple[str, ResourceChange]], limit: int) -> str:
        listed = _omitted_list(
            omitted, NOTICE_RESERVE - 300, lambda t, c: f"{_code(t)} {_code(str(c.key))}"
        )
        return (
            f"> [!WARNING]\n> Truncated to fit {limit} bytes: {len(omitted)} resource diffs "
            f"were left out: {listed}. {LOCAL_HINT[0].upper()}{LOCAL_HINT[1:]}.\n\n"
        )

    return _fit(head, sections, limit_bytes, notice)


# --- json for bots ------------------------------------------------------------------------


# The shape of `--output json`, described by schemas/output/diff.schema.json. A change a
# consumer must adapt to (a key removed or retyped) raises it; added keys do not.
JSON_VERSION = 1


def report_data(report: DiffReport) -> dict:
    return {
        "version": JSON_VERSION,
        "base": report.base_label,
        "head": report.head_label,
        "stripped": {
            "annotations": list(report.strip.annotations),
            "extra": list(report.strip.extra),
        },
        "masked": MASKING,
        "context": report.context,
        "changed": report.has_changes,
        "summary": {
            "targets": len(report.targets),
            **{status: report.count(status) for status in STATUSES},
            "failed": len(report.failed_targets),
        },
        "targets": [
            {
                "target": target.target,
                "presence": target.presence,
                "base_error": target.base_error,
                "head_error": target.head_error,
                **{status: target.count(status) for status in STATUSES},
                "unchanged": target.unchanged,
                "resources": [
                    {
                        "group": change.key.group,
                        "kind": change.key.kind,
                        "namespace": change.key.namespace,
                        "name": change.key.name,
                        "status": change.status,
                        "lines_added": change.lines_added,
                        "lines_removed": change.lines_removed,
                        "diff": change.diff,
                    }
                    for change in target.changes
                ],
            }
            for target in report.targets
        ],
    }


def format_json(report: DiffReport) -> str:
    return json.dumps(report_data(report), indent=2, ensure_ascii=False) + "\n"


def format_report(report: DiffReport, output: str, limit_bytes: int | None = None) -> str:
    """Render `report` as `output` (one of FORMATS). `limit_bytes` caps diff and markdown;
    markdown is capped at DEFAULT_MARKDOWN_LIMIT unless told otherwise. JSON is never cut,
    since a cut document would not parse."""
    if output == "markdown":
        return format_markdown(report, limit_bytes or DEFAULT_MARKDOWN_LIMIT)
    if output == "diff":
        return format_diff(report, limit_bytes)
    if output == "json":
        return format_json(report)
    raise ValueError(f"unknown output format {output!r}")
