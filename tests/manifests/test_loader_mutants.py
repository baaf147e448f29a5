"""The YAML loader in process (docs/testing.md): documents, lines, merge keys, duplicate
keys, hostile input and kubectl's (YAML 1.1) reading of scalars and keys, exactly."""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path

import pytest
from meshready.manifests.loader import (
    MAX_DOCUMENTS,
    MAX_FILE_BYTES,
    DocumentText,
    DuplicateKey,
    LoadError,
    UnsupportedKey,
    _is_merge_key,
    _kubectl_differs,
    _parse_error,
    _resolve_merge_keys,
    decode,
    json_key,
    kubectl_candidate,
    load_file,
    load_text,
    read_text,
    resolve_plain_scalar,
    split_text,
    stringify_keys,
)


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


# -- kubectl candidates: which documents take the node path -------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: yes",
        "a:  no  # comment",
        "- on",
        "? y",
        "[off]",
        "{a: N}",
        "[x, Yes]",
        "a: YES",
        "a: Off",
        "a: OFF",
        "a: On",
        "a: ON",
        "a: NO",
        "a: Y",
        "a: 0755",
        "a: -0755",
        "a: 0b101",
        "a: +0b1",
        "a: 1_000",
        "a: .5_0",
        "a: y:",
        "on: 1",
        "NO:",
        "x:\n  off: 1",
        "x:\n on:",
        "x: 1\nYes: 2",
        "x: 1\nOFF: 2",
    ],
)
def test_a_yaml_1_1_scalar_makes_a_document_a_kubectl_candidate(text):
    assert kubectl_candidate(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "a: yesterday",
        "a: onion",
        "a: 1.5",
        "a: 0",
        "a: 'yes'",
        "a:yes",
        "yes",
        "ayes: 1",
        "x:\n  xon: 1",
        "a: no:x",
        "a: 10",
        "a: true",
    ],
)
def test_a_document_without_yaml_1_1_scalars_is_no_kubectl_candidate(text):
    assert kubectl_candidate(text) is False


def test_a_candidate_only_inside_a_block_scalar_reads_the_same_in_kubectl():
    text = "v: |\n  y: 1\n  on: yes\n"
    assert kubectl_candidate(text)
    assert _kubectl_differs(text, {"v": "y: 1\non: yes\n"}) is False
    assert only(text)._nodes == []  # yaml-rs' data is kubectl's: no composing


def test_a_candidate_that_is_a_whole_string_of_the_data_reads_differently():
    assert _kubectl_differs("a: yes\n", {"a": "yes"}) is True
    assert _kubectl_differs("x:\n  on: 1\n", {"x": {"on": 1}}) is True
    assert _kubectl_differs("on: 1\n", {"on": 1}) is True
    assert _kubectl_differs("a: yes\n", {"a": "yesterday"}) is False
    assert _kubectl_differs("nothing here\n", {"a": "yes"}) is False


def test_a_legacy_number_always_reads_differently():
    assert _kubectl_differs("a: 0755\n", {"a": 755}) is True
    assert _kubectl_differs("a: 0b11\n", {}) is True


def test_keys_yaml_rs_made_tuples_leave_the_decision_to_the_nodes():
    assert _kubectl_differs("a: yes\n", {("k",): "x"}) is True


# -- documents and lines ------------------------------------------------------------------------


def test_documents_are_split_on_markers_and_count_their_lines():
    text = "# head\na: 1\n---\n\n# c\nb: 2\n...\n# after the end\n--- x\n---\n"
    docs = load_text(text, "s.yaml")
    assert [(d.filename, d.index, d.line, d.data, d.error) for d in docs] == [
        ("s.yaml", 0, 2, {"a": 1}, None),
        ("s.yaml", 1, 6, {"b": 2}, None),
        ("s.yaml", 2, 9, "x", None),
        ("s.yaml", 3, 10, None, None),
    ]
    assert [(d.first_line, d.text) for d in docs] == [
        (1, "# head\na: 1\n"),
        (3, "---\n\n# c\nb: 2\n"),
        (9, "--- x\n"),
        (10, "---\n"),
    ]
    assert [d.empty for d in docs] == [False, False, False, True]


