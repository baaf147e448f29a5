"""The engine on odd shapes and less common workload kinds: no crash, and paths that
point inside the right pod template."""

from __future__ import annotations

from meshready.analyze.engine import AnalysisConfig, analyze
from meshready.render import RenderedObject, RenderResult

ODD_OBJECTS = [
    {"kind": "Deployment", "metadata": {"name": "a"}, "spec": None},
    {"kind": "Deployment", "metadata": None},
    {
        "kind": "StatefulSet",
        "metadata": {"name": "b", "labels": ["not", "a", "map"]},
        "spec": {
            "selector": "app=b",
            "template": {
                "metadata": {"labels": {"app": 1, "version": True}, "annotations": "x"},
                "spec": {
                    "containers": [None, "x", {"name": "c", "ports": "80", "resources": []}],
                    "initContainers": {"bad": 1},
                    "securityContext": [],
                    "volumes": [None, {"hostPath": None}],
                },
            },
        },
    },
    {"kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": [], "ports": [None, 5]}},
    {
        "kind": "Service",
        "metadata": {"name": "t"},
        "spec": {"selector": {"app": "1"}, "ports": "x"},
    },
    # Two Services selecting one workload, one with a list where a port number belongs.
    {
        "kind": "Deployment",
        "metadata": {"name": "w"},
        "spec": {"template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": []}}},
    },
    {
        "kind": "Service",
        "metadata": {"name": "w1"},
        "spec": {"selector": {"app": "w"}, "ports": [{"port": [80], "name": "http"}]},
    },
    {
        "kind": "Service",
        "metadata": {"name": "w2"},
        "spec": {"selector": {"app": "w"}, "ports": [{"port": [80], "name": "tcp"}]},
    },
    {"kind": "Namespace", "metadata": {"name": 7}},
    {"kind": "PodDisruptionBudget", "metadata": {"name": "p"}, "spec": {"selector": "all"}},
    {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"}, "spec": {"scaleTargetRef": 3}},
    {"kind": None},
]


def test_odd_shapes_produce_findings_not_crashes():
    objects = [RenderedObject(o) for o in ODD_OBJECTS]
    config = AnalysisConfig(production_targets=frozenset({"t"}))
    report = analyze([RenderResult("t", objects)], config)
    rules = {f.rule.id for f in report.findings}
    assert {"MR101", "MR109", "MR208"} <= rules
    # Service t selects app=1, and the StatefulSet's label 1 (an int in YAML) is "1".
    assert not any(f.rule.id == "MR106" and f.name == "t" for f in report.findings)


def test_cronjob_findings_point_into_the_job_template():
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "ops"},
        "spec": {
            "schedule": "@daily",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {"labels": {"app": "nightly", "version": "v1"}},
                        "spec": {
                            "hostPID": True,
                            "containers": [{"name": "job", "image": "job:1", "ports": []}],
                        },
                    }
                }
            },
        },
    }
    report = analyze([RenderResult("t", [RenderedObject(cronjob)])], AnalysisConfig())
    by_rule = {f.rule.id: f for f in report.findings}
    pod_spec = ("spec", "jobTemplate", "spec", "template", "spec")
    assert by_rule["MR207"].path == (*pod_spec, "hostPID")
    assert by_rule["MR202"].path == (*pod_spec, "containers", 0, "securityContext")
    assert "MR210" not in by_rule  # Jobs run to completion; no probes asked
    assert "MR103" not in by_rule
