"""Where meshready keeps what it may recompute: $MESHREADY_CACHE_DIR, else
$XDG_CACHE_HOME/meshready/<concern>, else ~/.cache/meshready/<concern>. Standard library
only: validate's cache-hit path imports it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def user_cache_dir(concern: str, env: Mapping[str, str] = os.environ) -> Path:
    explicit = env.get("MESHREADY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "meshready" / concern
