"""The render cache with the real kustomize: what each target reads, byte-identical hits,
never a stale hit, the origin cross-check, concurrent and interrupted writes, pruning,
and `meshready diff` sharing entries between the base revision and the working tree."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import MESHREADY, run_cli, write_tree
from meshready import render
from meshready.render import cache as render_cache
from meshready.render import kustomize
from meshready.render.deps import Dependencies, DependencyScanner


@pytest.fixture(scope="module")
def kz() -> kustomize.Kustomize:
    return kustomize.find_kustomize()


@pytest.fixture
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """A cache of this test's own, for the CLI (environment) and the API alike."""
    directory = tmp_path_factory.mktemp("render-cache")
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(directory))
    return directory


def serialized(result: render.RenderResult) -> str:
    """Everything a render result carries but its timing, in order, exactly."""
    return json.dumps(
        [result.target, result.error, [[o.obj, o.origin] for o in result.objects]],
        ensure_ascii=False,
    )


def cache_lines(stderr: str) -> dict[str, str]:
    """`-v` output: target -> hit / miss / not cached."""
    found = {}
    for line in stderr.splitlines():
        target, _, rest = line.partition(": ")
        if rest.startswith("render cache "):
            found[target] = rest.removeprefix("render cache ").split(" ", 1)[0]
        elif rest.startswith("not cached: "):
            found[target] = "not cached"
    return found


def render_cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    proc = run_cli("render", "-v", *args, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return proc


# -- what a target reads -------------------------------------------------------------------


def test_dependencies_follow_bases_and_components(mini_repo: Path):
    deps = DependencyScanner(mini_repo).dependencies("overlays/prod")
    assert deps.uncacheable is None
    assert deps.files == {
        "overlays/prod/kustomization.yaml",
        "overlays/prod/namespace.yaml",
        "base/app/kustomization.yaml",
        "base/app/deployment.yaml",
        "base/app/service.yaml",
        "components/extra/kustomization.yaml",
        "components/extra/configmap.yaml",
    }
    # Another kustomization file name appearing would make kustomize fail: it is in the key.
    assert "overlays/prod/kustomization.yml" in deps.absent
    assert "base/app/Kustomization" in deps.absent


def test_dependencies_name_every_kind_of_file_a_kustomization_reads(tmp_path: Path):
    write_tree(
        tmp_path,
        {
            "t/kustomization.yaml": """
                resources: [r.yaml]
                patches: [{path: p.yaml}, {patch: "inline: true"}]
                patchesStrategicMerge: [psm.yaml]
                patchesJson6902: [{path: j.yaml, target: {kind: X, name: y}}]
                configMapGenerator:
                - name: c
                  files: [f.txt, key=g.txt]
                  envs: [e.env]
                secretGenerator:
                - name: s
                  env: s.env
                configurations: [conf.yaml]
                crds: [crd.yaml]
                openapi: {path: openapi.json}
                replacements: [{path: repl.yaml}]
                transformers: [builtin.yaml]
            """,
            "t/builtin.yaml": """
                apiVersion: builtin
                kind: PatchTransformer
                metadata: {name: p}
                path: bp.yaml
            """,
            **{
                f"t/{name}": "x: 1\n"
                for name in (
                    "r.yaml",
                    "p.yaml",
                    "psm.yaml",
                    "j.yaml",
                    "f.txt",
                    "g.txt",
                    "conf.yaml",
                    "crd.yaml",
                    "openapi.json",
                    "repl.yaml",
                    "bp.yaml",
                )
            },
            "t/e.env": "# comment\nA=1\n",
            "t/s.env": "B=2\n",
        },
    )
    deps = DependencyScanner(tmp_path).dependencies("t")
    assert deps.uncacheable is None
    assert deps.files == {
        f"t/{n}"
        for n in (
            "kustomization.yaml",
            "r.yaml",
            "p.yaml",
            "psm.yaml",
            "j.yaml",
            "f.txt",
            "g.txt",
            "e.env",
            "s.env",
            "conf.yaml",
            "crd.yaml",
            "openapi.json",
            "repl.yaml",
            "builtin.yaml",
            "bp.yaml",
        )
    }


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {"t/kustomization.yaml": "helmCharts:\n- name: nginx\n  repo: https://x.invalid\n"},
            "helm",
        ),
        (
            {"t/kustomization.yaml": "resources:\n- https://github.com/o/r//base?ref=v1\n"},
            "remote",
        ),
        ({"t/kustomization.yaml": "resources:\n- github.com/o/r/base\n"}, "remote"),
        ({"t/kustomization.yaml": "resources:\n- gone\n"}, "would fetch it"),
        ({"t/kustomization.yaml": "resources: [a\n"}, "cannot parse"),
        ({"t/kustomization.yaml": "[1, 2]\n"}, "not a mapping"),
        ({"t/kustomization.yaml": "someNewField: [x.yaml]\n"}, "unknown field"),
        (
            {
                "t/kustomization.yaml": "transformers: [fn.yaml]\n",
                "t/fn.yaml": (
                    "apiVersion: example.com/v1\nkind: Fn\nmetadata:\n  name: f\n  annotations:\n"
                    "    config.kubernetes.io/function: |\n      exec: {path: ./run.sh}\n"
                ),
            },
            "KRM function",
        ),
        (
            {
                "t/kustomization.yaml": "generators: [plugin.yaml]\n",
                "t/plugin.yaml": "apiVersion: someteam.example.com/v1\nkind: Maker\n",
            },
            "is a plugin",
        ),
        ({"t/kustomization.yaml": "transformers: [dir]\n", "t/dir/x": ""}, "not a file"),
        (
            {"t/kustomization.yaml": "configMapGenerator:\n- name: c\n  files: [../../out.txt]\n"},
            "outside the repository",
        ),
        (
            {
                "t/kustomization.yaml": "secretGenerator:\n- name: s\n  envs: [s.env]\n",
                "t/s.env": "# from the CI environment\nA=1\nTOKEN\n",
            },
            "t/s.env:3: TOKEN would take its value from the environment",
        ),
    ],
)
def test_what_cannot_be_seen_statically_is_uncacheable(tmp_path: Path, files, reason):
    repo = write_tree(tmp_path / "repo", files)
    (tmp_path / "out.txt").write_text("outside\n")
    deps = DependencyScanner(repo).dependencies("t")
    assert deps.uncacheable is not None
    assert reason in deps.uncacheable


