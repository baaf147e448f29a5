"""The repository's own manifests, rendered with the real kustomize, and the GitOps check.

Snapshots pin each target's full rendered output, so any change to a base, overlay or
component shows up in review as a snapshot diff (`pytest --snapshot-update` to accept).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, write_tree
from meshready import render
from meshready.analyze.engine import analysis_config, analyze
from meshready.config import load_config
from meshready.gitops import check as gitops
from meshready.render import kustomize

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT)
TARGETS = render.discover_targets(ROOT, list(CONFIG.target_roots))
PRODUCTION = "overlays/asm-ready"
SYNCED = "clusters/asm-ready"
UID = 10001
DEPRECATED_KUSTOMIZE_FIELDS = ("commonLabels", "bases", "patchesStrategicMerge", "vars")


@pytest.fixture(scope="module")
def rendered() -> dict[str, render.RenderResult]:
    results = render.render_targets(ROOT, TARGETS, kustomize.find_kustomize(), 60)
    return {r.target: r for r in results}


def objects(result: render.RenderResult, kind: str | None = None) -> list[dict]:
    return [o.obj for o in result.objects if kind is None or o.obj["kind"] == kind]


def by_name(result: render.RenderResult, kind: str, name: str) -> dict:
    (found,) = [o for o in objects(result, kind) if o["metadata"]["name"] == name]
    return found


def test_the_expected_targets_exist_and_render(rendered):
    assert TARGETS == ["overlays/asm-ready", "overlays/dev"]
    for result in rendered.values():
        assert result.ok, result.error


@pytest.mark.parametrize("target", TARGETS)
def test_rendered_output_snapshot(target, rendered, snapshot):
    assert render.render_stream(rendered[target]) == snapshot


@pytest.mark.parametrize("target", TARGETS)
def test_tutorial_objects_keep_their_names(target, rendered):
    names = {(o["kind"], o["metadata"]["name"]) for o in objects(rendered[target])}
    assert {
        ("Deployment", "helloserver"),
        ("Service", "hellosvc"),
        ("Deployment", "loadgenerator"),
        ("Service", "loadgensvc"),
        ("ServiceAccount", "helloserver"),
        ("ServiceAccount", "loadgenerator"),
    } <= names


@pytest.mark.parametrize("target", TARGETS)
def test_pods_meet_pod_security_restricted(target, rendered):
    for deployment in objects(rendered[target], "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        # One ServiceAccount (one mesh identity) per app, shared by its versions.
        assert pod["serviceAccountName"] == deployment["spec"]["selector"]["matchLabels"]["app"]
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert (context["runAsUser"], context["runAsGroup"]) == (UID, UID)
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]
            repository, _, tag = container["image"].rpartition(":")
            assert repository and tag not in ("", "latest"), container["image"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_workload_has_a_service_on_a_named_port(target, rendered):
    result = rendered[target]
    services = objects(result, "Service")
    for deployment in objects(result, "Deployment"):
        template = deployment["spec"]["template"]
        labels = template["metadata"]["labels"]
        assert {"app", "version", "app.kubernetes.io/name", "app.kubernetes.io/part-of"} <= set(
            labels
        )
        # v1 keeps the selector it was created with (selectors are immutable); only
        # the canary's v2 Deployment (components/canary) selects by version too.
        if deployment["metadata"]["name"].endswith("-v2"):
            assert labels["version"] == deployment["spec"]["selector"]["matchLabels"]["version"]
            assert labels["version"] == "v2"
        else:
            assert labels["version"] == "v1"
            assert "version" not in deployment["spec"]["selector"]["matchLabels"]
        port_names = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
        selecting = [s for s in services if s["spec"]["selector"].items() <= labels.items()]
        assert selecting, f"no Service selects {deployment['metadata']['name']}"
        for service in selecting:
            for port in service["spec"]["ports"]:
                assert port["name"].split("-")[0] in ("http", "grpc", "tcp")
                assert port["targetPort"] in port_names
        for container in template["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["port"] in port_names


def test_hello_drains_within_its_grace_period(rendered):
    for result in rendered.values():
        pod = by_name(result, "Deployment", "helloserver")["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert pod["terminationGracePeriodSeconds"] > int(env["DRAIN_SECONDS"]["value"])
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["PORT"]["value"] == "8080"


def test_loadgen_calls_hellosvc_in_its_own_namespace(rendered):
    for result in rendered.values():
        container = by_name(result, "Deployment", "loadgenerator")["spec"]["template"]["spec"][
            "containers"
        ][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["SERVER_ADDR"] == "http://hellosvc:80/"
        assert env["STATUS_PORT"] == "8080"


def test_dev_is_the_tutorial_without_a_mesh(rendered):
    dev = rendered["overlays/dev"]
    assert by_name(dev, "Service", "hellosvc")["spec"]["type"] == "LoadBalancer"
    assert by_name(dev, "Deployment", "helloserver")["spec"]["replicas"] == 1
    assert not objects(dev, "Namespace")
    assert not [o for o in objects(dev) if "istio" in o["apiVersion"]]


def test_asm_ready_is_mesh_ready_production(rendered):
    prod = rendered[PRODUCTION]
    (namespace,) = objects(prod, "Namespace")
    labels = namespace["metadata"]["labels"]
    # Exactly one injection label: with both, istio-injection silently wins.
    assert labels["istio-injection"] == "enabled"
    assert "istio.io/rev" not in labels
    assert {o["metadata"]["namespace"] for o in objects(prod) if o["kind"] != "Namespace"} == {
        namespace["metadata"]["name"]
    }
    hello = by_name(prod, "Deployment", "helloserver")
    assert hello["spec"]["replicas"] >= 2
    (pdb,) = objects(prod, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= (
        hello["spec"]["template"]["metadata"]["labels"].items()
    )
    # Exposed through the mesh's ingress gateway, not a LoadBalancer of its own.
    assert by_name(prod, "Service", "hellosvc")["spec"]["type"] == "ClusterIP"
    virtual_service = by_name(prod, "VirtualService", "hello-ingress")
    assert virtual_service["spec"]["gateways"] == ["hello-gateway"]
    by_name(prod, "Gateway", "hello-gateway")


def test_kustomizations_use_no_deprecated_fields():
    files = sorted(
        p
        for top in ("base", "overlays", "components")
        for p in (ROOT / top).rglob("kustomization.yaml")
    )
    assert len(files) >= 5
    for path in files:
        data = yaml.safe_load(path.read_text())
        used = [f for f in DEPRECATED_KUSTOMIZE_FIELDS if f in data]
        assert not used, f"{path.relative_to(ROOT)} uses {used}"


def test_production_images_are_set_through_the_images_field():
    data = yaml.safe_load((ROOT / PRODUCTION / "kustomization.yaml").read_text())
    assert {i["name"] for i in data["images"]} == {"helloserver", "loadgen"}
    for image in data["images"]:
        assert image["newName"].endswith("/" + image["name"])
        assert image.get("digest") or image.get("newTag")


def test_every_target_has_zero_analyzer_errors(rendered):
    report = analyze(rendered.values(), analysis_config(CONFIG), ROOT)
    assert sorted(report.targets) == TARGETS
    assert [f"{f.rule.id} {f.object}" for f in report.findings] == []
    # The only exception is written down on the object, with its reason.
    assert {(f.rule.id, f.name) for f in report.suppressed} == {
        ("MR215", "loadgenerator"),
        ("MR216", "loadgenerator"),
    }


def test_committed_hydrated_output_is_fresh():
    result = run_cli("render", "--check", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{SYNCED}: up to date with {PRODUCTION}" in result.stdout
    assert not (ROOT / SYNCED / "kustomization.yaml").exists()
    for path in (ROOT / SYNCED).iterdir():
        assert path.read_text().startswith("# Generated by meshready from overlays/asm-ready.")


@pytest.fixture
def broken_copy(repo_copy: Path) -> Path:
    return repo_copy


def test_removing_a_port_name_fails_naming_rule_object_and_file(broken_copy: Path):
    service = broken_copy / "base/hello/service.yaml"
    text = service.read_text()
    assert "  - name: http\n    port: 80" in text
    service.write_text(text.replace("  - name: http\n    port: 80", "  - port: 80"))
    result = run_cli("analyze", cwd=broken_copy)
    assert result.returncode == 1
    assert "Service hello/hellosvc" in result.stdout
    assert "base/hello/service.yaml:15: error: MR102" in result.stdout


def test_deleting_loadgens_service_fails_naming_rule_object_and_file(broken_copy: Path):
    (broken_copy / "base/loadgen/service.yaml").unlink()
    kustomization = broken_copy / "base/loadgen/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("- service.yaml\n", ""))
    result = run_cli("analyze", cwd=broken_copy)
    assert result.returncode == 1
    assert "Deployment hello/loadgenerator" in result.stdout
    assert "base/loadgen/deployment.yaml:" in result.stdout
    assert "MR101 workload-without-service" in result.stdout


# --- meshready gitops -------------------------------------------------------------

ROOTSYNC = """
    apiVersion: configsync.gke.io/v1beta1
    kind: RootSync
    metadata:
      name: root-sync
      namespace: config-management-system
    spec:
      sourceFormat: unstructured
      git:
        repo: https://example.com/repo.git
        branch: main
        dir: {dir}
        auth: none