def test_a_document_end_marker_ends_the_document_at_its_line():
    docs = load_text("a: 1\n... # end\nb: 2\n", "e.yaml")
    assert [(d.line, d.data) for d in docs] == [(1, {"a": 1}), (3, {"b": 2})]
    assert [d.data for d in load_text("a: 1\n...", "e.yaml")] == [{"a": 1}]


def test_split_text_gives_the_unparsed_documents_and_load_parses_one():
    parts = split_text("\ufeffa: 1\n---\n\nb: [\n", "p.yaml")
    assert parts == [
        DocumentText("p.yaml", 0, "a: 1\n", 1, 1),
        DocumentText("p.yaml", 1, "---\n\nb: [\n", 2, 4),
    ]
    loaded = parts[1].load()
    assert (loaded.index, loaded.line, loaded.first_line, loaded.data) == (1, 4, 2, None)
    assert loaded.error == "YAML parse error at line 4, column 4: unclosed bracket '['"
    assert loaded.text == "---\n\nb: [\n"
    assert split_text("---", "p.yaml") == [DocumentText("p.yaml", 0, "---", 1, 1)]
    assert split_text("...\n# done\n", "p.yaml") == []


def test_an_empty_document_counts_only_when_a_marker_introduces_it():
    assert [d.empty for d in load_text("a: 1\n---\n", "m.yaml")] == [False, True]
    assert len(load_text("a: 1\n# only a comment\n", "m.yaml")) == 1


def test_line_of_a_later_document_counts_from_the_files_start():
    docs = load_text("a: 1\n---\nx:\n  - p\n  - q: 1\n    r: 2\n", "l.yaml")
    doc = docs[1]
    assert doc.line_of(("x", 1, "r")) == 6
    assert doc.line_of(("x", 0)) == 4
    assert doc.line_of(("x", 2)) == 3
    assert doc.line_of(("x", -1)) == 3
    assert doc.line_of(("x", "0")) == 3
    assert doc.line_of(()) == 3


def test_line_of_an_integer_key_finds_the_mapping_key_spelt_as_digits():
    doc = load_text("m:\n  a: 1\n  1: x\n", "i.yaml")[0]
    assert doc.line_of(("m", 1)) == 3


def test_line_of_finds_a_key_that_a_merge_key_brought_in():
    text = "base: &b\n  x: 1\n  p: 2\nother: &o\n  z: 3\nuse:\n  <<: [*b, *o]\n  w: 4\n"
    doc = only(text)
    assert doc.data["use"] == {"x": 1, "p": 2, "z": 3, "w": 4}
    assert doc.line_of(("use", "p")) == 3
    assert doc.line_of(("use", "z")) == 5
    assert doc.line_of(("use", "w")) == 8
    assert doc.line_of(("use", "nothing")) == 6
    both = only("a: &a\n  k: 1\nb: &b\n  k: 2\nuse:\n  <<: [*a, *b]\n")
    assert (both.data["use"], both.line_of(("use", "k"))) == ({"k": 1}, 2)
    single = only("a: &a\n  k: 1\nuse:\n  <<: *a\n")
    assert single.line_of(("use", "k")) == 2


def test_line_of_the_later_of_two_duplicate_keys_is_the_one_that_won():
    doc = only("a: 1\na: 2\n")
    assert doc.line_of(("a",)) == 2


def test_line_of_a_document_pyyaml_cannot_compose_is_the_documents_line():
    doc = load_text("x: 1\n---\na: on\nb: x\x07y\n", "c.yaml")[1]
    assert doc.error is None
    assert doc.data == {"a": "on", "b": "x\x07y"}  # yaml-rs' reading: no nodes to build from
    assert doc.line_of(("b",)) == 3


def test_a_duplicate_key_in_a_document_pyyaml_cannot_compose_is_an_error():
    doc = load_text("x: 1\n---\na: 1\na: 2\nb: \x07\n", "c.yaml")[1]
    assert (doc.line, doc.data, doc.error) == (3, None, "duplicate mapping key: 'a'")


def test_the_node_path_keeps_the_composed_document_for_line_of():
    doc = only("a: on\nb:\n  c: 1\n")
    assert len(doc._nodes) == 1
    assert doc.line_of(("b", "c")) == 3


