"""Pinning images by digest: the `images:` entries of a kustomization, edited round-trip
(comments, key order and indentation kept), and the check that rendered workloads use
nothing but digests."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from meshready.errors import EXIT_USAGE, MeshreadyError
from meshready.images.ref import parse_image
from meshready.manifests import workloads

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


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
    name, sep, reference = argument.partition("=")
    if not sep or not name.strip():
        raise MeshreadyError(
            f"{argument!r}: expected NAME=REPOSITORY@sha256:DIGEST, e.g. "
            "helloserver=gcr.io/PROJECT/asm-ready/helloserver@sha256:...",
            EXIT_USAGE,
        )
    repo, digest = split_reference(reference.strip())
    return Pin(name.strip(), repo, digest)


def _yaml(mapping: int, sequence: int, offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line someone wrote
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def pin_text(text: str, pins: Iterable[Pin], source: str = "kustomization") -> str:
    """`text` (a kustomization) with an `images:` entry per pin: an existing entry of the
    same name gets newName and digest in place (digest where newTag was, newTag removed);
    a missing one is appended. Everything else is left as written."""
    try:
        data, indent, block_seq_indent = load_yaml_guess_indent(text)
    except YAMLError as err:
        raise MeshreadyError(f"{source}: not valid YAML: {_one_line(err)}", EXIT_USAGE) from None
    if not isinstance(data, CommentedMap):
        raise MeshreadyError(f"{source}: not a kustomization (a mapping at the top)", EXIT_USAGE)
    indent = indent or 2
    offset = block_seq_indent or 0
    images = data.get("images")
    if images is None:
        images = CommentedSeq()
        data["images"] = images
    elif not isinstance(images, CommentedSeq):
        raise MeshreadyError(f"{source}: `images:` is not a list", EXIT_USAGE)
    for pin in pins:
        entry = next(
            (e for e in images if isinstance(e, CommentedMap) and e.get("name") == pin.name), None
        )
        if entry is None:
            images.append(CommentedMap([("name", pin.name), ("newName", pin.new_name)]))
            images[-1]["digest"] = pin.digest
            continue
        if "newName" in entry:
            entry["newName"] = pin.new_name
        else:
            entry.insert(list(entry).index("name") + 1, "newName", pin.new_name)
        if "digest" in entry:
            entry["digest"] = pin.digest
        elif "newTag" in entry:
            position = list(entry).index("newTag")
            entry.insert(position, "digest", pin.digest)
        else:
            entry["digest"] = pin.digest
        if "newTag" in entry:
            # Keep an end-of-line comment the tag had by handing it to the digest.
            comment = entry.ca.items.pop("newTag", None)
            del entry["newTag"]
            if comment is not None and "digest" not in entry.ca.items:
                entry.ca.items["digest"] = comment
    out = io.StringIO()
    _yaml(indent, max(indent, offset + 2), offset).dump(data, out)
    return out.getvalue()


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise MeshreadyError(f"{directory}: no kustomization.yaml", EXIT_USAGE)


def pin_overlay(directory: Path, pins: Iterable[Pin]) -> Path:
    """Rewrite the overlay's kustomization with `pins`; the file written."""
    path = kustomization_file(directory)
    text = path.read_text()
    updated = pin_text(text, pins, source=str(path))
    if updated != text:
        path.write_text(updated)
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
