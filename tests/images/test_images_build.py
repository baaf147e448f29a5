"""The real thing: build both images with the container engine, smoke-run them on loopback,
push them to a throwaway registry on loopback (Debian's docker-registry), pin the digests
into the production overlay of a clone of this repository, and check the result.

Outside CI these skip, with the reason, when no engine or registry binary is present; under
CI (CI=true) that is a failure, so a green CI always means the images were built and run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import MESHREADY
from meshready.errors import MeshreadyError
from meshready.images import build as images
from meshready.images import pin

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_BINARY = "docker-registry"  # Debian's package of the distribution registry


def _unavailable(reason: str) -> None:
    if os.environ.get("MESHREADY_REQUIRE_ENGINE") == "1":
        pytest.fail(f"CI must run the real image build, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def builder() -> images.Builder:
    try:
        found = images.detect_builder()
    except MeshreadyError as err:
        _unavailable(f"no container engine: {err}")
    if not found.can_run:
        _unavailable(f"{found.kind} builds but cannot run the smoke test")
    return found


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A registry on a free loopback port, storage in a temp dir; stopped by its PID."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        _unavailable(f"no {REGISTRY_BINARY} on PATH (apt-get install docker-registry)")
    state = tmp_path_factory.mktemp("registry")
    port = images.free_loopback_port()
    config = state / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(state / "data")}},
                "http": {"addr": f"127.0.0.1:{port}"},
            }
        )
    )
    log = (state / "registry.log").open("w")
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=state
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"registry did not start: {(state / 'registry.log').read_text()}")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean clone of this repository's HEAD: tags without -dirty, an overlay to pin."""
    target = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
        check=True,
        capture_output=True,
    )
    if not (target / "apps/hello/Dockerfile").is_file():
        _unavailable("HEAD has no apps/hello/Dockerfile yet")
    return target


def _meshready(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MESHREADY, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _manifest_status(registry: str, repository: str, digest: str) -> int:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{digest}",
        method="HEAD",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_build_smoke_push_pin_round_trip(builder, registry, clone: Path, tmp_path: Path):
    record = tmp_path / "images.json"
    proc = _meshready(
        "images",
        "build",
        "--smoke",
        "--push",
        "--registry",
        f"{registry}/asm-ready",
        "--pin",
        "overlays/asm-ready",
        "--record",
        str(record),
        cwd=clone,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)  # sizes and build times, visible with -s and in CI logs on failure

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "smoke: helloserver answered 'Hello World!' and /readyz on 127.0.0.1:" in proc.stdout
    assert "loadgen completed" in proc.stdout

    data = json.loads(record.read_text())
    assert data["revision"] == head
    assert data["dirty"] is False
    assert data["labels"]["org.opencontainers.image.revision"] == head
    for name in ("helloserver", "loadgen"):
        entry = data["images"][name]
        assert entry["tag"] == f"{registry}/asm-ready/{name}:{head[:12]}"
        assert entry["size_bytes"] > 0
        repository, digest = pin.split_reference(entry["digest"])
        assert repository == f"{registry}/asm-ready/{name}"
        # The registry really holds what was pinned.
        assert _manifest_status(registry, f"asm-ready/{name}", digest) == 200
        # The labels are on the image, with the commit time as the creation time.
        labels = images.image_labels(builder, entry["tag"])
        assert labels["org.opencontainers.image.revision"] == head
        commit_time = subprocess.run(
            ["git", "log", "-1", "--format=%ct"], cwd=clone, capture_output=True, text=True
        ).stdout.strip()
        assert labels["org.opencontainers.image.created"] == images.rfc3339(int(commit_time))

    kustomization = yaml.safe_load((clone / "overlays/asm-ready/kustomization.yaml").read_text())
    pinned = {e["name"]: e for e in kustomization["images"]}
    for name in ("helloserver", "loadgen"):
        assert "newTag" not in pinned[name]
        assert (
            f"{pinned[name]['newName']}@{pinned[name]['digest']}" == data["images"][name]["digest"]
        )

    check = _meshready("images", "check-pinned", cwd=clone)
    assert check.returncode == 0, check.stdout + check.stderr
    # The hydrated output the cluster applies was re-rendered with the digests.
    hydrated = "".join(p.read_text() for p in (clone / "clusters/asm-ready").glob("*.yaml"))
    assert data["images"]["helloserver"]["digest"] in hydrated
