"""What `meshready analyze` is given: kustomization directories, rendered by kustomize as
`meshready render` does, and plain manifests (files, directories, `-` for stdin) loaded by
the same loader as `meshready validate`.

A directory holding a kustomization file is a target; any other directory is a tree of
manifests. All plain inputs of one run form one group (`PLAIN_TARGET`), so cross-object
rules (a Service per workload, namespace injection) see every object given at once, while
each kustomize target stays a group of its own. Inputs that cannot be read, parsed or
rendered become `InputError` records, which every report format shows and which fail the
run, and the other inputs are still analysed.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshready.manifests.inputs import SKIPPED_DIRS, YAML_SUFFIXES, expand_inputs
from meshready.manifests.loader import LoadedDocument, LoadError, decode, load_file, load_text
from meshready.manifests.locate import fast_line_of
from meshready.render.model import RenderedObject, RenderResult
from meshready.render.targets import find_kustomization

PLAIN_TARGET = "files"
# The loader's errors name the file line they happened at ("... at line 3, column 11").
_ERROR_LINE = re.compile(r"\bat line (\d+)")
STDIN = "-"

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class InputError:
    """One input that could not be analysed: a target that failed to render, or a file
    (or one document of it) that failed to load."""

    target: str
    message: str
    file: str | None = None
    line: int | None = None
    stage: str = "parse"  # "parse" or "render"

    @property
    def where(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or self.target

    def as_record(self) -> dict[str, Any]:
        return {
            "type": "error",
            "rule": None,
            "severity": "error",
            "target": self.target,
            "file": self.file,
            "line": self.line,
            "message": f"{self.stage} failed: {self.message}",
        }


@dataclass(frozen=True)
class LoadedObject(RenderedObject):
    """A plain-file object: it knows its document, so a finding's line comes straight from
    the loader (`LoadedDocument.line_of`) instead of a search of the source file."""

    document: LoadedDocument | None = field(default=None, repr=False, compare=False)
    prefix: FieldPath = ()  # where the object sits in its document: ("items", 3) in a List

    def line_of(self, path: FieldPath) -> int | None:
        if self.document is None:
            return None
        return fast_line_of(self.document, (*self.prefix, *path))


@dataclass
class Inputs:
    targets: list[str] = field(default_factory=list)  # kustomization directories, as given
    files: list[str] = field(default_factory=list)  # plain manifests and `-`, expanded
    notes: list[str] = field(default_factory=list)  # directories left out, and why


def split_inputs(given: Sequence[str]) -> Inputs:
    """Kustomization directories apart from plain manifests; a missing path is a usage
    error (MeshreadyError from `expand_inputs`).

    Inside a directory of manifests, a subdirectory holding a kustomization is left out
    with a note: its files are kustomize's input (patches, partial objects), not objects
    of their own, and rendering it would analyse its bases twice. Give it as an input."""
    inputs = Inputs()
    plain: list[str] = []
    for item in given:
        if item != STDIN and os.path.isdir(item):
            if find_kustomization(Path(item)) is not None:
                inputs.targets.append(item)
            else:
                plain.extend(_manifests_beside_kustomizations(item, inputs.notes))
        else:
            plain.append(item)
    inputs.files = expand_inputs(plain) if plain else []
    return inputs


def _manifests_beside_kustomizations(directory: str, notes: list[str]) -> list[str]:
    """The directory for `expand_inputs`, or, when a subdirectory holds a kustomization,
    its manifest files and subdirectories without that subtree."""
    kept: list[str] = []
    nested = False
    for current, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for name in list(dirnames):
            sub = os.path.join(current, name)
            if find_kustomization(Path(sub)) is not None:
                notes.append(
                    f"{sub}: skipped: a kustomization directory inside {directory} "
                    "(give it as an input to render and analyse it)"
                )
                dirnames.remove(name)
                nested = True
        kept.extend(
            os.path.join(current, f) for f in sorted(filenames) if f.endswith(YAML_SUFFIXES)
        )
    return kept if nested else [directory]


@dataclass
class PlainLoad:
    result: RenderResult
    errors: list[InputError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # documents skipped, and why


def _documents(filename: str) -> list[LoadedDocument]:
    if filename != STDIN:
        return load_file(Path(filename))
    try:
        return load_text(decode(sys.stdin.buffer.read()), "stdin")
    except LoadError as err:
        return [LoadedDocument("stdin", 0, 1, None, str(err))]


def load_plain(files: Iterable[str], target: str = PLAIN_TARGET) -> PlainLoad:
    """Every object of the plain inputs as one group. `List` objects are unwrapped; a
    document without apiVersion or kind is skipped with a note; duplicate ids and nameless
    objects are kept (kustomize would refuse them, the rules do not need to)."""
    load = PlainLoad(RenderResult(target=target))
    with cyclic_gc_paused():  # 10,000 documents load in 0.37 s paused, 0.6 to 0.8 s not
        for filename in files:
            shown = "stdin" if filename == STDIN else filename
            for document in _documents(filename):
                if document.error is not None:
                    line = _ERROR_LINE.search(document.error)
                    at = int(line.group(1)) if line else document.line
                    load.errors.append(InputError(target, document.error, shown, at))
                    continue
                if document.empty:
                    continue
                _add(load, document, document.data, (), shown)
    return load


def _add(load: PlainLoad, document: LoadedDocument, data: Any, prefix: FieldPath, shown: str):
    where = f"{shown}:{document.line_of(prefix) if prefix else document.line}"
    if not isinstance(data, dict) or not data.get("apiVersion") or not data.get("kind"):
        load.notes.append(f"{where}: skipped: not a Kubernetes object (no apiVersion or kind)")
        return
    if str(data["kind"]).endswith("List") and isinstance(data.get("items"), list):
        for index, item in enumerate(data["items"]):
            _add(load, document, item, (*prefix, "items", index), shown)
        return
    load.result.objects.append(
        LoadedObject(obj=data, origin={"path": shown}, document=document, prefix=prefix)
    )


def render_errors(results: Iterable[RenderResult], root: Path | None = None) -> list[InputError]:
    """Failed kustomize targets as error records, pointing at the target's kustomization
    file when there is one (so an annotation lands on a file, not a directory)."""
    errors = []
    for result in results:
        if result.ok:
            continue
        where = result.target
        if root is not None:
            kustomization = find_kustomization(root / result.target)
            if kustomization is not None:
                where = f"{result.target.rstrip('/')}/{kustomization.name}"
        errors.append(InputError(result.target, str(result.error), where, None, "render"))
    return errors


@contextmanager
def cyclic_gc_paused(freeze: bool = False) -> Iterator[None]:
    """Loading and analysis allocate many small objects (views, indexes, parsed source documents)
    that all live until the report is made. CPython's cycle collector runs every few
    hundred allocations and, as they pile up, rescans them again and again: a third of
    the time of `meshready analyze` on 10,000 objects. Reference counting still frees
    everything as usual; the few cycles made meanwhile (PyYAML's loaders) wait for the
    next collection after the analysis."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:  # a command about to exit: what was made is never scanned again
            gc.freeze()
        if was_enabled:
            gc.enable()
