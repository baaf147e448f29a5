"""Pinning images by digest: the `images:` entries of a kustomization, edited in place
(every byte it does not pin kept), and the check that rendered workloads use nothing but
digests."""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from meshready.errors import EXIT_FINDINGS, EXIT_USAGE, MeshreadyError
from meshready.images.ref import parse_image
from meshready.manifests import workloads

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Plain data, for checking; duplicate keys are an error, as kustomize makes them.
_SAFE = YAML(typ="safe", pure=True)


@dataclass(frozen=True)
class Pin:
    name: str  # the image as the manifests name it (`images[].name`)
    new_name: str  # the registry repository, without tag
    digest: str  # sha256:<64 hex>

    @property
    def reference(self) -> str:
        return f"{self.new_name}@{self.digest}"


def split_reference(reference: str) -> tuple[str, str]:
    """`repo[:tag]@sha256:...` -> (repo, digest); the tag is dropped, the digest decides."""
    parsed = parse_image(reference)
    if not parsed.pinned or parsed.digest is None:
        raise MeshreadyError(f"{reference!r} is not REPOSITORY@sha256:<64 hex digits>", EXIT_USAGE)
    repo = parsed.repository
    if not repo or repo.endswith("/"):
        raise MeshreadyError(f"{reference!r} names no repository", EXIT_USAGE)
    return repo, parsed.digest


def parse_pin(argument: str) -> Pin:
    """`NAME=REPOSITORY[:TAG]@sha256:...` as typed on the command line."""
    _check_one_line(argument, "image pin")
    name, sep, reference = argument.partition("=")
    if not sep or not name.strip():
        raise MeshreadyError(
            f"{argument!r}: expected NAME=REPOSITORY@sha256:DIGEST, e.g. "
            "helloserver=gcr.io/PROJECT/asm-ready/helloserver@sha256:...",
            EXIT_USAGE,
        )
    repo, digest = split_reference(reference.strip())
    return Pin(check_image_name(name.strip()), check_image_name(repo, "repository"), digest)


# ---------------------------------------------------------------- the kustomization edit
#
# The edit is made on the text, not by dumping a round-tripped document: ruamel.yaml reads
# the file (composing nodes that know where every key and value starts and ends), and only
# the spans of the values being pinned are replaced, keys inserted or a `newTag` removed.
# Every other byte (indentation of each block, comments, the end-of-file comment, CRLF,
# quoting, flow style, a BOM) is copied as it was. The result is read back and must equal
# the original data with the pins applied, or nothing is written.

# What an image name or repository may be spelled with (the reference grammar's characters,
# uppercase allowed for registry hosts): safe to write as a plain YAML scalar, one line.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]*")


def _check_one_line(value: str, what: str) -> None:
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise MeshreadyError(
                f"{what} {value!r} contains a control character (U+{ord(char):04X}): "
                "an image name is one line of letters, digits and . _ - / :",
                EXIT_USAGE,
            )


def check_image_name(value: str, what: str = "image name") -> str:
    """`value`, or a usage error: a control character (a newline would end the YAML line
    it is written on), or any character an image name cannot hold."""
    _check_one_line(value, what)
    if not _NAME_RE.fullmatch(value):
        raise MeshreadyError(
            f"{what} {value!r} is not an image name (letters, digits and . _ - / : only)",
            EXIT_USAGE,
        )
    return value


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int  # start == end: an insertion
    text: str


