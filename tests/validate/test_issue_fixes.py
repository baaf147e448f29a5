"""The defects of issue 14 (kubeconform compatibility) and issue 17 point 4 (validation
input limits), one test each; every one of them fails on the code before the fix."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MESHREADY, run_cli, write_tree

FIXTURES = Path(__file__).parents[1] / "fixtures" / "validate"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MESHREADY_CACHE_DIR", str(cache))
    return cache


def meshready(*argv: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    done = subprocess.run(
        [MESHREADY, "validate", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def records(done: subprocess.CompletedProcess) -> list[dict]:
    return json.loads(done.stdout)["resources"]


CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {key}: {value}\n"


# -- issue 14, 1: non-string keys -------------------------------------------------------------


def test_non_string_keys_are_strings_as_kubectl_reads_them(tmp_path: Path):
    (tmp_path / "keys.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k\ndata:\n  1: a\n  true: b\n"
    )
    (tmp_path / "good.yaml").write_text(CONFIGMAP.format(name="g", key="a", value="b"))
    done = meshready("-summary", ".", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "Valid: 2" in done.stdout  # one such file no longer takes the directory down


# -- issue 14, 2: JSON Schema drafts ----------------------------------------------------------

WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 0, exclusiveMinimum: true}
"""


def widget(name: str, size: int) -> str:
    return f"---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n"


def test_a_crd_in_the_input_with_openapi_boolean_exclusive_minimum(tmp_path: Path):
    (tmp_path / "w.yaml").write_text(WIDGET_CRD + widget("zero", 0) + widget("one", 1))
    done = meshready("-output", "json", "w.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert {r["name"]: r["status"] for r in records(done)} == {
        "widgets.example.com": "valid",
        "zero": "invalid",  # 0 is not > 0
        "one": "valid",
    }


def _location(tmp_path: Path, schema: dict) -> str:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    (tmp_path / "schemas" / "configmap-v1.json").write_text(json.dumps(schema))
    return "schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"


def test_schemas_without_dollar_schema_are_draft_4(tmp_path: Path):
    schema = {  # boolean exclusiveMaximum is Draft 4 only; 2020-12 rejects the schema itself
        "type": "object",
        "properties": {
            "data": {
                "type": "object",
                "properties": {"when": {"type": "string", "format": "date-time"}},
            },
            "count": {"type": "integer", "maximum": 3, "exclusiveMaximum": True},
        },
    }
    location = _location(tmp_path, schema)
    (tmp_path / "in.yaml").write_text(
        CONFIGMAP.format(name="ok", key="when", value='"2024-05-01T10:00:00Z"')
        + "---\n"
        + CONFIGMAP.format(name="late", key="when", value="yesterday")
        + "---\n"
        + CONFIGMAP.format(name="many", key="x", value="y")
        + "count: 3\n"
    )
    done = meshready("-output", "json", "-schema-location", location, "in.yaml", cwd=tmp_path)
    statuses = {r["name"]: (r["status"], [e["path"] for e in r["errors"]]) for r in records(done)}
    assert statuses == {
        "ok": ("valid", []),
        "late": ("invalid", ["/data/when"]),  # Draft 4 asserts format, as kubeconform does
        "many": ("invalid", ["/count"]),
    }


def test_draft_4_formats_ipv4_and_date_time_in_the_built_in_schemas(tmp_path: Path):
    location = _location(
        tmp_path,
        {"properties": {"data": {"properties": {"ip": {"type": "string", "format": "ipv4"}}}}},
    )
    (tmp_path / "ip.yaml").write_text(CONFIGMAP.format(name="ip", key="ip", value="1.2.3"))
    assert meshready("-schema-location", location, "ip.yaml", cwd=tmp_path).returncode == 1
    (tmp_path / "ts.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\n  creationTimestamp: soon\n"
    )
    done = meshready("ts.yaml", cwd=tmp_path)  # not strict: only the format can fail it
    assert done.returncode == 1
    assert (
        'ts.yaml:5: ConfigMap t: /metadata/creationTimestamp: "soon" is not a "date-time"'
        in done.stdout
    )


# -- issue 14, 3: a schema file as the location -----------------------------------------------


