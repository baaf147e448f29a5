"""`meshready validate`: error classes, exit codes, output formats, CRDs, the version
matrix, hostile input, the result cache, parallel workers and the repo's own targets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import MESHREADY, run_cli
from meshready.commands import validate as command
from meshready.config import load_config
from meshready.render import discover_targets, render_targets
from meshready.render.kustomize import find_kustomize
from meshready.validate import files as validate_files
from meshready.validate import rendered as validate_rendered

FIXTURES = Path(__file__).parents[1] / "fixtures" / "validate"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(cache))
    return cache


def validate(capsys, *argv: str, cwd: Path = FIXTURES) -> tuple[int, str, str]:
    """Run `meshready validate ARGV` in-process from `cwd`; (exit code, stdout, stderr)."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        code = command.main(["--no-cache", *argv])
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def records(capsys, *argv: str) -> list[dict]:
    _, out, _ = validate(capsys, "--output", "json", *argv)
    return json.loads(out)["resources"]


def test_valid_manifests_exit_0(capsys):
    code, out, _ = validate(capsys, "--strict", "--summary", "good.yaml")
    assert code == 0
    assert out == (
        "Summary: 3 resources found in 1 file - Valid: 3, Invalid: 0, Errors: 0, Skipped: 0\n"
    )


def test_every_error_of_every_resource_is_reported_with_its_line(capsys):
    code, out, _ = validate(capsys, "--strict", "invalid.yaml")
    assert code == 1
    assert out.splitlines() == [
        "invalid.yaml:7: Deployment shop/web: /metadata/uid: metadata.uid is set by the API server",
        "invalid.yaml:8: Deployment shop/web: /metadata/resourceVersion: "
        "metadata.resourceVersion is set by the API server",
        'invalid.yaml:10: Deployment shop/web: /spec/replicas: "two" is not of types "null", "integer"',
        "invalid.yaml:24: Deployment shop/web: /spec/template/spec/containers/0/ports/0/protocl: "
        'unknown field "protocl"',
        "invalid.yaml:25: Deployment shop/web: /status: status is set by the API server, not by manifests",
        "invalid.yaml:30: ConfigMap shop/(unnamed): /metadata: missing metadata.name",
        "invalid.yaml:35: Secret no-api-version: /apiVersion: missing 'apiVersion' key",
        "invalid.yaml:48: ConfigMap shop/settings: /metadata/name: duplicate object: "
        "same group, kind, namespace and name as invalid.yaml:42",
    ]


def test_non_strict_allows_unknown_and_server_set_fields(capsys):
    result = {r["name"]: r for r in records(capsys, "invalid.yaml")}
    assert [e["path"] for e in result["web"]["errors"]] == ["/spec/replicas"]
    assert result["no-api-version"]["status"] == "error"


def test_json_records_carry_every_documented_field(capsys):
    [deployment, *_] = records(capsys, "--strict", "invalid.yaml")
    assert set(deployment) == {
        "filename",
        "line",
        "kind",
        "name",
        "namespace",
        "apiVersion",
        "kubernetesVersion",
        "status",
        "errors",
        "version",  # kubeconform's keys
        "msg",
    }
    assert deployment["version"] == "apps/v1"
    assert deployment["msg"].startswith("/metadata/uid: metadata.uid is set by the API server - ")
    assert deployment["kubernetesVersion"] == "1.33.0"
    assert deployment["status"] == "invalid"
    assert deployment["errors"][2] == {
        "path": "/spec/replicas",
        "line": 10,
        "msg": '"two" is not of types "null", "integer"',
    }


def test_malformed_yaml_is_an_error_and_other_documents_are_still_validated(capsys):
    result = records(capsys, "broken-syntax.yaml")
    assert [(r["name"], r["status"]) for r in result] == [
        ("before", "valid"),
        ("", "error"),
        ("after", "valid"),
    ]
    assert result[1]["errors"][0]["line"] == 8
    assert "column 11" in result[1]["errors"][0]["msg"]