def _newline_of(text: str) -> str:
    """The file's own line ending (the first one it uses), for the lines added."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"


def _line_end(text: str, position: int) -> int:
    """The start of the line after the one holding `position` (a node's end); a block
    node that already ends at the start of a line ends there."""
    if position > 0 and text[position - 1] == "\n":
        return position
    found = text.find("\n", position)
    return len(text) if found < 0 else found + 1


def _line_start(text: str, position: int) -> int:
    return text.rfind("\n", 0, position) + 1


def _scalar(value: str, style: str | None) -> str:
    """`value` as a YAML scalar in the style the value it replaces had (plain, '' or "");
    quoted when plain would read as something else (`1.0`, `true`)."""
    if style in ("'", '"'):
        return f"{style}{value}{style}"
    if _SAFE.load(value) != value:
        return f"'{value}'"
    return value


def _last_leaf(node: Node) -> Node:
    """The last scalar or flow collection inside `node`: its end mark is exact, where a
    block collection's end runs on over the comments and blank lines after it."""
    while isinstance(node, (MappingNode, SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    return node


def _pairs(entry: MappingNode) -> dict[str, tuple[Node, Node]]:
    return {k.value: (k, v) for k, v in entry.value if isinstance(k, ScalarNode)}


def _replace(text: str, node: Node, value: str, newline: str) -> _Edit:
    """Replace a scalar's span with `value`; a block scalar (`|`, `>`) becomes a plain one
    that ends its line as the block did."""
    start, end = node.start_mark.index, node.end_mark.index
    if getattr(node, "style", None) in ("|", ">"):
        ends_line = text[start:end].endswith("\n")
        return _Edit(start, end, _scalar(value, None) + (newline if ends_line else ""))
    return _Edit(start, end, _scalar(value, getattr(node, "style", None)))


def _entry_edits(text: str, entry: MappingNode, pin: Pin, newline: str) -> list[_Edit]:
    """The edits that give one existing `images:` entry newName and digest, no newTag."""
    pairs = _pairs(entry)
    edits: list[_Edit] = []
    added: list[tuple[str, str]] = []  # (key, value) to insert after newName (or name)
    if "newName" in pairs:
        value = pairs["newName"][1]
        edits.append(_replace(text, value, pin.new_name, newline))
        after = pairs["newName"]
    else:
        added.append(("newName", _scalar(pin.new_name, None)))
        after = pairs["name"]
    if "digest" in pairs:
        edits.append(_replace(text, pairs["digest"][1], pin.digest, newline))
        if "newTag" in pairs:
            edits.append(_delete_pair(text, entry, pairs["newTag"]))
    elif "newTag" in pairs:
        # The digest takes newTag's place, keeping its quoting and end-of-line comment.
        key, value = pairs["newTag"]
        renamed = _scalar("digest", getattr(key, "style", None))
        edits.append(_Edit(key.start_mark.index, key.end_mark.index, renamed))
        edits.append(_replace(text, value, pin.digest, newline))
    else:
        added.append(("digest", _scalar(pin.digest, None)))
    if added:
        key, value = after
        if entry.flow_style:
            inserted = "".join(f", {k}: {v}" for k, v in added)
            edits.append(_Edit(value.end_mark.index, value.end_mark.index, inserted))
        else:
            at = _line_end(text, value.end_mark.index)
            indent = " " * key.start_mark.column
            lines = "".join(f"{indent}{k}: {v}{newline}" for k, v in added)
            lead = newline if at == len(text) and not text.endswith("\n") else ""
            edits.append(_Edit(at, at, lead + lines))
    return edits


def _delete_pair(text: str, entry: MappingNode, pair: tuple[Node, Node]) -> _Edit:
    """Remove `pair` (newTag beside a digest): its whole line when it has one, else the
    span up to the next key (which then takes its place) or from the previous value."""
    key, value = pair
    index = next(i for i, (k, _) in enumerate(entry.value) if k is key)
    following = entry.value[index + 1][0] if index + 1 < len(entry.value) else None
    if not entry.flow_style:
        line = _line_start(text, key.start_mark.index)
        if not text[line : key.start_mark.index].strip():
            return _Edit(line, _line_end(text, value.end_mark.index), "")
    elif index > 0:
        return _Edit(entry.value[index - 1][1].end_mark.index, value.end_mark.index, "")
    if following is not None:
        return _Edit(key.start_mark.index, following.start_mark.index, "")
    return _Edit(key.start_mark.index, value.end_mark.index, "")


def _block_sequence_layout(root: MappingNode, text: str) -> tuple[int, int]:
    """(dash offset from its key, key offset from the dash) of the file's block lists, so
    a new `images:` list looks like the others; kustomize's own `- name` style if none."""
    for key, value in root.value:
        if isinstance(value, SequenceNode) and not value.flow_style and value.value:
            return _item_layout(text, value.value[0], key.start_mark.column)
    return 0, 2


def _item_layout(text: str, item: Node, key_column: int) -> tuple[int, int]:
    line = _line_start(text, item.start_mark.index)
    dash = text.rfind("-", line, item.start_mark.index)
    if dash < 0:
        return 0, 2
    dash_column = dash - line
    return max(dash_column - key_column, 0), max(item.start_mark.column - dash_column, 2)


def _block_entries(pins: list[Pin], dash_column: int, gap: int, newline: str) -> str:
    dash = " " * dash_column + "-" + " " * (gap - 1)
    indent = " " * (dash_column + gap)
    return "".join(
        f"{dash}name: {_scalar(p.name, None)}{newline}"
        f"{indent}newName: {_scalar(p.new_name, None)}{newline}"
        f"{indent}digest: {_scalar(p.digest, None)}{newline}"
        for p in pins
    )


def _flow_entries(pins: list[Pin]) -> list[str]:
    return [
        f"{{name: {_scalar(p.name, None)}, newName: {_scalar(p.new_name, None)}, "
        f"digest: {_scalar(p.digest, None)}}}"
        for p in pins
    ]


def _append_edits(
    text: str, root: MappingNode, images: tuple[Node, Node] | None, pins: list[Pin], newline: str
) -> list[_Edit]:
    """The edits that add entries for `pins`, which have none yet."""
    if not pins:
        return []
    if images is None:
        # A new `images:` list after the document's last value, before any trailing
        # comments, so an end-of-file comment stays at the end of the file.
        dash, gap = _block_sequence_layout(root, text)
        at = _line_end(text, _last_leaf(root).end_mark.index) if root.value else 0
        lead = newline if at == len(text) and text and not text.endswith("\n") else ""
        added = f"{lead}images:{newline}{_block_entries(pins, dash, gap, newline)}"
        return [_Edit(at, at, added)]
    key, value = images
    if isinstance(value, SequenceNode) and value.flow_style:
        entries = ", ".join(_flow_entries(pins))
        if value.value:
            end = value.value[-1].end_mark.index
            return [_Edit(end, end, f", {entries}")]
        return [_Edit(value.start_mark.index + 1, value.start_mark.index + 1, entries)]
    edits = []
    if isinstance(value, SequenceNode) and value.value:
        dash, gap = _item_layout(text, value.value[0], 0)
        at = _line_end(text, _last_leaf(value).end_mark.index)
    else:  # `images:` with nothing (or `~`) after it
        dash, gap = _block_sequence_layout(root, text)
        dash += key.start_mark.column
        if value.end_mark.index > value.start_mark.index:
            edits.append(_Edit(value.start_mark.index, value.end_mark.index, ""))
        at = _line_end(text, key.end_mark.index)
    lead = newline if at == len(text) and not text.endswith("\n") else ""
    edits.append(_Edit(at, at, lead + _block_entries(pins, dash, gap, newline)))
    return edits


def _shared_nodes(root: Node) -> set[int]:
    """The ids of nodes reached more than once (an anchor and its aliases)."""
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            stack += [part for pair in node.value for part in pair]
        elif isinstance(node, SequenceNode):
            stack += node.value
    return shared


def _unpinnable(
    source: str, entries: list[Node], data: list[Any], names: set[str], shared: set[int]
) -> list[str]:
    """Why entries of `images:` cannot be pinned: not a mapping (kustomize rejects those
    too), two entries for one image being pinned (which would win is kustomize's call), or
    an anchor's value that is used elsewhere too."""
    problems = []
    first_line: dict[str, int] = {}
    for node, value in zip(entries, data, strict=True):
        line = node.start_mark.line + 1
        if id(node) in shared:
            shown = value.get("name") if isinstance(value, dict) else value
            problems.append(
                f"{source}:{line}: images entry {shown!r} is a YAML anchor's value used "
                "elsewhere too (pinning it would change both)"
            )
            continue
        if not isinstance(value, dict):
            shown = value if isinstance(value, str) else type(value).__name__
            problems.append(
                f"{source}:{line}: images entry {shown!r} is not a mapping "
                "(name:, newName:, digest:)"
            )
            continue
        name = value.get("name")
        if isinstance(name, str) and name in names:
            if name in first_line:
                problems.append(
                    f"{source}:{line}: images entry {name!r} repeats the one on line "
                    f"{first_line[name]}"
                )
            else:
                first_line[name] = line
    return problems


def _pinned_data(data: dict[str, Any], pins: list[Pin]) -> dict[str, Any]:
    """What the kustomization must read as after the edit (plain data)."""
    expected = copy.deepcopy(data)
    images = expected.get("images")
    if not isinstance(images, list):
        images = expected["images"] = []
    for pin in pins:
        entry = next((e for e in images if e.get("name") == pin.name), None)
        if entry is None:
            images.append({"name": pin.name, "newName": pin.new_name, "digest": pin.digest})
            continue
        entry.pop("newTag", None)
        entry["newName"] = pin.new_name
        entry["digest"] = pin.digest
    return expected


def pin_text(text: str, pins: Iterable[Pin], source: str = "kustomization") -> str:
    """`text` (a kustomization) with an `images:` entry per pin: an existing entry of the
    same name gets newName and digest in place (the digest where newTag was, newTag
    removed); a missing one is appended. Every other byte is left as written."""
    pins = list(pins)
    for p in pins:
        check_image_name(p.name)
        check_image_name(p.new_name, "repository")
    try:
        data = _SAFE.load(text)
        root = YAML().compose(text)
    except YAMLError as err:
        raise MeshreadyError(f"{source}: not valid YAML: {_one_line(err)}", EXIT_USAGE) from None
    if not isinstance(data, dict) or not isinstance(root, MappingNode):
        raise MeshreadyError(f"{source}: not a kustomization (a mapping at the top)", EXIT_USAGE)
    images = next(
        ((k, v) for k, v in root.value if isinstance(k, ScalarNode) and k.value == "images"),
        None,
    )
    entries: list[Node] = []
    if images is not None and data.get("images") is not None:
        if not isinstance(images[1], SequenceNode) or not isinstance(data["images"], list):
            raise MeshreadyError(f"{source}: `images:` is not a list", EXIT_USAGE)
        entries = images[1].value
    listed = data.get("images") or []
    shared = _shared_nodes(root)
    problems = _unpinnable(source, entries, listed, {p.name for p in pins}, shared)
    if problems:
        raise MeshreadyError(
            f"cannot pin: {'; '.join(problems)}; fix these entries first", EXIT_FINDINGS
        )
    newline = _newline_of(text)
    edits: list[_Edit] = []
    missing = []
    for p in pins:
        index = next((i for i, e in enumerate(listed) if e.get("name") == p.name), None)
        if index is None:
            missing.append(p)
        else:
            edits += _entry_edits(text, cast(MappingNode, entries[index]), p, newline)
    edits += _append_edits(text, root, images, missing, newline)
    updated = text
    # From the end backwards, so earlier spans keep their offsets; a deletion before an
    # insertion at the same place, so the inserted text is not deleted.
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        updated = updated[: edit.start] + edit.text + updated[edit.end :]
    try:
        reread = _SAFE.load(updated)
    except YAMLError:
        reread = None
    if reread != _pinned_data(data, pins):
        raise MeshreadyError(
            f"{source}: cannot pin this layout of `images:` without touching other lines; "
            "edit it by hand",
            EXIT_FINDINGS,
        )
    return updated


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise MeshreadyError(f"{directory}: no kustomization.yaml", EXIT_USAGE)


def pin_overlay(directory: Path, pins: Iterable[Pin]) -> Path:
    """Rewrite the overlay's kustomization with `pins`; the file written."""
    path = kustomization_file(directory)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")  # bytes as they are: read_text() would turn CRLF into LF
    except UnicodeDecodeError as err:
        raise MeshreadyError(f"{path}: not UTF-8 (byte {err.start})", EXIT_USAGE) from None
    updated = pin_text(text, pins, source=str(path))
    if updated != text:
        path.write_bytes(updated.encode("utf-8"))
    return path


# ---------------------------------------------------------------- pinned-ness of rendered objects


@dataclass(frozen=True)
class UnpinnedImage:
    target: str
    workload: str  # Deployment/hello/helloserver
    container: str
    image: str
    origin: str  # the manifest it came from, "" when unknown


def container_images(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """(container name, image) for every container of a workload or pod."""
    spec = workloads.pod_spec(obj)
    if spec is None:
        return []
    fields = ("initContainers", "containers", "ephemeralContainers")
    return [
        (str(container.get("name", "?")), str(container.get("image", "")))
        for _, _, container in workloads.containers(spec, fields)
    ]


def is_pinned(image: str) -> bool:
    return parse_image(image).pinned


def unpinned_images(target: str, objects: Iterable[Any]) -> list[UnpinnedImage]:
    """Every container image in `objects` (RenderedObjects) not pinned by digest."""
    found = []
    for rendered in objects:
        obj = rendered.obj
        meta = obj.get("metadata") or {}
        workload = "/".join(
            str(part) for part in (obj.get("kind"), meta.get("namespace"), meta.get("name")) if part
        )
        origin = (rendered.origin or {}).get("path", "") if rendered.origin else ""
        for container, image in container_images(obj):
            if not is_pinned(image):
                found.append(UnpinnedImage(target, workload, container, image, origin))
    return found


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())
