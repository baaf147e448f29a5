"""The image-reference parser's edges (docs/testing.md): which digests count, where the tag
ends, and what `pinned` means."""

from __future__ import annotations

import pytest
from meshready.images.ref import DIGEST_RE, ImageRef, parse_image

SHA = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "digest",
    [
        SHA,
        "sha512:" + "ab" * 64,
        "sha256:" + "A" * 64,  # upper-case hex is a digest to the grammar (not pinnable)
        "multihash+base58:" + "0" * 32,  # the shortest the grammar takes
        "a.b_c-d:" + "f" * 40,
    ],
)
def test_any_registered_digest_spelling_is_a_digest(digest: str):
    parsed = parse_image(f"web@{digest}")
    assert (parsed.repository, parsed.tag, parsed.digest) == ("web", None, digest)
    assert parsed.malformed_digest is None


@pytest.mark.parametrize(
    "after",
    [
        "latest",
        "sha256:" + "0" * 31,  # too short
        "sha256:" + "g" * 64,  # not hex
        "SHA256:" + "0" * 64,  # the algorithm is lower case
        "sha256:" + "0" * 64 + " ",  # the whole text must match
        "-sha256:" + "0" * 64,
        "sha256+:" + "0" * 64,
        "",
    ],
)
def test_what_follows_the_at_sign_is_kept_when_it_is_no_digest(after: str):
    parsed = parse_image(f"web:v1@{after}")
    assert (parsed.repository, parsed.tag, parsed.digest) == ("web", "v1", None)
    assert parsed.malformed_digest == after
    assert not parsed.pinned


def test_no_at_sign_means_no_digest_at_all():
    parsed = parse_image("registry.example:443/team/web:1.0")
    assert parsed == ImageRef("registry.example:443/team/web", "1.0", None, None)


def test_an_empty_tag_is_no_tag():
    assert parse_image("web:") == ImageRef("web", None, None, None)


def test_the_tag_is_after_the_last_colon_of_the_last_component():
    assert parse_image("host:5000/a:b/c") == ImageRef("host:5000/a:b/c", None, None, None)
    assert parse_image("a:1:2") == ImageRef("a:1", "2", None, None)
    assert parse_image("/web:v") == ImageRef("/web", "v", None, None)


@pytest.mark.parametrize(
    ("digest", "pinned"),
    [
        (SHA, True),
        ("sha256:" + "A" * 64, False),  # only the canonical lower-case sha256 pins
        ("sha512:" + "ab" * 64, False),
        ("sha256:" + "0" * 63, False),
        (SHA + "0", False),
        (None, False),
    ],
)
def test_pinned_means_a_canonical_sha256(digest, pinned: bool):
    assert ImageRef("web", None, digest).pinned is pinned
    assert (DIGEST_RE.fullmatch(digest) is not None if digest else False) is pinned
