"""Per-resource comparison of two renders: the pure core of `meshready diff`.

Both sides arrive as `{target: RenderResult}`; a target missing from a side did not
exist there. Every object is keyed by (target, group/kind, namespace, name), cleaned of
the attributes in force in `StripRules`, its Secret values masked, dumped as normalised
YAML, and the two sides compared as text, so that no change is hidden by an equality that
YAML does not share (`1 == True` in Python, not in a manifest).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import difflib
import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshready.render import BUILD_ANNOTATIONS, RenderedObject, RenderResult
from meshready.render.hydrate import file_name
from meshready.render.yamlfmt import dump_yaml

ADDED = "added"
CHANGED = "changed"
REMOVED = "removed"
STATUSES = (ADDED, CHANGED, REMOVED)

# Only the annotations kustomize adds on our own request (render.py's wrapper asks for
# origins) are stripped by default: they describe the build, not the cluster. Anything
# else that differs would be applied to the cluster, so it is shown.
DEFAULT_STRIPPED_ANNOTATIONS = BUILD_ANNOTATIONS

MASK_PREFIX = "<masked sha256:"
MASK_HASH_CHARS = 8


@dataclass(frozen=True)
class StripRules:
    annotations: tuple[str, ...] = DEFAULT_STRIPPED_ANNOTATIONS
    # Label and annotation keys (fnmatch patterns) the user asked to strip, wherever a
    # `metadata` map holds them: the object's own and its pod and claim templates'.
    extra: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line naming everything stripped, printed at the top of every output."""
        extra = ", ".join(self.extra) if self.extra else "none"
        return (
            f"stripped: annotations {', '.join(self.annotations)} (build metadata); "
            f"extra (--strip-attrs, labels and annotations): {extra}"
        )


def parse_strip_attrs(values: Iterable[str]) -> tuple[str, ...]:
    """`--strip-attrs a,b --strip-attrs c` -> ("a", "b", "c"), deduplicated, in order."""
    keys: dict[str, None] = {}
    for value in values:
        for key in value.split(","):
            if key.strip():
                keys[key.strip()] = None
    return tuple(keys)


@dataclass(frozen=True)
class ResourceKey:
    group: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    @property
    def group_kind(self) -> str:
        return f"{self.group}/{self.kind}" if self.group else self.kind

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.group, self.namespace, self.name)

    @property
    def file_name(self) -> str:
        """The name the hydrated output gives this object (see hydrate.file_name)."""
        return file_name(self.kind, self.group, self.namespace or None, self.name, qualify=True)

    def __str__(self) -> str:
        return f"{self.group_kind} {self.namespace}/{self.name}".replace(" /", " ")


def resource_key(obj: Mapping[str, Any]) -> ResourceKey:
    api_version = str(obj.get("apiVersion") or "")
    found = obj.get("metadata")
    metadata: Mapping[str, Any] = found if isinstance(found, dict) else {}
    return ResourceKey(
        group=api_version.rpartition("/")[0],
        kind=str(obj.get("kind") or "Unknown"),
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
    )


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def mask_value(value: Any, encoded: bool) -> str:
    """A short sha256 of the secret's bytes: base64-decoded for `data`, so that it matches
    `printf %s VALUE | sha256sum` of the real value whichever field carried it."""
    if isinstance(value, str):
        raw = value.encode()
        if encoded:
            # Not base64: hash the text as it stands; a change still shows.
            with contextlib.suppress(binascii.Error, ValueError):
                raw = base64.b64decode(value, validate=True)
    else:
        raw = dump_yaml(value).encode()
    return f"{MASK_PREFIX}{hashlib.sha256(raw).hexdigest()[:MASK_HASH_CHARS]}>"


# Annotations that carry a copy of the whole object, values included: kubectl's client-side
# apply record, and the same idea in other tools.
COPY_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_SECRET_FIELD = re.compile(r"""["']?(?:data|stringData)["']?\s*:""")


def _carries_values(key: str, value: Any) -> bool:
    """Whether a Secret's annotation can hold its values: a known copy annotation, or any
    value that reads as an object with `data` or `stringData` (JSON or YAML)."""
    return key in COPY_ANNOTATIONS or (isinstance(value, str) and bool(_SECRET_FIELD.search(value)))


def mask_secret(obj: dict[str, Any]) -> None:
    """Replace every value of a Secret's data and stringData in place, and every annotation
    that can carry a copy of them, whatever the values' types."""
    for field_name, encoded in (("data", True), ("stringData", False)):
        values = obj.get(field_name)
        if isinstance(values, dict):
            obj[field_name] = {k: mask_value(v, encoded) for k, v in values.items()}
        elif values is not None:
            obj[field_name] = mask_value(values, encoded)
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict):
        for key, value in list(annotations.items()):
            if _carries_values(str(key), value):
                annotations[key] = mask_value(value, encoded=False)


def _strip_metadata(node: Any, rules: StripRules) -> None:
    if isinstance(node, list):
        for item in node:
            _strip_metadata(item, rules)
        return
    if not isinstance(node, dict):
        return
    metadata = node.get("metadata")
    if isinstance(metadata, dict):
        for attr, defaults in (("annotations", rules.annotations), ("labels", ())):
            values = metadata.get(attr)
            if not isinstance(values, dict):
                continue
            patterns = (*defaults, *rules.extra)
            for key in [k for k in values if any(fnmatch.fnmatchcase(k, p) for p in patterns)]:
                del values[key]
            if not values:
                del metadata[attr]
    if rules.extra:  # nested metadata (pod templates) matters only for the user's keys
        for key, value in node.items():
            if key != "metadata":
                _strip_metadata(value, rules)