# -- duplicate keys -----------------------------------------------------------------------------


def test_duplicate_keys_are_found_at_every_depth_sorted_by_line():
    text = "a: 1\nlist:\n- {k: 1, k: 2}\n- x: 1\n  x: 2\n  x: 3\na: 2\n"
    doc = only(text)
    assert doc.duplicate_keys == (
        DuplicateKey(("list", 0), "k", 3, 3),
        DuplicateKey(("list", 1), "x", 4, 5),
        DuplicateKey(("list", 1), "x", 5, 6),
        DuplicateKey((), "a", 1, 7),
    )
    assert doc.data == {"a": 2, "list": [{"k": 2}, {"x": 3}]}


def test_a_duplicate_key_message_names_the_key_and_both_lines():
    assert DuplicateKey(("m",), "name", 5, 6).message == "duplicate key 'name' (lines 5 and 6)"


def test_duplicate_keys_under_an_alias_are_reported_once():
    doc = only("x: &x {k: 1, k: 2}\ny: *x\nz: *x\n")
    assert [(d.key, d.first_line, d.line) for d in doc.duplicate_keys] == [("k", 1, 1)]


def test_duplicate_keys_in_a_later_document_have_file_lines():
    doc = load_text("a: 1\n---\nb: 1\nb: 2\n", "d.yaml")[1]
    assert doc.duplicate_keys == (DuplicateKey((), "b", 3, 4),)


# -- scalars as kubectl reads them --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("~", None),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("", None),
        ("True", True),
        ("TRUE", True),
        ("Y", True),
        ("On", True),
        ("False", False),
        ("FALSE", False),
        ("N", False),
        ("No", False),
        ("NO", False),
        ("OFF", False),
        ("0", 0),
        ("00", 0),
        ("+12", 12),
        ("-12", -12),
        ("0x1F", 31),
        ("0X1F", 31),
        ("-0x1F", -31),
        ("0o17", 15),
        ("0O17", 15),
        ("0B101", 5),
        ("0x_1", 1),
        ("0755", 493),
        ("-0755", -493),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("18446744073709551615", 2**64 - 1),
        ("1_0.5", 10.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("-1.5e3", -1500.0),
        ("+1e-2", 0.01),
        ("abc", "abc"),
        ("+", "+"),
        ("-", "-"),
        (".", "."),
        ("0x", "0x"),
        ("0b2", "0b2"),
        ("1e", "1e"),
        ("0xfg", "0xfg"),
        ("1.2.3", "1.2.3"),
        ("2001-12-14", "2001-12-14"),
    ],
)
def test_a_plain_scalar_resolves_as_go_yaml_v2_resolves_it(text, expected):
    value = resolve_plain_scalar(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("09", 9.0), ("18446744073709551616", 2.0**64), ("-9223372036854775809", -(2.0**63))],
)
def test_an_integer_out_of_go_ranges_or_with_an_octal_misfit_is_a_float(text, expected):
    value = resolve_plain_scalar(text)
    assert (value, type(value)) == (expected, float)


def test_infinities_and_nan_resolve_to_floats():
    assert [resolve_plain_scalar(t) for t in (".inf", ".Inf", ".INF", "+.inf", "+.Inf")] == [
        math.inf
    ] * 5
    assert resolve_plain_scalar("+.INF") == math.inf
    assert [resolve_plain_scalar(t) for t in ("-.inf", "-.Inf", "-.INF")] == [-math.inf] * 3
    assert all(math.isnan(resolve_plain_scalar(t)) for t in (".nan", ".NaN", ".NAN"))


def test_quoted_tagged_and_anchored_scalars_on_the_node_path():
    text = "on: 1\na: &x yes\nb: *x\nc: !!str yes\nd: &y !!str on\ne: 'no'\nf: \"y\"\ng: !foo on\n"
    text += "h: &z\n  k: n\n"
    assert only(text).data == {
        "true": 1,
        "a": True,
        "b": True,
        "c": "yes",
        "d": "on",
        "e": "no",
        "f": "y",
        "g": True,
        "h": {"k": False},
    }


