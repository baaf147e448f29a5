"""Shared fixtures: the pinned kustomize, and small repositories built in temp dirs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
# Prefer the kubectl that `pip install .[kustomize]` put beside this interpreter, so a
# bare `pytest` renders with the same pinned kustomize as the nox sessions.
if "KUSTOMIZE" not in os.environ and (VENV_BIN / "kubectl").is_file():
    os.environ["KUSTOMIZE"] = str(VENV_BIN / "kubectl")

MESHREADY = str(VENV_BIN / "meshready")
REPO = Path(__file__).resolve().parents[1]
# Commands the tests start import the package beside these tests: the same tree in a normal
# run, and mutmut's mutated copy (mutants/) under `nox -s mutate`, so that subprocess tests
# kill mutants too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO / "tools"), *filter(None, [os.environ.get("PYTHONPATH")])]
)
# What a copy of this repository needs to render, validate, analyze and check its targets.
REPO_STATE = (
    "pyproject.toml",
    "base",
    "overlays",
    "components",
    "clusters",
    "bootstrap",
    "schemas",
)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path -> dedented text) under `root`."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the installed `meshready` console script."""
    return subprocess.run(
        [MESHREADY, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def mini_repo(tmp_path: Path) -> Path:
    """A repository with one base, a component, and two overlays."""
    return write_tree(
        tmp_path,
        {
            "pyproject.toml": """
                [tool.meshready]
                target_roots = ["overlays"]
                [tool.meshready.hydrate]
                "overlays/prod" = "clusters/prod"
            """,
            "base/app/kustomization.yaml": """
                resources:
                - deployment.yaml
                - service.yaml
            """,
            "base/app/deployment.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: web
                spec:
                  selector:
                    matchLabels: {app: web}
                  template:
                    metadata:
                      labels: {app: web}
                    spec:
                      containers:
                      - name: web
                        image: web:1.0
            """,
            "base/app/service.yaml": """
                apiVersion: v1
                kind: Service
                metadata:
                  name: web
                spec:
                  selector: {app: web}
                  ports:
                  - name: http
                    port: 80
            """,
            "components/extra/kustomization.yaml": """
                apiVersion: kustomize.config.k8s.io/v1alpha1
                kind: Component
                resources:
                - configmap.yaml
            """,
            "components/extra/configmap.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: settings
                data:
                  config.yaml: |
                    a: 1
                    b: 2
            """,
            "overlays/dev/kustomization.yaml": """
                resources:
                - ../../base/app
                namespace: dev
            """,
            "overlays/prod/kustomization.yaml": """
                resources:
                - ../../base/app
                - namespace.yaml
                components:
                - ../../components/extra
                namespace: prod
                labels:
                - pairs: {version: v1}
                  includeTemplates: true
            """,
            "overlays/prod/namespace.yaml": """
                apiVersion: v1
                kind: Namespace
                metadata:
                  name: prod
            """,
        },
    )


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of this repository's manifests and config, to break on purpose."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in REPO_STATE:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, copy / name)
        else:
            shutil.copy(REPO / name, copy / name)
    return copy
