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


def test_a_sequence_or_mapping_key_is_kubectls_error_not_a_crash():
    doc = only("? [a]\n: b\nc: 1\nc: 2\n")  # duplicate keys: built from the nodes
    assert (doc.data, doc.error) == (None, "mapping key list is not supported (kubectl rejects it)")
    doc = only("? {a: 1}\n: b\nc: on\n")
    assert doc.error == "mapping key dict is not supported (kubectl rejects it)"


def test_line_of_skips_a_sequence_key_when_looking_for_merge_keys():
    doc = only("? [a]\n: b\nc: 1\n")
    assert doc.error is None
    assert (doc.line_of(("c",)), doc.line_of(("missing",))) == (3, 1)


@pytest.mark.parametrize("quoted", ["'<<'", '"<<"'])
def test_a_quoted_merge_key_is_a_plain_key_as_in_kubectl(quoted):
    text = f"base: &b {{a: 1}}\nc:\n  {quoted}: *b\n  z: 1\n"
    assert only(text).data == {"base": {"a": 1}, "c": {"<<": {"a": 1}, "z": 1}}
    on_the_kubectl_path = only(text.replace("z: 1", "z: on"))
    assert on_the_kubectl_path.data == {"base": {"a": 1}, "c": {"<<": {"a": 1}, "z": True}}
