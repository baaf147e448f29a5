"""kustomize's version is asked once per installed binary, and asked again when the binary
changes (a reinstall, an upgrade): a stale version would key the render cache wrongly."""

from __future__ import annotations

from pathlib import Path

from meshready.render.kustomize import find_kustomize


def fake_kustomize(directory: Path, version: str) -> tuple[Path, Path]:
    calls = directory / "calls"
    binary = directory / "kustomize"
    binary.write_text(f'#!/bin/sh\necho x >> "{calls}"\necho {version}\n')
    binary.chmod(0o755)
    return binary, calls


def test_the_version_is_remembered_per_binary_and_asked_again_after_a_change(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(tmp_path / "cache"))
    env = {"PATH": str(tmp_path)}
    binary, calls = fake_kustomize(tmp_path, "v5.1.0")
    assert find_kustomize(env).version == "v5.1.0"
    assert find_kustomize(env).version == "v5.1.0"
    assert calls.read_text().count("x") == 1

    # An upgrade in place (a new size, as an upgrade has; mtime alone is coarse on some file systems).
    binary.write_text(binary.read_text().replace("v5.1.0", "v5.12.0"))
    assert find_kustomize(env).version == "v5.12.0"
    assert calls.read_text().count("x") == 2


def test_an_unwritable_cache_costs_only_the_probe(tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    cache.write_text("a file, not a directory")
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(cache))
    _, calls = fake_kustomize(tmp_path, "v5.3.0")
    env = {"PATH": str(tmp_path)}
    assert find_kustomize(env).version == "v5.3.0"
    assert find_kustomize(env).version == "v5.3.0"
    assert calls.read_text().count("x") == 2