"""
APPLICATION = """
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata:
      name: app
      namespace: argocd
    spec:
      project: default
      source:
        repoURL: https://example.com/repo.git
        targetRevision: main
        path: {dir}
      destination:
        server: https://kubernetes.default.svc
"""
HYDRATED = """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: settings
      namespace: app
"""


def gitops_repo(tmp_path: Path, **files: str) -> Path:
    tree = {
        "pyproject.toml": """
            [tool.meshready]
            [tool.meshready.hydrate]
            "overlays/prod" = "clusters/prod"
        """,
        "bootstrap/rootsync.yaml": ROOTSYNC.format(dir="clusters/prod"),
        "bootstrap/application.yaml": APPLICATION.format(dir="clusters/prod/"),
        "clusters/prod/configmap_app_settings.yaml": HYDRATED,
    }
    tree.update({name.replace("__", "/").replace("_yaml", ".yaml"): t for name, t in files.items()})
    return write_tree(tmp_path, tree)


def messages(repo: Path) -> list[str]:
    return [str(f) for f in gitops.check_repo(load_config(repo)).findings]


def test_gitops_passes_when_both_agents_sync_a_hydrate_output(tmp_path: Path):
    repo = gitops_repo(tmp_path)
    report = gitops.check_repo(load_config(repo))
    assert report.findings == []
    assert report.sources == 2
    result = run_cli("gitops", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 sync source(s) checked" in result.stdout


def test_gitops_passes_on_this_repository():
    result = run_cli("gitops", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 sync source(s) checked, synced directories: clusters/asm-ready" in result.stdout


def test_a_rootsync_inside_the_synced_dir_is_knv1069(tmp_path: Path):
    repo = gitops_repo(tmp_path, clusters__prod__rootsync_yaml=ROOTSYNC.format(dir="clusters/prod"))
    assert messages(repo) == [
        "clusters/prod/rootsync.yaml:11: RootSync config-management-system/root-sync: "
        "syncs its own directory clusters/prod (Config Sync KNV1069): a sync object must "
        "never manage itself; keep it in bootstrap/ and apply it by hand"
    ]
    result = run_cli("gitops", cwd=repo)
    assert result.returncode == 1
    assert "KNV1069" in result.stdout


def test_the_bootstrap_rootsync_copied_into_the_synced_dir_fires_even_if_renamed_dir(
    tmp_path: Path,
):
    # Same object as the one syncing this directory: applying it would overwrite it.
    repo = gitops_repo(
        tmp_path, clusters__prod__rootsync_yaml=ROOTSYNC.format(dir="clusters/other")
    )
    (finding,) = messages(repo)
    assert finding.startswith("clusters/prod/rootsync.yaml:11: RootSync")


def test_an_application_syncing_its_own_dir_fires(tmp_path: Path):
    repo = gitops_repo(tmp_path, clusters__prod__app_yaml=APPLICATION.format(dir="./clusters/prod"))
    (finding,) = messages(repo)
    assert finding.startswith("clusters/prod/app.yaml:11: Application argocd/app: syncs its own")
    assert "KNV1069" not in finding


def test_a_kustomization_in_the_synced_dir_fires(tmp_path: Path):
    repo = gitops_repo(
        tmp_path, clusters__prod__kustomization_yaml="resources:\n- configmap_app_settings.yaml\n"
    )
    (finding,) = messages(repo)
    assert finding.startswith("clusters/prod/kustomization.yaml:1: Kustomization: ")


def test_sync_sources_must_point_at_a_hydrate_output(tmp_path: Path):
    repo = gitops_repo(
        tmp_path,
        bootstrap__rootsync_yaml=ROOTSYNC.format(dir="overlays/prod"),
        bootstrap__application_yaml=APPLICATION.format(dir="clusters/prod").replace(
            "        path: clusters/prod\n", ""
        ),
    )
    assert messages(repo) == [
        "bootstrap/application.yaml:8: Application argocd/app: spec.source.path is not set; "
        "set it to one of: clusters/prod",
        "bootstrap/rootsync.yaml:11: RootSync config-management-system/root-sync: "
        "spec.git.dir 'overlays/prod' is not a hydrate output of [tool.meshready.hydrate] "
        "(one of: clusters/prod)",
    ]


def test_a_rootsync_must_read_the_unstructured_format(tmp_path: Path):
    repo = gitops_repo(
        tmp_path,
        bootstrap__rootsync_yaml=ROOTSYNC.format(dir="clusters/prod").replace(
            "sourceFormat: unstructured", "sourceFormat: hierarchy"
        ),
    )
    (finding,) = messages(repo)
    assert finding == (
        "bootstrap/rootsync.yaml:7: RootSync config-management-system/root-sync: "
        "sourceFormat must be `unstructured` for hydrated output"
    )


def test_a_missing_synced_dir_and_bad_yaml_are_findings_not_tracebacks(tmp_path: Path):
    repo = gitops_repo(tmp_path, bootstrap__broken_yaml="a: [1\n")
    shutil.rmtree(repo / "clusters")
    found = messages(repo)
    assert found[0].startswith("bootstrap/broken.yaml:1: document: YAML parse error at line 1")
    assert "'clusters/prod' does not exist; run `nox -s render`" in found[1]
    assert len(found) == 3  # both agents point at the missing directory


def test_a_bad_bootstrap_setting_is_a_one_line_usage_error(tmp_path: Path):
    repo = gitops_repo(tmp_path)
    (repo / "pyproject.toml").write_text('[tool.meshready]\ngitops_bootstrap = "bootstrap"\n')
    result = run_cli("gitops", cwd=repo)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "meshready: error: pyproject.toml: [tool.meshready]: gitops_bootstrap must be a list of paths"
    ]


def test_a_duplicate_key_in_a_sync_object_is_a_finding(tmp_path: Path):
    repo = gitops_repo(
        tmp_path,
        bootstrap__rootsync_yaml=ROOTSYNC.format(dir="clusters/prod") + "        dir: overlays\n",
    )
    found = messages(repo)
    assert found[0] == (
        "bootstrap/rootsync.yaml:8: RootSync config-management-system/root-sync: "
        "duplicate key 'dir' (lines 11 and 13)"
    )


def test_findings_name_cluster_scoped_objects_without_a_slash():
    finding = gitops.Finding("f.yaml", 3, "Namespace", "", "hello", "m")
    assert str(finding) == "f.yaml:3: Namespace hello: m"
    assert (
        str(gitops.Finding("f.yaml", 3, "RootSync", "ns", "x", "m")) == "f.yaml:3: RootSync ns/x: m"
    )


def test_bootstrap_manifests_validate_strictly_against_their_schemas():
    result = run_cli("validate", "--strict", "--summary", "bootstrap", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid: 2, Invalid: 0" in result.stdout


def test_a_misspelt_rootsync_field_is_rejected(tmp_path: Path):
    text = (ROOT / "bootstrap/config-sync/rootsync.yaml").read_text()
    assert "  sourceFormat: unstructured" in text
    broken = tmp_path / "rootsync.yaml"
    broken.write_text(text.replace("  sourceFormat: unstructured", "  sourceformat: unstructured"))
    result = run_cli("validate", "--strict", str(broken), cwd=ROOT)
    assert result.returncode == 1
    assert "sourceformat" in result.stdout
