"""The analysis engine's own edges, in process: the fail-on threshold, per-target
severity and disabling, blocks of objects, exempt namespaces, and the note about pod
specs no rule looks at."""

from __future__ import annotations

import yaml
from meshready.analyze.engine import (
    AnalysisConfig,
    analyze,
    build_context,
    unchecked_pod_templates,
)
from meshready.analyze.rules import Severity
from meshready.analyze.rules.model import TargetSettings
from meshready.analyze.sources import InputError, load_plain
from meshready.render import RenderedObject, RenderResult


def pod(name: str, namespace: str = "shop", **pod_spec) -> RenderedObject:
    spec = {"containers": [{"name": "app", "image": "registry.example/app:1.0"}], **pod_spec}
    return RenderedObject(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def rule_ids(findings) -> list[str]:
    return sorted({f.rule.id for f in findings})


def test_the_run_fails_at_the_threshold_and_not_below_it():
    report = analyze([RenderResult("t", [pod("p")])], AnalysisConfig())
    warnings = [f for f in report.findings if f.severity is Severity.WARNING]
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    assert warnings and errors
    assert report.failing == errors and report.failed
    assert analyze(
        [RenderResult("t", [pod("p")])], AnalysisConfig(), fail_on=Severity.WARNING
    ).failing == (report.findings)
    counts = report.counts()
    assert counts == {
        Severity.INFO: 0,
        Severity.WARNING: len(warnings),
        Severity.ERROR: len(errors),
    }


def test_only_warnings_do_not_fail_an_error_threshold():
    errors = analyze([RenderResult("t", [pod("p")])], AnalysisConfig()).failing
    lowered = {"severity": {f.rule.id: "warning" for f in errors}}
    report = analyze([RenderResult("t", [pod("p")])], AnalysisConfig(per_target={"t": lowered}))
    assert report.findings and {f.severity for f in report.findings} == {Severity.WARNING}
    assert report.failing == [] and report.failed is False


def test_a_target_severity_applies_to_its_findings_only():
    analysis = AnalysisConfig(per_target={"lowered": {"severity": {"MR203": "info"}}})
    report = analyze(
        [RenderResult("lowered", [pod("p")]), RenderResult("other", [pod("p")])], analysis
    )
    by_target = {f.target: f.severity for f in report.findings if f.rule.id == "MR203"}
    assert by_target == {"lowered": Severity.INFO, "other": Severity.WARNING}


def test_a_disabled_rule_is_counted_as_suppressed_with_the_reason():
    analysis = AnalysisConfig(per_target={"t": {"disable": ["MR203"]}})
    report = analyze([RenderResult("t", [pod("p")])], analysis)
    assert "MR203" not in rule_ids(report.findings)
    [suppressed] = [f for f in report.suppressed if f.rule.id == "MR203"]
    assert suppressed.suppressed == "disabled for t in pyproject.toml"


def test_an_annotation_suppresses_only_the_rules_it_names_on_its_own_object():
    quiet = pod("quiet")
    quiet.obj["metadata"]["annotations"] = {"meshready.dev/ignore": "MR203: writes to /tmp"}
    report = analyze([RenderResult("t", [quiet, pod("loud")])], AnalysisConfig())
    assert [(f.name, f.suppressed) for f in report.suppressed] == [("quiet", "writes to /tmp")]
    assert [f.name for f in report.findings if f.rule.id == "MR203"] == ["loud"]


def test_every_object_of_a_target_larger_than_one_block_is_checked_once():
    pods = [pod(f"p{i:03}") for i in range(300)]  # more than two blocks of objects
    report = analyze([RenderResult("t", pods)], AnalysisConfig())
    names = [f.name for f in report.findings if f.rule.id == "MR203"]
    assert names == [f"p{i:03}" for i in range(300)]
    assert report.objects == 300


def test_system_namespaces_skip_mesh_rules_but_not_workload_policy():
    inside = analyze([RenderResult("t", [pod("p", namespace="kube-system")])], AnalysisConfig())
    outside = analyze([RenderResult("t", [pod("p")])], AnalysisConfig())
    assert [r for r in rule_ids(inside.findings) if r.startswith("MR1")] == []
    assert [r for r in rule_ids(outside.findings) if r.startswith("MR1")] != []
    policy = [r for r in rule_ids(outside.findings) if r.startswith("MR2")]
    assert [r for r in rule_ids(inside.findings) if r.startswith("MR2")] == policy


def test_findings_are_ordered_by_object_then_rule():
    report = analyze([RenderResult("t", [pod("b"), pod("a")])], AnalysisConfig())
    order = [(f.name, f.rule.id) for f in report.findings]
    assert order == sorted(order, key=lambda pair: (pair[0] != "b", int(pair[1][2:])))


def custom(kind: str, api_version: str, spec) -> RenderedObject:
    return RenderedObject(
        {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    )


CONTAINERS = {"containers": [{"name": "c", "image": "registry.example/c:1"}]}


def test_a_custom_resource_hiding_a_pod_spec_gets_one_note_per_kind():
    result = RenderResult(
        "t",
        [
            custom("BatchRun", "batch.example.com/v1", {"runner": {"pod": CONTAINERS}}),
            custom("BatchRun", "batch.example.com/v1", {"runner": {"pod": CONTAINERS}}),
            custom("Trainer", "ml.example.com/v1", {"workers": [{"template": CONTAINERS}]}),
        ],
    )
    assert unchecked_pod_templates(result) == [
        "t: skipped 2 BatchRun objects: pod spec at spec.runner.pod is not checked (only spec.template is)",
        "t: skipped 1 Trainer object: pod spec at spec.workers.0.template is not checked (only spec.template is)",
    ]


def test_no_note_where_a_rule_does_look_or_no_pod_can_hide():
    result = RenderResult(
        "t",
        [
            custom(
                "Rollout", "argoproj.io/v1alpha1", {"template": {"spec": CONTAINERS}}
            ),  # checked
            custom("Thing", "apps.k8s.io/v1", {"pod": CONTAINERS}),  # a Kubernetes group
            custom("Thing", "v1", {"pod": CONTAINERS}),  # the core group
            custom("CustomResourceDefinition", "apiextensions.example.com/v1", {"pod": CONTAINERS}),
            custom("Empty", "example.com/v1", {"pod": {"containers": []}}),
            custom("Scalar", "example.com/v1", "spec"),
            custom("NotMaps", "example.com/v1", {"pod": {"containers": ["c"]}}),
        ],
    )
    assert unchecked_pod_templates(result) == []


def test_objects_skipped_before_a_hidden_pod_spec_do_not_end_the_search():
    # Each reason to pass over an object in turn, then one that does hide a pod spec.
    result = RenderResult(
        "t",
        [
            custom("Thing", "v1", {"pod": CONTAINERS}),  # the core group
            custom("Rollout", "argoproj.io/v1alpha1", {"template": {"spec": CONTAINERS}}),
            custom("Scalar", "example.com/v1", "spec"),
            custom("BatchRun", "batch.example.com/v1", {"runner": {"pod": CONTAINERS}}),
        ],
    )
    assert unchecked_pod_templates(result) == [
        "t: skipped 1 BatchRun object: pod spec at spec.runner.pod is not checked (only spec.template is)"
    ]


def test_a_service_with_a_pod_template_is_still_a_service():
    service = custom(
        "Service", "v1", {"selector": {"app": "web"}, "template": {"spec": CONTAINERS}}
    )
    ctx, everything = build_context(RenderResult("t", [service]), TargetSettings())
    assert [s.name for s in ctx.services] == ["x"] and ctx.workloads == []
    assert len(everything) == 1


def test_a_nameless_object_is_analysed_under_an_empty_name():
    # Plain files may hold one (kustomize would refuse it): findings name it as "", never
    # as "None".
    nameless = pod("ignored")
    del nameless.obj["metadata"]["name"]
    nameless.obj["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    findings = analyze([RenderResult("t", [nameless])], AnalysisConfig()).findings
    privileged = [f for f in findings if f.rule.id == "MR206"]
    assert [(f.name, f.object) for f in privileged] == [("", "Pod shop/")]


def test_the_object_count_adds_up_over_targets():
    first = RenderResult("a", [pod("web"), pod("api")])
    second = RenderResult("b", [pod("db")])
    report = analyze([first, second], AnalysisConfig())
    assert report.objects == 3 and report.targets == ["a", "b"]


def test_the_pod_spec_search_stops_at_its_depth():
    def nested(depth: int):
        value: dict = CONTAINERS
        for _ in range(depth):
            value = {"level": value}
        return value

    found = unchecked_pod_templates(
        RenderResult("t", [custom("Deep", "example.com/v1", nested(7))])
    )
    assert found == [
        "t: skipped 1 Deep object: pod spec at spec.level.level.level.level.level.level.level "
        "is not checked (only spec.template is)"
    ]
    assert (
        unchecked_pod_templates(RenderResult("t", [custom("Deep", "example.com/v1", nested(8))]))
        == []
    )


PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
spec:
  containers:
  - name: web
    image: registry.example/web:1.0
    securityContext:
      privileged: true
"""


def test_plain_file_findings_carry_the_loaders_line(tmp_path):
    (tmp_path / "pod.yaml").write_text(PRIVILEGED_POD)
    load = load_plain([str(tmp_path / "pod.yaml")])
    report = analyze([load.result], AnalysisConfig())
    privileged = [f for f in report.findings if f.rule.id == "MR206"]
    assert [(f.file, f.line) for f in privileged] == [(str(tmp_path / "pod.yaml"), 11)]


def test_rendered_objects_without_a_root_have_no_line():
    obj = yaml.safe_load(PRIVILEGED_POD)
    result = RenderResult("t", [RenderedObject(obj, origin={"path": "pod.yaml"})])
    privileged = [f for f in analyze([result], AnalysisConfig()).findings if f.rule.id == "MR206"]
    assert [(f.file, f.line) for f in privileged] == [("pod.yaml", None)]


def test_a_failed_target_is_an_error_and_the_next_target_is_still_analysed(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    failed = RenderResult("broken", [], error="missing.yaml: no such file")
    good = RenderResult("ok", [pod("web", hostPID=True), pod("api", hostPID=True)])
    given = InputError("files", "bad.yaml: not YAML", "bad.yaml", 3)
    report = analyze(
        [failed, good], AnalysisConfig(), root=tmp_path, errors=[given], notes=["skipped one"]
    )
    assert report.targets == ["ok"]
    assert report.objects == 2
    assert [f.object for f in report.findings if f.rule.id == "MR207"] == [
        "Pod shop/web",
        "Pod shop/api",
    ]
    assert report.errors[0] == given
    # The failed target points at its kustomization file, found under the root.
    assert [(e.target, e.file, e.stage) for e in report.errors[1:]] == [
        ("broken", "broken/kustomization.yaml", "render")
    ]
    assert "skipped one" in report.notes
