"""The validation core in process (docs/testing.md): documents from the real loader,
validated against the bundled offline schemas by the real `SchemaRegistry`; the exact
statuses, messages, JSON pointers and lines kubeconform-style reports are built from."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshready.manifests.loader import load_file, load_text
from meshready.validate import core
from meshready.validate.core import (
    EMPTY,
    ERROR,
    INVALID,
    MAX_ECHO,
    SKIPPED,
    VALID,
    FieldError,
    Options,
    ResourceResult,
    clip,
    crds_in,
    exit_status,
    find_duplicate_objects,
    pointer,
    up_to_first_failure,
    validate_documents,
)
from meshready.validate.registry import SchemaRegistry
from meshready.validate.rendered import RenderedDocument

V133, V130 = "1.33.0", "1.30.0"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


@pytest.fixture(scope="module")
def lax() -> SchemaRegistry:
    return SchemaRegistry(False)


@pytest.fixture(scope="module")
def strict() -> SchemaRegistry:
    return SchemaRegistry(True)


def validate(text: str, registry: SchemaRegistry, **options) -> list[ResourceResult]:
    return validate_documents(load_text(text, "f.yaml"), registry, Options(**options))


def errors_of(result: ResourceResult) -> list[tuple[str, int, str]]:
    return [(e.path, e.line, e.msg) for e in result.errors]


def result(status: str = VALID, **fields) -> ResourceResult:
    values = {
        "filename": "f.yaml",
        "line": 1,
        "kind": "ConfigMap",
        "name": "a",
        "namespace": "",
        "api_version": "v1",
        "kubernetes_version": V133,
        "status": status,
    }
    values.update(fields)
    return ResourceResult(**values)


# -- clip, pointer, FieldError ---------------------------------------------------------------


def test_clip_keeps_a_text_of_exactly_the_limit_whole():
    assert MAX_ECHO == 400
    assert clip("x" * 400) == "x" * 400
    assert clip("abc", 3) == "abc"


def test_clip_keeps_three_quarters_head_and_a_quarter_tail_and_counts_the_rest():
    text = "h" * 300 + "m" * 9_600 + "t" * 100
    assert clip(text) == "h" * 300 + "... (9,600 characters omitted) ..." + "t" * 100
    assert clip("a" * 300 + "b" + "c" * 100) == "a" * 300 + "... (1 characters omitted) ..." + (
        "c" * 100
    )


def test_clip_with_a_custom_limit():
    assert clip("abcdefghijklmnop", 8) == "abcdef... (8 characters omitted) ...op"


def test_field_error_clips_its_path_and_message():
    error = FieldError("/" + "p" * 500, 3, "m" * 401)
    assert error.path == clip("/" + "p" * 500)
    assert error.msg == "m" * 300 + "... (1 characters omitted) ..." + "m" * 100
    assert error.line == 3


def test_pointer_escapes_tilde_before_slash_as_rfc_6901_says():
    assert pointer(("metadata", "annotations", "a/b")) == "/metadata/annotations/a~1b"
    assert pointer(("a~b", 0, "~1", "x/~")) == "/a~0b/0/~01/x~1~0"
    assert pointer(()) == ""


# -- documents that are no resource ---------------------------------------------------------


def test_a_document_with_a_parse_error_is_an_error_at_the_line_its_message_names(lax):
    text = CONFIGMAP.format(name="a") + "---\nbroken: [1, 2\nnext: 3\n"
    first, broken = validate(text, lax)
    assert first.status == VALID
    assert (broken.filename, broken.line, broken.kind, broken.name) == ("f.yaml", 6, "", "")
    assert (broken.namespace, broken.api_version, broken.kubernetes_version) == ("", "", None)
    assert broken.status == ERROR
    message = "YAML parse error at line 7, column 5: illegal placement of ':' indicator"
    assert errors_of(broken) == [("", 7, message)]
    assert broken.target == ""


def test_an_error_without_a_line_in_its_message_is_at_the_documents_line(lax, tmp_path: Path):
    lineless = RenderedDocument("prod", None, None, tmp_path, error="no line here", line=9)
    pipeline = RenderedDocument("prod", None, None, tmp_path, error="pipeline 3 failed", line=9)
    results = validate_documents([lineless, pipeline], lax, Options())
    assert [(r.line, r.status, r.target, errors_of(r)) for r in results] == [
        (9, ERROR, "prod", [("", 9, "no line here")]),
        (9, ERROR, "prod", [("", 9, "pipeline 3 failed")]),
    ]


def test_a_file_that_cannot_be_loaded_is_one_error(lax, tmp_path: Path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"a: 1\nb: \x00")
    [res] = validate_documents(load_file(path), lax, Options())
    assert (res.filename, res.line, res.status) == (str(path), 1, ERROR)
    assert errors_of(res) == [("", 2, "binary file (NUL byte at line 2)")]


def test_an_empty_document_is_empty_without_errors(lax):
    [res] = validate("---\n# nothing\n", lax)
    assert res == ResourceResult("f.yaml", 1, "", "", "", "", None, EMPTY, [], "")


def test_a_document_that_is_no_mapping_is_an_error_naming_its_type(lax):
    [seq, scalar] = validate("- a\n- b\n---\njust text\n", lax)
    message = "document is a list, not a mapping"
    assert seq == ResourceResult(
        "f.yaml", 1, "", "", "", "", None, ERROR, [FieldError("", 1, message)]
    )
    message = "document is a str, not a mapping"
    assert scalar == ResourceResult(
        "f.yaml", 4, "", "", "", "", None, ERROR, [FieldError("", 4, message)], ""
    )


def test_a_rendered_document_carries_its_target_into_every_result(lax, tmp_path: Path):
    docs = [
        RenderedDocument("prod", None, None, tmp_path),
        RenderedDocument("prod", [1], None, tmp_path),
        RenderedDocument("prod", {"apiVersion": "v1", "kind": "Foo"}, None, tmp_path),
        RenderedDocument("prod", {"kind": "List", "items": [1]}, None, tmp_path),
    ]
    results = validate_documents(docs, lax, Options())
    assert [(r.filename, r.target, r.status) for r in results] == [
        ("prod", "prod", s)
        for s in (
            EMPTY,
            ERROR,
            ERROR,
            ERROR,
        )
    ]
    assert errors_of(results[2]) == [("", 1, "no schema for v1 Foo")]
    assert errors_of(results[3]) == [("/items/0", 1, "list item is not a mapping")]


# -- identity and the checks before the schema ------------------------------------------------


def test_missing_api_version_and_kind_are_two_errors_per_kubernetes_version(lax):
    text = "metadata:\n  name: a\n"
    results = validate(text, lax, kubernetes_versions=(V133, V130))
    assert [(r.kubernetes_version, r.status) for r in results] == [(V133, ERROR), (V130, ERROR)]
    for res in results:
        assert errors_of(res) == [
            ("/apiVersion", 1, "missing 'apiVersion' key"),
            ("/kind", 1, "missing 'kind' key"),
        ]
        assert (res.name, res.kind, res.api_version) == ("a", "", "")


def test_an_identity_field_that_is_not_a_string_counts_as_missing(lax):
    [res] = validate("apiVersion: 1\nkind: ConfigMap\nmetadata: [x]\n", lax)
    assert errors_of(res) == [("/apiVersion", 1, "missing 'apiVersion' key")]
    assert (res.kind, res.name, res.namespace) == ("ConfigMap", "", "")
    [res] = validate("apiVersion: v1\nkind: [ConfigMap]\n", lax)
    assert errors_of(res) == [("/kind", 1, "missing 'kind' key")]


def test_identity_is_read_from_metadata(lax):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ns\n"
    [res] = validate(text, lax)
    assert (res.api_version, res.kind, res.namespace, res.name) == ("v1", "ConfigMap", "ns", "a")
    [res] = validate(text.replace("ns\n", "3\n"), lax)
    assert res.namespace == ""
    assert res.status == INVALID


def test_default_options_validate_against_kubernetes_1_33_leniently(lax):
    assert Options() == Options(("1.33.0",), False, frozenset(), frozenset(), False)
    [res] = validate(CONFIGMAP.format(name="a") + "status: {}\n", lax)
    assert (res.kubernetes_version, res.status, res.errors) == (V133, VALID, [])


@pytest.mark.parametrize("skip", ["ConfigMap", "v1/ConfigMap"])
def test_a_skipped_kind_is_skipped_by_kind_or_by_api_version_and_kind(lax, skip):
    text = CONFIGMAP.format(name="Bad_Name")
    results = validate(text, lax, kubernetes_versions=(V133, V130), skip_kinds=frozenset({skip}))
    assert [(r.kubernetes_version, r.status, r.errors) for r in results] == [
        (V133, SKIPPED, []),
        (V130, SKIPPED, []),
    ]


def test_skip_kinds_does_not_match_another_api_version(lax):
    [res] = validate(CONFIGMAP.format(name="a"), lax, skip_kinds=frozenset({"apps/v1/ConfigMap"}))
    assert res.status == VALID


@pytest.mark.parametrize("reject", ["ConfigMap", "v1/ConfigMap"])
def test_a_rejected_kind_is_a_prohibited_error_at_its_kind(lax, reject):
    text = "apiVersion: v1\nkind: List\nitems:\n- " + CONFIGMAP.format(name="a").replace(
        "\n", "\n  "
    )
    results = validate(text, lax, kubernetes_versions=(V133, V130), reject_kinds={reject})
    assert [(r.kubernetes_version, r.status, r.line) for r in results] == [
        (V133, ERROR, 4),
        (V130, ERROR, 4),
    ]
    assert errors_of(results[0]) == [("/items/0/kind", 4, "prohibited resource kind ConfigMap")]


def test_reject_kinds_does_not_match_another_kind(lax):
    [res] = validate(CONFIGMAP.format(name="a"), lax, reject_kinds=frozenset({"v1/Secret"}))
    assert res.status == VALID


def test_a_kind_without_a_schema_is_an_error_unless_missing_schemas_are_ignored(lax):
    text = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
    results = validate(text, lax, kubernetes_versions=(V133, V130))
    assert [(r.kubernetes_version, r.status) for r in results] == [(V133, ERROR), (V130, ERROR)]
    assert errors_of(results[1]) == [("", 1, "no schema for example.com/v1 Widget")]
    results = validate(text, lax, kubernetes_versions=(V133, V130), ignore_missing_schemas=True)
    assert [(r.kubernetes_version, r.status, r.errors) for r in results] == [
        (V133, SKIPPED, []),
        (V130, SKIPPED, []),
    ]


# -- lists -----------------------------------------------------------------------------------

LIST = """\
apiVersion: v1
kind: ConfigMapList
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: a
- just text
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: b
  data:
    k: 1