def test_an_anchor_on_an_empty_scalar_is_null():
    assert only("on: 1\na: &x\nb: *x\n").data == {"true": 1, "a": None, "b": None}


def test_aliases_share_one_built_value():
    doc = only("a: &a [yes, {k: on}]\nb: *a\n")
    assert doc.data == {"a": [True, {"k": True}], "b": [True, {"k": True}]}
    assert doc.data["a"] is doc.data["b"]


def test_an_alias_to_a_null_is_null_each_time():
    assert only("a: &n null\nb: *n\nc: *n\nd: on\n").data == {
        "a": None,
        "b": None,
        "c": None,
        "d": True,
    }


# -- keys as kubectl makes them ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("k", "k"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-7, "-7"),
        (3.5, "3.5"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (100.0, "100"),
        (123456.0, "123456"),
        (999999.0, "999999"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (16777216.0, "1.6777216e+07"),
        (1e21, "1e+21"),
        (0.1, "0.1"),
        (12.25, "12.25"),
        (0.0001, "0.0001"),
        (0.00012, "0.00012"),
        (1e-05, "1e-05"),
        (1.5e-07, "1.5e-07"),
        (-1.5e-07, "-1.5e-07"),
        (0.3, "0.3"),
        (math.inf, ".inf"),
        (-math.inf, "-.inf"),
        (math.nan, ".nan"),
    ],
)
def test_a_key_becomes_the_string_sigs_k8s_io_yaml_makes_of_it(key, expected):
    assert json_key(key) == expected


@pytest.mark.parametrize(("key", "shown"), [(None, "null"), ([1], "list"), ((1,), "tuple")])
def test_a_key_kubectl_cannot_use_is_an_unsupported_key(key, shown):
    with pytest.raises(UnsupportedKey) as raised:
        json_key(key)
    assert str(raised.value) == f"mapping key {shown} is not supported (kubectl rejects it)"
    assert isinstance(raised.value, ValueError)


def test_stringify_keys_turns_every_key_into_a_string_at_every_depth():
    data = {1: {True: [{2.5: None}, "s", [{False: 0}]]}, "k": 7}
    assert stringify_keys(data) == {"1": {"true": [{"2.5": None}, "s", [{"false": 0}]]}, "k": 7}
    assert stringify_keys("x") == "x"
    assert stringify_keys([1, 2]) == [1, 2]


def test_a_null_key_on_the_node_path_is_a_document_error():
    doc = load_text("a: 1\n---\non: 1\n~: 2\n", "n.yaml")[1]
    assert (doc.index, doc.line, doc.data) == (1, 3, None)
    assert doc.error == "mapping key null is not supported (kubectl rejects it)"


# -- merge keys -------------------------------------------------------------------------------


MERGES = "a: &a {x: 1, p: 1}\nb: &b {p: 2, z: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n"


def test_earlier_merge_sources_win_and_the_mapping_itself_wins_over_all():
    assert only(MERGES).data["c"] == {"x": 1, "p": 1, "z": 3}
    on_the_kubectl_path = only(MERGES + "d: on\n")
    assert on_the_kubectl_path.data["c"] == {"x": 1, "p": 1, "z": 3}
    assert len(on_the_kubectl_path._nodes) == 1


def test_a_merge_key_keeps_its_place_below_the_mappings_own_keys():
    text = "a: &a {k: 1}\nc:\n  z: 0\n  <<: *a\n  k: 2\n"
    assert only(text).data["c"] == {"k": 2, "z": 0}
    assert only(text + "d: on\n").data["c"] == {"k": 2, "z": 0}


def test_merge_keys_inside_lists_and_nested_sources_are_resolved():
    text = "a: &a {x: 1}\nb: &b {<<: *a, p: 2}\nl:\n- <<: *b\n  z: 3\n"
    assert only(text).data["l"] == [{"x": 1, "p": 2, "z": 3}]
    assert only(text + "d: on\n").data["l"] == [{"x": 1, "p": 2, "z": 3}]


def test_a_merge_of_something_other_than_mappings_is_left_alone_on_the_fast_path():
    assert only("a: &a {x: 1}\nc:\n  <<: [*a, 1]\n  z: 4\n").data["c"] == {
        "<<": [{"x": 1}, 1],
        "z": 4,
    }
    assert only("c:\n  <<: 5\n").data == {"c": {"<<": 5}}


