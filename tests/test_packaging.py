"""The distributions PyPI would get: build the sdist, then the wheel from the sdist (as pip
does), from a copy of this working tree, and read what they carry.

`--no-isolation` uses the setuptools pinned in the test extra (the same pin as
[build-system]), so this needs no network; `nox -s lint` builds isolated and runs twine.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import meshready
import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    source = tmp_path_factory.mktemp("source")
    if (REPO / ".git").exists():
        # What a clone (plus uncommitted work) holds, without caches, venvs or old builds.
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout.decode()
        for relative in filter(None, listed.split("\0")):
            if (REPO / relative).is_file():
                (source / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / relative, source / relative)
    else:  # running from an unpacked sdist
        shutil.copytree(REPO, source, dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "source": source}


def sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as archive:
        # Drop the top-level `meshready-VERSION/` directory.
        return {name.partition("/")[2] for name in archive.getnames() if "/" in name}


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_sdist_carries_the_tests_with_conftest_fixtures_and_snapshots(dists) -> None:
    names = sdist_names(dists["sdist"])
    tests = {
        str(p.relative_to(dists["source"]))
        for p in (dists["source"] / "tests").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "tests/conftest.py" in tests
    assert any(t.startswith("tests/fixtures/") for t in tests)
    assert tests - names == set()
    # ... and the repository state those tests render, validate and analyze.
    for required in ("LICENSE", "CHANGELOG.md", "README.pypi.md", "pyproject.toml"):
        assert required in names
    for directory in ("base/", "overlays/", "components/", "clusters/", "bootstrap/", "schemas/"):
        assert any(n.startswith(directory) for n in names), directory
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_wheel_is_typed_and_licensed(dists) -> None:
    with zipfile.ZipFile(dists["wheel"]) as archive:
        names = set(archive.namelist())
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence) == (REPO / "LICENSE").read_bytes()
    assert "meshready/py.typed" in names
    # Only the package: the repository's tests and manifests stay in the sdist.
    assert {n.split("/")[0] for n in names} == {
        "meshready",
        f"meshready-{meshready.__version__}.dist-info",
    }


def test_metadata_is_fit_for_pypi(dists) -> None:
    metadata = wheel_metadata(dists["wheel"])
    # One version source: the package's own __version__.
    assert metadata["Version"] == meshready.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    # No deprecated licence classifier beside the SPDX expression.
    assert not any(c.startswith("License ::") for c in metadata.get_all("Classifier"))
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    # The long description is the short PyPI text, not the repository's tutorial README.
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (REPO / "README.pypi.md").read_text().strip()
