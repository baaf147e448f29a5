"""kustomize runs bounded in time and memory, and the bound covers what it starts."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import run_cli, write_tree

# 420 bytes that expand to 9**9 strings: kustomize alone grows past 20 GiB on it.
ALIAS_BOMB = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n"
    '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"  {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


def alive(pid: int) -> bool:
    """Running, not merely a zombie left for init to reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_hanging_kustomize_and_its_children_are_killed_at_the_timeout(
    mini_repo: Path, tmp_path_factory
):
    bin_dir = tmp_path_factory.mktemp("bin")
    pids = bin_dir / "pids"
    fake = bin_dir / "kustomize"
    # Its child holds stdout open: only killing the whole session ends the build.
    fake.write_text(
        '#!/bin/sh\n[ "$1" = version ] && { echo v5.0.0; exit 0; }\n'
        f'sleep 60 & echo $! >> "{pids}"\nwait\n'
    )
    fake.chmod(0o755)
    started = time.monotonic()
    result = run_cli(
        "render",
        "overlays/dev",
        "--timeout",
        "1",
        cwd=mini_repo,
        env={**os.environ, "KUSTOMIZE": str(fake)},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "overlays/dev: render failed: kustomize build timed out after 1s" in result.stderr
    # The child sleeps 60 s: a run that waited for it would take that long.
    assert elapsed < 30, elapsed
    [child] = [int(p) for p in pids.read_text().split()]
    assert not alive(child)


def test_an_alias_bomb_stops_at_the_memory_limit_with_a_one_line_error(mini_repo: Path):
    write_tree(
        mini_repo,
        {"overlays/bomb/kustomization.yaml": "resources: [cm.yaml]\n"},
    )
    (mini_repo / "overlays/bomb/cm.yaml").write_text(ALIAS_BOMB)
    pyproject = mini_repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.meshready]\n", "[tool.meshready]\nrender_memory_mib = 1024\n", 1
        )
    )
    result = run_cli("render", "overlays/bomb", "overlays/dev", cwd=mini_repo)
    assert result.returncode == 1
    assert "overlays/dev: 2 objects" in result.stdout
    [line] = [x for x in result.stderr.splitlines() if x.startswith("overlays/bomb:")]
    assert line == (
        "overlays/bomb: render failed: kustomize exceeded 1024 MiB (render_memory_mib in "
        "[tool.meshready]) and was stopped; an alias bomb or a huge generator input?"
    )


def test_the_memory_limit_is_a_whole_number(mini_repo: Path):
    pyproject = mini_repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.meshready]\n", '[tool.meshready]\nrender_memory_mib = "lots"\n', 1
        )
    )
    result = run_cli("render", cwd=mini_repo)
    assert result.returncode == 2
    assert "render_memory_mib must be a whole number of MiB" in result.stderr
