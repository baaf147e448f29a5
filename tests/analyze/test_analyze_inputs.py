"""`meshready analyze` on plain manifests (files, directories, stdin) beside kustomize
targets, and input errors (bad YAML, failed renders) visible in every output format."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import MESHREADY, run_cli, write_tree

PYPROJECT = """
    [tool.meshready]
    target_roots = ["overlays"]
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, version: v1}
    spec:
      containers:
      - name: web
        image: web:latest
        ports: [{name: http, containerPort: 8080}]
"""
LINE_OF_IMAGE = DEPLOYMENT.splitlines().index("        image: web:latest") + 1

# The Service is in another file, in a List, and says `namespace: default` where the
# Deployment omits it: the same namespace, so it selects the Deployment.
SERVICE_LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: default}
  spec:
    selector: {app: web}
    ports:
    - {name: web, port: 80, targetPort: http}
"""
LINE_OF_PORT_NAME = (
    SERVICE_LIST.splitlines().index("    - {name: web, port: 80, targetPort: http}") + 1
)


def records(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "manifests/app/deployment.yaml": DEPLOYMENT,
            "manifests/app/nested/service.yml": SERVICE_LIST,
            "manifests/README.md": "not a manifest",
        },
    )


def test_a_directory_of_manifests_is_analysed_as_one_group(manifests: Path):
    found = records(run_cli("analyze", "manifests", "-o", "json", cwd=manifests))
    by_rule = {r["rule"]: r for r in found}
    assert {r["target"] for r in found} == {"files"}
    # Cross-file: the Service in the List selects the Deployment (no MR101, no MR106).
    assert "MR101" not in by_rule and "MR106" not in by_rule
    image = by_rule["MR211"]
    assert (image["file"], image["line"]) == ("manifests/app/deployment.yaml", LINE_OF_IMAGE)
    port = by_rule["MR102"]
    assert (port["file"], port["line"]) == ("manifests/app/nested/service.yml", LINE_OF_PORT_NAME)
    assert port["object"] == "Service default/web"


def test_a_file_and_stdin(manifests: Path):
    single = records(
        run_cli("analyze", "manifests/app/deployment.yaml", "-o", "json", cwd=manifests)
    )
    assert {r["rule"] for r in single} >= {"MR101", "MR211"}  # alone, no Service selects it
    piped = subprocess.run(
        [MESHREADY, "analyze", "-", "-o", "json"],
        input=DEPLOYMENT,
        cwd=manifests,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = records(piped)
    image = next(r for r in found if r["rule"] == "MR211")
    assert (image["file"], image["line"]) == ("stdin", LINE_OF_IMAGE)
    assert piped.returncode == 1


def test_stdin_and_files_together_form_one_group(manifests: Path):
    piped = subprocess.run(
        [MESHREADY, "analyze", "manifests/app/nested/service.yml", "-", "-o", "json"],
        input=DEPLOYMENT,
        cwd=manifests,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    rules = {r["rule"] for r in records(piped)}
    assert "MR101" not in rules and "MR106" not in rules


def test_kustomize_targets_and_plain_files_in_one_run(manifests: Path):
    write_tree(
        manifests,
        {
            "overlays/dev/kustomization.yaml": "resources: [deployment.yaml]\n",
            "overlays/dev/deployment.yaml": DEPLOYMENT,
        },
    )
    found = records(run_cli("analyze", "overlays/dev", "manifests", "-o", "json", cwd=manifests))
    by_target: dict[str, set[str]] = {}
    for record in found:
        by_target.setdefault(record["target"], set()).add(record["rule"])
    assert set(by_target) == {"overlays/dev", "files"}
    # The kustomize target is a group of its own: the Service among the files is not in it.
    assert "MR101" in by_target["overlays/dev"] and "MR101" not in by_target["files"]


def test_bad_yaml_is_one_error_record_and_the_rest_is_analysed(manifests: Path):
    write_tree(
        manifests,
        {"manifests/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"},
    )
    result = run_cli("analyze", "manifests", "-o", "json", cwd=manifests)
    assert result.returncode == 1
    found = records(result)
    errors = [r for r in found if r["type"] == "error"]
    assert len(errors) == 1
    error = errors[0]
    assert (error["file"], error["line"], error["rule"]) == ("manifests/broken.yaml", 3, None)
    assert error["message"].startswith("parse failed: YAML parse error at line 3")
    assert any(r["rule"] == "MR211" for r in found)  # the other files were analysed


def test_an_error_alone_is_not_an_empty_report(tmp_path: Path):
    repo = write_tree(tmp_path, {"pyproject.toml": PYPROJECT, "bad.yaml": "a: [\n"})
    json_result = run_cli("analyze", "bad.yaml", "-o", "json", cwd=repo)
    assert json_result.returncode == 1
    assert json.loads(json_result.stdout) != []
    sarif = json.loads(run_cli("analyze", "bad.yaml", "-o", "sarif", cwd=repo).stdout)
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error"
    location = notification["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "bad.yaml"
    assert location["region"]["startLine"] == 1
    github = run_cli("analyze", "bad.yaml", "-o", "github", cwd=repo).stdout.splitlines()
    assert github[0].startswith("::error file=bad.yaml,line=1,title=meshready%3A parse failed::")
    assert github[-1].endswith("1 input error")
    text = run_cli("analyze", "bad.yaml", cwd=repo).stdout
    assert text.startswith("errors (not analysed):\n  bad.yaml:1: error: parse failed: ")
    assert text.rstrip().endswith("; 1 input error")


def test_a_failed_render_is_visible_in_every_format(tmp_path: Path):
    repo = write_tree(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "overlays/bad/kustomization.yaml": "resources: [missing.yaml]\n",
        },
    )
    result = run_cli("analyze", "-o", "json", cwd=repo)
    assert result.returncode == 1
    (error,) = json.loads(result.stdout)
    assert error["type"] == "error" and error["target"] == "overlays/bad"
    assert error["file"] == "overlays/bad/kustomization.yaml"
    assert error["message"].startswith("render failed: ")
    sarif = json.loads(run_cli("analyze", "-o", "sarif", cwd=repo).stdout)
    notifications = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notifications] == ["meshready/render-failed"]
    github = run_cli("analyze", "-o", "github", cwd=repo).stdout
    assert github.startswith(
        "::error file=overlays/bad/kustomization.yaml,title=meshready%3A render failed::"
    )
    text = run_cli("analyze", cwd=repo).stdout
    assert "overlays/bad/kustomization.yaml: error: render failed: " in text


def test_nothing_wrong_is_an_empty_list_and_exit_0(tmp_path: Path):
    repo = write_tree(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
        },
    )
    result = run_cli("analyze", "cm.yaml", "-o", "json", cwd=repo)
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_odd_documents_are_kept_or_skipped_with_a_note(tmp_path: Path):
    repo = write_tree(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "odd.yaml": """\
                settings: {not: kubernetes}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {}
                spec:
                  containers: [{name: a, image: a:latest}]
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: twin}
                spec:
                  containers: [{name: a, image: a:latest}]
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: twin}
                spec:
                  containers: [{name: a, image: a:latest}]
            """,
        },
    )
    result = run_cli("analyze", "odd.yaml", "-o", "json", cwd=repo)
    assert "note: odd.yaml:1: skipped: not a Kubernetes object" in result.stderr
    images = [(r["objectName"], r["line"]) for r in records(result) if r["rule"] == "MR211"]
    # The nameless Pod and both objects of one id are analysed, each at its own line.
    assert images == [("", 7), ("twin", 13), ("twin", 19)]