"""


def test_every_item_of_a_list_is_a_resource_at_its_own_line(lax):
    first, text, second = validate(LIST, lax)
    assert (first.name, first.line, first.status) == ("a", 4, VALID)
    error = FieldError("/items/1", 8, "list item is not a mapping")
    assert text == ResourceResult("f.yaml", 8, "", "", "", "", None, ERROR, [error], "")
    assert (second.name, second.line, second.status) == ("b", 9, INVALID)
    assert errors_of(second) == [("/items/2/data/k", 14, '1 is not of types "null", "string"')]


def test_a_kind_ending_in_list_without_an_items_list_is_one_resource(lax):
    [res] = validate("apiVersion: v1\nkind: List\nitems: x\n", lax)
    assert errors_of(res) == [("", 1, "no schema for v1 List")]
    [res] = validate("apiVersion: v1\nkind: Lists\nitems: []\n", lax)
    assert (res.kind, errors_of(res)) == ("Lists", [("", 1, "no schema for v1 Lists")])


def test_an_empty_list_has_no_results(lax):
    assert validate("apiVersion: v1\nkind: List\nitems: []\n", lax) == []


# -- schema errors and the resource rules -----------------------------------------------------


def test_schema_errors_name_the_field_its_line_and_are_sorted_by_line(lax):
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  replicas: "x"
"""
    [res] = validate(text, lax, kubernetes_versions=(V133, V130))[:1]
    assert (res.status, res.line, res.kubernetes_version) == (INVALID, 1, V133)
    assert errors_of(res) == [
        ("/spec", 5, '"selector" is a required property'),
        ("/spec", 5, '"template" is a required property'),
        ("/spec/replicas", 6, '"x" is not of types "null", "integer"'),
    ]


