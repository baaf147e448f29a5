"""The analysis model's small pieces, in process: field lookup, Kubernetes label selectors
(matchLabels and matchExpressions, as the API server evaluates them), and the lock-free
cached_property."""

from __future__ import annotations

import pytest
from meshready.analyze.rules.model import (
    cached_property,
    expressions_match,
    get,
    label_selector_matches,
)

LABELS = {"app": "web", "version": "v1"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("spec", "ports", 0, "name"), "http"),
        (("spec", "ports", 1, "name"), "grpc"),
        (("spec", "ports", 2, "name"), "gone"),  # past the end
        (("spec", "ports", "0"), "gone"),  # a string key into a list
        (("spec", 0), "gone"),  # an index into a map
        (("spec", "missing"), "gone"),
        (("spec", "ports", 0, "name", "deeper"), "gone"),  # into a scalar
    ],
)
def test_get_follows_keys_and_indexes_or_gives_the_default(path, expected):
    obj = {"spec": {"ports": [{"name": "http"}, {"name": "grpc"}]}}
    assert get(obj, path, "gone") == expected


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ({"key": "app", "operator": "In", "values": ["web", "api"]}, True),
        ({"key": "app", "operator": "In", "values": ["api"]}, False),
        ({"key": "tier", "operator": "In", "values": ["web"]}, False),  # absent: not in
        ({"key": "app", "operator": "NotIn", "values": ["api"]}, True),
        ({"key": "app", "operator": "NotIn", "values": ["web"]}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["web"]}, True),  # absent: not in
        ({"key": "app", "operator": "Exists"}, True),
        ({"key": "tier", "operator": "Exists"}, False),
        ({"key": "tier", "operator": "DoesNotExist"}, True),
        ({"key": "app", "operator": "DoesNotExist"}, False),
        ({"key": "app", "operator": "in", "values": ["web"]}, False),  # operators are exact
        ({"key": "app", "operator": "Equals", "values": ["web"]}, False),
        ("app in (web)", False),  # not an expression at all
    ],
)
def test_each_match_expression_operator(expression, matches):
    assert expressions_match([expression], LABELS) is matches


def test_every_expression_must_match():
    exists = {"key": "app", "operator": "Exists"}
    missing = {"key": "tier", "operator": "Exists"}
    assert expressions_match([exists, exists], LABELS) is True
    assert expressions_match([exists, missing], LABELS) is False
    assert expressions_match([missing, exists], LABELS) is False
    assert expressions_match([], LABELS) is True


def test_label_selector_needs_both_match_labels_and_expressions():
    in_web = [{"key": "app", "operator": "In", "values": ["web"]}]
    assert label_selector_matches(
        {"matchLabels": {"app": "web"}, "matchExpressions": in_web}, LABELS
    )
    assert not label_selector_matches(
        {"matchLabels": {"app": "api"}, "matchExpressions": in_web}, LABELS
    )
    assert not label_selector_matches(
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "v", "operator": "Exists"}]},
        LABELS,
    )
    assert label_selector_matches({}, LABELS)  # the empty selector selects everything


def test_cached_property_computes_once_and_keeps_name_and_doc():
    calls: list[int] = []

    class Subject:
        @cached_property
        def answer(self) -> int:
            """The answer, worked out once."""
            calls.append(1)
            return 42

    assert Subject.answer.__doc__ == "The answer, worked out once."
    assert isinstance(Subject.__dict__["answer"], cached_property)
    subject = Subject()
    assert (subject.answer, subject.answer) == (42, 42)
    assert calls == [1]
    assert subject.__dict__["answer"] == 42  # later reads skip the descriptor
    assert (Subject().answer, calls) == (42, [1, 1])  # one cache per object
