"""Validating files, directories and stdin: documents are parsed and validated in this
process for small inputs, and fanned out over worker processes for large ones."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshready.manifests.loader import LoadedDocument, decode, load_file, load_text
from meshready.validate.core import Options, ResourceResult, crds_in, validate_documents
from meshready.validate.registry import SchemaRegistry

# Below this much input, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 1_000_000


def load_input(filename: str) -> list[Any]:
    if filename != "-":
        return load_file(Path(filename))
    try:
        return load_text(decode(sys.stdin.buffer.read()), "stdin")
    except Exception as err:  # LoadError: too large, binary, not UTF-8
        return [LoadedDocument("stdin", 0, 1, None, str(err))]


_CRD_MARKER = b"CustomResourceDefinition"


def validate_files(
    files: Sequence[str],
    registry: SchemaRegistry,
    options: Options,
    workers: int | None,
    locations: Sequence[str] | None,
) -> list[ResourceResult]:
    workers = workers or os.cpu_count() or 1
    sizes = {f: (os.path.getsize(f) if f != "-" and os.path.isfile(f) else 0) for f in files}
    parallel = workers > 1 and len(files) > 1 and sum(sizes.values()) >= PARALLEL_MIN_BYTES
    if not parallel or "-" in files:
        documents = [doc for f in files for doc in load_input(f)]
        for crd, source in crds_in(documents):
            registry.add_crd(crd, source)
        return validate_documents(documents, registry, options)

    # CRDs in the input must be known to every worker before validation starts: find
    # the (few) files that mention the word and load those first.
    crds: list[tuple[dict, str]] = []
    for name in files:
        with open(name, "rb") as handle:
            if _CRD_MARKER in handle.read():
                crds.extend(crds_in(load_input(name)))
    for crd, source in crds:
        registry.add_crd(crd, source)

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = _balanced_chunks(files, sizes, workers * 4)
    setup = (
        registry.strict,
        list(locations or ()),
        [str(p) for p in registry.crd_dirs],
        crds,
        options,
    )
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)),
        mp_context=context,
        initializer=_worker_init,
        initargs=(registry if context.get_start_method() == "fork" else None, setup),
    ) as pool:
        parts = list(pool.map(_worker_validate, chunks))
    results: list[ResourceResult] = []
    for part, consulted in parts:
        results.extend(part)
        registry.consulted.update(consulted)
    return results


def _balanced_chunks(files: Sequence[str], sizes: dict[str, int], count: int) -> list[list[str]]:
    """Contiguous runs of files of about equal size, so output order stays input order."""
    total = sum(sizes.values()) or 1
    chunks: list[list[str]] = [[]]
    filled = 0
    for name in files:
        if filled >= total / count * len(chunks) and chunks[-1]:
            chunks.append([])
        chunks[-1].append(name)
        filled += sizes[name]
    return chunks


_worker_state: dict[str, Any] = {}


def _worker_init(registry: SchemaRegistry | None, setup: tuple) -> None:
    strict, locations, dirs, crds, options = setup
    if registry is None:  # spawned, not forked: rebuild the registry from its recipe
        registry = SchemaRegistry(strict, locations, [Path(d) for d in dirs])
        for crd, source in crds:
            registry.add_crd(crd, source)
    _worker_state["registry"] = registry
    _worker_state["options"] = options


def _worker_validate(chunk: list[str]) -> tuple[list[ResourceResult], dict]:
    registry = _worker_state["registry"]
    documents = [doc for f in chunk for doc in load_input(f)]
    results = validate_documents(documents, registry, _worker_state["options"])
    return [r.detached() for r in results], registry.consulted