def test_unknown_fields_are_one_error_each_in_strict_schemas(strict):
    text = CONFIGMAP.format(name="a") + "zeta: 1\nalpha: 2\n"
    [res] = validate(text, strict, strict=True)
    assert errors_of(res) == [
        ("/zeta", 5, 'unknown field "zeta"'),
        ("/alpha", 6, 'unknown field "alpha"'),
    ]


def test_errors_on_one_line_are_sorted_by_path(strict):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, uid: u, generation: 2}\n"
    [res] = validate(text, strict, strict=True)
    assert errors_of(res) == [
        ("/metadata/generation", 3, "metadata.generation is set by the API server"),
        ("/metadata/uid", 3, "metadata.uid is set by the API server"),
    ]


def test_a_resource_without_a_name_is_missing_metadata_name(lax):
    [res] = validate("apiVersion: v1\nkind: ConfigMap\n", lax)
    assert (res.status, errors_of(res)) == (INVALID, [("", 1, "missing metadata.name")])
    [res] = validate("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n", lax)
    assert errors_of(res) == [("/metadata", 3, "missing metadata.name")]
    [res] = validate("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: ''\n", lax)
    assert errors_of(res) == [("/metadata", 3, "missing metadata.name")]


def test_generate_name_or_a_name_of_the_wrong_type_is_not_missing_metadata_name(lax):
    [res] = validate("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: a-\n", lax)
    assert (res.status, res.name) == (VALID, "")
    [res] = validate("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 7\n", lax)
    assert errors_of(res) == [("/metadata/name", 4, '7 is not of types "null", "string"')]


