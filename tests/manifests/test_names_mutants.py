"""Kubernetes' object-name rules at their edges (docs/testing.md): lengths 63/64 and
253/254, first and last characters, dots, and the kinds that take any path segment."""

from __future__ import annotations

import pytest
from meshready.manifests.names import name_problem, path_segment_problem


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "the name is empty"),
        (".", "the name may not be '.'"),
        ("..", "the name may not be '..'"),
        ("a/b", "the name may not contain '/'"),
        ("a%2f", "the name may not contain '%'"),
        ("a\x1fb", "the name may not contain control characters"),
        ("a\x7fb", "the name may not contain control characters"),
        ("\x00", "the name may not contain control characters"),
    ],
)
def test_path_segment_problems(name: str, problem: str):
    assert path_segment_problem(name) == problem


@pytest.mark.parametrize("name", ["...", ".a", "a b", "a\x20b", "system:kube", "~", "a\x80"])
def test_path_segments_that_are_fine(name: str):
    assert path_segment_problem(name) is None


@pytest.mark.parametrize("kind", ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"])
def test_rbac_kinds_take_any_path_segment(kind: str):
    assert name_problem(kind, "system:controller:Some_Name") is None
    assert name_problem(kind, "x" * 400) is None
    assert name_problem(kind, "a/b") == "the name may not contain '/'"


def test_a_path_segment_problem_comes_first_for_every_kind():
    assert name_problem("ConfigMap", "..") == "the name may not be '..'"
    assert name_problem("Service", "") == "the name is empty"


def test_service_names_are_rfc_1035_labels():
    assert name_problem("Service", "a" * 63) is None
    assert name_problem("Service", "a" * 64) == (
        "the name is 64 characters long; Service names are at most 63"
    )
    assert name_problem("Service", "web-1") is None
    assert name_problem("Service", "a") is None
    assert name_problem("Service", "1web") == (
        "'1web' is not an RFC 1035 label (lower-case letters, digits and '-', "
        "starting with a letter and ending with a letter or digit)"
    )
    assert name_problem("Service", "web.x") is not None
    assert name_problem("Service", "web-") is not None


def test_namespace_names_are_rfc_1123_labels():
    assert name_problem("Namespace", "1-team") is None
    assert name_problem("Namespace", "a" * 63) is None
    assert name_problem("Namespace", "a" * 64) == (
        "the name is 64 characters long; Namespace names are at most 63"
    )
    assert name_problem("Namespace", "team.a") == (
        "'team.a' is not an RFC 1123 label (lower-case letters, digits and '-', "
        "starting with a letter or digit and ending with a letter or digit)"
    )
    assert name_problem("Namespace", "-a") is not None


def test_other_kinds_are_rfc_1123_subdomains():
    assert name_problem("ConfigMap", "a.b-c.1") is None
    assert name_problem("ConfigMap", "a" * 253) is None
    assert name_problem("Deployment", "a" * 254) == (
        "the name is 254 characters long; Deployment names are at most 253"
    )
    assert name_problem("ConfigMap", "a..b") == (
        "'a..b' is not an RFC 1123 subdomain (lower-case letters, digits and '-', "
        "'.' between labels, starting with a letter or digit and ending with a letter or digit)"
    )
    for bad in ("Web", "a_b", "a.", "-a", "a-", "a.-b"):
        assert name_problem("ConfigMap", bad) is not None, bad


def test_the_length_is_checked_before_the_pattern():
    assert name_problem("ConfigMap", "A" * 254).startswith("the name is 254 characters long")