def test_duplicate_keys_name_both_lines_in_strict_mode_only(capsys):
    code, out, _ = validate(capsys, "--strict", "broken-duplicate-keys.yaml")
    assert code == 1
    assert out == (
        "broken-duplicate-keys.yaml:8: ConfigMap shop/twice: /data/level: "
        "duplicate key 'level' (lines 7 and 8)\n"
    )
    assert validate(capsys, "broken-duplicate-keys.yaml")[0] == 0


def test_lists_are_expanded_and_empty_documents_counted(capsys):
    result = records(capsys, "--strict", "list.yaml")
    assert [(r["name"], r["status"], r["line"]) for r in result] == [
        ("listed", "valid", 4),
        ("listed-bad", "invalid", 8),
        ("", "empty", 13),
        ("", "empty", 14),
    ]
    assert result[1]["errors"][0]["path"] == "/items/1/automountServiceAccountToken"
    assert result[1]["errors"][0]["line"] == 12


def test_crds_in_the_input_validate_custom_resources(capsys):
    result = {r["name"]: r for r in records(capsys, "--strict", "crd.yaml")}
    assert result["widgets.example.com"]["status"] == "valid"
    assert result["good"]["status"] == "valid"
    assert [(e["path"], e["msg"]) for e in result["bad"]["errors"]] == [
        ("/spec", '"size" is a required property'),
        ("/spec/colour", 'unknown field "colour"'),
    ]


def test_missing_schema_is_an_error_unless_ignored(capsys):
    code, out, _ = validate(capsys, "gadget.yaml")
    assert (code, out) == (1, "gadget.yaml:1: Gadget g: no schema for example.com/v1 Gadget\n")
    code, out, _ = validate(capsys, "--ignore-missing-schemas", "--summary", "gadget.yaml")
    assert code == 0
    assert "Skipped: 1" in out


def test_schema_location_templates(capsys):
    template = "schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
    code, out, _ = validate(
        capsys, "-schema-location", "default", "-schema-location", template, "gadget.yaml"
    )
    assert code == 1
    assert out == 'gadget.yaml:6: Gadget g: /spec/mode: "fast" is not one of "slow" or "careful"\n'


def test_kubeconform_directory_layout_as_schema_location(capsys, tmp_path: Path):
    standalone = tmp_path / "v1.33.0-standalone-strict"
    standalone.mkdir()
    (standalone / "gadget-example-v1.json").write_text(
        (FIXTURES / "schemas/example.com/gadget_v1.json").read_text()
    )
    code, out, _ = validate(capsys, "-strict", "-schema-location", str(tmp_path), "gadget.yaml")
    assert code == 1
    assert "/spec/mode" in out


def test_remote_schema_locations_are_a_usage_error(capsys):
    code, _, err = validate(
        capsys, "--schema-location", "https://example.com/{{ .Group }}", "good.yaml"
    )
    assert code == 2
    assert "only local files and directories" in err


def test_the_repo_custom_resources_validate_against_schemas_crds(capsys):
    code, out, _ = validate(capsys, "--strict", "--summary", "bootstrap", "clusters", cwd=REPO)
    assert code == 0, out
    assert "Invalid: 0, Errors: 0, Skipped: 0" in out


