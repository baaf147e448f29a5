"""The one source locator: from a rendered object (its origin file, kind and name) and a
field path to the line of the file a person edits. Used by analysis and validation."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshready.manifests.loader import (
    DocumentText,
    LoadedDocument,
    LoadError,
    read_text,
    split_text,
)

Path_ = Sequence[str | int]


class Locator:
    """Maps (rendered object, field path) to a line of its source file.

    Only objects with findings are located. Each source file is read and split into
    documents once; a document is parsed only when it may be the one sought (see
    `_SourceFile`), and composed for line numbers only when a line is asked of it."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[str, _SourceFile] = {}

    def _file(self, relative: str) -> _SourceFile:
        source = self._files.get(relative)
        if source is None:
            path = self.root / relative
            try:
                source = _SourceFile(split_text(read_text(path), str(path)))
            except (LoadError, ValueError):
                source = _SourceFile([])
            self._files[relative] = source
        return source

    def locate(self, source_path: str | None, kind: str, name: str, path: Path_) -> int | None:
        """The line of `path` in the source document of the object `kind`/`name` rendered
        from `source_path` (relative to the root), or None when it cannot be found."""
        if not source_path:
            return None
        document = self.document(source_path, kind, name)
        if document is None:
            return None
        return _line_of(document, path)  # the loader falls back to the nearest ancestor

    def document(self, source_path: str, kind: str, name: str) -> LoadedDocument | None:
        """The source document of a rendered object (see `_SourceFile.matching`)."""
        return self._file(source_path).matching(kind, name)


def _line_of(document: Any, path: Path_) -> int | None:
    try:
        line = document.line_of(tuple(path))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return line if isinstance(line, int) else None


# A value made of these characters appears verbatim in the text of any document whose
# parsed value it is, unless that text uses an escape (a backslash): no quoting, folding
# or line break can produce it otherwise.
_VERBATIM = re.compile(r"[A-Za-z0-9._-]+")


def _must_appear(value: str, str_of_any_scalar: bool = False) -> bool:
    """Whether a document whose parsed `value` (a str; with `str_of_any_scalar`, str() of
    any scalar: 0x10 gives "16") equals `value` must contain `value` in its text."""
    if not _VERBATIM.fullmatch(value):
        return False
    if str_of_any_scalar:
        if value in ("True", "False", "None"):
            return False
        try:
            float(value)
        except ValueError:
            return True
        return False
    return True


class _SourceFile:
    """The documents of one source file, parsed one by one as candidates need them."""

    def __init__(self, documents: list[DocumentText]):
        self.documents = documents
        self._loaded: dict[int, LoadedDocument] = {}
        self._matches: dict[tuple[str, str], LoadedDocument | None] = {}

    def _load(self, document: DocumentText) -> LoadedDocument:
        loaded = self._loaded.get(document.index)
        if loaded is None:
            try:
                loaded = document.load()
            except ValueError as err:  # as unreadable as a parse error: no lines from it
                loaded = LoadedDocument(document.filename, document.index, 1, None, str(err))
            self._loaded[document.index] = loaded
        return loaded

    def _kind_documents(self, kind: str, candidates: list[DocumentText]) -> list[LoadedDocument]:
        loaded = (self._load(d) for d in candidates)
        return [
            d
            for d in loaded
            if d.error is None and isinstance(d.data, dict) and d.data.get("kind") == kind
        ]

    def matching(self, kind: str, name: str) -> LoadedDocument | None:
        """The source document of a rendered object: same kind and name, or a name kustomize
        extended with namePrefix/nameSuffix, or else the first document of that kind.

        The same answer as parsing every document and scanning them in order, but documents
        that cannot hold the kind (or, for the exact name, the name) are not parsed."""
        key = (kind, name)
        if key in self._matches:
            return self._matches[key]
        of_kind = _containing(self.documents, kind, _must_appear(kind))
        exact = _containing(of_kind, name, _must_appear(name, str_of_any_scalar=True))
        found = next(
            (d for d in self._kind_documents(kind, exact) if _source_name(d) == name), None
        )
        if found is None:
            same_kind = self._kind_documents(kind, of_kind)
            names = [(d, _source_name(d)) for d in same_kind]
            found = next((d for d, source in names if source and source in name), None)
            if found is None and same_kind:
                found = same_kind[0]
        self._matches[key] = found
        return found


def _containing(documents: list[DocumentText], value: str, filter_: bool) -> list[DocumentText]:
    if not filter_:
        return documents
    return [d for d in documents if value in d.text or "\\" in d.text]


def _source_name(document: LoadedDocument) -> str:
    metadata = document.data.get("metadata") if isinstance(document.data, dict) else None
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


# Transformers whose change to an object is written in a patch a person edits.
PATCH_TRANSFORMERS = frozenset(
    {"PatchTransformer", "PatchStrategicMergeTransformer", "PatchJson6902Transformer"}
)
_MISSING = object()


