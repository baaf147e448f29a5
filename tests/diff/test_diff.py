"""`meshready diff` end to end: real git repositories in temp dirs, the real kustomize,
and snapshots of every output format."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO, run_cli, write_tree
from meshready import git as gitrev
from meshready.diff.output import MARKER
from meshready.errors import MeshreadyError

# Fixed identities and dates make every commit id the same on every run, so the short ids
# in the output can be snapshotted.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


DEPLOYMENT = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {{app: web}}
    spec:
      selector:
        matchLabels: {{app: web}}
      template:
        metadata:
          labels: {{app: web}}
        spec:
          containers:
          - name: web
            image: web:{version}
"""

SERVICE = """
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector: {app: web}
      ports:
      - name: http
        port: 80
"""


def secret(password_b64: str, token: str) -> str:
    return f"""
        apiVersion: v1
        kind: Secret
        metadata:
          name: credentials
        data:
          password: {password_b64}
        stringData:
          token: {token}
    """


def overlay(namespace: str, *extra: str) -> str:
    resources = "".join(f"- {r}\n" for r in ("../../base/app", *extra))
    return f"resources:\n{resources}namespace: {namespace}\n"


BASE_FILES = {
    "pyproject.toml": """
        [tool.meshready]
        target_roots = ["overlays"]
    """,
    "base/app/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n",
    "base/app/deployment.yaml": DEPLOYMENT.format(version="1.0"),
    "base/app/service.yaml": SERVICE,
    "overlays/dev/kustomization.yaml": overlay("dev", "secret.yaml"),
    # "hunter2" and "abc"; the snapshots must never contain either
    "overlays/dev/secret.yaml": secret("aHVudGVyMg==", "abc"),
    "overlays/prod/kustomization.yaml": overlay("prod", "settings.yaml"),
    "overlays/prod/settings.yaml": """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
        data:
          mode: fast
    """,
    "overlays/old/kustomization.yaml": overlay("old"),
    "overlays/flaky/kustomization.yaml": overlay("flaky"),
    "overlays/same/kustomization.yaml": "resources:\n- ../../base/app\nnamespace: same\n",
}