@pytest.mark.parametrize(
    ("kind", "text", "path"),
    [
        (
            "RootSync",
            "apiVersion: configsync.gke.io/v1beta1\nkind: RootSync\n"
            "metadata: {name: r}\nspec: {git: {repo: x, auth: none, brnch: main}}\n",
            "/spec/git/brnch",
        ),
        (
            "Application",
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
            "metadata: {name: a}\nspec: {project: p, destination: {}, syncPolcy: {}}\n",
            "/spec/syncPolcy",
        ),
        (
            "VirtualService",
            "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
            "metadata: {name: v}\nspec: {http: [{route: [{destination: {host: h, prt: 1}}]}]}\n",
            "/spec/http/0/route/0/destination/prt",
        ),
        (
            "DestinationRule",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: d}\nspec: {host: h, trafficPolicy: {tls: {mode: MUTUAL, sni: s, x: 1}}}\n",
            "/spec/trafficPolicy/tls/x",
        ),
        (
            "Gateway",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
            "spec: {servers: [{hosts: ['*'], port: {number: 80, name: http, protocol: HTTP, x: 1}}]}\n",
            "/spec/servers/0/port/x",
        ),
        (
            "PeerAuthentication",
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            "metadata: {name: p}\nspec: {mtls: {mode: STRICT, x: 1}}\n",
            "/spec/mtls/x",
        ),
        (
            "AuthorizationPolicy",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: a}\nspec: {action: ALLOW, rules: [{from: [{source: {principalz: []}}]}]}\n",
            "/spec/rules/0/from/0/source/principalz",
        ),
    ],
)
def test_custom_resource_schemas_reject_unknown_fields(capsys, tmp_path: Path, kind, text, path):
    manifest = tmp_path / f"{kind}.yaml"
    manifest.write_text(text)
    result = records(capsys, "--strict", "--repo", str(REPO), str(manifest))
    assert [(r["kind"], r["status"]) for r in result] == [(kind, "invalid")]
    assert [e["path"] for e in result[0]["errors"]] == [path]


def test_version_matrix_reports_each_version(capsys):
    result = records(
        capsys, "--kubernetes-version", "1.25", "-kubernetes-version", "1.26", "matrix.yaml"
    )
    assert [(r["kubernetesVersion"], r["status"]) for r in result] == [
        ("1.25.0", "valid"),
        ("1.26.0", "error"),
    ]
    code, out, _ = validate(capsys, "--kubernetes-version", "1.25,1.26", "matrix.yaml")
    assert code == 1
    assert out.endswith(
        "no schema for autoscaling/v2beta2 HorizontalPodAutoscaler [Kubernetes 1.26.0]\n"
    )


@pytest.mark.parametrize("version", ["1.24", "1.99", "one"])
def test_unsupported_kubernetes_versions_are_usage_errors(capsys, version):
    code, _, err = validate(capsys, "--kubernetes-version", version, "good.yaml")
    assert code == 2
    assert err.startswith("meshready: error: ")


def test_skip_and_reject(capsys):
    result = records(capsys, "--skip", "Service", "--reject", "ConfigMap", "good.yaml")
    assert [(r["kind"], r["status"]) for r in result] == [
        ("Deployment", "valid"),
        ("Service", "skipped"),
        ("ConfigMap", "error"),
    ]


def test_no_resources_is_exit_1_unless_allowed(capsys, tmp_path: Path):
    (tmp_path / "empty.yaml").write_text("# nothing here\n---\n")
    code, _, err = validate(capsys, str(tmp_path))
    assert code == 1
    assert "no resources found" in err
    assert validate(capsys, "--allow-empty", str(tmp_path))[0] == 0


def test_usage_errors_exit_2(capsys):
    assert validate(capsys, "--output", "xml", "good.yaml")[0] == 2
    assert validate(capsys, "-schema-location", "x/{{ .Foo }}.json", "good.yaml")[0] == 2


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "tap"])
def test_output_formats(capsys, snapshot, fmt):
    code, out, _ = validate(
        capsys, "--strict", "--summary", "--output", fmt, "good.yaml", "invalid.yaml", "list.yaml"
    )
    assert code == 1
    assert out == snapshot
    if fmt == "json":
        assert json.loads(out)["summary"]["invalid"] == 5  # invalid.yaml repeats a good.yaml object
    if fmt == "junit":
        suites = ET.fromstring(out.split("\n", 1)[1])
        assert suites.get("failures") == "5"
    if fmt == "tap":
        assert out.splitlines()[0] == "TAP version 13"
        assert "not ok 4 - invalid.yaml (apps/v1/Deployment/shop/web): metadata.uid is set" in out


# -- hostile input: through the real console script, to see exit codes and stderr ---------

