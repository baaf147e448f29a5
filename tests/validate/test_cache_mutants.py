"""validate's result cache in process, through store() and replay() (docs/testing.md): a
hit replays the report exactly, and every change the result depends on is a miss."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from meshready.validate import cache

ARGV = ["--strict", "manifests"]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with two input files and a schema file, the cache in a temp dir."""
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "repo"
    (repo / "manifests/sub").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[tool.meshready]\nkubernetes_version = "1.33"\n')
    (repo / "manifests/a.yaml").write_text("kind: ConfigMap\n")
    (repo / "manifests/sub/b.yml").write_text("kind: Secret\n")
    (repo / "schema.json").write_text("{}")
    monkeypatch.chdir(repo)
    return repo


def record(stdout: str = "ok\n", stderr: str | None = None, code: int = 0) -> None:
    files = ["manifests/a.yaml", "manifests/sub/b.yml"]
    consulted = {"schema.json": cache._stat("schema.json"), "gone.json": None}
    cache.store(cache.key_for(ARGV), ["manifests"], files, consulted, stdout, stderr, code)


def test_a_hit_replays_stdout_stderr_and_the_exit_code(workspace: Path, capsys):
    record("a.yaml: invalid\n", "1 invalid", 1)
    assert cache.replay(ARGV) == 1
    out, err = capsys.readouterr()
    assert out == "a.yaml: invalid\n"
    assert err == "1 invalid\n"
    record("all valid\n", None, 0)
    assert cache.replay(ARGV) == 0
    assert capsys.readouterr() == ("all valid\n", "")


def test_another_command_line_or_directory_is_a_miss(workspace: Path, monkeypatch):
    record()
    assert cache.replay(["--strict", "manifests", "-summary"]) is None
    assert cache.key_for(ARGV) != cache.key_for([*ARGV, "x"])
    (workspace / "manifests").rename(workspace / "elsewhere")
    (workspace / "manifests").mkdir()
    monkeypatch.chdir(workspace / "manifests")
    assert cache.replay(ARGV) is None


def test_an_edited_input_is_a_miss_even_at_the_same_size_and_mtime(workspace: Path):
    record()
    path = workspace / "manifests/a.yaml"
    stat = path.stat()
    path.write_text("kind: ConfigMaq\n")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.replay(ARGV) is None


def test_a_file_added_to_or_removed_from_an_input_directory_is_a_miss(workspace: Path):
    record()
    (workspace / "manifests/sub/c.yaml").write_text("kind: Pod\n")
    assert cache.replay(ARGV) is None
    (workspace / "manifests/sub/c.yaml").unlink()
    assert cache.replay(ARGV) == 0
    (workspace / "manifests/sub/b.yml").unlink()
    assert cache.replay(ARGV) is None


def test_a_vanished_input_is_a_miss_not_an_error(workspace: Path):
    record()
    (workspace / "manifests/a.yaml").unlink()
    (workspace / "manifests/sub/b.yml").unlink()
    (workspace / "manifests/sub").rmdir()
    (workspace / "manifests").rmdir()
    assert cache.replay(ARGV) is None


def test_a_changed_schema_file_is_a_miss(workspace: Path):
    record()
    (workspace / "schema.json").write_text('{"type": "object"}')
    assert cache.replay(ARGV) is None


def test_a_schema_file_that_appears_where_none_was_is_a_miss(workspace: Path):
    record()
    (workspace / "gone.json").write_text("{}")
    assert cache.replay(ARGV) is None


def test_an_edited_repository_configuration_is_a_miss(workspace: Path):
    record()
    assert cache.replay(ARGV) == 0
    (workspace / "pyproject.toml").write_text(
        '[tool.meshready]\nkubernetes_version = "1.32"\nvalidate_crd_dirs = ["crds"]\n'
    )
    assert cache.replay(ARGV) is None


def test_a_corrupt_or_missing_entry_is_a_miss(workspace: Path):
    assert cache.replay(ARGV) is None
    record()
    entry = Path(cache.cache_dir()) / f"{cache.key_for(ARGV)}.json"
    assert entry.is_file()
    entry.write_text("{not json")
    assert cache.replay(ARGV) is None


def test_store_leaves_no_temporary_file_and_ignores_an_unwritable_directory(
    workspace: Path, monkeypatch
):
    record()
    assert [p.suffix for p in Path(cache.cache_dir()).iterdir()] == [".json"]
    blocker = workspace / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(blocker / "cache"))
    record()  # no exception: the cache is an optimisation
    assert cache.replay(ARGV) is None


def test_cache_dir_precedence(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == str(tmp_path / "explicit")
    monkeypatch.setenv("MESHREADY_CACHE_DIR", "")
    assert cache.cache_dir() == os.path.join(str(tmp_path / "xdg"), "meshready", "validate")
    monkeypatch.delenv("MESHREADY_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == os.path.join(
        str(tmp_path / "home"), ".cache", "meshready", "validate"
    )


def test_capture_writes_through_and_keeps_a_copy():
    stream = io.StringIO()
    capture = cache.Capture(stream)
    assert capture.write("one ") == 4
    capture.write("two\n")
    assert stream.getvalue() == "one two\n"
    assert capture.text() == "one two\n"


def test_the_configuration_of_the_given_repository_is_watched(workspace: Path, monkeypatch):
    elsewhere = workspace.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    argv = ["--repo", str(workspace), str(workspace / "manifests")]
    files = [str(workspace / "manifests/a.yaml"), str(workspace / "manifests/sub/b.yml")]
    given = [str(workspace / "manifests")]
    cache.store(cache.key_for(argv), given, files, {}, "ok\n", None, 0, repo=str(workspace))
    assert cache.replay(argv) == 0
    (workspace / "pyproject.toml").write_text(
        '[tool.meshready]\nkubernetes_version = "1.30"\n# x\n'
    )
    assert cache.replay(argv) is None