def change_on_feature_branch(repo: Path) -> None:
    """The change under review: every kind of difference a pull request can make."""
    write_tree(
        repo,
        {
            "base/app/deployment.yaml": DEPLOYMENT.format(version="1.1"),
            # password "hunter3"; the token is unchanged
            "overlays/dev/secret.yaml": secret("aHVudGVyMw==", "abc"),
            "overlays/prod/kustomization.yaml": overlay("prod", "features.yaml"),
            "overlays/prod/features.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: features
                data:
                  beta: "true"
            """,
            "overlays/new/kustomization.yaml": overlay("new"),
            "overlays/flaky/kustomization.yaml": overlay("flaky", "missing.yaml"),
        },
    )
    (repo / "overlays/prod/settings.yaml").unlink()
    (repo / "overlays/old/kustomization.yaml").unlink()
    # base/app is shared: keep `same` unchanged by pinning its image back.
    write_tree(
        repo,
        {
            "overlays/same/kustomization.yaml": (
                "resources:\n- ../../base/app\nnamespace: same\n"
                "images:\n- name: web\n  newTag: '1.0'\n"
            )
        },
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main holds BASE_FILES; the checked-out branch `feature` holds the change."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    write_tree(root, BASE_FILES)
    commit_all(root, "base")
    git(root, "checkout", "--quiet", "-b", "feature")
    change_on_feature_branch(root)
    commit_all(root, "change")
    return root


def diff_cli(repo: Path, *args: str, tmp: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return run_cli("diff", *args, cwd=repo, env=env)


@pytest.mark.parametrize("output", ["diff", "markdown", "json"])
def test_every_output_format_matches_its_snapshot(repo: Path, output: str, snapshot):
    proc = diff_cli(repo, "--base", "main", "--output", output)
    # overlays/flaky fails to render on the feature side: reported, and exit 1
    assert proc.returncode == 1, proc.stderr
    assert "overlays/flaky: render failed" in proc.stderr
    assert proc.stdout == snapshot


def test_report_covers_added_changed_removed_resources_and_targets(repo: Path):
    proc = diff_cli(repo, "--base", "main", "--output", "json")
    data = json.loads(proc.stdout)
    # The documented shape (schemas/output/diff.schema.json), failed targets included.
    schema = json.loads((REPO / "schemas/output/diff.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["version"] == 1
    targets = {t["target"]: t for t in data["targets"]}
    assert sorted(targets) == [
        "overlays/dev",
        "overlays/flaky",
        "overlays/new",
        "overlays/old",
        "overlays/prod",
        "overlays/same",
    ]

    def statuses(target: str) -> dict[str, str]:
        return {
            f"{r['kind']} {r['namespace']}/{r['name']}": r["status"]
            for r in targets[target]["resources"]
        }

    assert statuses("overlays/dev") == {
        "Deployment dev/web": "changed",
        "Secret dev/credentials": "changed",
    }
    assert statuses("overlays/prod") == {
        "ConfigMap prod/features": "added",
        "ConfigMap prod/settings": "removed",
        "Deployment prod/web": "changed",
    }
    assert targets["overlays/new"]["presence"] == "added"
    assert statuses("overlays/new") == {"Deployment new/web": "added", "Service new/web": "added"}
    assert targets["overlays/old"]["presence"] == "removed"
    assert set(statuses("overlays/old").values()) == {"removed"}
    assert targets["overlays/same"]["resources"] == []
    assert targets["overlays/same"]["unchanged"] == 2
    # A target broken on one side is reported, not shown as everything removed.
    flaky = targets["overlays/flaky"]
    assert flaky["base_error"] is None
    assert "missing.yaml" in flaky["head_error"]
    assert flaky["resources"] == []
    assert data["summary"] == {
        "targets": 6,
        "added": 3,
        "changed": 3,
        "removed": 3,
        "failed": 1,
    }


def test_secret_values_are_masked_but_a_changed_value_still_shows(repo: Path):
    for output in ("diff", "markdown", "json"):
        out = diff_cli(repo, "--base", "main", "--output", output, "overlays/dev").stdout
        for plain in ("hunter2", "hunter3", "aHVudGVyMg==", "aHVudGVyMw==", "abc\n"):
            assert plain not in out, (output, plain)
    text = diff_cli(repo, "--base", "main", "overlays/dev").stdout
    # sha256("hunter2") and sha256("hunter3"), first 8 hex digits: the decoded values hash
    # the same as `printf %s VALUE | sha256sum`.
    assert "-  password: <masked sha256:f52fbd32>" in text
    assert "+  password: <masked sha256:fb8c2e2b>" in text
    # the unchanged token is not in the diff lines, only (perhaps) in context
    assert not any(line.startswith(("+", "-")) and "token" in line for line in text.splitlines())


def test_explicit_targets_limit_both_sides(repo: Path):
    proc = diff_cli(repo, "--base", "main", "--output", "json", "overlays/new", "overlays/old")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [(t["target"], t["presence"]) for t in data["targets"]] == [
        ("overlays/new", "added"),
        ("overlays/old", "removed"),
    ]


def test_no_changes_exits_0_even_with_exit_code(repo: Path):
    git(repo, "checkout", "--quiet", "main")
    proc = diff_cli(repo, "--base", "main", "--exit-code")
    assert proc.returncode == 0, proc.stderr
    assert "no changes in 5 targets" in proc.stdout
    markdown = diff_cli(repo, "--base", "main", "--output", "markdown").stdout
    assert markdown.startswith(MARKER + "\n")
    assert "**No changes** in 5 targets" in markdown
    assert "<details>" not in markdown


def test_exit_code_flag_returns_1_on_changes(repo: Path):
    args = ("--base", "main", "overlays/dev")
    assert diff_cli(repo, *args).returncode == 0
    assert diff_cli(repo, *args, "--exit-code").returncode == 1


def test_uncommitted_changes_in_the_working_tree_are_compared(repo: Path):
    git(repo, "checkout", "--quiet", "main")
    (repo / "overlays/same/kustomization.yaml").write_text(
        "resources:\n- ../../base/app\nnamespace: same\nimages:\n- name: web\n  newTag: '2.0'\n"
    )
    proc = diff_cli(repo, "--base", "main", "--exit-code", "-u", "0")
    assert proc.returncode == 1
    assert "@@ -18 +18 @@\n-      - image: web:1.0\n+      - image: web:2.0\n" in proc.stdout


def test_default_base_is_the_merge_base_with_origin_main_then_main(repo: Path):
    fork = git(repo, "rev-parse", "main")
    # main moves on after the fork: the default still compares with the fork point.
    git(repo, "checkout", "--quiet", "main")
    (repo / "overlays/prod/settings.yaml").write_text("not: [valid")
    commit_all(repo, "main moves on")
    git(repo, "checkout", "--quiet", "feature")
    proc = diff_cli(repo, "--output", "json", "overlays/prod")
    data = json.loads(proc.stdout)
    assert data["base"] == f"merge base of HEAD and main ({fork[:7]})"
    assert data["targets"][0]["base_error"] is None

    git(repo, "update-ref", "refs/remotes/origin/main", fork)
    data = json.loads(diff_cli(repo, "--output", "json", "overlays/prod").stdout)
    assert data["base"] == f"merge base of HEAD and origin/main ({fork[:7]})"

    # REF... asks for the merge base explicitly; plain REF is taken as it is.
    data = json.loads(diff_cli(repo, "--base", "main...", "--output", "json").stdout)
    assert data["base"].startswith("merge base of HEAD and main")
    proc = diff_cli(repo, "--base", "main", "--output", "json", "overlays/prod")
    assert json.loads(proc.stdout)["targets"][0]["base_error"]  # main's tip is broken


def test_missing_base_ref_is_a_usage_error(repo: Path):
    proc = diff_cli(repo, "--base", "no-such-branch")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"meshready: error: base ref 'no-such-branch' does not exist in {repo.resolve()} "
        "(fetch it first, e.g. `git fetch origin main`)"
    )
    assert "Traceback" not in proc.stderr


def test_no_default_base_is_a_usage_error(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=trunk")
    write_tree(root, BASE_FILES)
    commit_all(root, "base")
    proc = diff_cli(root)
    assert proc.returncode == 2
    assert "none of origin/main, main exists" in proc.stderr


def test_outside_a_git_repository_is_a_usage_error(tmp_path: Path):
    write_tree(tmp_path, BASE_FILES)
    proc = diff_cli(tmp_path, "--base", "main")
    assert proc.returncode == 2
    assert "is not inside a git repository" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-u", "-1"), "-u/--unified"),
        (("--limit-bytes", "100"), "--limit-bytes must be at least"),
        (("--output", "json", "--limit-bytes", "5000"), "json output is never cut"),
    ],
)
def test_bad_flags_are_usage_errors(repo: Path, args: tuple[str, ...], message: str):
    proc = diff_cli(repo, "--base", "main", *args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_markdown_is_capped_with_a_notice_of_what_was_cut(repo: Path):
    whole = diff_cli(repo, "--base", "main", "--output", "markdown").stdout
    capped = diff_cli(
        repo, "--base", "main", "--output", "markdown", "--limit-bytes", "3000"
    ).stdout
    assert len(whole.encode()) > 3000
    assert len(capped.encode()) <= 3000
    assert capped.startswith(MARKER + "\n")
    assert "Truncated to fit 3000 bytes" in capped
    assert "| `overlays/prod` |" in capped  # the summary survives whole
    assert capped.count("<details>") == capped.count("</details>")


def test_subdirectory_repository_and_worktree_cleanup(tmp_path: Path):
    """The meshready root need not be the git root; the temp worktree never outlives a run."""
    root = tmp_path / "repo"
    (root / "deploy").mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    write_tree(root / "deploy", BASE_FILES)
    commit_all(root, "base")
    change_on_feature_branch(root / "deploy")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = diff_cli(root / "deploy", "--base", "main", "--output", "json", tmp=scratch)
    assert proc.returncode == 1, proc.stderr  # overlays/flaky
    assert json.loads(proc.stdout)["summary"]["changed"] == 3
    assert list(scratch.iterdir()) == []
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_worktree_is_removed_when_the_body_fails(repo: Path):
    commit = gitrev.commit_of(repo, "main")
    assert commit is not None
    seen: list[Path] = []
    with pytest.raises(RuntimeError), gitrev.checkout(repo, commit) as tree:
        seen.append(tree)
        assert (tree / "overlays/old/kustomization.yaml").is_file()
        raise RuntimeError("boom")
    assert not seen[0].exists()
    assert not seen[0].parent.exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_ref_that_looks_like_an_option_is_refused(repo: Path):
    with pytest.raises(MeshreadyError, match="does not exist"):
        gitrev.resolve_base(repo, "--all")


def test_a_commit_id_base_is_labelled_once(repo: Path):
    commit = git(repo, "rev-parse", "main")
    proc = diff_cli(repo, "--base", commit[:10], "--output", "json", "overlays/same")
    assert json.loads(proc.stdout)["base"] == commit[:7]


def test_each_side_discovers_targets_with_its_own_config(repo: Path):
    """Moving the targets (and target_roots) shows the old ones removed, the new added."""
    git(repo, "mv", "overlays", "envs")
    (repo / "pyproject.toml").write_text('[tool.meshready]\ntarget_roots = ["envs"]\n')
    data = json.loads(diff_cli(repo, "--base", "main", "--output", "json").stdout)
    presence = {t["target"]: t["presence"] for t in data["targets"]}
    assert presence["envs/same"] == "added"
    assert presence["overlays/same"] == "removed"


def test_a_base_without_config_uses_the_working_trees_target_roots(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    files = {k.replace("overlays/", "envs/"): v for k, v in BASE_FILES.items()}
    del files["pyproject.toml"]
    write_tree(root, files)
    commit_all(root, "no meshready config yet")
    (root / "pyproject.toml").write_text('[tool.meshready]\ntarget_roots = ["envs"]\n')
    proc = diff_cli(root, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["changed"] is False
    assert [t["target"] for t in data["targets"]] == [
        "envs/dev",
        "envs/flaky",
        "envs/old",
        "envs/prod",
        "envs/same",
    ]


def test_out_file_receives_the_output(repo: Path, tmp_path: Path):
    out = tmp_path / "comment.md"
    proc = diff_cli(repo, "--base", "main", "--output", "markdown", "--out-file", str(out))
    assert proc.stdout == ""
    assert out.read_text().startswith(MARKER + "\n")
    proc = diff_cli(repo, "--base", "main", "--out-file", str(tmp_path / "no/such/dir/x"))
    assert proc.returncode == 2
    assert "cannot write" in proc.stderr


def test_missing_kustomize_is_a_usage_error_and_leaves_no_worktree(repo: Path, tmp_path: Path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, **GIT_ENV, "KUSTOMIZE": str(tmp_path / "no-kustomize")}
    env["TMPDIR"] = str(scratch)
    proc = run_cli("diff", "--base", "main", "-j", "1", cwd=repo, env=env)
    assert proc.returncode == 2
    assert "is not an executable file" in proc.stderr
    assert list(scratch.iterdir()) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_one_job_at_a_time_still_finishes(repo: Path):
    proc = diff_cli(repo, "--base", "main", "-j", "1", "--output", "json")
    assert json.loads(proc.stdout)["summary"]["changed"] == 3