BILLION_LAUGHS = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def _write_hostile(directory: Path) -> dict[str, str]:
    """name -> expected error text."""
    (directory / "bomb.yaml").write_text(BILLION_LAUGHS)
    (directory / "deep.yaml").write_text("".join(" " * i + "a:\n" for i in range(3000)))
    (directory / "flow.yaml").write_text("[" * 200_000 + "]" * 200_000 + "\n")
    (directory / "binary.yaml").write_bytes(bytes(range(256)) * 64)
    (directory / "latin1.yaml").write_bytes(b"kind: ConfigMap\ndata:\n  name: caf\xe9\n")
    with open(directory / "huge.yaml", "wb") as handle:
        line = b"# " + b"x" * 1022 + b"\n"
        for _ in range(50 * 1024):
            handle.write(line)
    return {
        "bomb.yaml": "alias expansion too large",
        "deep.yaml": "nesting too deep",
        "flow.yaml": "recursion limit exceeded",
        "binary.yaml": "binary file",
        "latin1.yaml": "not UTF-8: invalid byte 0xe9 at line 3, column 12",
        "huge.yaml": "file too large",
    }


def test_hostile_inputs_give_bounded_errors_naming_the_file(tmp_path: Path):
    hostile = tmp_path / "in"
    hostile.mkdir()
    expected = _write_hostile(hostile)
    shutil.copy(FIXTURES / "good.yaml", hostile / "good.yaml")
    done = run_cli("validate", "--strict", "--output", "json", str(hostile), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)["resources"]
    errors = {
        Path(r["filename"]).name: r["errors"][0]["msg"] for r in result if r["status"] == "error"
    }
    assert set(errors) == set(expected)
    for name, text in expected.items():
        assert text in errors[name], (name, errors[name])
    assert sum(r["status"] == "valid" for r in result) == 3  # good.yaml is still validated


def test_hostile_input_on_stdin(tmp_path: Path):
    import subprocess

    from conftest import MESHREADY

    done = subprocess.run(
        [MESHREADY, "validate", "-"],
        input=b"\xff\xfe\x00binary",
        capture_output=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert b"stdin:1: binary file (NUL byte at line 1)" in done.stdout
    assert b"Traceback" not in done.stderr


# -- result cache -----------------------------------------------------------------------------


def test_second_run_replays_from_the_cache_until_an_input_changes(tmp_path: Path, isolated_cache):
    work = tmp_path / "in"
    work.mkdir()
    shutil.copy(FIXTURES / "invalid.yaml", work / "a.yaml")
    env = {**os.environ, "MESHREADY_CACHE_DIR": str(isolated_cache)}
    first = run_cli("validate", "--strict", "in", cwd=tmp_path, env=env)
    assert first.returncode == 1
    assert len(list(isolated_cache.glob("*.json"))) == 1
    # Poison the cached report: a replay must print it, proving nothing was revalidated.
    [entry_path] = isolated_cache.glob("*.json")
    entry = json.loads(entry_path.read_text())
    entry["stdout"] = "from the cache\n"
    entry_path.write_text(json.dumps(entry))
    second = run_cli("validate", "--strict", "in", cwd=tmp_path, env=env)
    assert (second.returncode, second.stdout) == (1, "from the cache\n")

    shutil.copy(FIXTURES / "good.yaml", work / "a.yaml")  # same name, new content
    third = run_cli("validate", "--strict", "in", cwd=tmp_path, env=env)
    assert (third.returncode, third.stdout) == (0, "")
    (work / "b.yaml").write_text((FIXTURES / "gadget.yaml").read_text())  # a new file
    fourth = run_cli("validate", "--strict", "in", cwd=tmp_path, env=env)
    assert fourth.returncode == 1
    assert "no schema for example.com/v1 Gadget" in fourth.stdout


def test_flags_are_part_of_the_cache_key(tmp_path: Path, isolated_cache):
    env = {**os.environ, "MESHREADY_CACHE_DIR": str(isolated_cache)}
    shutil.copy(FIXTURES / "invalid.yaml", tmp_path / "a.yaml")
    strict = run_cli("validate", "--strict", "a.yaml", cwd=tmp_path, env=env)
    lax = run_cli("validate", "a.yaml", cwd=tmp_path, env=env)
    assert strict.stdout != lax.stdout
    assert "unknown field" not in lax.stdout


# -- parallel workers -------------------------------------------------------------------------


def test_workers_give_the_same_report_as_one_process(tmp_path: Path):
    configmap = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}-{j}\ndata:\n  v: '{pad}'\n"
    )
    pad = "x" * 2000
    for i in range(12):
        docs = [configmap.format(i=i, j=j, pad=pad) for j in range(50)]
        (tmp_path / f"part-{i:02}.yaml").write_text("---\n".join(docs))
    (tmp_path / "part-05.yaml").write_text(
        (tmp_path / "part-05.yaml").read_text() + "---\n" + (FIXTURES / "invalid.yaml").read_text()
    )
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) > validate_files.PARALLEL_MIN_BYTES
    one = run_cli("validate", "--no-cache", "--strict", "--summary", "-n", "1", ".", cwd=tmp_path)
    two = run_cli("validate", "--no-cache", "--strict", "--summary", "-n", "2", ".", cwd=tmp_path)
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout
    assert (
        "Summary: 605 resources found in 12 files - Valid: 601, Invalid: 3, Errors: 1" in one.stdout
    )


