"""The one image-reference parser, and pinning and the image rules agreeing with it on the
spellings the three old parsers disagreed on."""

from __future__ import annotations

import pytest
from meshready.analyze.rules import CATALOG
from meshready.analyze.rules.model import Context, TargetSettings, Workload
from meshready.errors import MeshreadyError
from meshready.images import parse_image
from meshready.images.pin import container_images, is_pinned, split_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("reference", "repository", "tag", "digest"),
    [
        ("web", "web", None, None),
        ("web:1.2", "web", "1.2", None),
        ("localhost:5000/web", "localhost:5000/web", None, None),  # a port, not a tag
        ("localhost:5000/web:v1", "localhost:5000/web", "v1", None),
        (f"localhost:5000/web@{DIGEST}", "localhost:5000/web", None, DIGEST),
        (f"web:v1@{DIGEST}", "web", "v1", DIGEST),
        ("web@latest", "web", None, None),  # `latest` after @ is no digest
        (
            "europe-west1-docker.pkg.dev/p/r/web:abc",
            "europe-west1-docker.pkg.dev/p/r/web",
            "abc",
            None,
        ),
    ],
)
def test_parse_image(reference, repository, tag, digest):
    parsed = parse_image(reference)
    assert (parsed.repository, parsed.tag, parsed.digest) == (repository, tag, digest)
    assert parsed.pinned is (digest is not None)


def test_a_malformed_digest_is_kept_for_the_message():
    assert parse_image("web@latest").malformed_digest == "latest"
    assert parse_image(f"web@{DIGEST}").malformed_digest is None


def image_hits(rule_id: str, image: str, require_digest: bool = False) -> list:
    obj = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }
    workload = Workload(obj, "Deployment", "web", "default", template_path=("spec", "template"))
    ctx = Context(settings=TargetSettings(require_digest=require_digest))
    return list(CATALOG[rule_id].check(workload, ctx))


@pytest.mark.parametrize(
    ("image", "untagged_or_latest", "pinned"),
    [
        ("web@latest", True, False),
        ("localhost:5000/web", True, False),
        ("localhost:5000/web:v1", False, False),
        (f"localhost:5000/web@{DIGEST}", False, True),
        ("web:latest", True, False),
    ],
)
def test_pinning_and_the_image_rules_agree(image, untagged_or_latest, pinned):
    assert bool(image_hits("MR211", image)) is untagged_or_latest
    assert bool(image_hits("MR212", image, require_digest=True)) is not pinned
    assert is_pinned(image) is pinned


def test_split_reference_refuses_what_is_not_a_digest():
    assert split_reference(f"localhost:5000/web:v1@{DIGEST}") == ("localhost:5000/web", DIGEST)
    with pytest.raises(MeshreadyError):
        split_reference("web@latest")


def test_the_walker_finds_containers_of_every_pod_template_shape():
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x"}]}}
    cron = {
        "kind": "CronJob",
        "spec": {
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "y"}]}}}
            }
        },
    }
    rollout = {
        "kind": "Rollout",
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "i", "image": "z"}],
                    "containers": [{"name": "r", "image": "w"}],
                }
            }
        },
    }
    assert container_images(pod) == [("a", "x")]
    assert container_images(cron) == [("c", "y")]
    assert container_images(rollout) == [("i", "z"), ("r", "w")]
    assert container_images({"kind": "ConfigMap", "data": {}}) == []
