"""The `meshready.dev/ignore` annotation's value, clause by clause: what it suppresses,
which clauses lack a reason (MR001) and which names are no rule (MR002)."""

from __future__ import annotations

from meshready.analyze.rules.suppression import Suppression, parse


def test_ids_and_names_share_one_reason_per_clause():
    assert parse("MR201, read-only-root-filesystem: runs as root until #42 lands") == Suppression(
        rules={"MR201": "runs as root until #42 lands", "MR203": "runs as root until #42 lands"}
    )


def test_clauses_split_on_semicolons_and_newlines_and_empty_ones_are_skipped():
    found = parse("; MR201: needs root\n\n  ;MR203: writes /tmp;")
    assert found == Suppression(rules={"MR201": "needs root", "MR203": "writes /tmp"})


def test_a_clause_without_a_reason_suppresses_nothing_and_the_next_still_counts():
    found = parse("MR201; MR209: set by a LimitRange; MR203:   ")
    assert found.rules == {"MR209": "set by a LimitRange"}
    assert found.missing_reason == ["MR201", "MR203:"]
    assert found.unknown == []


def test_an_unknown_name_is_reported_and_the_known_ones_of_its_clause_still_apply():
    found = parse("MR999, MR203, no-such-rule: because")
    assert found.rules == {"MR203": "because"}
    assert found.unknown == ["MR999", "no-such-rule"]
    assert found.missing_reason == []


def test_the_reason_keeps_its_own_colons():
    assert parse("MR203: nginx: writes its pid file").rules == {
        "MR203": "nginx: writes its pid file"
    }
