"""Exit codes when one target fails to render: every command that renders exits 1 and
names the target on stderr, while the other targets are still reported.

Each case runs the command twice on one copy of this repository (clean, so it passes):
first as it is (exit 0, which proves the broken target is the only reason for the 1),
then with one overlay that cannot render."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

BROKEN = "overlays/broken"
# A real overlay with one resource that does not exist: kustomize fails on it alone.
BROKEN_KUSTOMIZATION = "resources:\n- ../../base/hello\n- gone.yaml\n"
FAILURE_LINE = f"{BROKEN}: render failed: "

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def break_overlay(repo: Path, target: str = BROKEN) -> None:
    (repo / target).mkdir(exist_ok=True)
    (repo / target / "kustomization.yaml").write_text(BROKEN_KUSTOMIZATION)


def failure_lines(stderr: str, target: str = BROKEN) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{target}: render failed: ")]


@pytest.mark.parametrize(
    ("command", "also_in_stdout"),
    [
        pytest.param(("render",), "overlays/dev: ", id="render"),
        pytest.param(("render", "--print"), "kind: Deployment", id="render-print"),
        pytest.param(("analyze",), " findings (", id="analyze"),
        pytest.param(("check",), "overlays/dev ", id="check"),
        pytest.param(("validate", "--rendered"), f"{BROKEN}:1: ", id="validate-rendered"),
    ],
)
def test_one_target_that_fails_to_render_makes_the_command_exit_1(
    repo_copy: Path, command: tuple[str, ...], also_in_stdout: str
):
    clean = run_cli(*command, cwd=repo_copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert not failure_lines(clean.stderr)

    break_overlay(repo_copy)
    broken = run_cli(*command, cwd=repo_copy)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    lines = failure_lines(broken.stderr)
    assert len(lines) == 1, broken.stderr
    assert "gone.yaml" in lines[0]
    assert "Traceback" not in broken.stderr
    # What did render is still reported (validate reports the failure as a finding).
    assert also_in_stdout in broken.stdout


def test_check_marks_the_target_failed_in_its_table(repo_copy: Path):
    break_overlay(repo_copy)
    result = run_cli("check", cwd=repo_copy)
    assert result.returncode == 1
    row = next(line for line in result.stdout.splitlines() if line.startswith(BROKEN))
    assert row.split()[1:3] == ["0", "FAILED"]
    assert "result: FAILED" in result.stderr


def test_a_hydrated_target_that_fails_exits_1_and_keeps_its_files(repo_copy: Path):
    """render --check and --hydrate only look at [tool.meshready.hydrate] targets: break one."""
    hydrated = repo_copy / "clusters/asm-ready"
    before = {p.name: p.read_bytes() for p in hydrated.iterdir()}
    assert run_cli("render", "--check", cwd=repo_copy).returncode == 0

    kustomization = repo_copy / "overlays/asm-ready/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("resources:\n", "resources:\n- gone.yaml\n", 1)
    )
    for flag in ("--check", "--hydrate"):
        result = run_cli("render", flag, cwd=repo_copy)
        assert result.returncode == 1, (flag, result.stdout, result.stderr)
        assert len(failure_lines(result.stderr, "overlays/asm-ready")) == 1, result.stderr
    # A failed render never empties its destination.
    assert {p.name: p.read_bytes() for p in hydrated.iterdir()} == before


def test_diff_exits_1_when_a_target_fails_on_the_working_tree_side(repo_copy: Path, tmp_path):
    env = {**os.environ, **GIT_ENV, "TMPDIR": str(tmp_path)}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo_copy, env=env, check=True, capture_output=True)

    git("init", "--quiet", "--initial-branch=main")
    git("add", "-A")
    git("commit", "--quiet", "-m", "base")
    git("checkout", "--quiet", "-b", "feature")

    clean = run_cli("diff", "--base", "main", cwd=repo_copy, env=env)
    assert clean.returncode == 0, clean.stderr
    assert not failure_lines(clean.stderr)

    break_overlay(repo_copy)
    git("add", "-A")
    git("commit", "--quiet", "-m", "a broken overlay")
    for output in ("diff", "markdown", "json"):
        result = run_cli("diff", "--base", "main", "--output", output, cwd=repo_copy, env=env)
        assert result.returncode == 1, (output, result.stderr)
        assert f"{BROKEN}: render failed" in result.stderr.splitlines()
        assert BROKEN in result.stdout  # the report names it too
