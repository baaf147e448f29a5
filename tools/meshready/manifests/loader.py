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
- alias expansion ("billion laughs") is capped by the parser's replay limit;
- a file of more than `MAX_DOCUMENTS` documents (16 MB of `---`) is one error.

Documents are split on `---` marker lines before parsing, so a syntax error in one
document does not hide the others. YAML forbids a document marker at the start of a
line inside a scalar, so the split is exact.

Scalars resolve as kubectl resolves them (sigs.k8s.io/yaml, go-yaml v2 rules): the
YAML 1.1 booleans `y`, `yes`, `on`, `off`, `no`, `n` (and their capitalised forms),
legacy octal `0755`, binary `0b101` and `_` digit separators. yaml-rs reads YAML 1.2,
so a document whose text holds such a plain scalar (cheap regexes find candidates) is
composed with PyYAML and built by `_construct` instead, keys becoming strings as
sigs.k8s.io/yaml makes them (`1` -> "1", `true` -> "true", `on` -> "true").
Merge keys (`<<`) are resolved after parsing.
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
# Documents one file may hold. kubeconform's acceptance suite validates 100,000 in one file;
# beyond this, a stream of empty documents would cost memory for nothing.
MAX_DOCUMENTS = 200_000

_DOC_MARKER = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n]|$)", re.M)
_DEEP_LINE = re.compile(rf"^[ \-?]{{{MAX_BLOCK_INDENT},}}", re.M)
_CONTENT = re.compile(r"^(?!---(?:[ \t\r\n]|$)|\.\.\.(?:[ \t\r\n]|$))[ \t]*[^\s#%]", re.M)
_PARSE_POSITION = re.compile(r"at line (\d+), column (\d+)")
_PAST_ANCHOR = re.compile(r"&\S*\s*")  # an anchor and the space after it, however long
_ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_ALIAS_EVENTS)

# A plain scalar that YAML 1.1 (kubectl) and YAML 1.2 (yaml-rs) read differently, as a value
# (after `: `, `- `, `? `, or in a flow collection) or, for the boolean words, as a key. A
# hit is only a candidate (it may sit in a comment or a block scalar); the composed
# document decides. Each pattern starts with a literal, so searching stays cheap (about
# 10 us per document): this runs on every document. Keys that are not strings at all
# (`1:`, `true:`) are left to the consumer (validation turns them into strings, see
# `stringify_keys`), or to the duplicate-key path when they collide in Python (1, true).
_YAML11_ONLY = (
    r"(?:[yYnN]|[Yy]es|YES|[Nn]o|NO|[Oo]n|ON|[Oo]ff|OFF"
    r"|[-+]?0b[01_]+|[-+]?0[0-7_]+|[-+]?\.?[0-9][0-9._eE+-]*_[0-9_.eE+-]*)"
)
_SCALAR_END = r"[ \t]*(?=$|#|[,\]}]|:[ \t]|:$)"
_BOOLEAN_WORD = r"(?:[yYnN]|[Yy]es|YES|[Nn]o|NO|[Oo]n|ON|[Oo]ff|OFF)"
_FIRST = "(?=[yYnNoO0-9+.-])"  # the first character of any such token: prunes most tries
_KUBECTL_CANDIDATES = (
    re.compile(rf":[ \t]+{_FIRST}(?P<t>{_YAML11_ONLY}){_SCALAR_END}", re.M),
    re.compile(rf"[-?][ \t]+{_FIRST}(?P<t>{_YAML11_ONLY}){_SCALAR_END}", re.M),
    re.compile(rf"[\[{{,][ \t]*{_FIRST}(?P<t>{_YAML11_ONLY}){_SCALAR_END}", re.M),
)
# A boolean word as a key (`on:`, `y:`), found from the colon, which is cheaper to scan for
# than the word: one fixed-width look-behind per spelling. At the very start of a document
# there is nothing to look behind at; `_KEY_AT_START` covers it.
_BOOLEAN_WORDS: tuple[str, ...] = ("y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO")
_BOOLEAN_WORDS += ("on", "On", "ON", "off", "Off", "OFF")
_BOOLEAN_KEY = re.compile(  # the last letter first: most keys end in another one
    ":(?<=[yYnNsSoOfF]:)(?=[ \t]|$)(?:" + "|".join(f"(?<=[ \n]{w}:)" for w in _BOOLEAN_WORDS) + ")",
    re.M,
)
_KEY_AT_START = re.compile(rf"(?P<t>{_BOOLEAN_WORD}):(?:[ \t]|$)")
_LEGACY_NUMBER = re.compile(r"[-+]?0[0-7]+|[-+]?0b[01]+")  # yaml-rs reads these as numbers


