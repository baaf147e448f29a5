"""The CRD schemas in schemas/crds/ judge objects as the upstream CRDs do (issue 13).

Every check runs the real CLI (`python -m meshready validate --strict --output json`)
from the repository root, so the schemas come from `validate_crd_dirs` exactly as in
use. One run validates everything: the fixtures' objects copied into every served
version, objects in versions upstream does not serve, the wrong objects, and the
upstream-judged objects of the issue's "Why".
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "upstream_crds"
CRD_DIR = REPO / "schemas" / "crds"

# Served versions of each kind, as in the upstream CRDs the schema files follow.
SERVED: dict[tuple[str, str], tuple[str, ...]] = {
    **{
        ("networking.istio.io", kind): ("v1", "v1beta1", "v1alpha3")
        for kind in (
            "VirtualService",
            "DestinationRule",
            "Gateway",
            "ServiceEntry",
            "Sidecar",
            "WorkloadEntry",
            "WorkloadGroup",
        )
    },
    ("networking.istio.io", "EnvoyFilter"): ("v1alpha3",),
    ("networking.istio.io", "ProxyConfig"): ("v1beta1",),
    **{
        ("security.istio.io", kind): ("v1", "v1beta1")
        for kind in ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication")
    },
    ("telemetry.istio.io", "Telemetry"): ("v1", "v1alpha1"),
    ("configsync.gke.io", "RootSync"): ("v1beta1", "v1alpha1"),
    ("configsync.gke.io", "RepoSync"): ("v1beta1", "v1alpha1"),
    ("argoproj.io", "Application"): ("v1alpha1",),
    ("argoproj.io", "AppProject"): ("v1alpha1",),
    ("argoproj.io", "ApplicationSet"): ("v1alpha1",),
    ("gateway.networking.k8s.io", "GatewayClass"): ("v1", "v1beta1"),
    ("gateway.networking.k8s.io", "Gateway"): ("v1", "v1beta1"),
    ("gateway.networking.k8s.io", "HTTPRoute"): ("v1", "v1beta1"),
    ("gateway.networking.k8s.io", "GRPCRoute"): ("v1",),
    ("gateway.networking.k8s.io", "ReferenceGrant"): ("v1beta1",),
}
# Versions some kind of the group serves: a kind not serving one of them has no schema.
GROUP_VERSIONS = {
    group: sorted({v for (g, _), versions in SERVED.items() if g == group for v in versions})
    for group, _ in SERVED
}


def load_objects(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def key_of(obj: dict) -> tuple[str, str]:
    return obj["apiVersion"].rpartition("/")[0], obj["kind"]


def in_every_served_version(objects: list[dict]) -> list[dict]:
    """Each object once per served version of its kind, renamed per version."""
    copies = []
    for obj in objects:
        group, kind = key_of(obj)
        for version in SERVED[(group, kind)]:
            clone = copy.deepcopy(obj)
            clone["apiVersion"] = f"{group}/{version}"
            clone["metadata"]["name"] = f"{obj['metadata']['name']}-{version}"
            copies.append(clone)
    return copies


def in_unserved_versions() -> list[dict]:
    """A minimal object of each kind in every group version the kind does not serve,
    and in v2, which no group serves."""
    return [
        {
            "apiVersion": f"{group}/{version}",
            "kind": kind,
            "metadata": {"name": f"{kind.lower()}-{version}"},
            "spec": {},
        }
        for (group, kind), served in SERVED.items()
        for version in [*GROUP_VERSIONS[group], "v2"]
        if version not in served
    ]


def run_validate(tmp: Path, files: list[Path]) -> dict[str, list[dict]]:
    """JSON records of one `meshready validate --strict` run, by file name."""
    env = {**os.environ, "MESHREADY_CACHE_DIR": str(tmp / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "meshready", "validate", "--strict", "--output", "json"]
        + [str(f) for f in files],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    by_file: dict[str, list[dict]] = {}
    for record in json.loads(result.stdout)["resources"]:
        by_file.setdefault(Path(record["filename"]).name, []).append(record)
    return by_file


def as_json_stream(objects) -> str:
    """Documents as JSON, which is YAML with every string quoted: a YAML dump writes the
    string "n" bare, and kubectl (so meshready) reads a bare n as a boolean."""
    return "".join(f"---\n{json.dumps(obj)}\n" for obj in objects)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    tmp = tmp_path_factory.mktemp("upstream_crds")
    served = tmp / "served.yaml"
    served.write_text(
        as_json_stream(in_every_served_version(load_objects(FIXTURES / "valid.yaml")))
    )
    unserved = tmp / "unserved.yaml"
    unserved.write_text(as_json_stream(in_unserved_versions()))
    return run_validate(tmp, [served, unserved, FIXTURES / "invalid.yaml", FIXTURES / "why.yaml"])


def errors_text(record: dict) -> str:
    return "; ".join(f"{e['path']}: {e['msg']}" for e in record["errors"])


def has_expected_error(record: dict, annotations: dict) -> bool:
    return any(
        e["path"] == annotations["test/error-path"] and annotations["test/error-msg"] in e["msg"]
        for e in record["errors"]
    )


def test_an_object_with_every_documented_field_validates_in_every_served_version(results):
    objects = load_objects(FIXTURES / "valid.yaml")
    assert {key_of(o) for o in objects} == set(SERVED), "a kind without a full fixture"
    records = results["served.yaml"]
    assert len(records) == sum(len(SERVED[key_of(o)]) for o in objects)
    wrong = [
        f"{r['apiVersion']} {r['kind']} {r['name']}: {errors_text(r)}"
        for r in records
        if r["status"] != "valid"
    ]
    assert wrong == []


def test_versions_upstream_does_not_serve_have_no_schema(results):
    records = results["unserved.yaml"]
    # v2 of every kind, and e.g. EnvoyFilter v1, ProxyConfig v1, GRPCRoute v1beta1,
    # ReferenceGrant v1
    assert len(records) == len(in_unserved_versions()) == len(SERVED) + 6
    for record in records:
        assert record["status"] == "error", record
        assert "no schema for" in errors_text(record)


def test_each_wrong_object_fails_at_the_field_its_annotation_names(results):
    objects = {o["metadata"]["name"]: o for o in load_objects(FIXTURES / "invalid.yaml")}
    records = results["invalid.yaml"]
    assert sorted(r["name"] for r in records) == sorted(objects)
    missed = [
        f"{r['name']} ({r['status']}): {errors_text(r)}"
        for r in records
        if r["status"] not in ("invalid", "error")
        or not has_expected_error(r, objects[r["name"]]["metadata"]["annotations"])
    ]
    assert missed == []


def test_every_kind_has_wrong_objects_of_each_class(results):
    """A typo in a nested field, a wrong enum or type, a missing required field and a
    wrong version, for every kind (WorkloadEntry and ProxyConfig have no enums)."""
    classes = {
        "typo": ("unknown field",),
        "enum-or-type": ("is not one of", "is not of type", "does not match", "minimum", "maximum"),
        "required": ("is a required property",),
        "version": ("no schema",),
    }
    found: dict[tuple[str, str], set[str]] = {}
    for obj in load_objects(FIXTURES / "invalid.yaml"):
        message = obj["metadata"]["annotations"]["test/error-msg"]
        group = obj["apiVersion"].rpartition("/")[0]
        for name, needles in classes.items():
            if any(needle in message for needle in needles):
                found.setdefault((group, obj["kind"]), set()).add(name)
    no_required = {
        ("networking.istio.io", "ProxyConfig"),
        ("security.istio.io", "PeerAuthentication"),
    }
    for key in SERVED:
        expected = set(classes) - ({"required"} if key in no_required else set())
        assert expected <= found.get(key, set()), key


def test_the_upstream_judged_objects_of_the_issue_are_judged_as_upstream_does(results):
    objects = {o["metadata"]["name"]: o for o in load_objects(FIXTURES / "why.yaml")}
    verdicts = Counter(o["metadata"]["annotations"]["test/upstream"] for o in objects.values())
    assert verdicts == {"accepts": 9, "rejects": 15}
    wrong = []
    for record in results["why.yaml"]:
        annotations = objects[record["name"]]["metadata"]["annotations"]
        if annotations["test/upstream"] == "accepts":
            ok = record["status"] == "valid"
        else:
            ok = record["status"] == "invalid" and has_expected_error(record, annotations)
        if not ok:
            wrong.append(f"{record['name']} ({record['status']}): {errors_text(record)}")
    assert wrong == []
    assert len(results["why.yaml"]) == len(objects)


@pytest.mark.parametrize("path", sorted(CRD_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_each_schema_file_says_which_upstream_version_it_follows(path: Path):
    header = "".join(
        line for line in path.read_text().splitlines(keepends=True)[:6] if line.startswith("#")
    )
    assert "upstream" in header
    assert any(char.isdigit() for char in header), "no upstream version named"