def test_a_plain_schema_file_as_schema_location(tmp_path: Path):
    (tmp_path / "x.json").write_text(json.dumps({"required": ["data"]}))
    (tmp_path / "a.yaml").write_text(CONFIGMAP.format(name="a", key="k", value="v"))
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n")
    assert meshready("-schema-location", "./x.json", "a.yaml", cwd=tmp_path).returncode == 0
    done = meshready("-schema-location", "./x.json", "b.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert '"data" is a required property' in done.stdout


# -- issue 14, 5 and 6: stdin, flags ----------------------------------------------------------


def test_stdin_without_a_file_argument(tmp_path: Path):
    done = meshready("-summary", cwd=tmp_path, stdin=CONFIGMAP.format(name="s", key="a", value="b"))
    assert (done.returncode, done.stdout) == (
        0,
        "Summary: 1 resource found parsing stdin - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0\n",
    )


def test_exit_on_error_stops_at_the_first_failure(tmp_path: Path):
    for name, value in (("a", "ok"), ("b", "[1]"), ("c", "[2]")):
        (tmp_path / f"{name}.yaml").write_text(CONFIGMAP.format(name=name, key="k", value=value))
    full = records(meshready("-output", "json", ".", cwd=tmp_path))
    stopped = meshready("-output", "json", "-exit-on-error", ".", cwd=tmp_path)
    assert [r["status"] for r in full] == ["valid", "invalid", "invalid"]
    assert stopped.returncode == 1
    assert [r["name"] for r in records(stopped)] == ["a", "b"]


def test_pretty_debug_and_the_accepted_no_op_flags(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text(CONFIGMAP.format(name="bad", key="k", value="[1]"))
    done = meshready(
        "-output", "pretty", "-debug", "-insecure-skip-tls-verify", "bad.yaml", cwd=tmp_path
    )
    assert done.returncode == 1
    assert done.stdout.startswith(
        "\033[31m\u2716\033[0m \033[31mbad.yaml:6: ConfigMap bad: /data/k:"
    )
    assert (
        "meshready: debug: v1 ConfigMap (Kubernetes 1.33.0): kubernetes-validate 1.33.0"
        in done.stderr
    )


def test_json_summary_uses_kubeconforms_keys(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Nope\nmetadata:\n  name: x\n")
    done = meshready("-output", "json", "-summary", "a.yaml", cwd=tmp_path)
    assert json.loads(done.stdout)["summary"] == {
        "valid": 0,
        "invalid": 0,
        "errors": 1,
        "skipped": 0,
        "empty": 0,
        "files": 1,
    }


# -- YAML 1.1 scalars, as kubectl reads them --------------------------------------------------


def test_yaml_1_1_booleans_in_configmap_data_are_errors(tmp_path: Path):
    (tmp_path / "cm.yaml").write_text(CONFIGMAP.format(name="flags", key="enabled", value="yes"))
    done = meshready("cm.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert (
        done.stdout
        == 'cm.yaml:6: ConfigMap flags: /data/enabled: true is not of types "null", "string"\n'
    )
    (tmp_path / "quoted.yaml").write_text(
        CONFIGMAP.format(name="flags", key="enabled", value='"yes"')
    )
    assert meshready("quoted.yaml", cwd=tmp_path).returncode == 0


# -- broken pipe ------------------------------------------------------------------------------


def test_a_closed_pipe_ends_the_run_quietly(tmp_path: Path):
    # Far more report than a pipe holds (64 KiB), so the writer is still writing at close.
    docs = [CONFIGMAP.format(name=f"c{i}", key="k", value="[1]") for i in range(5000)]
    (tmp_path / "f000.yaml").write_text("---\n".join(docs))
    process = subprocess.Popen(
        [MESHREADY, "validate", "--no-cache", "-n", "1", "."],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline().startswith(b"f000.yaml:6:")
    process.stdout.close()  # `| head -1`
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr


# -- the result cache -------------------------------------------------------------------------


def test_a_crd_added_in_a_subdirectory_of_a_crd_dir_is_seen(tmp_path: Path):
    write_tree(tmp_path, {"pyproject.toml": '[tool.meshready]\nvalidate_crd_dirs = ["crds"]\n'})
    (tmp_path / "crds" / "nested").mkdir(parents=True)
    (tmp_path / "w.yaml").write_text(widget("one", 1))
    assert meshready("w.yaml", cwd=tmp_path).returncode == 1  # no schema for Widget, cached
    (tmp_path / "crds" / "nested" / "widget.yaml").write_text(WIDGET_CRD)
    assert meshready("w.yaml", cwd=tmp_path).returncode == 0


def test_an_edit_at_the_end_of_a_large_file_is_seen(tmp_path: Path):
    big = tmp_path / "big.yaml"
    body = "---\n".join(CONFIGMAP.format(name=f"c{i}", key="k", value="v") for i in range(3000))
    big.write_text(body)
    assert big.stat().st_size > 64 * 1024
    assert meshready("big.yaml", cwd=tmp_path).returncode == 0
    stat = big.stat()
    big.write_text(body[:-2] + "[]\n")  # same size, the last value now a list
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    assert meshready("big.yaml", cwd=tmp_path).returncode == 1


@pytest.mark.parametrize(
    "edit",
    [('kubernetes_version = "1.33"', 'kubernetes_version = "1.25"'), ('["crds"]', '["crdz"]')],
)
def test_a_change_of_kubernetes_version_or_crd_dirs_in_pyproject_invalidates(tmp_path: Path, edit):
    config = '[tool.meshready]\nkubernetes_version = "1.33"\nvalidate_crd_dirs = ["crds"]\n'
    write_tree(tmp_path, {"pyproject.toml": config, "crdz/widget.yaml": WIDGET_CRD})
    # A resource only one side of each edit accepts: a kind new since 1.25, or a Widget.
    (tmp_path / "in.yaml").write_text(
        widget("one", 1)
        if "crds" in edit[0]
        else "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n"
        "metadata:\n  name: p\n"
    )
    first = meshready("-strict", "in.yaml", cwd=tmp_path).returncode
    assert meshready("-strict", "in.yaml", cwd=tmp_path).returncode == first  # a cache hit
    stat = (tmp_path / "pyproject.toml").stat()
    (tmp_path / "pyproject.toml").write_text(config.replace(*edit))
    os.utime(tmp_path / "pyproject.toml", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = meshready("-strict", "in.yaml", cwd=tmp_path).returncode
    assert first != second


# -- duplicates and strict mode ---------------------------------------------------------------


def test_duplicate_objects_key_on_namespace_and_point_at_metadata_name(tmp_path: Path):
    docs = [
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: one\n  name: a\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: two\n  name: a\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: two\n  labels: {x: z}\n  name: a\n",
    ]
    (tmp_path / "d.yaml").write_text("---\n".join(docs))
    done = meshready("d.yaml", cwd=tmp_path)
    assert done.stdout == (
        "d.yaml:18: ConfigMap two/a: /metadata/name: duplicate object: same group, kind, "
        "namespace and name as d.yaml:11\n"
    )


def test_managed_fields_are_rejected_under_strict(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  managedFields:\n  - manager: kubectl\n"
    )
    assert meshready("m.yaml", cwd=tmp_path).returncode == 0
    done = meshready("-strict", "m.yaml", cwd=tmp_path)
    assert done.stdout == (
        "m.yaml:5: ConfigMap m: /metadata/managedFields: metadata.managedFields is set by the API server\n"
    )


def test_the_same_object_in_two_rendered_targets_is_not_a_duplicate(tmp_path: Path):
    write_tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.meshready]\ntarget_roots = ["overlays"]\n',
            "base/kustomization.yaml": "resources:\n- cm.yaml\n",
            "base/cm.yaml": CONFIGMAP.format(name="same", key="k", value="v"),
            "overlays/a/kustomization.yaml": "resources:\n- ../../base\n",
            "overlays/b/kustomization.yaml": "resources:\n- ../../base\n",
        },
    )
    done = run_cli("validate", "--rendered", "--strict", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "")


# -- one locator ------------------------------------------------------------------------------


def test_rendered_lines_of_a_name_prefixed_object_come_from_its_own_document(tmp_path: Path):
    root = FIXTURES / "name-prefix"
    done = run_cli("validate", "--rendered", "--strict", cwd=root)
    assert done.returncode == 1
    assert done.stdout == (
        'base/sa.yaml:11: ServiceAccount dev-app: /automountServiceAccountToken: "yes" is not of '
        'types "null", "boolean" (target overlays/dev)\n'
    )


# -- issue 17, 4: input limits ----------------------------------------------------------------


def _duplicate_keys(count: int) -> str:
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\ndata:\n" + "  k: v\n" * count


def test_duplicate_keys_point_at_the_second_line_their_message_names(tmp_path: Path):
    (tmp_path / "d.yaml").write_text(_duplicate_keys(3))
    done = meshready("-strict", "d.yaml", cwd=tmp_path)
    assert done.stdout.splitlines() == [
        "d.yaml:7: ConfigMap d: /data/k: duplicate key 'k' (lines 6 and 7)",
        "d.yaml:8: ConfigMap d: /data/k: duplicate key 'k' (lines 7 and 8)",
    ]


def test_duplicate_keys_cost_time_linear_in_their_number(tmp_path: Path):
    """100,000 duplicates (700 KB) ran past 300 s before; each report line is still there."""
    (tmp_path / "d.yaml").write_text(_duplicate_keys(100_000))
    done = meshready("--no-cache", "-strict", "d.yaml", cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert len(lines) == 99_999
    assert (
        lines[-1]
        == "d.yaml:100005: ConfigMap d: /data/k: duplicate key 'k' (lines 100004 and 100005)"
    )


def _deep_under_unknown_field(levels: int) -> str:
    lines = ["apiVersion: v1", "kind: ServiceAccount", "metadata:", "  name: deep", "unknown:"]
    lines += [" " * i + "a:" for i in range(1, levels)] + [" " * levels + "b: 1"]
    return "\n".join(lines) + "\n"


def test_deep_nesting_under_an_unknown_field_is_a_one_line_error(tmp_path: Path):
    write_tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.meshready]\ntarget_roots = ["overlays"]\n',
            "overlays/deep/kustomization.yaml": "resources:\n- sa.yaml\n",
        },
    )
    (tmp_path / "overlays/deep/sa.yaml").write_text(_deep_under_unknown_field(300))
    strict = meshready("--no-cache", "-strict", "overlays/deep/sa.yaml", cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stdout == (
        "overlays/deep/sa.yaml:1: ServiceAccount deep: nesting too deep to validate "
        "(more than 255 levels)\n"
    )
    rendered = run_cli("validate", "--rendered", "--strict", cwd=tmp_path)
    assert rendered.returncode == 1 and "Traceback" not in rendered.stderr
    assert "nesting too deep to validate" in rendered.stdout
    check = run_cli("check", cwd=tmp_path)
    assert "Traceback" not in check.stderr
    assert "nesting too deep to validate" in check.stdout


def test_sixteen_megabytes_of_document_markers_are_one_bounded_error(tmp_path: Path):
    (tmp_path / "markers.yaml").write_text("---\n" * (4 * 1024 * 1024 - 1))
    started = time.monotonic()
    done = meshready("--no-cache", "markers.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == "markers.yaml:1: too many documents (more than 200,000 in one file)\n"
    assert time.monotonic() - started < 120  # a hang guard, not a speed target (see bench/)


def test_an_eight_megabyte_bad_value_is_echoed_truncated(tmp_path: Path):
    (tmp_path / "big.yaml").write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: big\n"
        f"automountServiceAccountToken: {'x' * 8_000_000}\n"
    )
    done = meshready("--no-cache", "big.yaml", cwd=tmp_path)
    assert done.returncode == 1
    [line] = done.stdout.splitlines()
    assert line.startswith('big.yaml:5: ServiceAccount big: /automountServiceAccountToken: "xxx')
    assert "characters omitted" in line and len(line) < 600


def test_dangling_symlinks_and_fifos_in_a_directory_are_skipped_with_a_note(tmp_path: Path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "good.yaml").write_text(CONFIGMAP.format(name="g", key="a", value="b"))
    (inputs / "dangling.yaml").symlink_to(tmp_path / "gone.yaml")
    os.mkfifo(inputs / "pipe.yaml")
    done = meshready("--no-cache", "-summary", "in", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.endswith(
        "Summary: 1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0\n"
    )
    assert done.stderr.splitlines() == [
        "meshready: note: in/dangling.yaml: skipped (dangling symlink)",
        "meshready: note: in/pipe.yaml: skipped (a FIFO)",
    ]


def test_stdin_that_is_a_terminal_is_a_usage_error_not_a_wait(tmp_path: Path):
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [MESHREADY, "validate", "-summary"],
            stdin=follower,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2
    assert (
        done.stderr
        == "meshready: error: no input: give FILE, DIR or -, or pipe manifests on stdin\n"
    )