class PatchLocator:
    """Maps a field of a rendered object to the line of the overlay patch that set it.

    kustomize's `alpha.config.kubernetes.io/transformations` names the kustomization each
    patch transformer was configured in, not the patch; so the kustomization's `patches`
    (and the legacy `patchesStrategicMerge`, `patchesJson6902`) are read, and the last patch
    that applies to the object's kind and name and sets the field wins (patches run in
    order). Strategic-merge patches count when they hold the whole field path; JSON 6902
    operations when their path is the field or one of its ancestors."""

    def __init__(self, root: Path):
        self.root = root
        self._patches: dict[str, list[_Patch]] = {}

    def locate(
        self, transformations: Any, kind: str, name: str, path: Path_
    ) -> tuple[str, int] | None:
        """(file relative to the root, line) of the last patch setting `path`, or None."""
        found = None
        for step in transformations if isinstance(transformations, list) else ():
            by = step.get("configuredBy") if isinstance(step, dict) else None
            if not isinstance(by, dict) or by.get("kind") not in PATCH_TRANSFORMERS:
                continue
            configured_in = step.get("configuredIn")
            if not isinstance(configured_in, str):
                continue
            for patch in self._patches_of(configured_in):
                line = patch.line_of(kind, name, tuple(path))
                if line is not None:
                    found = (patch.file, line)
        return found

    def _patches_of(self, kustomization: str) -> list[_Patch]:
        if kustomization not in self._patches:
            self._patches[kustomization] = _read_patches(self.root, kustomization)
        return self._patches[kustomization]


class _Patch:
    """One patch entry: its documents, where its text starts, and its target selector."""

    def __init__(self, file: str, documents: list[LoadedDocument], offset: int, target: Any):
        self.file = file
        self.documents = documents
        self.offset = offset  # lines before the patch text (inline patches)
        self.target = target if isinstance(target, dict) else None

    def line_of(self, kind: str, name: str, path: tuple[str | int, ...]) -> int | None:
        for document in self.documents:
            data = document.data
            if document.error is not None:
                continue
            if isinstance(data, list):  # JSON 6902 operations
                if not self._targets(kind, name, None):
                    continue
                for index, operation in enumerate(data):
                    pointer = operation.get("path") if isinstance(operation, dict) else None
                    if isinstance(pointer, str) and _is_prefix(_pointer(pointer), path):
                        return self.offset + document.line_of((index,))
            elif isinstance(data, dict):  # a strategic-merge patch
                if not self._targets(kind, name, data):
                    continue
                if _get(data, path) is not _MISSING:
                    return self.offset + document.line_of(path)
        return None

    def _targets(self, kind: str, name: str, data: dict | None) -> bool:
        if self.target is not None:
            wanted_kind = self.target.get("kind")
            wanted_name = self.target.get("name")
            if wanted_kind and wanted_kind != kind:
                return False
            # kustomize matches the name as it is at that layer, before its own prefix.
            if not wanted_name:
                return True
            return bool(re.fullmatch(str(wanted_name), name)) or str(wanted_name) in name
        if data is None:
            return False
        metadata = data.get("metadata")
        patch_name = str(metadata.get("name", "")) if isinstance(metadata, dict) else ""
        return data.get("kind") == kind and bool(patch_name) and patch_name in name


def _read_patches(root: Path, kustomization: str) -> list[_Patch]:
    from meshready.manifests.loader import load_text

    path = root / kustomization
    try:
        documents = load_text(read_text(path), kustomization)
    except (LoadError, ValueError):
        return []
    if not documents or not isinstance(documents[0].data, dict):
        return []
    spec, document = documents[0].data, documents[0]
    directory = Path(kustomization).parent
    patches: list[_Patch] = []
    for field in ("patches", "patchesStrategicMerge", "patchesJson6902"):
        entries = spec.get(field)
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            target = entry.get("target") if isinstance(entry, dict) else None
            file_ref = entry.get("path") if isinstance(entry, dict) else None
            inline = entry.get("patch") if isinstance(entry, dict) else None
            if isinstance(entry, str):  # patchesStrategicMerge: a file, or inline YAML
                file_ref, inline = (entry, None) if "\n" not in entry else (None, entry)
            if isinstance(file_ref, str):
                relative = (directory / file_ref).as_posix()
                try:
                    loaded = load_text(read_text(root / relative), relative)
                except (LoadError, ValueError):
                    continue
                patches.append(_Patch(relative, loaded, 0, target))
            elif isinstance(inline, str):
                key = (field, index, "patch") if isinstance(entry, dict) else (field, index)
                offset = document.line_of(key)  # the block's text starts on the next line
                patches.append(
                    _Patch(kustomization, load_text(inline, kustomization), offset, target)
                )
    return patches


def _pointer(pointer: str) -> tuple[str | int, ...]:
    """A JSON pointer as a field path (`/spec/containers/0/image`)."""
    parts: list[str | int] = []
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)


def _is_prefix(prefix: tuple, path: tuple) -> bool:
    return len(prefix) <= len(path) and tuple(path[: len(prefix)]) == prefix


def _get(data: Any, path: tuple) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(data, list) or key >= len(data):
                return _MISSING
        elif not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