def test_the_node_path_merges_only_the_mappings_among_the_sources():
    assert only("a: &a {x: 1}\nc:\n  <<: [*a, 1]\n  z: on\n").data["c"] == {"x": 1, "z": True}
    assert only("c:\n  <<: 5\n  z: on\n").data == {"c": {"z": True}}


def test_resolve_merge_keys_applies_to_plain_data():
    data = {"<<": [{"a": 1, "b": 1}, {"b": 2, "c": 2}], "c": 3, "l": [{"<<": {"x": 1}}]}
    assert _resolve_merge_keys(data) == {"a": 1, "b": 1, "c": 3, "l": [{"x": 1}]}
    assert _resolve_merge_keys({"<<": "s"}) == {"<<": "s"}
    assert _resolve_merge_keys(7) == 7


def test_a_merge_key_is_plain_and_untagged_or_tagged_merge():
    import yaml

    def key(text: str):
        return yaml.compose(text, Loader=yaml.CBaseLoader).value[0][0]

    assert _is_merge_key(key("<<: {}\n")) is True
    assert _is_merge_key(key("'<<': {}\n")) is False
    assert _is_merge_key(key("!!merge <<: {}\n")) is True
    assert _is_merge_key(key("!!str <<: {}\n")) is True
    assert _is_merge_key(key("!!int <<: {}\n")) is False
    assert _is_merge_key(key("<: {}\n")) is False


# -- parse errors and hostile input -----------------------------------------------------------


def test_a_parse_error_is_one_line_with_the_file_line_and_the_reason():
    err = ValueError("YAML parse error at line 2, column 4\n  |\n2 |   b: 2\n  |    ^\nbad thing")
    assert _parse_error(err, 10) == "YAML parse error at line 11, column 4: bad thing"
    assert _parse_error(err, 1) == "YAML parse error at line 2, column 4: bad thing"


def test_a_parse_error_without_a_reason_or_a_position():
    caret = ValueError("YAML parse error at line 1, column 3\n  |\n  ^")
    assert _parse_error(caret, 5) == "YAML parse error at line 5, column 3"
    bar = ValueError("YAML parse error at line 1, column 3\n  |")
    assert _parse_error(bar, 5) == "YAML parse error at line 5, column 3"
    assert _parse_error(ValueError("YAML parse error at line 2, column 1"), 3) == (
        "YAML parse error at line 4, column 1"
    )
    assert _parse_error(ValueError("\n  something odd  \nmore"), 5) == "something odd"
    assert _parse_error(KeyError(), 5) == "KeyError"


def test_a_document_nested_too_deep_names_its_line():
    text = "ok: 1\n---\na:\n" + "".join(" " * i + "b:\n" for i in range(1, 450))
    doc = load_text(text, "d.yaml")[1]
    assert (doc.index, doc.line, doc.data) == (1, 3, None)
    assert doc.error == "nesting too deep at line 403 (more than 400 levels)"
    shallow = "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 400)) + " " * 399 + "c: 1\n"
    assert only(shallow).error is None


def test_alias_expansion_beyond_the_limit_is_one_error():
    laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{','.join(['*' + p] * 10)}]\n" for p, n in zip("abcde", "bcdef", strict=True)
    )
    doc = load_text("k: 1\n---\n" + laughs, "b.yaml")[1]
    assert doc.error == "alias expansion too large (more than 200000 nodes)"
    assert (doc.index, doc.line, doc.first_line) == (1, 3, 2)
    fits = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{','.join(['*' + p] * 10)}]\n" for p, n in zip("abcd", "bcde", strict=True)
    )
    assert only(fits).error is None


def test_a_parse_error_in_a_document_with_a_duplicate_key_is_the_parse_error():
    doc = only("a: 1\na: 2\nb: [\n")
    assert doc.error == "YAML parse error at line 3, column 4: unclosed bracket '['"


