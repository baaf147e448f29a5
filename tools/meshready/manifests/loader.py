"""Loading YAML manifests: fast, bounded, and with line numbers on demand.

The fast path parses each document with yaml-rs (a Rust parser, about ten times
faster than PyYAML's C loader on manifests). Line numbers are not tracked while
parsing; `LoadedDocument.line_of` re-composes that one document with PyYAML the
first time a line is asked for, which only happens for documents with findings.

Hostile input gets a bounded error instead of a crash or a hang:

- files larger than `MAX_FILE_BYTES` are refused before they are read whole;
- binary (NUL bytes) and non-UTF-8 files are refused with the offending position;
- deep block nesting is refused before parsing (the Rust parser recurses and would
  overflow the stack); flow nesting is capped by the parser itself at 256 levels;
- alias expansion ("billion laughs") is capped by the parser's replay limit.

Documents are split on `---` marker lines before parsing, so a syntax error in one
document does not hide the others. YAML forbids a document marker at the start of a
line inside a scalar, so the split is exact.

Semantics follow YAML 1.2 (core schema), as yaml-rs does: `yes`/`on` are strings
and `0755` is decimal. Kubernetes' own parser is YAML 1.1-flavoured there; see
docs/validate.md. Merge keys (`<<`) are resolved after parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml_rs

if TYPE_CHECKING:  # yaml is imported lazily: only documents with findings need it
    import yaml

PathKey = str | int
FieldPath = tuple[PathKey, ...]

MAX_FILE_BYTES = 16 * 1024 * 1024
# Columns of indentation/block indicators that start a line before we call it too deep.
MAX_BLOCK_INDENT = 400
# Events an alias may replay, in total per document (a billion-laughs guard).
MAX_ALIAS_EVENTS = 200_000

_DOC_MARKER = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n]|$)", re.M)
_DEEP_LINE = re.compile(rf"^[ \-?]{{{MAX_BLOCK_INDENT},}}", re.M)
_CONTENT = re.compile(r"^(?!---(?:[ \t\r\n]|$)|\.\.\.(?:[ \t\r\n]|$))[ \t]*[^\s#%]", re.M)
_PARSE_POSITION = re.compile(r"at line (\d+), column (\d+)")
_ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_ALIAS_EVENTS)


@dataclass(frozen=True)
class DuplicateKey:
    """A mapping key given twice; the later value wins in `LoadedDocument.data`."""

    path: FieldPath  # path of the mapping holding the key
    key: str
    first_line: int
    line: int

    @property
    def message(self) -> str:
        return f"duplicate key {self.key!r} (lines {self.first_line} and {self.line})"


@dataclass(frozen=True)
class LoadedDocument:
    filename: str
    index: int  # 0-based document index within the file
    line: int  # 1-based line where the document's content starts
    data: Any  # plain Python data (dict/list/scalars), None for an empty document
    error: str | None  # a parse/limit error with line and column; data is None then
    duplicate_keys: tuple[DuplicateKey, ...] = ()
    # The document's own text and the line its first character is on, for `line_of`.
    text: str = field(default="", repr=False, compare=False)
    first_line: int = field(default=1, repr=False, compare=False)
    _nodes: list = field(default_factory=list, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return self.error is None and self.data is None

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """1-based line of the field at `path` (e.g. ("spec","template","spec","containers",0,
        "ports",0,"name")), falling back to the nearest known ancestor, then to self.line."""
        node = self._root_node()
        if node is None:
            return self.line
        line = node.start_mark.line
        for key in path:
            found = _child(node, key)
            if found is None:
                break
            key_node, node = found
            line = (key_node or node).start_mark.line
        return self.first_line + line

    def _root_node(self) -> yaml.Node | None:
        if not self._nodes:
            self._nodes.append(_compose(self.text))
        return self._nodes[0]


def _compose(text: str) -> yaml.Node | None:
    import yaml

    try:
        return yaml.compose(text, Loader=yaml.CSafeLoader)
    except Exception:  # a document yaml-rs accepted but PyYAML does not: no lines, no crash
        return None


def _child(node: Any, key: PathKey) -> tuple[Any, Any] | None:
    """(key node or None, value node) for `key` under a composed node."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        found = None
        for key_node, value_node in node.value:  # the last duplicate wins, as in the data
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
                found = (key_node, value_node)
        if found is None:
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    inner = _child(value_node, key)
                    if inner is not None:
                        return inner
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return None, node.value[key]
    return None


def _duplicates(root: Any, first_line: int) -> tuple[DuplicateKey, ...]:
    import yaml

    found: list[DuplicateKey] = []
    stack: list[tuple[Any, FieldPath]] = [(root, ())]
    seen_nodes: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:  # aliases share nodes; visit each once
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = key_node.value
                    line = first_line + key_node.start_mark.line
                    if key in lines:
                        found.append(DuplicateKey(path, key, lines[key], line))
                    lines[key] = line
                    stack.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    return tuple(sorted(found, key=lambda d: d.line))


def _resolve_merge_keys(data: Any) -> Any:
    """Apply YAML merge keys (`<<: *anchor`), which yaml-rs leaves as plain `<<` keys."""
    if isinstance(data, list):
        return [_resolve_merge_keys(item) for item in data]
    if not isinstance(data, dict):
        return data
    merged: dict[Any, Any] = {}
    sources = data.get("<<")
    if isinstance(sources, dict):
        sources = [sources]
    if isinstance(sources, list) and all(isinstance(s, dict) for s in sources):
        for source in reversed(sources):  # earlier sources win over later ones
            merged.update(_resolve_merge_keys(source))
        data = {k: v for k, v in data.items() if k != "<<"}
    merged.update({k: _resolve_merge_keys(v) for k, v in data.items()})
    return merged


