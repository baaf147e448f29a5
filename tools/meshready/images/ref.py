"""The one image-reference parser: `[REGISTRY[:PORT]/]PATH[:TAG][@DIGEST]`, as the
distribution reference grammar reads it. Pinning, the image rules and the builders all
take their repository, tag and digest from here, so they agree on every spelling."""

from __future__ import annotations

import re
from dataclasses import dataclass

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# Any registered algorithm is a digest to the grammar; only sha256 is pinned for us.
_ANY_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}")


@dataclass(frozen=True)
class ImageRef:
    repository: str  # everything before the tag and digest, registry included
    tag: str | None
    digest: str | None  # a well-formed digest, or None
    malformed_digest: str | None = None  # what followed `@` when it is not a digest

    @property
    def pinned(self) -> bool:
        """Pinned by a sha256 digest: the bytes that run are fixed."""
        return self.digest is not None and DIGEST_RE.fullmatch(self.digest) is not None


def parse_image(reference: str) -> ImageRef:
    """Split a reference. The tag is the part after the last `:` of the last path component,
    so `localhost:5000/web` has a registry port and no tag; `web@latest` has no digest
    (`latest` is not one) and is reported as malformed."""
    rest, at, after = reference.partition("@")
    digest = malformed = None
    if at:
        if _ANY_DIGEST_RE.fullmatch(after):
            digest = after
        else:
            malformed = after
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        return ImageRef(rest[:colon], rest[colon + 1 :] or None, digest, malformed)
    return ImageRef(rest, None, digest, malformed)
