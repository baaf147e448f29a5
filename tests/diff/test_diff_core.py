"""The pure core of `meshready diff` on plain data: keys, noise stripping, Secret masking,
and the output formats' caps, fences and marker."""

from __future__ import annotations

import hashlib
import json

import pytest
from meshready.diff import core as diff
from meshready.diff import output as diff_output
from meshready.render import RenderedObject, RenderResult
from meshready.render.yamlfmt import dump_yaml


def deployment(name: str = "web", image: str = "web:1", **labels: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": name, **labels}},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name, **labels}},
                "spec": {"containers": [{"name": name, "image": image}]},
            }
        },
    }


def result(target: str, *objects: dict, error: str | None = None) -> RenderResult:
    return RenderResult(target=target, objects=[RenderedObject(o) for o in objects], error=error)


def report_of(base: dict, head: dict, **kwargs) -> diff.DiffReport:
    rules = kwargs.pop("rules", diff.StripRules())
    return diff.DiffReport(
        base_label="main (0000000)",
        head_label="working tree",
        strip=rules,
        context=3,
        targets=diff.diff_renders(base, head, rules, **kwargs),
    )


def test_key_is_target_group_kind_namespace_name():
    key = diff.resource_key(deployment())
    assert (key.group, key.kind, key.namespace, key.name) == ("apps", "Deployment", "ns", "web")
    assert str(key) == "apps/Deployment ns/web"
    namespace = diff.resource_key(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    )
    assert str(namespace) == "Namespace x"
    assert namespace.file_name == "namespace_x.yaml"


def test_an_api_version_change_is_a_change_not_a_replacement():
    old = {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}}
    new = {**old, "apiVersion": "policy/v1"}
    [target] = diff.diff_renders(
        {"t": result("t", old)}, {"t": result("t", new)}, diff.StripRules()
    )
    assert [c.status for c in target.changes] == ["changed"]
    assert "-apiVersion: policy/v1beta1\n+apiVersion: policy/v1\n" in target.changes[0].diff


def test_values_equal_in_python_but_not_in_yaml_are_a_change():
    old = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1}}
    new = {**old, "data": {"a": True}}
    assert old == new  # 1 == True: a naive comparison would hide this
    [target] = diff.diff_renders(
        {"t": result("t", old)}, {"t": result("t", new)}, diff.StripRules()
    )
    assert len(target.changes) == 1


def test_duplicate_keys_across_api_versions_are_kept_apart():
    a = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}}
    b = {**a, "apiVersion": "example.com/v2", "spec": 1}
    [target] = diff.diff_renders({}, {"t": result("t", a, b)}, diff.StripRules())
    assert sorted(c.key.name for c in target.changes) == ["x", "x (v2)"]


def test_build_annotations_are_stripped_by_default_and_nothing_else():
    obj = deployment()
    obj["metadata"]["annotations"] = {
        "config.kubernetes.io/origin": "path: a.yaml",
        "example.com/owner": "team-a",
    }
    cleaned = diff.clean(obj, diff.StripRules())
    assert cleaned["metadata"]["annotations"] == {"example.com/owner": "team-a"}
    assert obj["metadata"]["annotations"]["config.kubernetes.io/origin"]  # input untouched


def test_strip_attrs_removes_labels_and_annotations_in_templates_too():
    base = {"t": result("t", deployment(team="a", tier="web"))}
    head = {"t": result("t", deployment(team="b", tier="web"))}
    assert report_of(base, head).has_changes
    rules = diff.StripRules(extra=diff.parse_strip_attrs(["team"]))
    quiet = report_of(base, head, rules=rules)
    assert not quiet.has_changes
    assert quiet.targets[0].unchanged == 1
    # fnmatch patterns
    rules = diff.StripRules(extra=("te*",))
    assert not report_of(base, head, rules=rules).has_changes
    # a stripped key still leaves the others in place
    cleaned = diff.clean(deployment(team="a", tier="web"), diff.StripRules(extra=("team",)))
    assert cleaned["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "web"}


def test_parse_strip_attrs_splits_commas_and_dedupes():
    assert diff.parse_strip_attrs(["a,b", " c ", "a", ","]) == ("a", "b", "c")


def test_every_output_lists_the_stripping_in_force():
    rules = diff.StripRules(extra=("team", "example.com/*"))
    report = report_of({}, {}, rules=rules)
    line = (
        "stripped: annotations config.kubernetes.io/origin, "
        "alpha.config.kubernetes.io/transformations (build metadata); "
        "extra (--strip-attrs, labels and annotations): team, example.com/*"
    )
    assert line in diff_output.format_diff(report)
    assert line in diff_output.format_markdown(report)
    data = json.loads(diff_output.format_json(report))
    assert data["stripped"]["extra"] == ["team", "example.com/*"]
    assert "config.kubernetes.io/origin" in data["stripped"]["annotations"]


def test_secret_masking_hashes_the_decoded_value_in_data_and_the_text_in_string_data():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"b64": "c2VjcmV0", "notb64": "%%%"},
        "stringData": {"plain": "secret"},
    }
    cleaned = diff.clean(secret, diff.StripRules())
    expected = f"<masked sha256:{hashlib.sha256(b'secret').hexdigest()[:8]}>"
    assert cleaned["data"]["b64"] == expected
    assert cleaned["stringData"]["plain"] == expected
    assert cleaned["data"]["notb64"] == f"<masked sha256:{hashlib.sha256(b'%%%').hexdigest()[:8]}>"
    assert secret["data"]["b64"] == "c2VjcmV0"  # input untouched