def _parse_error(err: Exception, first_line: int) -> str:
    """yaml-rs' multi-line message as one line, with the line made file-relative."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    head = lines[0] if lines else type(err).__name__
    position = _PARSE_POSITION.search(head)
    if position is None:
        return head
    line = first_line - 1 + int(position.group(1))
    reason = lines[-1] if len(lines) > 1 else ""
    reason = reason if not reason.startswith(("|", "^")) else ""
    where = f"line {line}, column {position.group(2)}"
    return f"YAML parse error at {where}: {reason}" if reason else f"YAML parse error at {where}"


def _segments(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, explicit) offsets of each document; `explicit` when it began with `---`."""
    start, explicit = 0, False
    for marker in _DOC_MARKER.finditer(text):
        if marker.start() > start or explicit:
            yield start, marker.start(), explicit
        start = marker.start()
        explicit = text.startswith("---", start)
        if not explicit:  # `...` ends a document; what follows starts after the line
            newline = text.find("\n", start)
            start = len(text) if newline < 0 else newline + 1
    if start < len(text) or explicit:
        yield start, len(text), explicit


@dataclass(frozen=True)
class DocumentText:
    """One document of a YAML stream, split off but not parsed yet. `load()` gives exactly
    the `LoadedDocument` that `load_text` gives for it; a caller that needs only some
    documents (picked by a cheap look at `text`) parses just those."""

    filename: str
    index: int
    text: str
    first_line: int  # line of the document's first character
    content_line: int  # line where its content starts

    def load(self) -> LoadedDocument:
        return _load_document(
            self.text, self.filename, self.index, self.first_line, self.content_line
        )


def split_text(text: str, filename: str) -> list[DocumentText]:
    """The documents of a YAML stream, unparsed (see `load_text`)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    documents: list[DocumentText] = []
    line = 1
    position = 0
    for start, end, explicit in _segments(text):
        line += text.count("\n", position, start)
        position = start
        chunk = text[start:end]
        content = _CONTENT.search(chunk)
        if content is None and not explicit:
            continue
        content_line = line + (chunk.count("\n", 0, content.start()) if content else 0)
        documents.append(DocumentText(filename, len(documents), chunk, line, content_line))
    return documents


def load_text(text: str, filename: str) -> list[LoadedDocument]:
    """Every document of a YAML stream. A document without content counts only when it is
    introduced by `---` (so a file of comments yields no documents)."""
    return [document.load() for document in split_text(text, filename)]


def _load_document(
    chunk: str, filename: str, index: int, first_line: int, content_line: int
) -> LoadedDocument:
    def failed(message: str) -> LoadedDocument:
        return LoadedDocument(filename, index, content_line, None, message, (), chunk, first_line)

    deep = _DEEP_LINE.search(chunk)
    if deep is not None:
        line = first_line + chunk.count("\n", 0, deep.start())
        return failed(f"nesting too deep at line {line} (more than {MAX_BLOCK_INDENT} levels)")
    duplicates: tuple[DuplicateKey, ...] = ()
    try:
        data = yaml_rs.loads(chunk, parse_datetime=False, alias_limits=_ALIAS_LIMITS)
    except yaml_rs.YAMLDecodeError as err:
        if not str(err).startswith("duplicate mapping key"):
            message = str(err)
            if "alias replay limit" in message:
                return failed(f"alias expansion too large (more than {MAX_ALIAS_EVENTS} nodes)")
            return failed(_parse_error(err, first_line))
        data = yaml_rs.loads(
            chunk,
            parse_datetime=False,
            alias_limits=_ALIAS_LIMITS,
            duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.LastWins,
        )
        root = _compose(chunk)
        duplicates = _duplicates(root, first_line) if root is not None else ()
        if not duplicates:  # keys that differ in YAML but collide in Python (1 and true)
            return failed(_parse_error(err, first_line))
    except (RecursionError, ValueError, TypeError) as err:
        return failed(f"cannot load document: {err}")
    if "<<" in chunk and isinstance(data, dict | list):
        data = _resolve_merge_keys(data)
    return LoadedDocument(filename, index, content_line, data, None, duplicates, chunk, first_line)


class LoadError(Exception):
    """A file that cannot be loaded at all (too large, binary, not UTF-8, unreadable)."""


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's text, refusing what would be unbounded or meaningless to parse."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as err:
        raise LoadError(f"cannot read: {err.strerror or err}") from None
    return decode(raw, max_bytes)


def decode(raw: bytes, max_bytes: int = MAX_FILE_BYTES) -> str:
    if len(raw) > max_bytes:
        raise LoadError(f"file too large (over {max_bytes} bytes)")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise LoadError(f"binary file (NUL byte at line {line})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise LoadError(
            f"not UTF-8: invalid byte 0x{raw[err.start]:02x} at line {line}, column {column}"
        ) from None


def load_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[LoadedDocument]:
    """Every document of a file; a file that cannot be loaded at all yields one document
    carrying the error, so callers report it alongside the rest."""
    try:
        text = read_text(path, max_bytes)
    except LoadError as err:
        return [LoadedDocument(str(path), 0, 1, None, str(err))]
    return load_text(text, str(path))