def clean(obj: Mapping[str, Any], rules: StripRules) -> dict[str, Any]:
    """A copy of `obj` as the diff shows it: stripped, and with Secret values masked."""
    cleaned = copy.deepcopy(dict(obj))
    _strip_metadata(cleaned, rules)
    if _is_secret(cleaned):
        mask_secret(cleaned)
    return cleaned


@dataclass(frozen=True)
class ResourceChange:
    key: ResourceKey
    status: str  # ADDED, CHANGED or REMOVED
    diff: str  # unified diff of the normalised YAML, Secret values masked

    def _body(self) -> list[str]:
        return self.diff.splitlines()[2:]  # past the ---/+++ header, whatever the content

    @property
    def lines_added(self) -> int:
        return sum(1 for line in self._body() if line.startswith("+"))

    @property
    def lines_removed(self) -> int:
        return sum(1 for line in self._body() if line.startswith("-"))


@dataclass
class TargetDiff:
    target: str
    in_base: bool
    in_head: bool
    base_error: str | None = None
    head_error: str | None = None
    changes: list[ResourceChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.base_error or self.head_error)

    @property
    def presence(self) -> str:
        """ "both", or "added"/"removed" for a target that exists on one side only."""
        if self.in_base and self.in_head:
            return "both"
        return ADDED if self.in_head else REMOVED

    def count(self, status: str) -> int:
        return sum(1 for change in self.changes if change.status == status)


@dataclass
class DiffReport:
    base_label: str  # "main (1a2b3c4)"
    head_label: str  # "working tree"
    strip: StripRules
    context: int
    targets: list[TargetDiff]

    @property
    def changes(self) -> list[ResourceChange]:
        return [change for target in self.targets for change in target.changes]

    @property
    def failed_targets(self) -> list[TargetDiff]:
        return [target for target in self.targets if target.failed]

    @property
    def changed_targets(self) -> list[TargetDiff]:
        return [target for target in self.targets if target.changes]

    @property
    def has_changes(self) -> bool:
        return any(target.changes for target in self.targets)

    def count(self, status: str) -> int:
        return sum(target.count(status) for target in self.targets)

    def summary_line(self) -> str:
        if self.has_changes:
            counts = ", ".join(f"{self.count(s)} {s}" for s in STATUSES)
            line = (
                f"{len(self.changes)} resources differ in {len(self.changed_targets)} "
                f"of {len(self.targets)} targets ({counts})"
            )
        else:
            line = f"no changes in {len(self.targets)} targets"
        if self.failed_targets:
            line += f"; {len(self.failed_targets)} failed to render"
        return line


def _keyed(objects: Iterable[RenderedObject], rules: StripRules) -> dict[ResourceKey, str]:
    """Key -> normalised YAML. Two objects with one key (kustomize allows it across API
    versions of a group) are kept apart by their apiVersion."""
    keyed: dict[ResourceKey, str] = {}
    for rendered in objects:
        key = resource_key(rendered.obj)
        if key in keyed:
            version = str(rendered.obj.get("apiVersion", "")).rpartition("/")[2]
            key = ResourceKey(key.group, key.kind, key.namespace, f"{key.name} ({version})")
        keyed[key] = dump_yaml(clean(rendered.obj, rules))
    return keyed


def unified(old: str, new: str, old_name: str, new_name: str, context: int) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=old_name,
            tofile=new_name,
            n=context,
        )
    )


def diff_target(
    target: str,
    base: RenderResult | None,
    head: RenderResult | None,
    rules: StripRules,
    context: int = 3,
) -> TargetDiff:
    result = TargetDiff(target=target, in_base=base is not None, in_head=head is not None)
    result.base_error = base.error if base is not None else None
    result.head_error = head.error if head is not None else None
    if result.failed:
        return result  # a half-rendered side would show its missing objects as removed
    old = _keyed(base.objects, rules) if base is not None else {}
    new = _keyed(head.objects, rules) if head is not None else {}
    for key in sorted(old.keys() | new.keys(), key=lambda k: k.sort_key):
        before, after = old.get(key), new.get(key)
        if before == after:
            result.unchanged += 1
            continue
        status = ADDED if before is None else REMOVED if after is None else CHANGED
        path = f"{target}/{key.file_name}"
        diff = unified(
            before or "",
            after or "",
            "/dev/null" if before is None else f"a/{path}",
            "/dev/null" if after is None else f"b/{path}",
            context,
        )
        result.changes.append(ResourceChange(key=key, status=status, diff=diff))
    return result


def diff_renders(
    base: Mapping[str, RenderResult],
    head: Mapping[str, RenderResult],
    rules: StripRules,
    context: int = 3,
) -> list[TargetDiff]:
    """Compare every target of either side, in target order."""
    return [
        diff_target(target, base.get(target), head.get(target), rules, context)
        for target in sorted(base.keys() | head.keys())
    ]