def test_too_many_documents_are_one_error_document():
    [doc] = load_text("---\n" * (MAX_DOCUMENTS + 1), "m.yaml")
    assert (doc.filename, doc.index, doc.line, doc.data) == ("m.yaml", 0, 1, None)
    assert doc.error == "too many documents (more than 200,000 in one file)"
    with pytest.raises(LoadError, match="too many documents"):
        split_text("---\n" * (MAX_DOCUMENTS + 1), "m.yaml")


# -- files ----------------------------------------------------------------------------------------


def test_a_file_that_cannot_be_read_is_one_error_document(tmp_path: Path):
    missing = tmp_path / "missing.yaml"
    [doc] = load_file(missing)
    assert (doc.filename, doc.index, doc.line, doc.data) == (str(missing), 0, 1, None)
    assert doc.error == "cannot read: No such file or directory"
    with pytest.raises(LoadError, match="cannot read: Is a directory"):
        read_text(tmp_path)


def test_a_file_is_refused_past_the_byte_limit_only(tmp_path: Path):
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\n")
    assert read_text(path, 5) == "a: 1\n"
    with pytest.raises(LoadError) as raised:
        read_text(path, 4)
    assert str(raised.value) == "file too large (over 4 bytes)"
    assert load_file(path, 4)[0].error == "file too large (over 4 bytes)"
    assert [d.data for d in load_file(path, 5)] == [{"a": 1}]
    assert MAX_FILE_BYTES == 16 * 1024 * 1024


def test_decode_refuses_nul_bytes_and_invalid_utf8_with_their_position():
    assert decode(b"a: 1\n") == "a: 1\n"
    with pytest.raises(LoadError, match=r"^binary file \(NUL byte at line 3\)$"):
        decode(b"a\nb\n\x00\n")
    with pytest.raises(LoadError) as raised:
        decode(b"a: 1\nb: 2\nname: x\xff\n")
    assert str(raised.value) == "not UTF-8: invalid byte 0xff at line 3, column 8"
    with pytest.raises(LoadError) as raised:
        decode(b"\xc3")
    assert str(raised.value) == "not UTF-8: invalid byte 0xc3 at line 1, column 1"
    with pytest.raises(LoadError, match="file too large"):
        decode(b"12345", 4)
    assert decode(b"1234", 4) == "1234"


def test_a_utf8_bom_and_a_file_name_reach_every_document(tmp_path: Path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n---\nb: 2\n")
    assert [(d.filename, d.line, d.data) for d in load_file(path)] == [
        (str(path), 1, {"a": 1}),
        (str(path), 3, {"b": 2}),
    ]


def test_a_document_too_deep_to_build_is_an_error_even_from_a_deep_stack():
    """Called with little stack left, the candidate check (a JSON dump) and building from
    the nodes both run out of recursion: a bounded error, not a RecursionError."""
    text = "on: 1\na: " + "[" * 200 + "]" * 200 + "\n"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 100)
    try:
        [doc] = load_text(text, "d.yaml")
    finally:
        sys.setrecursionlimit(limit)
    assert (doc.line, doc.data, doc.error) == (1, None, "nesting too deep to load")


# -- pinned edges ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data"),
    [
        (" on: 1\n", {"on": 1}),  # the key's space is the text's first character
        ("\nno: 1\n", {"no": 1}),  # and its newline
        ("a: 1\nb:\nno: 2\n", {"a": 1, "b": None, "no": 2}),  # the line before has no space
    ],
)
def test_a_boolean_key_is_read_whole_from_the_space_or_newline_before_it(text, data):
    assert _kubectl_differs(text, data) is True


def alias_bomb(*counts: int) -> str:
    """Anchors a, b, c...: `a` holds counts[0] scalars, each later one counts[i] aliases of
    the one before, so the last replays about the product of the counts."""
    text = f"a: &a [{','.join(['x'] * counts[0])}]\n"
    for i, count in enumerate(counts[1:], 1):
        name, before = "abcdefgh"[i], "abcdefgh"[i - 1]
        text += f"{name}: &{name} [{','.join(['*' + before] * count)}]\n"
    return text


