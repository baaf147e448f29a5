"""The YAML loader in process (docs/testing.md): documents, lines, merge keys, duplicate
keys, hostile input and kubectl's (YAML 1.1) reading of scalars and keys, exactly."""

from __future__ import annotations

import pytest
from meshready.manifests.loader import json_key, load_text


def only(text: str):
    [doc] = load_text(text, "f.yaml")
    return doc


# -- keys kubectl turns into strings ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [(1e100, ".inf"), (-1e100, "-.inf"), (3.5e38, ".inf"), (3.4e38, "3.4e+38")],
)
def test_a_float_key_beyond_float32s_range_is_inf_as_kubectl_makes_it(key, expected):
    assert json_key(key) == expected


def test_a_document_with_a_huge_float_key_loads_instead_of_crashing():
    doc = only("data:\n  on: x\n  1e100: z\n")
    assert (doc.error, doc.data) == (None, {"data": {"true": "x", ".inf": "z"}})