def kubectl_candidate(text: str) -> bool:
    """Whether `text` may hold a scalar kubectl reads differently from YAML 1.2."""
    return (
        any(pattern.search(text) for pattern in _KUBECTL_CANDIDATES)
        or _BOOLEAN_KEY.search(text) is not None
        or _KEY_AT_START.match(text) is not None
    )


def _kubectl_differs(text: str, data: Any) -> bool:
    """Whether a document yaml-rs parsed into `data` may read differently in kubectl: a
    candidate token of its text is a whole string of the data (not just a line inside a
    block or quoted scalar, as an embedded config file's `y: 1` is), or a number yaml-rs
    read in YAML 1.2 (legacy octal). Cheap: a JSON dump of the data, only for candidates."""
    tokens = {m.group("t") for p in _KUBECTL_CANDIDATES for m in p.finditer(text)}
    for match in _BOOLEAN_KEY.finditer(text):
        start = max(text.rfind(" ", 0, match.start()), text.rfind("\n", 0, match.start()))
        tokens.add(text[start + 1 : match.start()])
    start_key = _KEY_AT_START.match(text)
    if start_key is not None:
        tokens.add(start_key.group("t"))
    if not tokens:
        return False
    if any(_LEGACY_NUMBER.fullmatch(t) for t in tokens):
        return True
    import json

    try:
        dumped = json.dumps(data, ensure_ascii=False, check_circular=False)
    except (TypeError, ValueError, RecursionError):  # tuple keys, or too deep: the nodes decide
        return True
    return any(f'"{t}"' in dumped for t in tokens)


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
    # id(mapping node) -> {key: (key node, value node)}, built once per mapping asked about
    _index: dict = field(default_factory=dict, repr=False, compare=False)

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
            found = _child(node, key, self._index)
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
        # The base loader resolves no implicit tags (PyYAML's resolver is Python, and its
        # YAML 1.1 rules are not kubectl's anyway): `_construct` resolves scalars itself.
        return yaml.compose(text, Loader=yaml.CBaseLoader)
    except Exception:  # a document yaml-rs accepted but PyYAML does not: no lines, no crash
        return None


def _child(node: Any, key: PathKey, index: dict | None = None) -> tuple[Any, Any] | None:
    """(key node or None, value node) for `key` under a composed node. `index` caches each
    mapping's keys, so asking for many keys of one mapping stays linear."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        index = {} if index is None else index
        keys = index.get(id(node))
        if keys is None:
            keys = {}
            for key_node, value_node in node.value:  # the last duplicate wins, as in the data
                if isinstance(key_node, yaml.ScalarNode):
                    keys[key_node.value] = (key_node, value_node)
            index[id(node)] = keys
        found = keys.get(str(key))
        if found is None:
            for key_node, value_node in node.value:
                if _is_merge_key(key_node):  # `<<: *a` or `<<: [*a, *b]`: the first source wins
                    sources = (
                        value_node.value
                        if isinstance(value_node, yaml.SequenceNode)
                        else [value_node]
                    )
                    for source in sources:
                        inner = _child(source, key, index)
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


# -- scalars and keys as kubectl reads them (sigs.k8s.io/yaml on go-yaml v2) ---------------

_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_PLAIN_VALUES: dict[str, Any] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL")),
    **dict.fromkeys(
        ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"], True
    ),
    **dict.fromkeys(
        ["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"], False
    ),
    **dict.fromkeys([".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], float("inf")),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], float("-inf")),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], float("nan")),
}
_DIGITS = {16: "0123456789abcdef", 10: "0123456789", 8: "01234567", 2: "01"}


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), else ParseUint: sign, 0x/0o/0b or legacy-octal 0."""
    sign, body = (-1, text[1:]) if text[:1] == "-" else (1, text.removeprefix("+"))
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[prefix], body[2:]
    elif body[:1] == "0" and len(body) > 1:
        base, digits = 8, body[1:]
    else:
        base, digits = 10, body
    if not digits or any(c not in _DIGITS[base] for c in digits.lower()):
        return None
    value = sign * int(digits, base)
    return value if -(2**63) <= value < 2**64 else None


