"""The edges of the pure diff core that mutation testing found unpinned (docs/testing.md):
key defaults, the secret test, masking of every value shape, what stripping touches and
leaves, the summary line, the order of changes and the diff headers."""

from __future__ import annotations

import base64
import hashlib

import pytest
from meshready.diff import core as diff
from meshready.render import RenderedObject, RenderResult
from meshready.render.yamlfmt import dump_yaml


def result(target: str, *objects: dict, error: str | None = None) -> RenderResult:
    return RenderResult(target=target, objects=[RenderedObject(o) for o in objects], error=error)


def config_map(name: str, namespace: str | None = None, **data: str) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def masked(raw: bytes) -> str:
    return f"<masked sha256:{hashlib.sha256(raw).hexdigest()[:8]}>"


def report(targets: list[diff.TargetDiff]) -> diff.DiffReport:
    rules = diff.StripRules()
    return diff.DiffReport("main (0000000)", "working tree", rules, 3, targets)


# --- StripRules and keys ---------------------------------------------------------------


def test_describe_says_none_when_no_extra_keys_are_stripped():
    assert diff.StripRules().describe() == (
        "stripped: annotations config.kubernetes.io/origin, "
        "alpha.config.kubernetes.io/transformations (build metadata); "
        "extra (--strip-attrs, labels and annotations): none"
    )


def test_parse_strip_attrs_of_nothing_is_empty():
    assert diff.parse_strip_attrs([]) == ()
    assert diff.parse_strip_attrs(["", " , "]) == ()


def test_resource_key_defaults_for_missing_fields():
    key = diff.resource_key({})
    assert (key.group, key.kind, key.namespace, key.name) == ("", "Unknown", "", "")
    # metadata that is not a map counts as absent, not as a crash
    key = diff.resource_key({"apiVersion": "v1", "kind": "ConfigMap", "metadata": ["x"]})
    assert (key.group, key.kind, key.namespace, key.name) == ("", "ConfigMap", "", "")


def test_resource_key_group_is_everything_before_the_last_slash():
    key = diff.resource_key(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "edge"},
        }
    )
    assert key.group == "networking.istio.io"
    assert key.group_kind == "networking.istio.io/Gateway"
    assert str(key) == "networking.istio.io/Gateway edge/gw"
    # the diff always qualifies file names with the group, so two Gateway kinds never collide
    assert key.file_name == "gateway.networking.istio.io_edge_gw.yaml"


def test_sort_key_orders_by_kind_then_group_then_namespace_then_name():
    keys = [
        diff.ResourceKey("b.io", "A", "ns", "x"),
        diff.ResourceKey("a.io", "B", "ns", "x"),
        diff.ResourceKey("a.io", "A", "z", "x"),
        diff.ResourceKey("a.io", "A", "a", "y"),
        diff.ResourceKey("a.io", "A", "a", "x"),
    ]
    ordered = sorted(keys, key=lambda k: k.sort_key)
    assert ordered == [keys[4], keys[3], keys[2], keys[0], keys[1]]


# --- Secret masking ----------------------------------------------------------------------


def test_only_a_core_v1_secret_is_masked():
    lookalike = {"apiVersion": "example.com/v1", "kind": "Secret", "metadata": {"name": "s"}}
    lookalike["data"] = {"k": "c2VjcmV0"}
    assert diff.clean(lookalike, diff.StripRules())["data"] == {"k": "c2VjcmV0"}
    secret = {**lookalike, "apiVersion": "v1"}
    assert diff.clean(secret, diff.StripRules())["data"] == {"k": masked(b"secret")}


def test_mask_value_of_a_non_string_hashes_its_yaml():
    assert diff.mask_value(5432, encoded=True) == masked(dump_yaml(5432).encode())
    assert diff.mask_value({"a": 1}, encoded=False) == masked(dump_yaml({"a": 1}).encode())
    assert len(diff.mask_value("x", encoded=False)) == len("<masked sha256:>") + 8


