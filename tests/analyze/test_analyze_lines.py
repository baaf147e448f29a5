"""Lines of plain-file findings read off the document text (manifests.locate.block_line_of)
are the lines composing the document gives (LoadedDocument.line_of), for every field of
every manifest in this repository and its fixtures, present or missing, and for YAML
shapes the walk must either get right or decline."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meshready.manifests.loader import load_file, load_text
from meshready.manifests.locate import block_line_of, fast_line_of

REPO = Path(__file__).resolve().parents[2]
MANIFEST_DIRS = ("tests/fixtures", "base", "overlays", "clusters", "components", "bootstrap")


def field_paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path into `data`, and one missing child below each node."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from field_paths(value, (*prefix, key))
        yield (*prefix, "no-such-key")
        yield (*prefix, 0)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from field_paths(value, (*prefix, index))
        yield (*prefix, len(data))
        yield (*prefix, "name")
    else:
        yield (*prefix, "below-a-scalar")


def compare(documents) -> tuple[int, int]:
    """(paths asked, paths the walk was sure of); asserts every sure answer is right."""
    asked = sure = 0
    for document in documents:
        if document.error or document.data is None:
            continue
        for path in field_paths(document.data):
            asked += 1
            fast = block_line_of(document, path)
            if fast is None:
                continue
            sure += 1
            assert fast == document.line_of(path), (document.filename, document.index, path)
    return asked, sure


def test_every_field_of_the_repository_manifests():
    files = sorted(f for d in MANIFEST_DIRS for f in (REPO / d).rglob("*.yaml"))
    asked, sure = compare(d for f in files for d in load_file(f))
    assert asked > 10_000
    assert sure > asked / 2  # the walk answers most of them itself


EDGE_CASES = {
    "comments and quoted keys": """
        metadata:
          name: a   # a comment
          labels:
            "quoted": yes
            'single': no
        # a comment at column 0
        spec: {}
    """,
    "sequences at the key's column and below it": """
        spec:
          list:
          - a
          - b: 1
            c: 2
          -
            d: 3
          -   e: 4
              f: 5
          nested:
            - - x
              - y
    """,
    "block scalars and empty values": """
        data:
          script: |
            key: not a key
            - not an item
          folded: >
            text
          empty:
          nothing: ~
        after: 1
    """,
    "duplicate keys: the last wins": """
        spec:
          replicas: 1
          replicas: 2
    """,
    "deeper indentation than two": """
        spec:
            template:
                  containers:
                  -    name: web
                       image: web:1
    """,
    "flow collections and anchors are declined": """
        metadata:
          labels: &l {app: web}
        spec:
          selector: {matchLabels: *l}
          ports: [{name: http,
            port: 80}]
    """,
    "a document after a marker": """
        ---
        kind: A
        ---
        kind: B
        spec:
          x: 1
    """,
}


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_yaml_shapes(text: str):
    compare(load_text(textwrap.dedent(text).lstrip("\n"), "edge.yaml"))


def test_anchors_fall_back_to_composing():
    text = "metadata:\n  labels: &l\n    app: web\nspec:\n  template:\n    labels: *l\n"
    (document,) = load_text(text, "a.yaml")
    assert block_line_of(document, ("spec", "template", "labels", "app")) is None
    # Composing follows the alias to the anchored node, as for any other document.
    assert fast_line_of(document, ("spec", "template", "labels", "app")) == 3