def resolve_plain_scalar(text: str) -> Any:
    """A plain (unquoted, untagged) scalar as go-yaml v2 resolves it for kubectl."""
    if text in _PLAIN_VALUES:
        return _PLAIN_VALUES[text]
    if text[:1] in "+-.0123456789":
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return number
        if _GO_FLOAT.fullmatch(plain):
            return float(plain)
    return text  # timestamps stay strings, as go-yaml v2 leaves them for interface{}


def _go_float32_key(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), as sigs.k8s.io/yaml turns a float key into a
    string: the shortest float32 digits, in exponent form when the exponent is below -4
    or at least 6 (Go's rule for the shortest `g` form: 1e+06, 0.0001, 1e-05)."""
    import math
    import struct

    single = struct.unpack("f", struct.pack("f", value))[0]
    if math.isinf(single):  # also a finite value beyond float32's range, as Go's float32()
        return ".inf" if single > 0 else "-.inf"
    if math.isnan(single):
        return ".nan"
    for precision in range(1, 10):
        text = f"{single:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            break
    mantissa, exponent = text.split("e")
    power = int(exponent)
    digits = mantissa.replace(".", "").lstrip("-").rstrip("0") or "0"
    negative = "-" if mantissa.startswith("-") else ""
    if power < -4 or power >= 6:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{negative}{head}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if power < 0:
        return f"{negative}0.{'0' * (-power - 1)}{digits}"
    whole = (digits + "0" * (power + 1 - len(digits)))[: power + 1]
    fraction = digits[power + 1 :]
    return f"{negative}{whole}" + (f".{fraction}" if fraction else "")


class UnsupportedKey(ValueError):
    """A mapping key kubectl cannot turn into a JSON object key (null, a list, a mapping)."""


def json_key(key: Any) -> str:
    """A mapping key as the JSON object key sigs.k8s.io/yaml makes of it."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _go_float32_key(key)
    shown = "null" if key is None else type(key).__name__
    raise UnsupportedKey(f"mapping key {shown} is not supported (kubectl rejects it)")


def stringify_keys(data: Any) -> Any:
    """`data` with every mapping key a string (see `json_key`)."""
    if isinstance(data, dict):
        return {json_key(k): stringify_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [stringify_keys(item) for item in data]
    return data


_STR_TAG = "tag:yaml.org,2002:str"


def _is_merge_key(node: Any) -> bool:
    """A plain `<<` key (the base loader leaves it untagged). The value is compared first:
    a sequence or mapping key (`? [a]`) has no `style`."""
    return (
        node.value == "<<" and not node.style and node.tag in (_STR_TAG, "tag:yaml.org,2002:merge")
    )


def _construct(root: Any, text: str) -> Any:
    """Plain data from a composed document, with kubectl's scalar rules and string keys.
    Aliases share their value (as yaml-rs does); yaml-rs has already enforced the alias
    replay limit on this document, so building stays linear in its nodes."""
    import yaml

    built: dict[int, Any] = {}

    def scalar(node: yaml.ScalarNode) -> Any:
        if node.style:  # quoted or block (plain is "" or None): always a string
            return node.value
        start = node.start_mark.index
        if text.startswith("&", start):  # an anchor before the scalar: look past it
            start = _PAST_ANCHOR.match(text, start).end()  # type: ignore[union-attr]
        if text.startswith("!", start) and node.tag == _STR_TAG:  # explicitly tagged
            return node.value
        return resolve_plain_scalar(node.value)

    def build(node: Any) -> Any:
        known = built.get(id(node))
        if known is not None or id(node) in built:
            return known
        if isinstance(node, yaml.ScalarNode):
            value = scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = [build(item) for item in node.value]
        else:
            value = {}
            for key_node, value_node in node.value:
                if _is_merge_key(key_node):
                    sources = (
                        value_node.value
                        if isinstance(value_node, yaml.SequenceNode)
                        else [value_node]
                    )
                    merged: dict[str, Any] = {}
                    for source in reversed(sources):  # earlier sources win over later ones
                        source_value = build(source)
                        if isinstance(source_value, dict):
                            merged.update(source_value)
                    value = {**merged, **value}
            for key_node, value_node in node.value:
                if not _is_merge_key(key_node):
                    value[json_key(build(key_node))] = build(value_node)
        built[id(node)] = value
        return value

    return build(root)


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
    """The documents of a YAML stream, unparsed (see `load_text`); `LoadError` when there
    are more than `MAX_DOCUMENTS`."""
    if text.startswith("\ufeff"):
        text = text[1:]
    documents: list[DocumentText] = []
    line = 1
    position = 0
    for start, end, explicit in _segments(text):
        if len(documents) >= MAX_DOCUMENTS:
            raise LoadError(f"too many documents (more than {MAX_DOCUMENTS:,} in one file)")
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
    introduced by `---` (so a file of comments yields no documents). A stream of more than
    `MAX_DOCUMENTS` documents is one error document."""
    try:
        documents = split_text(text, filename)
    except LoadError as err:
        return [LoadedDocument(filename, 0, 1, None, str(err))]
    return [document.load() for document in documents]


def _load_document(
    chunk: str, filename: str, index: int, first_line: int, content_line: int
) -> LoadedDocument:
    def failed(message: str) -> LoadedDocument:
        return LoadedDocument(filename, index, content_line, None, message, (), chunk, first_line)

    deep = _DEEP_LINE.search(chunk)
    if deep is not None:
        line = first_line + chunk.count("\n", 0, deep.start())
        return failed(f"nesting too deep at line {line} (more than {MAX_BLOCK_INDENT} levels)")
    duplicate_error: Exception | None = None
    try:
        try:
            data = yaml_rs.loads(chunk, parse_datetime=False, alias_limits=_ALIAS_LIMITS)
        except yaml_rs.YAMLDecodeError as err:
            if not str(err).startswith("duplicate mapping key"):
                raise
            duplicate_error = err
            # Parsed again only for its limits (alias replay); the data comes from the nodes.
            data = yaml_rs.loads(
                chunk,
                parse_datetime=False,
                alias_limits=_ALIAS_LIMITS,
                duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.LastWins,
            )
    except yaml_rs.YAMLDecodeError as err:
        if "alias replay limit" in str(err):
            return failed(f"alias expansion too large (more than {MAX_ALIAS_EVENTS} nodes)")
        return failed(_parse_error(err, first_line))
    except (RecursionError, ValueError, TypeError) as err:
        return failed(f"cannot load document: {err}")
    nodes: list = []
    duplicates: tuple[DuplicateKey, ...] = ()
    # A quoted `'<<'` is a plain key to kubectl, not a merge; only the nodes can tell.
    quoted_merge = "'<<'" in chunk or '"<<"' in chunk
    if (
        duplicate_error is not None
        or quoted_merge
        or (kubectl_candidate(chunk) and _kubectl_differs(chunk, data))
    ):
        # kubectl's reading differs from yaml-rs' here, or keys repeat: build from the nodes.
        root = _compose(chunk)
        if root is None:
            if duplicate_error is not None:
                return failed(_parse_error(duplicate_error, first_line))
        else:
            nodes.append(root)
            if duplicate_error is not None:
                duplicates = _duplicates(root, first_line)
            try:
                data = _construct(root, chunk)
            except UnsupportedKey as err:
                return failed(str(err))
            except RecursionError:
                return failed("nesting too deep to load")
    elif "<<" in chunk and isinstance(data, dict | list):
        data = _resolve_merge_keys(data)
    return LoadedDocument(
        filename, index, content_line, data, None, duplicates, chunk, first_line, nodes
    )


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