def test_a_name_the_api_server_refuses_is_invalid_even_when_not_strict(lax):
    [res] = validate(CONFIGMAP.format(name="Bad_Name"), lax)
    assert res.status == INVALID
    [(path, line, msg)] = errors_of(res)
    assert (path, line) == ("/metadata/name", 4)
    assert msg.startswith("invalid name: 'Bad_Name' is not an RFC 1123 subdomain")
    [res] = validate("apiVersion: v1\nkind: 5\nmetadata:\n  name: Bad_Name\n", lax)
    assert errors_of(res) == [("/kind", 1, "missing 'kind' key")]


def test_strict_mode_reports_status_and_every_server_set_metadata_field(strict):
    text = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  uid: u
  resourceVersion: "1"
  generation: 2
  creationTimestamp: "2024-01-01T00:00:00Z"
  selfLink: /x
  managedFields: []
status: {}
"""
    [res] = validate(text, strict, strict=True)
    assert errors_of(res) == [
        ("/metadata/uid", 5, "metadata.uid is set by the API server"),
        ("/metadata/resourceVersion", 6, "metadata.resourceVersion is set by the API server"),
        ("/metadata/generation", 7, "metadata.generation is set by the API server"),
        ("/metadata/creationTimestamp", 8, "metadata.creationTimestamp is set by the API server"),
        ("/metadata/selfLink", 9, "metadata.selfLink is set by the API server"),
        ("/metadata/managedFields", 10, "metadata.managedFields is set by the API server"),
        ("/status", 11, 'unknown field "status"'),
        ("/status", 11, "status is set by the API server, not by manifests"),
    ]
    [lenient] = validate(text, strict, strict=False)
    assert errors_of(lenient) == [("/status", 11, 'unknown field "status"')]


def test_strict_mode_reports_duplicate_keys_of_each_list_item_under_that_item(strict):
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: a
    name: a
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: b
  data:
    y: "1"
    y: "2"
"""
    first, second = validate(text, strict, strict=True)
    assert errors_of(first) == [
        ("/items/0/metadata/name", 8, "duplicate key 'name' (lines 7 and 8)")
    ]
    assert errors_of(second) == [("/items/1/data/y", 15, "duplicate key 'y' (lines 14 and 15)")]
    assert [r.status for r in validate(text, strict)] == [VALID, VALID]