# -- the repository's own rendered targets ----------------------------------------------------


def test_every_rendered_target_of_the_repo_is_valid_strictly():
    config = load_config(REPO)
    targets = discover_targets(REPO, config.target_roots)
    results = render_targets(REPO, targets, find_kustomize(), 120)
    assert all(r.ok for r in results), [r.error for r in results]
    validated = validate_rendered.validate_rendered(results, config)
    assert validated
    assert [r for r in validated if r.status != "valid"] == []
    assert {r.target for r in validated} == set(targets)


def test_rendered_errors_point_into_the_source_file(tmp_path: Path):
    from conftest import write_tree

    write_tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.meshready]\ntarget_roots = ["overlays"]\nkubernetes_version = "1.33"\n',
            "base/kustomization.yaml": "resources:\n- sa.yaml\n",
            "base/sa.yaml": """
                apiVersion: v1
                kind: ServiceAccount
                metadata:
                  name: app
                automountServiceAccountToken: "yes"
            """,
            "overlays/dev/kustomization.yaml": "resources:\n- ../../base\nnamePrefix: dev-\n",
        },
    )
    done = run_cli("validate", "--rendered", "--strict", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == (
        'base/sa.yaml:5: ServiceAccount dev-app: /automountServiceAccountToken: "yes" is not of '
        'types "null", "boolean" (target overlays/dev)\n'
    )
    check = run_cli("check", cwd=tmp_path)
    assert check.returncode == 1
    assert "base/sa.yaml:5: ServiceAccount dev-app" in check.stdout


def test_a_configuration_created_after_a_cached_run_is_seen(tmp_path: Path):
    """A run without any pyproject.toml, then one is created that changes the Kubernetes
    version: the second run must not replay the first one's result."""
    env = {**os.environ, "MESHREADY_CACHE_DIR": str(tmp_path / "cache")}
    work = tmp_path / "work"
    work.mkdir()
    # flowcontrol v1beta3 is served by 1.26..1.31 only: valid on 1.29, no schema on 1.33.
    (work / "fc.yaml").write_text(
        "apiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: PriorityLevelConfiguration\n"
        "metadata:\n  name: p\nspec:\n  type: Exempt\n"
    )
    first = subprocess.run(
        [MESHREADY, "validate", "fc.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (work / "pyproject.toml").write_text('[tool.meshready]\nkubernetes_version = "1.29"\n')
    second = subprocess.run(
        [MESHREADY, "validate", "fc.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode != second.returncode, (first.stdout, second.stdout)