def test_paths_no_file_system_takes_are_uncacheable_not_a_crash(tmp_path: Path):
    repo = write_tree(
        tmp_path,
        {
            "nul/kustomization.yaml": 'resources: ["a\\x00b"]\n',
            "loop/kustomization.yaml": "resources: [l1]\n",
        },
    )
    (repo / "loop/l1").symlink_to("l2")
    (repo / "loop/l2").symlink_to("l1")
    scanner = DependencyScanner(repo)
    for target in ("nul", "loop"):
        deps = scanner.dependencies(target)
        assert deps.uncacheable, target


def test_a_symlink_leaving_the_repository_is_uncacheable_and_says_so(
    mini_repo: Path, tmp_path_factory, cache_dir: Path
):
    # kustomize follows a base that is a symlink to a directory anywhere.
    outside = tmp_path_factory.mktemp("outside") / "app"
    shutil.copytree(mini_repo / "base/app", outside)
    (mini_repo / "base/linked").symlink_to(outside)
    _edit(mini_repo / "overlays/prod/kustomization.yaml", "../../base/app", "../../base/linked")
    for _ in range(2):
        proc = render_cli(mini_repo, "overlays/prod", "overlays/dev")
        assert cache_lines(proc.stderr)["overlays/prod"] == "not cached"
        assert "resolves outside the repository" in proc.stderr
    assert cache_lines(proc.stderr)["overlays/dev"] == "hit"  # the other target is cached


# -- identical output ----------------------------------------------------------------------