def test_mask_value_decodes_only_the_data_field():
    encoded = base64.b64encode(b"hunter2").decode()
    assert diff.mask_value(encoded, encoded=True) == masked(b"hunter2")
    assert diff.mask_value(encoded, encoded=False) == masked(encoded.encode())
    # padding that is not base64 is hashed as text, not decoded leniently
    assert diff.mask_value("aGk=x", encoded=True) == masked(b"aGk=x")


def test_data_that_is_not_a_map_is_masked_whole():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    cleaned = diff.clean(
        {**secret, "data": "c2VjcmV0", "stringData": ["a", "b"]}, diff.StripRules()
    )
    assert cleaned["data"] == masked(b"secret")
    assert cleaned["stringData"] == masked(dump_yaml(["a", "b"]).encode())
    assert "data" not in diff.clean(secret, diff.StripRules())  # absent stays absent


@pytest.mark.parametrize(
    "annotation",
    [
        '{"data": {"k": "v"}}',
        "{'stringData': {'k': 'v'}}",
        "stringData:\n  k: v\n",
        "data :\n  k: v\n",
    ],
)
def test_an_annotation_spelling_out_data_is_masked(annotation: str):
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "annotations": {"copy": annotation}},
    }
    cleaned = diff.clean(secret, diff.StripRules())
    assert cleaned["metadata"]["annotations"]["copy"] == masked(annotation.encode())


def test_the_last_applied_annotation_is_masked_whatever_it_holds():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "annotations": {
                # valid base64, yet hashed as text: an annotation is no `data` field
                "kubectl.kubernetes.io/last-applied-configuration": "c2VjcmV0",
                "note": "metadata only",  # no `data:` in it: kept readable
                "count": 3,  # not text: cannot spell out values
            },
        },
    }
    annotations = diff.clean(secret, diff.StripRules())["metadata"]["annotations"]
    assert annotations == {
        "kubectl.kubernetes.io/last-applied-configuration": masked(b"c2VjcmV0"),
        "note": "metadata only",
        "count": 3,
    }


def test_annotations_of_a_non_secret_are_never_masked():
    cm = config_map("c")
    cm["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    annotations = diff.clean(cm, diff.StripRules())["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/last-applied-configuration": "{}"}


# --- stripping ---------------------------------------------------------------------------


def test_build_annotations_leave_no_empty_map_behind():
    cm = config_map("c")
    cm["metadata"]["annotations"] = {"config.kubernetes.io/origin": "path: a.yaml"}
    assert "annotations" not in diff.clean(cm, diff.StripRules())["metadata"]


def test_the_default_build_annotations_are_not_stripped_as_labels_or_nested():
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "w", "labels": {"config.kubernetes.io/origin": "x"}},
        "spec": {
            "template": {
                "metadata": {"annotations": {"config.kubernetes.io/origin": "x"}},
            }
        },
    }
    cleaned = diff.clean(obj, diff.StripRules())
    assert cleaned["metadata"]["labels"] == {"config.kubernetes.io/origin": "x"}
    template = cleaned["spec"]["template"]["metadata"]
    assert template["annotations"] == {"config.kubernetes.io/origin": "x"}


def test_extra_keys_are_stripped_in_lists_and_maps_of_any_depth():
    obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "annotations": {"team": "a", "keep": "1"}},
        "spec": {
            "volumeClaimTemplates": [
                {"metadata": {"name": "data", "labels": {"team": "a"}}},
                {"metadata": {"name": "logs", "labels": {"team": "a", "tier": "x"}}},
            ],
            "template": {"metadata": {"labels": {"team": "a", "app": "db"}}},
        },
    }
    cleaned = diff.clean(obj, diff.StripRules(extra=("team",)))
    assert cleaned["metadata"]["annotations"] == {"keep": "1"}
    claims = cleaned["spec"]["volumeClaimTemplates"]
    assert claims[0]["metadata"] == {"name": "data"}
    assert claims[1]["metadata"]["labels"] == {"tier": "x"}
    assert cleaned["spec"]["template"]["metadata"]["labels"] == {"app": "db"}
    assert obj["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"] == {"team": "a"}


