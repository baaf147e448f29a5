"""The analysis model's lock-free cached_property: computed once per object, stored under
the property's own name, documented like the function it wraps."""

from __future__ import annotations

from meshready.analyze.rules.model import cached_property


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