# ---------------------------------------------------------------- lines without composing

# Text that makes the block-structure walk below unsure of a document: anchors, aliases,
# tags, merge keys, complex keys, tabs, escapes, directives. Such documents are composed.
_UNSURE = re.compile(r"[&*!\t\\%]|<<|\?\s")

Entry = tuple[int, int, bool, "str | None", str]  # line, column, sequence item, key, rest


def _key_of(content: str) -> tuple[str, str] | None:
    """(key, rest after the colon) of a `key: value` line, or None."""
    if content[0] in "\"'":
        end = content.find(content[0], 1)
        if end < 0 or content[end + 1 : end + 2] != ":":
            return None
        after = content[end + 2 :]
        if after and after[0] != " ":
            return None
        return content[1:end], after.strip()
    if content[0] in "{[]}>|,#":
        return None
    colon = content.find(": ")
    if colon < 0:
        if not content.endswith(":"):
            return None
        colon = len(content) - 1
    key = content[:colon].rstrip()
    if not key or " #" in key:
        return None
    return key, content[colon + 1 :].strip()


@functools.lru_cache(maxsize=64)  # findings cluster: several lines asked of one document
def _entries_of(text: str) -> tuple[Entry, ...]:
    """(line index, column, is a sequence item, key or None, rest) of each content line;
    a `- key: value` line gives two entries, the item and its first key."""
    found: list[Entry] = []
    for index, raw in enumerate(text.split("\n")):
        content = raw.lstrip(" ").rstrip()
        if not content or content[0] == "#" or content in ("---", "..."):
            continue
        column = len(raw) - len(raw.lstrip(" "))
        if content[0] == "-" and (len(content) == 1 or content[1] == " "):
            inner = content[1:].lstrip(" ")
            found.append((index, column, True, None, inner))
            if not inner or inner[0] == "#":
                continue
            column += len(content) - len(inner)
            content = inner
            if content[0] == "-" and (len(content) == 1 or content[1] == " "):
                found.append((index, column, False, None, content))  # `- - x`: declined
                continue
        pair = _key_of(content)
        if pair is not None:
            found.append((index, column, False, pair[0], pair[1]))
        else:
            found.append((index, column, False, None, content))
    return tuple(found)


def block_line_of(document: LoadedDocument, path: Path_) -> int | None:
    """`document.line_of(path)` read off the text of a block-style document, without
    composing it. None when the text holds anything the walk is not sure of (flow
    collections on the way, anchors, tags, ...); the caller then composes."""
    text = document.text
    if _UNSURE.search(text) or text.lstrip()[:1] in ("{", "[", '"', "'"):
        return None
    entries = _entries_of(text)
    if not entries:
        return None
    line = entries[0][0]
    # The node being walked: the entries [start, end) that make it up, and its column.
    start, end, column = 0, len(entries), entries[0][1]
    for key in path:
        if start >= end:
            break  # a scalar or null value: no child, the nearest ancestor's line
        at_column = []
        for i in range(start, end):
            entry_column = entries[i][1]
            if entry_column < column:
                return None
            if entry_column == column:
                at_column.append(i)
        if entries[start][2] and entries[start][1] == column:  # a block sequence
            if not all(entries[i][2] for i in at_column):
                return None
            if not isinstance(key, int) or key < 0 or key >= len(at_column):
                break
            position = at_column[key]
            after = at_column[key + 1] if key + 1 < len(at_column) else end
            dash = entries[position]
            below = entries[position + 1] if position + 1 < after else None
            if dash[4] and dash[4][0] != "#":
                if below is None or below[0] != dash[0]:
                    if dash[4][0] in "{[|>":
                        return None
                    return document.first_line + dash[0]  # a scalar item
                line = dash[0]  # `- key: value`: the item's mapping starts on the dash line
            elif below is None:
                line = dash[0]
                start = end = after
                continue
            else:
                line = below[0]
            start, end, column = position + 1, after, below[1]
            continue
        if not isinstance(key, str):
            return None
        keys = [i for i in at_column if not entries[i][2]]
        if not keys or keys[0] != at_column[0] or any(entries[i][3] is None for i in keys):
            return None
        index = -1
        for i in keys:
            if entries[i][3] == key:
                index = i  # the last duplicate wins, as in the data
        if index < 0:
            break
        entry = entries[index]
        after = next((i for i in keys if i > index), end)
        line = entry[0]
        rest = entry[4]
        if rest and rest[0] != "#":
            if rest[0] in "{[|>":
                return None  # a flow collection or block scalar: composed for exactness
            start = end = after  # an inline scalar: nothing below it
            continue
        if index + 1 >= after:
            start = end = after
            continue
        start, end, column = index + 1, after, entries[index + 1][1]
    return document.first_line + line


def fast_line_of(document: LoadedDocument, path: Path_) -> int:
    """The line of `path` in `document`, from its text when that is sure, else composed."""
    found = block_line_of(document, path)
    return found if found is not None else document.line_of(tuple(path))