def test_patterns_match_case_sensitively():
    cm = config_map("c")
    cm["metadata"]["labels"] = {"Team": "a", "team": "b"}
    cleaned = diff.clean(cm, diff.StripRules(extra=("team",)))
    assert cleaned["metadata"]["labels"] == {"Team": "a"}


# --- changes and reports -----------------------------------------------------------------


def test_changes_carry_status_and_paths():
    base = {"t": result("t", config_map("gone"), config_map("kept", "ns", **{"a": "1"}))}
    lines = {f"k{i}": "v" for i in range(10)}
    head = {
        "t": result(
            "t",
            config_map("kept", "ns", **{**lines, "a": "2"}),
            config_map("new"),
        )
    }
    [target] = diff.diff_renders(base, head, diff.StripRules())
    by_name = {c.key.name: c for c in target.changes}
    # cluster-wide order: namespace "" before "ns"
    assert [c.key.name for c in target.changes] == ["gone", "new", "kept"]
    assert by_name["gone"].status == "removed"
    assert by_name["gone"].diff.startswith("--- a/t/configmap_gone.yaml\n+++ /dev/null\n")
    assert by_name["new"].status == "added"
    assert by_name["new"].diff.startswith("--- /dev/null\n+++ b/t/configmap_new.yaml\n")
    kept = by_name["kept"]
    assert kept.status == "changed"
    assert kept.diff.startswith("--- a/t/configmap_ns_kept.yaml\n+++ b/t/configmap_ns_kept.yaml\n")
    assert (kept.lines_added, kept.lines_removed) == (11, 1)
    assert target.unchanged == 0
    assert (target.count("added"), target.count("changed"), target.count("removed")) == (1, 1, 1)


def test_context_is_passed_through():
    old = config_map("c", **{f"k{i}": "v" for i in range(9)})
    new = config_map("c", **{**{f"k{i}": "v" for i in range(9)}, "k4": "w"})
    for context, shown in ((0, 0), (1, 2), (3, 6)):
        [target] = diff.diff_renders(
            {"t": result("t", old)}, {"t": result("t", new)}, diff.StripRules(), context
        )
        body = target.changes[0].diff.splitlines()[3:]  # past the headers and the hunk line
        assert sum(1 for line in body if line.startswith(" ")) == shown, context


def test_identical_objects_count_as_unchanged_and_targets_come_in_order():
    same = config_map("c", a="1")
    targets = diff.diff_renders(
        {"b": result("b", same), "a": result("a", same)},
        {"b": result("b", same), "c": result("c", same)},
        diff.StripRules(),
    )
    assert [t.target for t in targets] == ["a", "b", "c"]
    a, b, c = targets
    assert (a.presence, b.presence, c.presence) == ("removed", "both", "added")
    assert (a.in_base, a.in_head, c.in_base, c.in_head) == (True, False, False, True)
    assert b.unchanged == 1 and b.changes == []
    assert [ch.status for ch in a.changes] == ["removed"]
    assert [ch.status for ch in c.changes] == ["added"]


def test_a_failed_base_is_reported_and_not_diffed():
    [target] = diff.diff_renders(
        {"t": result("t", error="kustomize: boom")},
        {"t": result("t", config_map("c"))},
        diff.StripRules(),
    )
    assert target.failed and target.base_error == "kustomize: boom"
    assert target.head_error is None
    assert target.changes == [] and target.unchanged == 0


def test_a_second_duplicate_is_named_by_its_version_and_both_are_diffed():
    a = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}}
    b = {**a, "apiVersion": "example.com/v2"}
    base = {"t": result("t", a, b)}
    head = {"t": result("t", a, {**b, "spec": 1})}
    [target] = diff.diff_renders(base, head, diff.StripRules())
    [change] = target.changes
    assert change.key.name == "x (v2)" and change.status == "changed"
    assert target.unchanged == 1


