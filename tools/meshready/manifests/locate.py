"""The one source locator: from a rendered object (its origin file, kind and name) and a
field path to the line of the file a person edits. Used by analysis and validation."""

from __future__ import annotations

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
