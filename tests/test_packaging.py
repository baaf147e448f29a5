"""The distributions PyPI would get: build the sdist, then the wheel from the sdist (as pip
does), from a copy of this working tree, and read what they carry. And action.yml, the
other way meshready is distributed: its steps run as a runner would run them.

`--no-isolation` uses the setuptools pinned in the test extra (the same pin as
[build-system]), so the build needs no network; `nox -s lint` builds isolated and runs
twine. The action's install step uses pip and PyPI, as on GitHub.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import meshready
import pytest
import yaml
from conftest import REPO


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    source = tmp_path_factory.mktemp("source")
    if (REPO / ".git").exists():
        # What a clone (plus uncommitted work) holds, without caches, venvs or old builds.
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout.decode()
        for relative in filter(None, listed.split("\0")):
            if (REPO / relative).is_file():
                (source / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / relative, source / relative)
    else:  # running from an unpacked sdist
        shutil.copytree(REPO, source, dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "source": source}


def sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as archive:
        # Drop the top-level `meshready-VERSION/` directory.
        return {name.partition("/")[2] for name in archive.getnames() if "/" in name}


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_sdist_carries_the_tests_with_conftest_fixtures_and_snapshots(dists) -> None:
    names = sdist_names(dists["sdist"])
    tests = {
        str(p.relative_to(dists["source"]))
        for p in (dists["source"] / "tests").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "tests/conftest.py" in tests
    assert any(t.startswith("tests/fixtures/") for t in tests)
    assert tests - names == set()
    # ... and the repository state those tests render, validate and analyze.
    for required in ("LICENSE", "CHANGELOG.md", "README.pypi.md", "pyproject.toml"):
        assert required in names
    for directory in ("base/", "overlays/", "components/", "clusters/", "bootstrap/", "schemas/"):
        assert any(n.startswith(directory) for n in names), directory
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_wheel_is_typed_and_licensed(dists) -> None:
    with zipfile.ZipFile(dists["wheel"]) as archive:
        names = set(archive.namelist())
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence) == (REPO / "LICENSE").read_bytes()
    assert "meshready/py.typed" in names
    # Only the package: the repository's tests and manifests stay in the sdist.
    assert {n.split("/")[0] for n in names} == {
        "meshready",
        f"meshready-{meshready.__version__}.dist-info",
    }


def test_metadata_is_fit_for_pypi(dists) -> None:
    metadata = wheel_metadata(dists["wheel"])
    # One version source: the package's own __version__.
    assert metadata["Version"] == meshready.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    # No deprecated licence classifier beside the SPDX expression.
    assert not any(c.startswith("License ::") for c in metadata.get_all("Classifier"))
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    # The long description is the short PyPI text, not the repository's tutorial README.
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (REPO / "README.pypi.md").read_text().strip()


# --- action.yml: its steps run as GitHub's runner runs a composite action's steps ---------

EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def action_steps(inputs: dict[str, str], runner_temp: Path) -> list[dict]:
    """action.yml's steps with `${{ inputs.X }}` and `${{ runner.temp }}` filled in; any
    other expression fails, so that this test is updated with the action."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    values = {f"inputs.{name}": spec.get("default", "") for name, spec in action["inputs"].items()}
    unknown = set(inputs) - {k.removeprefix("inputs.") for k in values}
    assert not unknown, f"not inputs of action.yml: {unknown}"
    values |= {f"inputs.{k}": v for k, v in inputs.items()}
    values["runner.temp"] = str(runner_temp)

    def fill(text: str) -> str:
        return EXPRESSION.sub(lambda m: values[m.group(1)], text)

    return [
        {
            "run": step["run"],
            "shell": step["shell"],
            "env": {k: fill(str(v)) for k, v in step.get("env", {}).items()},
            "working-directory": fill(step.get("working-directory", ".")),
        }
        for step in action["runs"]["steps"]
    ]


def run_action(
    inputs: dict[str, str], workspace: Path, action_path: Path, runner_temp: Path
) -> list[subprocess.CompletedProcess[str]]:
    done = []
    for step in action_steps(inputs, runner_temp):
        assert step["shell"] == "bash"
        env = {k: v for k, v in os.environ.items() if k != "KUSTOMIZE"}
        env |= {"GITHUB_ACTION_PATH": str(action_path), "RUNNER_TEMP": str(runner_temp)}
        env |= step["env"]
        # GitHub runs `shell: bash` steps as `bash --noprofile --norc -eo pipefail FILE`.
        script = runner_temp / f"step-{len(done)}.sh"
        script.write_text(step["run"])
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace / step["working-directory"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        done.append(result)
        if result.returncode != 0:
            break
    return done


def test_action_installs_meshready_and_runs_the_command(
    dists, repo_copy: Path, tmp_path: Path
) -> None:
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    install, validate = run_action(
        {"command": "validate", "args": "--strict --summary bootstrap"},
        repo_copy,
        dists["source"],
        runner_temp,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Summary:" in validate.stdout and "Invalid: 0" in validate.stdout
    # Its own virtualenv, with the pinned kustomize the second step points $KUSTOMIZE at.
    assert (runner_temp / "meshready-venv/bin/kubectl").is_file()

    # A finding fails the step: the load generator without its Service breaks MR101.
    kustomization = repo_copy / "base/loadgen/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("- service.yaml\n", ""))
    *_, analyze = run_action({"command": "analyze"}, repo_copy, dists["source"], runner_temp)
    assert analyze.returncode == 1, analyze.stdout + analyze.stderr
    assert "MR101" in analyze.stdout