def test_unchecked_pod_templates_are_reported_once_per_kind(tmp_path: Path):
    job = """\
        apiVersion: example.com/v1
        kind: BatchRun
        metadata: {{name: {name}}}
        spec:
          runner:
            pod:
              containers: [{{name: a, image: a:latest}}]
    """
    repo = write_tree(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "a.yaml": job.format(name="one"),
            "b.yaml": job.format(name="two"),
        },
    )
    result = run_cli("analyze", "a.yaml", "b.yaml", cwd=repo)
    notes = [line for line in result.stderr.splitlines() if "BatchRun" in line]
    assert notes == [
        "note: files: skipped 2 BatchRun objects: pod spec at spec.runner.pod is not checked "
        "(only spec.template is)"
    ]


def test_a_missing_input_is_a_usage_error(tmp_path: Path):
    repo = write_tree(tmp_path, {"pyproject.toml": PYPROJECT})
    result = run_cli("analyze", "nowhere", cwd=repo)
    assert result.returncode == 2
    assert "nowhere: no such file or directory" in result.stderr


def test_per_target_config_applies_to_the_files_group(manifests: Path):
    write_tree(
        manifests,
        {
            "pyproject.toml": PYPROJECT + '\n[tool.meshready.rules."files"]\ndisable = ["MR211"]\n',
        },
    )
    found = records(run_cli("analyze", "manifests", "-o", "json", "-v", cwd=manifests))
    image = next(r for r in found if r["rule"] == "MR211")
    assert image["suppressed"] == "disabled for files in pyproject.toml"


def test_kustomizations_inside_a_manifest_directory_are_left_out(manifests: Path):
    write_tree(
        manifests,
        {
            # An overlay's patch is a partial object: analysed as one, it would be all wrong.
            "manifests/overlay/kustomization.yaml": "resources: [../app/deployment.yaml]\n",
            "manifests/overlay/patch.yaml": "apiVersion: apps/v1\nkind: Deployment\n"
            "metadata: {name: web}\nspec: {replicas: 1}\n",
        },
    )
    result = run_cli("analyze", "manifests", "-o", "json", cwd=manifests)
    files = {r["file"] for r in records(result)}
    assert "manifests/overlay/patch.yaml" not in files
    assert "manifests/app/deployment.yaml" in files
    assert (
        "note: manifests/overlay: skipped: a kustomization directory inside manifests "
        "(give it as an input to render and analyse it)"
    ) in result.stderr