def test_a_key_that_is_not_a_string_is_validated_as_kubectl_would_make_it(lax):
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {1: "x"}}
    results = validate_documents([RenderedDocument("t", data, None, Path())], lax, Options())
    assert [(r.status, r.errors) for r in results] == [(VALID, [])]
    data["data"] = {1: 2}
    [res] = validate_documents([RenderedDocument("t", data, None, Path())], lax, Options())
    assert errors_of(res) == [("/data/1", 1, '2 is not of types "null", "string"')]


def test_a_key_kubectl_rejects_cannot_be_validated(lax):
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {None: 1}}
    docs = [RenderedDocument("t", {"kind": "List", "items": [data]}, None, Path())]
    [res] = validate_documents(docs, lax, Options())
    message = "cannot validate: mapping key null is not supported (kubectl rejects it)"
    assert (res.status, errors_of(res)) == (ERROR, [("/items/0", 1, message)])


def test_nesting_deeper_than_the_validator_takes_is_an_error_not_a_crash(lax):
    deep: dict = {}
    inner = deep
    for _ in range(300):
        inner["a"] = {}
        inner = inner["a"]
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": deep}
    results = validate_documents(
        [RenderedDocument("t", data, None, Path())], lax, Options((V133, V130))
    )
    message = "nesting too deep to validate (more than 255 levels)"
    assert [(r.kubernetes_version, r.status, errors_of(r)) for r in results] == [
        (V133, ERROR, [("", 1, message)]),
        (V130, ERROR, [("", 1, message)]),
    ]


def test_every_kubernetes_version_is_validated_against_its_own_schema(lax):
    text = "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\n"
    text += "metadata:\n  name: h\n"
    old, new = validate(text, lax, kubernetes_versions=("1.25.0", V133))
    assert (old.kubernetes_version, old.status, old.errors) == ("1.25.0", VALID, [])
    assert (new.kubernetes_version, errors_of(new)) == (
        V133,
        [("", 1, "no schema for autoscaling/v2beta2 HorizontalPodAutoscaler")],
    )


def test_crds_in_yields_each_crd_with_where_it_is(tmp_path: Path):
    text = "kind: CustomResourceDefinition\nspec: {}\n---\n- kind: x\n---\nkind: ConfigMap\n"
    text += "---\nkind: CustomResourceDefinition\n"
    docs = load_text(text, "crds.yaml")
    assert list(crds_in(docs)) == [
        ({"kind": "CustomResourceDefinition", "spec": {}}, "crds.yaml:1"),
        ({"kind": "CustomResourceDefinition"}, "crds.yaml:8"),
    ]


# -- results: lines, JSON, detaching ---------------------------------------------------------


def test_a_result_finds_the_line_of_a_field_of_its_own_resource(lax):
    first, _, second = validate(LIST, lax)
    assert second.line_of("metadata", "name") == 12
    assert second.line_of() == 9
    assert first.line_of("metadata", "name") == 7
    assert first.line_of("nothing") == 4
    assert result(line=5).line_of("metadata", "name") == 5


def test_a_detached_result_reloads_its_file_for_a_line(lax, tmp_path: Path):
    path = tmp_path / "two.yaml"
    path.write_text(CONFIGMAP.format(name="a") + "---\n" + CONFIGMAP.format(name="b"))
    results = validate_documents(load_file(path), lax, Options())
    detached = [r.detached() for r in results]
    assert detached[1] is results[1]
    assert [r.source[0] for r in detached] == [0, 1]
    path.write_text("# moved\n" + path.read_text())  # a reload sees the file as it is now
    assert detached[1].line_of("metadata", "name") == 10
    assert detached[0].line_of("metadata", "name") == 5
    assert detached[1].source[0].index == 1  # the reloaded document is kept


