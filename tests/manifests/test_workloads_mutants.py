"""The one pod-template walker's edges (docs/testing.md): every known kind's template path,
the shape that makes an unknown kind a workload, and the container order."""

from __future__ import annotations

import pytest
from meshready.manifests.workloads import (
    CONTAINER_FIELDS,
    POD_TEMPLATE_PATHS,
    WORKLOAD_KINDS,
    _get,
    containers,
    pod_spec,
    pod_template_path,
)


def nest(path: tuple, value: dict) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Deployment", ("spec", "template")),
        ("StatefulSet", ("spec", "template")),
        ("DaemonSet", ("spec", "template")),
        ("ReplicaSet", ("spec", "template")),
        ("ReplicationController", ("spec", "template")),
        ("Job", ("spec", "template")),
        ("CronJob", ("spec", "jobTemplate", "spec", "template")),
        ("Pod", ()),
    ],
)
def test_every_built_in_kind_has_its_template_path(kind: str, path: tuple):
    assert POD_TEMPLATE_PATHS[kind] == path
    assert kind in WORKLOAD_KINDS
    spec = {"containers": [{"name": "a"}]}
    obj = {"kind": kind, **nest(path, {"spec": spec})}
    assert pod_template_path(obj) == path
    assert pod_spec(obj) == spec


def test_a_known_kind_has_its_path_even_without_a_template():
    assert pod_template_path({"kind": "Deployment"}) == ("spec", "template")
    assert pod_spec({"kind": "Deployment"}) is None


def test_an_unknown_kind_is_a_workload_only_with_a_list_of_containers():
    rollout = {"kind": "Rollout", "spec": {"template": {"spec": {"containers": []}}}}
    assert pod_template_path(rollout) == ("spec", "template")
    assert pod_spec(rollout) == {"containers": []}
    for containers_value in ({"a": 1}, "x", None):
        other = {
            "kind": "Rollout",
            "spec": {"template": {"spec": {"containers": containers_value}}},
        }
        assert pod_template_path(other) is None
        assert pod_spec(other) is None
    assert pod_template_path({"kind": "ConfigMap", "data": {}}) is None
    assert pod_template_path({}) is None


def test_a_pod_spec_that_is_not_a_map_is_none():
    assert pod_spec({"kind": "Deployment", "spec": {"template": {"spec": ["x"]}}}) is None
    assert pod_spec({"kind": "Pod", "spec": "x"}) is None


def test_get_follows_maps_and_list_indexes_and_stops_at_anything_else():
    obj = {"a": [{"b": 1}, {"b": 2}], "s": "text"}
    assert _get(obj, ("a", 0, "b")) == 1
    assert _get(obj, ("a", 1, "b")) == 2
    assert _get(obj, ("a", -1, "b")) == 2
    assert _get(obj, ("a", -2, "b")) == 1
    assert _get(obj, ("a", 2, "b")) is None
    assert _get(obj, ("a", -3, "b")) is None
    assert _get(obj, ("a", "0")) is None  # a string key into a list
    assert _get(obj, (0,)) is None  # an index into a map
    assert _get(obj, ("s", "x")) is None
    assert _get(obj, ("missing", "x")) is None
    assert _get(obj, ()) is obj


def test_containers_come_app_first_then_init_then_ephemeral_with_their_index():
    spec = {
        "ephemeralContainers": [{"name": "e"}],
        "initContainers": [{"name": "i0"}, "not a container", {"name": "i2"}],
        "containers": [{"name": "c0"}, {"name": "c1"}],
    }
    assert CONTAINER_FIELDS == ("containers", "initContainers", "ephemeralContainers")
    assert [(f, i, c["name"]) for f, i, c in containers(spec)] == [
        ("containers", 0, "c0"),
        ("containers", 1, "c1"),
        ("initContainers", 0, "i0"),
        ("initContainers", 2, "i2"),
        ("ephemeralContainers", 0, "e"),
    ]
    only_init = containers(spec, fields=("initContainers",))
    assert [c["name"] for _, _, c in only_init] == ["i0", "i2"]


def test_containers_skips_a_field_that_is_not_a_list():
    spec = {"containers": {"name": "a"}, "initContainers": [{"name": "i"}]}
    assert [(f, i) for f, i, _ in containers(spec)] == [("initContainers", 0)]
