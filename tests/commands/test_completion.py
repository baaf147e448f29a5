"""Shell completion is generated from the real parser: bash completes subcommands and flags."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import MESHREADY, REPO, run_cli


def complete(*words: str) -> list[str]:
    """What bash offers for the last of `words`, with the script `meshready completion bash` prints."""
    script = run_cli("completion", "bash", cwd=REPO)
    assert script.returncode == 0, script.stderr
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"source /dev/stdin; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
        f'_shtab_meshready meshready "{words[-1]}" "{words[-2]}"; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    done = subprocess.run(
        ["bash", "-c", program], input=script.stdout, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_subcommands_and_their_flags():
    assert complete("meshready", "ana") == ["analyze"]
    assert complete("meshready", "analyze", "--fail") == ["--fail-on"]
    assert "completion" in complete("meshready", "")


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_other_shells_get_a_script_naming_the_command(shell: str):
    result = run_cli("completion", shell, cwd=REPO)
    assert result.returncode == 0
    assert "meshready" in result.stdout and "analyze" in result.stdout


def test_an_unknown_shell_is_a_usage_error():
    result = subprocess.run(
        [MESHREADY, "completion", "fish"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
