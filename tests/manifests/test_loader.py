"""The shared YAML loader: documents, lines, duplicate keys, and hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshready.manifests.loader import MAX_FILE_BYTES, load_file, load_text

STREAM = """\
# leading comment
apiVersion: v1
kind: ConfigMap
metadata:
  name: first
  name: second
data:
  script: |
    ---
    not a document marker: it is indented
---
---
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: main
    ports:
    - name: http
      containerPort: 80
---
broken: [1, 2
next: 3
--- {flow: 1}
...
# trailing comment only
"""


def test_documents_lines_and_errors():
    docs = load_text(STREAM, "s.yaml")
    assert [(d.index, d.line) for d in docs] == [(0, 2), (1, 11), (2, 13), (3, 24), (4, 26)]
    assert docs[0].data["data"]["script"].startswith("---\n")
    assert docs[1].empty
    assert docs[2].data["kind"] == "Pod"
    assert docs[3].data is None
    assert (
        docs[3].error == "YAML parse error at line 25, column 5: illegal placement of ':' indicator"
    )
    assert docs[4].data == {"flow": 1}


def test_duplicate_key_names_both_lines_and_keeps_the_last_value():
    first = load_text(STREAM, "s.yaml")[0]
    assert first.error is None
    assert first.data["metadata"]["name"] == "second"
    [dup] = first.duplicate_keys
    assert (dup.path, dup.key, dup.first_line, dup.line) == (("metadata",), "name", 5, 6)
    assert "lines 5 and 6" in dup.message


def test_line_of_follows_the_path_and_falls_back_to_ancestors():
    pod = load_text(STREAM, "s.yaml")[2]
    assert pod.line_of(("spec", "containers", 0, "ports", 0, "containerPort")) == 22
    assert pod.line_of(("spec", "containers", 0, "ports", 0, "missing")) == 21
    assert pod.line_of(("spec", "containers", 7)) == 18
    assert pod.line_of(()) == 13


def test_comment_only_and_empty_input_have_no_documents():
    assert load_text("", "e.yaml") == []
    assert load_text("# nothing\n\n", "e.yaml") == []
    assert [d.empty for d in load_text("---\n", "e.yaml")] == [True]


def test_merge_keys_are_resolved():
    [doc] = load_text("base: &b {a: 1, b: 2}\nuse:\n  <<: *b\n  b: 3\n", "m.yaml")
    assert doc.data["use"] == {"a": 1, "b": 3}


def test_timestamps_stay_strings():
    [doc] = load_text("metadata:\n  creationTimestamp: 2024-01-01T00:00:00Z\n", "t.yaml")
    assert doc.data["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"


BILLION_LAUGHS = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BILLION_LAUGHS, "alias expansion too large"),
        ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 2000)), "nesting too deep"),
        ("- " * 50_000 + "x\n", "nesting too deep"),
        ("? " * 50_000 + "x\n", "nesting too deep"),
        ("[" * 100_000 + "]" * 100_000 + "\n", "recursion limit exceeded"),
        ("{a: " * 100_000 + "}" * 100_000 + "\n", "line 3, column"),
    ],
    ids=["billion-laughs", "deep-block", "deep-compact-seq", "deep-keys", "deep-flow", "deep-map"],
)
def test_hostile_documents_give_a_bounded_error(text, expected):
    docs = load_text("ok: 1\n---\n" + text + "---\nafter: 2\n", "h.yaml")
    assert docs[0].data == {"ok": 1}
    assert docs[1].data is None
    assert expected in docs[1].error
    assert docs[2].data == {"after": 2}  # later documents are still loaded


def test_oversized_file_is_refused_without_reading_it_whole(tmp_path: Path):
    big = tmp_path / "big.yaml"
    line = b"key: " + b"x" * 1000 + b"\n"
    with open(big, "wb") as handle:
        for _ in range(50 * 1024 * 1024 // len(line) + 1):  # a little over 50 MB
            handle.write(line)
    [doc] = load_file(big)
    assert doc.error == f"file too large (over {MAX_FILE_BYTES} bytes)"
    assert doc.filename == str(big)


def test_binary_and_non_utf8_files_are_refused(tmp_path: Path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: 1\n\x7fELF\x00\x01\x02")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nname: caf\xe9\n")
    assert load_file(binary)[0].error == "binary file (NUL byte at line 2)"
    assert load_file(latin)[0].error == "not UTF-8: invalid byte 0xe9 at line 2, column 10"


def test_utf8_bom_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfkind: Namespace\n")
    assert load_file(path)[0].data == {"kind": "Namespace"}


# -- scalars and keys as kubectl reads them (sigs.k8s.io/yaml, go-yaml v2) --------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v: yes", True),
        ("v: Yes", True),
        ("v: YES", True),
        ("v: y", True),
        ("v: on", True),
        ("v: ON", True),
        ("v: no", False),
        ("v: n", False),
        ("v: Off", False),
        ("v: 0755", 493),  # legacy octal
        ("v: 0b101", 5),
        ("v: 1_000", 1000),
        ("v: 0o17", 15),
        ("v: 0x1F", 31),
        ("v: 190:20:30", "190:20:30"),  # go-yaml v2 has no sexagesimal
        ("v: 2001-12-14", "2001-12-14"),  # nor timestamps, for interface{}
        ('v: "yes"', "yes"),
        ("v: 'on'", "on"),
        ("v: !!str yes", "yes"),
        ("v: [yes, no, y]", [True, False, True]),
        ("v: {a: on}", {"a": True}),
        ("v:\n- off\n- nope", [False, "nope"]),
        ("v: yesterday", "yesterday"),
        ("v: |\n  y: 1\n  on: yes\n", "y: 1\non: yes\n"),  # a block scalar is text
    ],
)
def test_plain_scalars_resolve_as_kubectl_resolves_them(text, expected):
    [doc] = load_text(text + "\n", "k.yaml")
    assert doc.error is None
    assert doc.data["v"] == expected


def test_keys_become_strings_as_sigs_k8s_io_yaml_makes_them():
    [doc] = load_text("1: a\ntrue: b\n3.5: c\non: d\ny: e\nplain: f\n", "k.yaml")
    assert doc.error is None
    assert doc.data == {"1": "a", "true": "e", "3.5": "c", "plain": "f"}  # on, y and true collide


def test_a_null_key_is_an_error_as_in_kubectl():
    from meshready.manifests.loader import UnsupportedKey, stringify_keys

    [doc] = load_text("a: yes\nnull: 2\n", "k.yaml")  # on the kubectl path
    assert doc.error == "mapping key null is not supported (kubectl rejects it)"
    [fast] = load_text("a: 1\nnull: 2\n", "k.yaml")  # yaml-rs' data; validation makes keys strings
    with pytest.raises(UnsupportedKey):
        stringify_keys(fast.data)
    assert stringify_keys({1: {True: [{2.5: None}]}}) == {"1": {"true": [{"2.5": None}]}}


def test_the_kubectl_path_keeps_lines_merge_keys_and_duplicates():
    text = "base: &b\n  x: 1\nv:\n  <<: *b\n  flag: yes\n  flag: no\n"
    [doc] = load_text(text, "k.yaml")
    assert doc.data["v"] == {"x": 1, "flag": False}
    assert [(d.key, d.first_line, d.line) for d in doc.duplicate_keys] == [("flag", 5, 6)]
    assert doc.line_of(("v", "flag")) == 6


def test_more_documents_than_the_limit_are_one_error():
    from meshready.manifests.loader import MAX_DOCUMENTS, LoadError, split_text

    text = "---\n" * (MAX_DOCUMENTS + 1)
    assert (
        load_text(text, "m.yaml")[0].error == "too many documents (more than 200,000 in one file)"
    )
    with pytest.raises(LoadError):
        split_text(text, "m.yaml")
    assert len(load_text("---\n" * MAX_DOCUMENTS, "m.yaml")) == MAX_DOCUMENTS


def test_line_of_is_linear_in_the_keys_of_a_mapping():
    """Each lookup used to scan the whole mapping: 100k keys asked for took minutes."""
    count = 20_000
    text = "m:\n" + "".join(f"  k{i}: {i}\n" for i in range(count))
    [doc] = load_text(text, "big.yaml")
    assert [doc.line_of(("m", f"k{i}")) for i in range(0, count, 1000)] == list(
        range(2, count + 2, 1000)
    )
    assert len(doc._index) == 2  # the root and `m`, each indexed once