def test_summary_line_counts_every_status_and_the_failures():
    changed = diff.TargetDiff("a", True, True)
    changed.changes = [
        diff.ResourceChange(diff.ResourceKey("", "ConfigMap", "", "x"), "added", ""),
        diff.ResourceChange(diff.ResourceKey("", "ConfigMap", "", "y"), "added", ""),
        diff.ResourceChange(diff.ResourceKey("", "ConfigMap", "", "z"), "removed", ""),
    ]
    quiet = diff.TargetDiff("b", True, True, unchanged=4)
    failed = diff.TargetDiff("c", True, True, head_error="boom")
    whole = report([changed, quiet, failed])
    assert whole.has_changes
    assert whole.changed_targets == [changed]
    assert whole.failed_targets == [failed]
    assert whole.count("added") == 2 and whole.count("changed") == 0
    assert whole.summary_line() == (
        "3 resources differ in 1 of 3 targets (2 added, 0 changed, 1 removed); 1 failed to render"
    )
    assert report([quiet]).summary_line() == "no changes in 1 targets"
    assert not report([quiet]).has_changes
    assert report([quiet, failed]).summary_line() == "no changes in 2 targets; 1 failed to render"


def test_line_counts_of_a_change():
    change = diff.ResourceChange(
        diff.ResourceKey("", "ConfigMap", "", "c"),
        "changed",
        "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a: 1\n+a: 2\n+b: 3\n c: 4\n",
    )
    assert (change.lines_added, change.lines_removed) == (2, 1)


def test_string_data_is_hashed_as_text_even_when_it_reads_as_base64():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    cleaned = diff.clean({**secret, "stringData": {"k": "c2VjcmV0"}}, diff.StripRules())
    assert cleaned["stringData"] == {"k": masked(b"c2VjcmV0")}


def test_data_that_is_not_ascii_is_hashed_as_text():
    assert diff.mask_value("h\u00e9llo", encoded=True) == masked("h\u00e9llo".encode())


def test_a_secret_without_metadata_is_masked():
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"k": "c2VjcmV0"}}
    assert diff.clean(secret, diff.StripRules()) == {**secret, "data": {"k": masked(b"secret")}}
    odd = {**secret, "metadata": ["not", "a", "map"]}
    assert diff.clean(odd, diff.StripRules())["data"] == {"k": masked(b"secret")}


def test_duplicates_without_an_api_version_are_kept_apart_too():
    a = {"kind": "Thing", "metadata": {"name": "x"}}
    [target] = diff.diff_renders({}, {"t": result("t", a, {**a, "spec": 1})}, diff.StripRules())
    assert sorted(c.key.name for c in target.changes) == ["x", "x ()"]


def test_the_default_context_is_three_lines():
    old = config_map("c", **{f"k{i}": "v" for i in range(9)})
    new = config_map("c", **{**{f"k{i}": "v" for i in range(9)}, "k4": "w"})
    base, head = result("t", old), result("t", new)
    for target in (
        diff.diff_target("t", base, head, diff.StripRules()),
        diff.diff_renders({"t": base}, {"t": head}, diff.StripRules())[0],
    ):
        body = target.changes[0].diff.splitlines()[3:]
        assert sum(1 for line in body if line.startswith(" ")) == 6


def test_every_unchanged_object_is_counted():
    same = [config_map(f"c{i}") for i in range(3)]
    [target] = diff.diff_renders(
        {"t": result("t", *same)}, {"t": result("t", *same)}, diff.StripRules()
    )
    assert target.unchanged == 3


def test_an_added_object_shows_only_added_lines_and_a_removed_one_only_removed():
    cm = config_map("c", a="1")
    text = dump_yaml(cm)
    [added] = diff.diff_renders({}, {"t": result("t", cm)}, diff.StripRules())[0].changes
    count = len(text.splitlines())
    assert added.diff == (
        f"--- /dev/null\n+++ b/t/configmap_c.yaml\n@@ -0,0 +1,{count} @@\n"
        + "".join(f"+{line}\n" for line in text.splitlines())
    )
    [removed] = diff.diff_renders({"t": result("t", cm)}, {}, diff.StripRules())[0].changes
    assert removed.diff == (
        f"--- a/t/configmap_c.yaml\n+++ /dev/null\n@@ -1,{count} +0,0 @@\n"
        + "".join(f"-{line}\n" for line in text.splitlines())
    )
