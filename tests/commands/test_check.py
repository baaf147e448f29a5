"""The main job, `meshready check`, on this repository and on a broken copy of it."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, run_cli


def test_the_repository_passes_the_main_job():
    result = run_cli("check", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("target "))
    table = lines[start : start + 3]
    assert table[0].split() == ["target", "objects", "render", "validate", "analyze", "gitops"]
    assert [row.split()[0] for row in table[1:]] == ["overlays/asm-ready", "overlays/dev"]
    assert all(row.split()[2:5] == ["ok", "ok", "ok"] for row in table[1:])
    assert "result: OK" in result.stderr


def test_a_failed_target_and_a_finding_fail_the_job_and_are_named(repo_copy: Path):
    repo = repo_copy
    (repo / "overlays/broken").mkdir()
    (repo / "overlays/broken/kustomization.yaml").write_text("resources: [gone.yaml]\n")
    service = repo / "base/hello/service.yaml"
    service.write_text(service.read_text().replace("  - name: http\n", "  - name: web\n"))

    result = run_cli("check", cwd=repo)
    assert result.returncode == 1
    assert "overlays/broken: render failed:" in result.stderr
    assert "gone.yaml: no such file or directory" in result.stderr
    assert (
        "overlays/dev: base/hello/service.yaml:15: error: MR102 service-port-protocol:"
        in result.stdout
    )
    rows = {
        line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("overlays/")
    }
    assert rows["overlays/broken"].split()[1:3] == ["0", "FAILED"]
    assert "1 error" in rows["overlays/dev"]
    assert "result: FAILED" in result.stderr