def test_a_detached_result_whose_document_is_gone_falls_back_to_its_line(lax, tmp_path: Path):
    path = tmp_path / "one.yaml"
    path.write_text(CONFIGMAP.format(name="a") + "---\n" + CONFIGMAP.format(name="b"))
    [first, second] = [r.detached() for r in validate_documents(load_file(path), lax, Options())]
    path.write_text(CONFIGMAP.format(name="a"))
    assert first.line_of("metadata", "name") == 4
    assert second.line_of("metadata", "name") == 6  # document 1 no longer exists
    assert second.source == (1, ())


def test_a_result_from_a_document_without_an_index_detaches_to_no_source(lax, tmp_path: Path):
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    [res] = validate_documents([RenderedDocument("t", data, None, tmp_path)], lax, Options())
    assert res.source is not None
    assert res.detached().source is None
    assert res.detached().line_of("metadata", "name") == 1
    assert result().detached().source is None


def test_a_negative_document_index_is_no_document(tmp_path: Path):
    path = tmp_path / "neg.yaml"
    path.write_text(CONFIGMAP.format(name="a"))
    res = result(filename=str(path), line=3, source=(-1, ()))
    assert res.line_of("metadata", "name") == 3
    res = result(filename=str(path), line=3, source=(0, ()))
    assert res.line_of("metadata", "name") == 4
    assert core._reloaded[str(path)][0].index == 0


def test_to_json_has_kubeconforms_keys_and_every_error():
    res = result(
        INVALID,
        namespace="ns",
        api_version="apps/v1",
        kind="Deployment",
        errors=[FieldError("/spec", 5, "bad"), FieldError("", 1, "whole")],
    )
    assert res.to_json() == {
        "filename": "f.yaml",
        "line": 1,
        "kind": "Deployment",
        "name": "a",
        "namespace": "ns",
        "apiVersion": "apps/v1",
        "kubernetesVersion": V133,
        "status": INVALID,
        "errors": [
            {"path": "/spec", "line": 5, "msg": "bad"},
            {"path": "", "line": 1, "msg": "whole"},
        ],
        "version": "apps/v1",
        "msg": "/spec: bad - whole",
    }


def test_to_json_names_the_target_only_when_there_is_one():
    assert "target" not in result().to_json()
    assert result(target="prod").to_json()["target"] == "prod"
    assert result().to_json()["msg"] == ""


def test_from_json_gives_back_the_result_to_json_made():
    res = result(INVALID, target="prod", errors=[FieldError("/a", 2, "x"), FieldError("", 3, "y")])
    back = ResourceResult.from_json(res.to_json())
    assert back == res
    assert (back.target, back.source, back.errors[1].line) == ("prod", None, 3)
    plain = ResourceResult.from_json(result(kubernetes_version=None).to_json())
    assert (plain.target, plain.kubernetes_version) == ("", None)


# -- duplicate objects -------------------------------------------------------------------------

TWO_NAMES = CONFIGMAP.format(name="a") + "---\n" + CONFIGMAP.format(name="a")


def test_a_second_object_with_the_same_identity_is_a_duplicate_at_its_name(lax):
    results = validate(TWO_NAMES, lax, kubernetes_versions=(V133, V130))
    find_duplicate_objects(results)
    assert [(r.kubernetes_version, r.status) for r in results] == [
        (V133, VALID),
        (V130, VALID),
        (V133, INVALID),
        (V130, INVALID),
    ]
    message = "duplicate object: same group, kind, namespace and name as f.yaml:4"
    assert errors_of(results[2]) == [("/metadata/name", 9, message)]
    assert errors_of(results[3]) == [("/metadata/name", 9, message)]
    assert results[0].errors == []