def test_every_target_of_the_repository_is_identical_cold_and_warm(
    repo_copy: Path, kz, cache_dir: Path
):
    targets = render.discover_targets(repo_copy, ["overlays", "clusters", "base"])
    assert len(targets) >= 4
    fresh = render.render_targets(repo_copy, targets, kz, 60)
    cold_cache = render_cache.RenderCache(kz)
    cold = render.render_targets(repo_copy, targets, kz, 60, cache=cold_cache)
    warm_cache = render_cache.RenderCache(kz)
    warm = render.render_targets(repo_copy, targets, kz, 60, cache=warm_cache)
    assert all(r.ok for r in fresh), [r.error for r in fresh]
    assert {o.status for o in cold_cache.outcomes} == {render_cache.MISS}
    assert [o.status for o in warm_cache.outcomes] == [render_cache.HIT] * len(targets)
    assert [serialized(r) for r in warm] == [serialized(r) for r in cold]
    assert [serialized(r) for r in warm] == [serialized(r) for r in fresh]

    args = ["render", "--print", "--include-bases"]
    uncached = run_cli(*args, "--no-cache", cwd=repo_copy)
    first = run_cli(*args, cwd=repo_copy)
    second = run_cli(*args, "-v", cwd=repo_copy)
    assert uncached.returncode == first.returncode == second.returncode == 0, second.stderr
    assert set(cache_lines(second.stderr).values()) == {"hit"}
    assert second.stdout.encode() == first.stdout.encode() == uncached.stdout.encode()
    assert "kind: Deployment" in second.stdout


def test_check_reports_the_same_cold_and_warm(repo_copy: Path, cache_dir: Path):
    def without_duration(proc: subprocess.CompletedProcess) -> str:
        return re.sub(r"; [\d.]+s$", "", proc.stdout, flags=re.MULTILINE)

    cold = run_cli("check", cwd=repo_copy)
    warm = run_cli("check", cwd=repo_copy)
    assert cold.returncode == warm.returncode == 0, warm.stdout + warm.stderr
    assert without_duration(warm) == without_duration(cold)
    targets = len(render.discover_targets(repo_copy, ["overlays", "clusters"]))
    assert f"render cache: 0 hits, {targets} misses, 0 not cacheable" in cold.stderr
    assert f"render cache: {targets} hits, 0 misses, 0 not cacheable" in warm.stderr


# -- never stale -----------------------------------------------------------------------------


