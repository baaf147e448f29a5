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
    assert table[0].split() == [
        "target",
        "objects",
        "render",
        "hydrated",
        "validate",
        "analyze",
        "gitops",
    ]
    assert [row.split()[0] for row in table[1:]] == ["overlays/asm-ready", "overlays/dev"]
    assert table[1].split()[2:7] == ["ok"] * 5
    assert table[2].split()[2:6] == ["ok", "-", "ok", "ok"]
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


def test_a_hand_edited_hydrated_file_fails_the_main_job_and_says_how_to_fix_it(repo_copy: Path):
    edited = repo_copy / "clusters/asm-ready/service_hello_hellosvc.yaml"
    edited.write_text(edited.read_text().replace("port: 80", "port: 81"))
    result = run_cli("check", cwd=repo_copy)
    assert result.returncode == 1
    assert (
        "clusters/asm-ready/service_hello_hellosvc.yaml: stale (rendered from overlays/asm-ready): "
        "run `nox -s render` (meshready render --hydrate) and commit the result"
    ) in result.stdout
    assert "hydrated: 1 files out of date" in result.stdout
    assert "result: FAILED" in result.stderr


def test_the_main_job_prints_every_warning_it_counts(repo_copy: Path):
    # Dropping the dedicated ServiceAccount is a warning (MR213), not an error.
    deployment = repo_copy / "base/loadgen/deployment.yaml"
    text = deployment.read_text()
    assert "serviceAccountName: loadgenerator" in text
    deployment.write_text(
        text.replace("serviceAccountName: loadgenerator", "serviceAccountName: default")
    )
    result = run_cli("check", "overlays/dev", cwd=repo_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 warning" in result.stdout
    [line] = [x for x in result.stdout.splitlines() if ": warning: MR213" in x]
    assert line.startswith("overlays/dev: base/loadgen/deployment.yaml:")


def test_many_findings_are_summarised_after_the_first_screen(repo_copy: Path):
    ports = "".join(f"  - name: web{i}\n    port: {1000 + i}\n" for i in range(60))
    (repo_copy / "overlays/dev/many.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: many\nspec:\n"
        "  selector: {app: helloserver}\n  ports:\n" + ports
    )
    kustomization = repo_copy / "overlays/dev/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("resources:\n", "resources:\n- many.yaml\n", 1)
    )
    result = run_cli("check", "overlays/dev", cwd=repo_copy)
    assert result.returncode == 1
    shown = [x for x in result.stdout.splitlines() if "MR102" in x]
    assert len(shown) == 40
    assert (
        "analyze: " in result.stdout and "more not shown (the first 40 are above)" in result.stdout
    )