def test_a_duplicate_already_invalid_stays_invalid_and_a_skipped_one_becomes_invalid():
    first = result()
    invalid = result(INVALID, line=7, errors=[FieldError("/x", 8, "bad")])
    skipped = result(SKIPPED, line=9)
    find_duplicate_objects([first, invalid, skipped])
    assert invalid.status == INVALID
    message = "duplicate object: same group, kind, namespace and name as f.yaml:1"
    assert errors_of(invalid) == [("/x", 8, "bad"), ("/metadata/name", 7, message)]
    assert (skipped.status, errors_of(skipped)) == (INVALID, [("/metadata/name", 9, message)])


def test_the_same_group_in_another_version_is_a_duplicate():
    results = [result(api_version="apps/v1beta1"), result(api_version="apps/v1")]
    find_duplicate_objects(results)
    assert results[1].status == INVALID


@pytest.mark.parametrize(
    "other",
    [
        {"target": "staging"},
        {"kubernetes_version": V130},
        {"api_version": "example.com/v1"},
        {"kind": "Secret"},
        {"namespace": "ns"},
        {"name": "b"},
    ],
    ids=["target", "kubernetes-version", "group", "kind", "namespace", "name"],
)
def test_an_object_differing_in_one_identity_field_is_not_a_duplicate(other):
    results = [result(target="prod"), result(**{"target": "prod", **other})]
    find_duplicate_objects(results)
    assert [(r.status, r.errors) for r in results] == [(VALID, []), (VALID, [])]


def test_duplicate_object_in_another_target_is_not_a_duplicate(lax, tmp_path: Path):
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    docs = [RenderedDocument(t, data, None, tmp_path) for t in ("prod", "staging", "prod")]
    results = validate_documents(docs, lax, Options())
    find_duplicate_objects(results)
    assert [(r.target, r.status) for r in results] == [
        ("prod", VALID),
        ("staging", VALID),
        ("prod", INVALID),
    ]
    message = "duplicate object: same group, kind, namespace and name as prod:1"
    assert errors_of(results[2]) == [("/metadata/name", 1, message)]


@pytest.mark.parametrize(
    "ignored",
    [{"kind": ""}, {"name": ""}, {"status": ERROR}, {"status": EMPTY}],
    ids=["no-kind", "no-name", "error", "empty"],
)
def test_results_without_identity_or_that_failed_are_never_duplicates(ignored):
    results = [result(**ignored), result(**ignored), result(), result()]
    find_duplicate_objects(results)
    assert [r.errors for r in results[:2]] == [[], []]
    assert [r.status for r in results[:2]] == [ignored.get("status", VALID)] * 2
    assert [r.status for r in results[2:]] == [VALID, INVALID]


def test_the_first_of_three_is_the_one_every_duplicate_names():
    results = [result(line=1), result(line=5), result(line=9)]
    find_duplicate_objects(results)
    assert [e.msg[-8:] for r in results[1:] for e in r.errors] == ["f.yaml:1", "f.yaml:1"]


# -- exit status ---------------------------------------------------------------------------------


def test_up_to_first_failure_stops_after_the_first_invalid_or_error_result():
    ok, skipped, bad, error = result(), result(SKIPPED), result(INVALID), result(ERROR)
    assert up_to_first_failure([ok, skipped, bad, error]) == [ok, skipped, bad]
    assert up_to_first_failure([ok, error, bad]) == [ok, error]
    assert up_to_first_failure([error]) == [error]
    assert up_to_first_failure([ok, result(EMPTY)]) == [ok, result(EMPTY)]


def test_exit_status_accepts_valid_skipped_and_empty_only():
    assert exit_status([result(VALID), result(SKIPPED), result(EMPTY)]) is True
    assert exit_status([]) is True
    assert exit_status([result(VALID), result(INVALID)]) is False
    assert exit_status([result(ERROR), result(VALID)]) is False


def test_a_resources_line_is_its_documents_content_line_not_its_tag(lax):
    """`--- !!map` tags the document on the marker line; the resource starts at its first key."""
    text = "a: 1\n--- !!map\n" + CONFIGMAP.format(name="a")
    [_, res] = validate(text, lax)
    assert (res.line, res.status) == (3, VALID)