def test_the_alias_limit_is_ours_not_the_parsers_default():
    bomb = alias_bomb(
        10, 10, 10, 10, 10, 3
    )  # about 300,000 replayed events: over our limit, under yaml-rs' own
    assert only(bomb).error == "alias expansion too large (more than 200000 nodes)"
    with_duplicates = only("k: 1\nk: 2\n" + bomb)  # parsed again for duplicate keys
    assert with_duplicates.error == "alias expansion too large (more than 200000 nodes)"
    assert only(alias_bomb(10, 10, 10, 10, 10)).error is None


def test_duplicates_after_an_alias_already_visited_are_still_found():
    doc = only("c: {d: 1, d: 2}\na: &x {k: 1}\nb: *x\n")
    assert doc.duplicate_keys == (DuplicateKey(("c",), "d", 1, 1),)


def test_an_anchor_on_an_empty_scalar_at_the_very_end_is_null():
    doc = only("on: 1\na: &x")
    assert (doc.error, doc.data) == (None, {"true": 1, "a": None})


def test_a_document_after_blank_lines_starts_at_its_content():
    doc = only("\n\na: 1\n")
    assert (doc.first_line, doc.line, doc.text) == (1, 3, "\n\na: 1\n")


def test_a_document_after_an_end_marker_starts_on_the_next_line():
    docs = load_text("a: 1\n... # end\nb: 2\n", "e.yaml")
    assert [(d.first_line, d.line, d.text) for d in docs] == [(1, 1, "a: 1\n"), (3, 3, "b: 2\n")]


def test_too_deep_nesting_after_a_blank_first_line_names_the_files_line():
    doc = only("\na:\n" + "".join(" " * i + "b:\n" for i in range(1, 450)))
    assert doc.error == "nesting too deep at line 402 (more than 400 levels)"
    assert (doc.filename, doc.index, doc.duplicate_keys, doc.first_line) == ("f.yaml", 0, (), 1)


def test_line_of_a_path_through_a_scalar_stops_at_the_scalar():
    doc = only("x:\n  - p\n  - q: 1\n")
    assert doc.line_of(("x", 0, "deeper")) == 2
    assert doc.line_of(("x", 0, 0)) == 2


def test_each_mapping_asked_about_is_indexed_once_merge_sources_too():
    doc = only("base: &b\n  k: 1\nuse:\n  <<: *b\n  own: 2\n")
    assert doc.line_of(("use", "own")) == 5
    indexed = dict(doc._index)
    assert doc.line_of(("use", "k")) == 2
    assert len(doc._index) == 3  # the root, `use`, and `base` through the merge key
    assert all(doc._index[key] is keys for key, keys in indexed.items())
    assert sorted(sorted(keys) for keys in doc._index.values()) == [
        ["<<", "own"],
        ["base", "use"],
        ["k"],
    ]
    assert doc.line_of(("use", "own")) == 5
    assert len(doc._index) == 3


def test_a_document_without_duplicates_has_none():
    assert only("a: 1\n").duplicate_keys == ()
    assert only("a: on\n").duplicate_keys == ()


@pytest.mark.parametrize("length", [1, 253, 254, 1000])
def test_a_tagged_scalar_stays_a_string_behind_an_anchor_of_any_length(length):
    doc = only(f"a: &{'x' * length} !!str yes\nb: on\nc: &{'y' * length}\n  !!str no\n")
    assert doc.data == {"a": "yes", "b": True, "c": "no"}


def test_a_two_line_parse_error_keeps_its_reason():
    err = ValueError("YAML parse error at line 1, column 2\nbad thing")
    assert _parse_error(err, 1) == "YAML parse error at line 1, column 2: bad thing"


@pytest.mark.parametrize(
    ("raw", "line"),
    [(b"\x00a: 1\n", 1), (b"\n\x00", 2), (b"a\nb\x00\nc\x00\n", 2)],
    ids=["first-byte", "after-a-newline", "the-first-of-two"],
)
def test_the_first_nul_byte_anywhere_makes_a_binary_file(raw, line):
    with pytest.raises(LoadError) as raised:
        decode(raw)
    assert str(raised.value) == f"binary file (NUL byte at line {line})"


def test_an_invalid_byte_after_a_leading_newline_is_on_line_two():
    with pytest.raises(LoadError) as raised:
        decode(b"\n\xff")
    assert str(raised.value) == "not UTF-8: invalid byte 0xff at line 2, column 1"
