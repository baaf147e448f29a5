"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit against temp git repos.

`pre-commit try-repo` installs each hook's environment from this repository (a snapshot
of the working tree, uncommitted changes included) and its dependencies from PyPI, as a
user's `pre-commit install` would. The environments are built once per module: the tests
share one PRE_COMMIT_HOME.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO, VENV_BIN, write_tree

PRE_COMMIT = str(VENV_BIN / "pre-commit")
HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())

pytestmark = pytest.mark.skipif(
    not (REPO / ".git").exists(), reason="pre-commit try-repo needs a git checkout of this repo"
)


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def git_repo(root: Path) -> Path:
    """`root` as a git repository with every file staged (pre-commit reads git's file list)."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    return root


def try_repo(cwd: Path, home: Path, hook: str, *args: str) -> subprocess.CompletedProcess[str]:
    # The hook must find its own kustomize (its additional_dependencies), not this test
    # environment's $KUSTOMIZE.
    env = {k: v for k, v in os.environ.items() if k != "KUSTOMIZE"}
    env["PRE_COMMIT_HOME"] = str(home)
    return subprocess.run(
        [PRE_COMMIT, "try-repo", "--color", "never", str(REPO), hook, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_validate_hook_fails_on_the_invalid_manifest_only(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    repo = git_repo(
        write_tree(
            tmp_path,
            {
                "manifests/settings.yaml": """
                    apiVersion: v1
                    kind: ConfigMap
                    metadata:
                      name: settings
                      namespace: web
                    data:
                      LEVEL: info
                """,
                "manifests/service.yaml": """
                    apiVersion: v1
                    kind: Service
                    metadata:
                      name: web
                      namespace: web
                    spec:
                      selector:
                        app: web
                      portz:
                      - port: 80
                """,
                # Not Kubernetes objects: the hook's `exclude` keeps them out.
                "manifests/kustomization.yaml": "resources:\n- settings.yaml\n",
                ".yamllint.yaml": "extends: default\n",
            },
        )
    )

    failed = try_repo(repo, pre_commit_home, "meshready-validate", "--all-files")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    # The file, the line of the unknown field, the object, the path: validate's own format.
    assert 'manifests/service.yaml:9: Service web/web: /spec/portz: unknown field "portz"' in (
        failed.stdout
    )
    assert "settings.yaml" not in failed.stdout
    assert "kustomization.yaml" not in failed.stdout
    assert "yamllint" not in failed.stdout

    passed = try_repo(
        repo,
        pre_commit_home,
        "meshready-validate",
        "--files",
        "manifests/settings.yaml",
        "manifests/kustomization.yaml",
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "meshready validate" in passed.stdout and "Passed" in passed.stdout


def test_analyze_hook_passes_this_repository_and_fails_without_a_service(
    repo_copy: Path, pre_commit_home: Path
) -> None:
    repo = git_repo(repo_copy)
    passed = try_repo(repo, pre_commit_home, "meshready-analyze", "--all-files")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout

    # The load generator loses its Service: every target that renders it breaks MR101.
    kustomization = repo / "base/loadgen/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("- service.yaml\n", ""))
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    failed = try_repo(repo, pre_commit_home, "meshready-analyze", "--all-files")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "MR101" in failed.stdout
    assert "loadgenerator" in failed.stdout


def test_analyze_hook_installs_the_packages_pinned_kustomize() -> None:
    """The hook's kustomize is the one the `kustomize` extra pins, so hooks render the same
    bytes as the nox sessions."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    analyze = next(h for h in HOOKS if h["id"] == "meshready-analyze")
    assert analyze["additional_dependencies"] == extras["kustomize"]