def test_a_configmap_is_not_masked():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert diff.clean(cm, diff.StripRules())["data"] == {"k": "v"}


def test_failed_render_on_either_side_hides_no_objects_and_shows_no_changes():
    base = {"t": result("t", deployment())}
    head = {"t": result("t", error="boom")}
    [target] = diff.diff_renders(base, head, diff.StripRules())
    assert target.failed
    assert target.changes == []
    text = diff_output.format_diff(report_of(base, head))
    assert "t: render failed on the working tree: boom" in text
    assert "1 failed to render" in text


def many_changes(count: int, lines: int) -> diff.DiffReport:
    def config_map(index: int, value: str) -> dict:
        data = {f"k{i}": f"{value}{i}" for i in range(lines)}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"c{index}"},
            "data": data,
        }

    base = {"t": result("t", *(config_map(i, "a") for i in range(count)))}
    head = {"t": result("t", *(config_map(i, "b") for i in range(count)))}
    return report_of(base, head)


@pytest.mark.parametrize("output", ["diff", "markdown"])
def test_cap_keeps_output_under_the_limit_and_says_what_was_cut(output: str):
    report = many_changes(count=150, lines=10)
    whole = diff_output.format_report(report, output, limit_bytes=10**9)
    assert "truncated" not in whole.lower()
    capped = diff_output.format_report(report, output, limit_bytes=8_000)
    assert len(capped.encode()) <= 8_000
    assert "runcated" in capped and "resource diffs" in capped
    shown = capped.count("@@ -")
    assert 0 < shown < 150
    assert f"{150 - shown} resource diffs" in capped
    assert "more" in capped  # the list of cut resources is itself cut to fit


def test_markdown_default_cap_is_below_githubs_limit():
    report = many_changes(count=200, lines=60)
    markdown = diff_output.format_report(report, "markdown")
    assert len(markdown) < 65_536
    assert len(markdown.encode()) <= diff_output.DEFAULT_MARKDOWN_LIMIT
    assert markdown.splitlines()[0] == diff_output.MARKER


def test_one_huge_resource_does_not_hide_the_small_ones():
    small = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b-small"}}
    huge = {**small, "metadata": {"name": "a-huge"}, "data": {"x": "y" * 20_000}}
    report = report_of({}, {"t": result("t", huge, small)})
    capped = diff_output.format_markdown(report, limit_bytes=5_000)
    assert "`ConfigMap a-huge`" in capped.split("</details>")[0].split("Truncated")[1]
    assert "+  name: b-small" in capped
    assert "+  name: a-huge" not in capped


def test_markdown_fences_outlast_backticks_in_the_content():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    new = {**cm, "data": {"README.md": "```sh\nrun\n```\n"}}
    markdown = diff_output.format_markdown(report_of({}, {"t": result("t", new)}))
    assert "````diff\n" in markdown
    assert "\n````\n" in markdown


def test_no_changes_output():
    same = {"t": result("t", deployment())}
    report = report_of(same, same)
    assert not report.has_changes
    assert "no changes in 1 targets" in diff_output.format_diff(report)
    assert json.loads(diff_output.format_json(report))["changed"] is False


def test_line_counts_ignore_content_that_looks_like_a_diff_header():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    new = {**cm, "data": {"notes": "first\n++ second\n--- third\n"}}
    [target] = diff.diff_renders({"t": result("t", cm)}, {"t": result("t", new)}, diff.StripRules())
    [change] = target.changes
    assert (change.lines_added, change.lines_removed) == (5, 0)


def test_secret_values_are_masked_in_copy_annotations_and_whatever_their_type():
    applied = json.dumps(
        {"apiVersion": "v1", "kind": "Secret", "data": {"password": "aHVudGVyMg=="}}
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": applied,
                "other.example/copy": "{stringData: {token: sekrit-token}}",
                "team": "payments",
            },
        },
        "stringData": {"port": 5432, "enabled": True, "nested": {"a": "sekrit-nested"}},
    }
    shown = dump_yaml(diff.clean(secret, diff.StripRules()))
    for plain in ("aHVudGVyMg==", "sekrit-token", "5432", "true", "sekrit-nested"):
        assert plain not in shown, plain
    assert "team: payments" in shown  # an annotation that holds no values stays readable
