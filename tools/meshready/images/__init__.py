"""`meshready images` (docs/images.md).

- `ref`: the one image-reference parser (repository, tag, digest)
- `build`: builder detection, tags and OCI labels (pure); building, smoke runs on
  loopback, pushing and digests (subprocess edges)
- `pin`: pinning a kustomization's `images:` by digest, and finding unpinned images
"""

from meshready.images.ref import ImageRef, parse_image

__all__ = ["ImageRef", "parse_image"]
