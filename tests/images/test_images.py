"""`meshready images`: builder detection, tags and labels from a real git repository, command
lines, and parsing what engines and loadgen print. No engine needed here."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli, write_tree
from meshready import git
from meshready.errors import MeshreadyError
from meshready.images import build as images
from meshready.images.build import Builder, BuilderProbe, GitState

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32


# ------------------------------------------------------------------ builder choice


def test_docker_wins_over_podman_and_buildah():
    probes = {
        "docker": BuilderProbe("/usr/bin/docker", buildkit="env"),
        "podman": BuilderProbe("/usr/bin/podman"),
        "buildah": BuilderProbe("/usr/bin/buildah"),
    }
    assert images.choose_builder(None, probes) == Builder("docker", "/usr/bin/docker", "env")


def test_docker_without_an_engine_falls_back_to_podman_then_buildah():
    no_engine = BuilderProbe("/usr/bin/docker", usable=False, why_not="no engine answers")
    assert images.choose_builder(
        None, {"docker": no_engine, "podman": BuilderProbe("/bin/podman")}
    ) == Builder("podman", "/bin/podman")
    assert images.choose_builder(
        None, {"docker": no_engine, "podman": BuilderProbe(None), "buildah": BuilderProbe("/b")}
    ) == Builder("buildah", "/b")


def test_no_builder_is_one_line_naming_each_reason():
    no_engine = BuilderProbe("/usr/bin/docker", usable=False, why_not="no engine answers (x)")
    with pytest.raises(MeshreadyError) as err:
        images.choose_builder(None, {"docker": no_engine})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("no container builder found (docker: no engine answers (x); ")
    assert "podman: not on PATH; buildah: not on PATH" in message
    assert err.value.exit_code == 2


def test_builder_override_takes_that_builder_or_fails_clearly():
    probes = {"docker": BuilderProbe("/d", buildkit="buildx"), "buildah": BuilderProbe("/b")}
    assert images.choose_builder("buildah", probes) == Builder("buildah", "/b")
    with pytest.raises(MeshreadyError, match=r"BUILDER=podman: no such executable"):
        images.choose_builder("podman", probes)
    with pytest.raises(MeshreadyError, match=r"BUILDER=kaniko is not one of docker, podman"):
        images.choose_builder("kaniko", probes)
    down = {"docker": BuilderProbe("/d", usable=False, why_not="no engine answers")}
    with pytest.raises(MeshreadyError, match=r"BUILDER=/usr/bin/docker: no engine answers"):
        images.choose_builder("/usr/bin/docker", down)


def _fake_tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_detection_probes_real_executables_on_path(tmp_path: Path):
    # A docker CLI whose engine does not answer, as on a laptop with dockerd stopped.
    _fake_tool(tmp_path, "docker", 'echo "Cannot connect to the Docker daemon" >&2; exit 1')
    _fake_tool(tmp_path, "buildah", "exit 0")
    env = {"PATH": str(tmp_path)}
    assert images.detect_builder(env) == Builder("buildah", str(tmp_path / "buildah"))
    _fake_tool(tmp_path, "podman", "exit 0")
    assert images.detect_builder(env).kind == "podman"
    with pytest.raises(MeshreadyError, match="Cannot connect to the Docker daemon"):
        images.detect_builder({**env, "BUILDER": "docker"})


def test_detection_reads_the_docker_cli_generation(tmp_path: Path):
    # Before 23.0 the CLI embeds BuildKit; from 23.0 on BuildKit needs the buildx plugin.
    _fake_tool(
        tmp_path, "docker", 'case "$1" in version) echo "20.10.24 20.10.24";; *) exit 1;; esac'
    )
    assert images.detect_builder({"PATH": str(tmp_path)}) == Builder(
        "docker", str(tmp_path / "docker"), "env"
    )
    _fake_tool(tmp_path, "docker", 'case "$1" in version) echo "28.2.2 28.2.2";; *) exit 1;; esac')
    legacy = images.detect_builder({"PATH": str(tmp_path)})
    assert legacy.buildkit == ""
    assert "legacy builder" in legacy.describe()
    _fake_tool(tmp_path, "docker", 'case "$1" in version|buildx) echo "28.2.2 28.2.2";; esac')
    assert images.detect_builder({"PATH": str(tmp_path)}).buildkit == "buildx"


def test_cli_without_any_builder_prints_one_line_and_exits_2(tmp_path: Path):
    repo = write_tree(tmp_path / "repo", {"pyproject.toml": "[tool.meshready]\n"})
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    env.pop("BUILDER", None)
    proc = run_cli("images", "build", cwd=repo, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("meshready: error: no container builder found (docker: not")


def test_pin_without_push_is_a_usage_error(tmp_path: Path):
    proc = run_cli("images", "build", "--pin", "overlays/x", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--pin needs --push" in proc.stderr


# ------------------------------------------------------------------ tags and labels


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = write_tree(tmp_path / "repo", {"apps/hello/Dockerfile": "FROM scratch\n"})
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    env_date = "2024-05-06T07:08:09Z"
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one"],
        cwd=repo,
        check=True,
        env={**os.environ, "GIT_COMMITTER_DATE": env_date, "GIT_AUTHOR_DATE": env_date},
    )
    return repo


def test_tags_come_from_the_commit_and_mark_a_dirty_tree(git_repo: Path):
    state = git.repository_state(git_repo)
    head = _git(git_repo, "rev-parse", "HEAD")
    assert state == GitState(head, False, 1714979289, "")
    assert images.image_tag("localhost/asm-ready", "helloserver", state.sha, state.dirty) == (
        f"localhost/asm-ready/helloserver:{head[:12]}"
    )

    (git_repo / "apps/hello/new.txt").write_text("untracked files can be COPYed: dirty\n")
    dirty = git.repository_state(git_repo)
    assert dirty.dirty
    assert images.image_tag("gcr.io/p/asm-ready/", "loadgen", dirty.sha, dirty.dirty) == (
        f"gcr.io/p/asm-ready/loadgen:{head[:12]}-dirty"
    )


def test_ignored_files_do_not_make_the_tree_dirty(git_repo: Path):
    (git_repo / ".gitignore").write_text("build/\n")
    _git(git_repo, "add", ".gitignore")
    _git(git_repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "ign")
    (git_repo / "build").mkdir()
    (git_repo / "build/images.json").write_text("{}\n")
    assert not git.repository_state(git_repo).dirty


def test_source_label_comes_from_the_origin_remote(git_repo: Path):
    _git(git_repo, "remote", "add", "origin", "git@github.com:example/asm-ready.git")
    assert git.repository_state(git_repo).source == "https://github.com/example/asm-ready"


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r"),
        ("https://user:token@example.com/o/r.git", "https://example.com/o/r"),
        ("ssh://git@example.com/o/r.git", "https://example.com/o/r"),
        ("git@example.com:o/r.git", "https://example.com/o/r"),
        ("", ""),
    ],
)
def test_source_urls_never_carry_credentials(remote: str, url: str):
    assert git.source_url(remote) == url


@pytest.mark.parametrize(
    "remote", ["/work/main", "../asm-ready", "file:///srv/git/asm-ready.git", "C:/repos/x", ""]
)
def test_a_local_remote_gives_no_source_label(remote: str):
    assert git.source_url(remote) == ""


def test_labels_are_deterministic_commit_time_unless_source_date_epoch():
    state = GitState(SHA, False, 1714979289, "https://example.com/o/r")
    created = images.created_epoch(state, {})
    assert images.oci_labels(state, created) == {
        "org.opencontainers.image.created": "2024-05-06T07:08:09Z",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.source": "https://example.com/o/r",
    }
    assert images.created_epoch(state, {"SOURCE_DATE_EPOCH": "0"}) == 0
    dirty = GitState(SHA, True, 0, "")
    assert images.oci_labels(dirty, 0)["org.opencontainers.image.revision"] == SHA + "-dirty"
    with pytest.raises(MeshreadyError, match="SOURCE_DATE_EPOCH='soon' is not a number"):
        images.created_epoch(state, {"SOURCE_DATE_EPOCH": "soon"})


def test_an_empty_registry_is_refused():
    with pytest.raises(MeshreadyError, match="registry must not be empty"):
        images.image_tag("", "helloserver", SHA, False)


# ------------------------------------------------------------------ command lines and parsing


def test_build_commands_per_builder():
    labels = {"org.opencontainers.image.revision": SHA}
    args = {"SOURCE_DATE_EPOCH": "100", "BASE_IMAGE": "localhost/base:1"}
    ctx = Path("/repo/apps/hello")
    argv, env = images.build_command(Builder("docker", "/d", "env"), "r/h:t", ctx, labels, args)
    assert env == {"DOCKER_BUILDKIT": "1"}
    assert argv == [
        "/d", "build", "--network", "host", "--tag", "r/h:t", "--file",
        "/repo/apps/hello/Dockerfile", "--label", f"org.opencontainers.image.revision={SHA}",
        "--build-arg", "SOURCE_DATE_EPOCH=100", "--build-arg", "BASE_IMAGE=localhost/base:1",
        "/repo/apps/hello",
    ]  # fmt: skip
    argv, env = images.build_command(Builder("docker", "/d", "buildx"), "r/h:t", ctx, {}, {})
    assert argv[:4] == ["/d", "buildx", "build", "--load"]
    assert env == {}
    argv, _ = images.build_command(Builder("buildah", "/b"), "r/h:t", ctx, {}, args)
    # buildah and podman clamp every timestamp in the image to the commit time.
    assert argv[argv.index("--timestamp") + 1] == "100"


def test_repo_digest_is_the_one_of_the_pushed_repository():
    digests = [f"other.example/x/helloserver@{DIGEST}", f"127.0.0.1:5000/a/helloserver@{DIGEST}"]
    assert images.pick_repo_digest(digests, "127.0.0.1:5000/a/helloserver:abc") == digests[1]
    with pytest.raises(MeshreadyError, match=r"no registry digest for 127\.0\.0\.1:5000/a/loadgen"):
        images.pick_repo_digest(digests, "127.0.0.1:5000/a/loadgen:abc")


def test_loadgen_report_line_is_the_last_progress_line():
    output = (
        "10 request(s) complete to http://127.0.0.1:8080/\n"
        "30 request(s) complete to http://127.0.0.1:8080/\n"
        "errors: 0\n"
    )
    assert images.parse_loadgen_report(output) == (30, "http://127.0.0.1:8080/")
    with pytest.raises(MeshreadyError, match="no `N request"):
        images.parse_loadgen_report("Traceback: boom\n")


def test_image_specs_default_to_the_two_apps_and_reject_junk():
    assert [s.name for s in images.image_specs({})] == ["helloserver", "loadgen"]
    specs = images.image_specs({"contexts": {"web": "apps/web"}})
    assert specs == [images.ImageSpec("web", "apps/web")]
    with pytest.raises(MeshreadyError):
        images.image_specs({"contexts": ["apps/web"]})
