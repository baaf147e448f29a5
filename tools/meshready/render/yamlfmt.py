"""Normalised YAML output: sorted keys, block style, multi-line strings as literal blocks."""

from __future__ import annotations

from typing import Any

import yaml


class _NormalisedDumper(yaml.CSafeDumper):
    pass


def _represent_str(dumper: _NormalisedDumper, value: str) -> yaml.Node:
    # Literal blocks keep embedded files (ConfigMap data) readable in review; PyYAML
    # falls back to a quoted scalar by itself where a literal block cannot hold the text.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_NormalisedDumper.add_representer(str, _represent_str)


def dump_yaml(obj: Any) -> str:
    return yaml.dump(
        obj,
        Dumper=_NormalisedDumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
        indent=2,
    )