def _two_level_repo(mini_repo: Path) -> None:
    """overlays/deep -> bases/mid -> base/app, and a patch and a generator in overlays/gen."""
    write_tree(
        mini_repo,
        {
            "bases/mid/kustomization.yaml": "resources: [../../base/app]\nnamePrefix: mid-\n",
            "overlays/deep/kustomization.yaml": "resources: [../../bases/mid]\nnamespace: deep\n",
            "overlays/gen/kustomization.yaml": """
                resources: [../../base/app]
                patches:
                - path: replicas.yaml
                configMapGenerator:
                - name: settings
                  files: [settings.conf]
            """,
            "overlays/gen/replicas.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: web}
                spec: {replicas: 2}
            """,
            "overlays/gen/settings.conf": "level=1\n",
        },
    )


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("target", "edit", "expected"),
    [
        # a resource file of a base
        ("overlays/dev", ("base/app/deployment.yaml", "web:1.0", "web:1.1"), "web:1.1"),
        # a patch
        (
            "overlays/gen",
            ("overlays/gen/replicas.yaml", "replicas: 2", "replicas: 5"),
            "replicas: 5",
        ),
        # a component's resource
        ("overlays/prod", ("components/extra/configmap.yaml", "b: 2", "b: 3"), "b: 3"),
        # a configMapGenerator input
        ("overlays/gen", ("overlays/gen/settings.conf", "level=1", "level=2"), "level=2"),
        # a base two levels down (overlay -> bases/mid -> base/app)
        ("overlays/deep", ("base/app/service.yaml", "port: 80", "port: 8080"), "port: 8080"),
        # a kustomization in the middle of the chain
        ("overlays/deep", ("bases/mid/kustomization.yaml", "mid-", "middle-"), "middle-web"),
    ],
)
def test_an_edited_dependency_is_a_miss_and_renders_the_new_output(
    mini_repo: Path, cache_dir: Path, target: str, edit: tuple[str, str, str], expected: str
):
    _two_level_repo(mini_repo)
    before = render_cli(mini_repo, target, "--print")
    warm = render_cli(mini_repo, target, "--print")
    assert cache_lines(warm.stderr) == {target: "hit"}
    assert warm.stdout == before.stdout

    _edit(mini_repo / edit[0], edit[1], edit[2])
    after = render_cli(mini_repo, target, "--print")
    assert cache_lines(after.stderr) == {target: "miss"}
    assert after.stdout != before.stdout
    assert expected in after.stdout
    fresh = run_cli("render", target, "--print", "--no-cache", cwd=mini_repo)
    assert after.stdout == fresh.stdout


def test_a_new_kustomization_file_name_beside_the_old_one_is_a_miss(
    mini_repo: Path, cache_dir: Path
):
    render_cli(mini_repo, "overlays/dev")
    shutil.copy(
        mini_repo / "overlays/dev/kustomization.yaml", mini_repo / "overlays/dev/kustomization.yml"
    )
    proc = run_cli("render", "-v", "overlays/dev", cwd=mini_repo)
    assert proc.returncode == 1  # kustomize refuses two kustomization files
    assert cache_lines(proc.stderr) == {"overlays/dev": "miss"}


def test_another_kustomize_binary_is_a_miss(mini_repo: Path, cache_dir: Path, tmp_path_factory):
    real = shutil.which(os.environ.get("KUSTOMIZE", "kubectl"))
    assert real
    wrapper = tmp_path_factory.mktemp("bin") / "kubectl-wrapped"
    wrapper.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "KUSTOMIZE": str(wrapper)}
    first = run_cli("render", "-v", "overlays/dev", cwd=mini_repo, env=env)
    again = run_cli("render", "-v", "overlays/dev", cwd=mini_repo, env=env)
    assert cache_lines(first.stderr) == {"overlays/dev": "miss"}, first.stderr
    assert cache_lines(again.stderr) == {"overlays/dev": "hit"}
    wrapper.write_text(f'#!/bin/sh\n# another build\nexec "{real}" "$@"\n')
    changed = run_cli("render", "-v", "overlays/dev", cwd=mini_repo, env=env)
    assert cache_lines(changed.stderr) == {"overlays/dev": "miss"}


def test_a_file_edited_while_kustomize_runs_is_not_stored(
    mini_repo: Path, cache_dir: Path, tmp_path_factory
):
    real = shutil.which(os.environ.get("KUSTOMIZE", "kubectl"))
    assert real
    # A kustomize that edits a base file as it starts, as a person or a checkout might.
    editing = tmp_path_factory.mktemp("bin") / "kubectl-editing"
    service = mini_repo / "base/app/service.yaml"
    editing.write_text(
        f'#!/bin/sh\n[ "$1" = kustomize ] && echo "# edited" >> "{service}"\nexec "{real}" "$@"\n'
    )
    editing.chmod(0o755)
    env = {**os.environ, "KUSTOMIZE": str(editing)}
    proc = run_cli("render", "-v", "overlays/dev", cwd=mini_repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "overlays/dev: render cache miss (its files changed during the render)" in proc.stderr
    assert service.read_text().endswith("# edited\n")
    assert render_cache.info().entries == 0


def test_the_kustomize_identity_is_its_content_hashed_once_per_install(tmp_path: Path):
    cache = tmp_path / "cache"
    one, two = tmp_path / "one" / "kustomize", tmp_path / "two" / "kustomize"
    for path in (one, two):
        path.parent.mkdir()
        path.write_bytes(b"#!/bin/sh\necho v5\n")
    first = render_cache.kustomize_identity(kustomize.Kustomize((str(one), "build"), "v5"), cache)
    # The same bytes installed elsewhere: the same identity, so the same cache entries.
    assert (
        render_cache.kustomize_identity(kustomize.Kustomize((str(two), "build"), "v5"), cache)
        == first
    )
    assert len(list((cache / "binaries").iterdir())) == 2  # one remembered digest per install
    one.write_bytes(b"#!/bin/sh\necho v5 patched\n")
    assert (
        render_cache.kustomize_identity(kustomize.Kustomize((str(one), "build"), "v5"), cache)
        != first
    )
    assert (
        render_cache.kustomize_identity(kustomize.Kustomize((str(two), "build"), "v6"), cache)
        != first
    )


def test_the_same_render_wanted_twice_at_once_is_built_once(
    mini_repo: Path, cache_dir: Path, tmp_path_factory
):
    """`diff` renders an unchanged target on both sides at the same time: the second
    waits for the first and takes its result instead of running kustomize again."""
    real = shutil.which(os.environ.get("KUSTOMIZE", "kubectl"))
    assert real
    work = tmp_path_factory.mktemp("gated")
    gate, log = work / "gate", work / "builds.log"
    os.mkfifo(gate)
    # A kustomize that logs each build, then waits for the test to open the gate.
    gated = work / "kubectl-gated"
    gated.write_text(
        f'#!/bin/sh\nif [ "$1" = kustomize ]; then echo build >> "{log}"; read _ < "{gate}"; fi\n'
        f'exec "{real}" "$@"\n'
    )
    gated.chmod(0o755)
    kz_gated = kustomize.find_kustomize({"KUSTOMIZE": str(gated), "PATH": os.environ["PATH"]})

    class Observed(render_cache.RenderCache):
        waiting = threading.Event()

        def _wait_for(self, running: threading.Event) -> None:
            self.waiting.set()
            super()._wait_for(running)

    cache = Observed(kz_gated)
    results: dict[str, render.RenderResult] = {}

    def render_as(name: str) -> None:
        results[name] = render.render_target(mini_repo, "overlays/dev", kz_gated, 60, cache)

    first = threading.Thread(target=render_as, args=("first",), daemon=True)
    first.start()
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling for the build to start, bounded by the deadline
    assert log.read_text() == "build\n"
    second = threading.Thread(target=render_as, args=("second",), daemon=True)
    second.start()
    assert cache.waiting.wait(timeout=60), "the second render did not wait for the first"
    with gate.open("w") as opened:
        opened.write("go\n")
    first.join(timeout=60)
    second.join(timeout=60)
    assert log.read_text() == "build\n"  # kustomize ran once
    assert results["first"].ok and results["second"].ok
    assert serialized(results["first"]) == serialized(results["second"])
    assert sorted(o.status for o in cache.outcomes) == [render_cache.HIT, render_cache.MISS]


# -- the origin cross-check ----------------------------------------------------------------------


def test_origins_outside_the_computed_dependencies_are_not_cached(
    mini_repo: Path, kz, cache_dir: Path
):
    cache = render_cache.RenderCache(kz)
    lookup = cache.lookup(mini_repo, "overlays/prod")
    assert lookup.key is not None and lookup.objects is None
    # As if the scan had missed the component: kustomize's origins name a file outside the set.
    incomplete = Dependencies(
        files=frozenset(f for f in lookup.deps.files if not f.startswith("components/")),
        absent=lookup.deps.absent,
    )
    result = render.render_target(mini_repo, "overlays/prod", kz, 60)
    cache.store(render_cache.Lookup(mini_repo, "overlays/prod", incomplete, lookup.key), result)
    outcome = cache.outcomes[-1]
    assert outcome.status == render_cache.UNCACHEABLE
    assert "components/extra/configmap.yaml" in outcome.reason
    assert "dependencies are incomplete" in outcome.reason
    assert render_cache.info().entries == 0

    # With the complete set the same render is stored, and served next time.
    cache.store(lookup, result)
    assert cache.outcomes[-1].status == render_cache.MISS
    again = render_cache.RenderCache(kz).lookup(mini_repo, "overlays/prod")
    assert again.objects is not None
    assert serialized(render.RenderResult("overlays/prod", again.objects)) == serialized(result)


def test_values_json_cannot_keep_are_not_cached(kz, cache_dir: Path, mini_repo: Path):
    cache = render_cache.RenderCache(kz)
    lookup = cache.lookup(mini_repo, "overlays/dev")
    dated = render.RenderResult(
        "overlays/dev",
        [
            render.RenderedObject(
                {"kind": "ConfigMap", "metadata": {"name": "d"}, "data": {1: "x"}},
                {"path": "overlays/dev/kustomization.yaml"},
            )
        ],
    )
    cache.store(lookup, dated)
    assert cache.outcomes[-1].status == render_cache.UNCACHEABLE
    assert "not a string" in cache.outcomes[-1].reason


# -- robustness: torn files, concurrent runs, pruning ----------------------------------------------


def test_a_torn_or_missing_blob_is_a_miss_and_is_replaced(mini_repo: Path, cache_dir: Path):
    expected = render_cli(mini_repo, "overlays/dev", "--print").stdout
    blobs = list((cache_dir / render_cache.LAYOUT / "blobs").rglob("*"))
    blob = next(p for p in blobs if p.is_file())
    blob.write_bytes(blob.read_bytes()[:20])  # as an interrupted non-atomic writer would
    torn = render_cli(mini_repo, "overlays/dev", "--print")
    assert cache_lines(torn.stderr) == {"overlays/dev": "miss"}
    assert torn.stdout == expected
    blob.unlink()
    missing = render_cli(mini_repo, "overlays/dev", "--print")
    assert cache_lines(missing.stderr) == {"overlays/dev": "miss"}
    assert missing.stdout == expected
    assert cache_lines(render_cli(mini_repo, "overlays/dev").stderr) == {"overlays/dev": "hit"}


def test_concurrent_runs_share_the_cache_safely(mini_repo: Path, cache_dir: Path):
    command = [MESHREADY, "render", "--print", "overlays/dev", "overlays/prod"]
    runs = [
        subprocess.Popen(
            command, cwd=mini_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, [err for _, err in outputs]
    fresh = run_cli(
        "render", "--print", "--no-cache", "overlays/dev", "overlays/prod", cwd=mini_repo
    )
    assert {out for out, _ in outputs} == {fresh.stdout}
    assert not list((cache_dir / render_cache.LAYOUT / "tmp").iterdir())  # no leftovers
    warm = render_cli(mini_repo, "overlays/dev", "overlays/prod")
    assert set(cache_lines(warm.stderr).values()) == {"hit"}


def test_prune_removes_the_least_recently_used_past_the_limit(tmp_path: Path):
    layout = tmp_path / render_cache.LAYOUT
    paths = []
    for index in range(10):
        path = layout / "blobs" / f"{index:02d}" / f"{index:064d}"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1_000_000 + index, 1_000_000 + index))
        paths.append(path)
    os.utime(paths[0], (2_000_000, 2_000_000))  # the oldest written, but used last
    leftover = layout / "tmp" / "abc.123"
    leftover.parent.mkdir()
    leftover.write_bytes(b"half")
    os.utime(leftover, (1_000, 1_000))

    removed = render_cache.prune(layout, limit=6000)
    kept = [p for p in paths if p.exists()]
    assert removed == 10000 - 4000  # down to 80% of the limit
    assert kept == [paths[0], *paths[7:]]
    assert not leftover.exists()
    assert render_cache.prune(layout, limit=6000) == 0


def test_a_run_prunes_the_cache_to_its_limit(repo_copy: Path, cache_dir: Path):
    env = {**os.environ, render_cache.MAX_MB_ENV: "1"}
    filler = cache_dir / render_cache.LAYOUT / "blobs" / "00" / ("0" * 64)
    filler.parent.mkdir(parents=True)
    filler.write_bytes(b"x" * (2 << 20))
    os.utime(filler, (1_000_000, 1_000_000))
    proc = run_cli("render", cwd=repo_copy, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not filler.exists()
    assert 0 < render_cache.info().bytes <= 1 << 20


def test_a_bad_size_limit_is_a_usage_error(mini_repo: Path, cache_dir: Path):
    env = {**os.environ, render_cache.MAX_MB_ENV: "lots"}
    proc = run_cli("render", "overlays/dev", cwd=mini_repo, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"meshready: error: ${render_cache.MAX_MB_ENV}='lots': give a whole number of MiB, 1 or more"
    )


# -- the flags and the cache command ----------------------------------------------------------------


def test_no_cache_neither_reads_nor_writes(mini_repo: Path, cache_dir: Path):
    proc = run_cli("render", "--no-cache", "-v", cwd=mini_repo)
    assert proc.returncode == 0
    assert "render cache" not in proc.stderr
    assert render_cache.info().entries == 0
    for command in (["check"], ["analyze"], ["validate", "--rendered"]):
        assert run_cli(*command, "--no-cache", cwd=mini_repo).returncode in (0, 1)
    assert render_cache.info().entries == 0
    assert run_cli("validate", "--rendered", cwd=mini_repo).returncode in (0, 1)
    assert render_cache.info().entries == 2


def test_cache_info_and_clear(mini_repo: Path, cache_dir: Path):
    render_cli(mini_repo)
    info = run_cli("cache", "info", cwd=mini_repo)
    assert info.returncode == 0
    assert f"directory: {cache_dir / render_cache.LAYOUT}" in info.stdout
    assert "entries:   2" in info.stdout
    cleared = run_cli("cache", "clear", cwd=mini_repo)
    assert cleared.returncode == 0
    assert "removed 2 entries and 2 blobs" in cleared.stdout
    assert render_cache.info().entries == 0
    assert cache_lines(render_cli(mini_repo).stderr) == {
        "overlays/dev": "miss",
        "overlays/prod": "miss",
    }
    assert run_cli("cache", cwd=mini_repo).returncode == 2


def test_the_cache_directory_follows_the_environment(tmp_path: Path):
    home = os.path.expanduser("~")
    assert render_cache.cache_directory({"MESHREADY_CACHE_DIR": "/x"}) == Path("/x")
    assert render_cache.cache_directory({"XDG_CACHE_HOME": "/c"}) == Path("/c/meshready/render")
    assert render_cache.cache_directory({}) == Path(home) / ".cache/meshready/render"


# -- diff: both sides from one cache ---------------------------------------------------------


def test_diff_renders_unchanged_targets_from_the_cache_on_both_sides(
    mini_repo: Path, cache_dir: Path
):
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=mini_repo, env=env, check=True)
    render_cli(mini_repo)  # the working tree, equal to the base so far
    _edit(mini_repo / "overlays/dev/kustomization.yaml", "namespace: dev", "namespace: dev2")

    proc = run_cli("diff", "-v", "--base", "main", cwd=mini_repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "namespace: dev2" in proc.stdout
    outcomes = [line for line in proc.stderr.splitlines() if " (in " in line]
    base_side = [line for line in outcomes if "meshready-diff-" in line]
    head_side = [line for line in outcomes if "meshready-diff-" not in line]
    assert sorted(line.split(" (in ")[0] + ":" + line.rsplit(": ", 1)[1] for line in base_side) == [
        "overlays/dev:render cache hit",
        "overlays/prod:render cache hit",
    ]
    assert sorted(line.split(" (in ")[0] + ":" + line.rsplit(": ", 1)[1] for line in head_side) == [
        "overlays/dev:render cache miss",
        "overlays/prod:render cache hit",
    ]
    fresh = run_cli("diff", "--no-cache", "--base", "main", cwd=mini_repo, env=env)
    assert fresh.stdout == proc.stdout

    # From an empty cache, the target the change does not touch is built once for both sides.
    assert run_cli("cache", "clear", cwd=mini_repo).returncode == 0
    cold = run_cli("diff", "--base", "main", cwd=mini_repo, env=env)
    assert "render cache: 1 hits, 3 misses, 0 not cacheable" in cold.stderr
    assert cold.stdout == proc.stdout


def test_the_fleet_benchmark_runs_and_renders_only_what_changed(tmp_path: Path):
    """bench/bench_fleet.py --quick as a smoke test: its figures are not asserted (speed
    belongs to the benchmark), what the cache did in each step is."""
    bench = Path(__file__).resolve().parents[2] / "bench" / "bench_fleet.py"
    before = set(bench.parent.glob(".fleet-*"))
    proc = subprocess.run(
        [sys.executable, str(bench), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert (
        "render cache: 0 hits, 30 misses, 0 not cacheable"
        in lines["cold main job (meshready check)"]
    )
    assert "30 hits, 0 misses" in lines["warm, nothing changed"]
    assert "29 hits, 1 misses" in lines["warm, one overlay changed"]
    assert "59 hits, 1 misses" in lines["diff, one overlay changed"]
    assert set(bench.parent.glob(".fleet-*")) == before  # the generated repository is gone


def test_an_unwritable_cache_directory_only_costs_the_cache(mini_repo: Path, tmp_path: Path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {**os.environ, "MESHREADY_CACHE_DIR": str(blocker)}
    proc = run_cli("render", "-v", "--print", "overlays/dev", cwd=mini_repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (
        "overlays/dev: render cache miss (cannot write the cache: Not a directory)" in proc.stderr
    )
    assert "kind: Deployment" in proc.stdout
