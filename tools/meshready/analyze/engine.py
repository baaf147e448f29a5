"""The analysis engine: index a rendered target, run the rule catalog, locate and filter findings.

Cross-object rules need to know which Services select which workloads. A Service is
indexed under (namespace, one label pair of its selector); a workload looks up the
buckets of its own pod label pairs and checks each candidate's whole selector. Each
Service sits in one bucket, so the work is linear in the number of objects (plus the
matches found), not objects squared.

Configuration ([tool.meshready] in pyproject.toml):

    production_targets = ["overlays/prod"]      # replicas/PDB rules; Namespace must be declared
    analyze_fail_on = "error"                   # threshold of `meshready check`
    [tool.meshready.rules."*"]                  # every target
    severity = { MR203 = "info" }
    [tool.meshready.rules."overlays/dev"]       # one target (merged over "*")
    disable = ["MR215"]
    severity = { MR209 = "info" }
    require_digest = true                       # MR212 on
    require_namespace = true                    # MR113 for undeclared namespaces
    external_gateways = true                    # Istio gateways installed elsewhere (MR313)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshready.analyze.rules import CATALOG, Hit, Rule, Scope, Severity, by_id_or_name
from meshready.analyze.rules import suppression as supp
from meshready.analyze.rules.model import (
    SYSTEM_NAMESPACES,
    Context,
    K8sObject,
    Service,
    TargetSettings,
    Workload,
    as_dict,
    as_list,
    expressions_match,
    get,
    labels_match,
    string_map,
)
from meshready.analyze.rules.model import Path as FieldPath
from meshready.analyze.sources import InputError, LoadedObject, cyclic_gc_paused, render_errors
from meshready.config import RepoConfig
from meshready.errors import MeshreadyError
from meshready.manifests.locate import Locator, PatchLocator
from meshready.manifests.workloads import pod_template_path
from meshready.render import RenderResult

# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class TargetRules:
    disabled: frozenset[str] = frozenset()
    severity: dict[str, Severity] = field(default_factory=dict)
    settings: TargetSettings = field(default_factory=TargetSettings)


@dataclass(frozen=True)
class AnalysisConfig:
    production_targets: frozenset[str] = frozenset()
    per_target: dict[str, dict[str, Any]] = field(default_factory=dict)  # "*" or target -> table
    fail_on: Severity = Severity.ERROR

    def for_target(self, target: str) -> TargetRules:
        merged: dict[str, Any] = {"disable": [], "severity": {}}
        for key in ("*", target):
            table = self.per_target.get(key, {})
            merged["disable"] = [*merged["disable"], *table.get("disable", [])]
            merged["severity"] = {**merged["severity"], **table.get("severity", {})}
            for flag in ("require_digest", "require_namespace", "external_gateways"):
                if flag in table:
                    merged[flag] = table[flag]
        return TargetRules(
            disabled=frozenset(_rule_id(r, "disable") for r in merged["disable"]),
            severity={
                _rule_id(r, "severity"): Severity.parse(s) for r, s in merged["severity"].items()
            },
            settings=TargetSettings(
                production=target in self.production_targets,
                require_digest=bool(merged.get("require_digest", False)),
                require_namespace=bool(merged.get("require_namespace", False)),
                external_gateways=bool(merged.get("external_gateways", False)),
            ),
        )


def _rule_id(name: str, where: str) -> str:
    found = by_id_or_name(str(name))
    if found is None:
        raise MeshreadyError(f"[tool.meshready.rules] {where}: unknown rule {name!r}")
    return found.id


_TARGET_KEYS = {"disable", "severity", "require_digest", "require_namespace", "external_gateways"}


def analysis_config(config: RepoConfig) -> AnalysisConfig:
    """Read and check the analysis keys of [tool.meshready]; bad values are usage errors."""
    raw = config.raw
    try:
        production = raw.get("production_targets", [])
        if not isinstance(production, list):
            raise ValueError("production_targets must be a list of target paths")
        tables = raw.get("rules", {})
        if not isinstance(tables, dict):
            raise ValueError("[tool.meshready.rules] must be a table of targets")
        per_target: dict[str, dict[str, Any]] = {}
        for target, table in tables.items():
            if not isinstance(table, dict):
                raise ValueError(f'rules."{target}" must be a table')
            unknown = set(table) - _TARGET_KEYS
            if unknown:
                raise ValueError(f'rules."{target}": unknown key(s) {", ".join(sorted(unknown))}')
            if not isinstance(table.get("disable", []), list):
                raise ValueError(f'rules."{target}".disable must be a list of rule IDs')
            if not isinstance(table.get("severity", {}), dict):
                raise ValueError(f'rules."{target}".severity must be a table RULE = "severity"')
            per_target[str(target).strip("/")] = table
        analysis = AnalysisConfig(
            production_targets=frozenset(str(t).strip("/") for t in production),
            per_target=per_target,
            fail_on=Severity.parse(raw.get("analyze_fail_on", "error")),
        )
        for target in per_target:  # fail on bad rule names now, not on the first matching target
            analysis.for_target(target)
        return analysis
    except ValueError as err:
        raise MeshreadyError(f"pyproject.toml [tool.meshready]: {err}") from None


# ---------------------------------------------------------------- indexing


def build_context(
    result: RenderResult, settings: TargetSettings
) -> tuple[Context, list[K8sObject]]:
    """Classify a target's objects and compute the Service/PDB/SA/HPA indexes.

    A workload is any object with a pod template (manifests.workloads): the built-in
    kinds, an Argo Rollout, and any other kind whose `spec.template` holds containers.
    Objects are indexed by the namespace they land in (`namespace_key`): one that omits
    its namespace and one that says `default` meet."""
    ctx = Context(settings=settings)
    everything: list[K8sObject] = []
    pdbs: list[K8sObject] = []
    for index, rendered in enumerate(result.objects):
        obj = rendered.obj
        meta = as_dict(obj.get("metadata"))
        kind = str(obj.get("kind", ""))
        identity = (
            obj,
            kind,
            str(meta.get("name", "")),
            str(meta.get("namespace", "") or ""),
            rendered.source_path,
            index,
        )
        template = pod_template_path(obj) if kind != "Service" else None
        if template is not None:
            workload = Workload(*identity, template)
            ctx.workloads.append(workload)
            item: K8sObject = workload
        elif kind == "Service":
            service = Service(*identity)
            ctx.services.append(service)
            item = service
        else:
            item = K8sObject(*identity)
            if kind == "Namespace":
                ctx.namespaces[item.name] = item
            elif kind == "PodDisruptionBudget":
                pdbs.append(item)
            elif kind == "ServiceAccount":
                ctx.service_accounts[(item.namespace_key, item.name)] = item
            elif kind == "HorizontalPodAutoscaler":
                ref = as_dict(get(item.obj, ("spec", "scaleTargetRef")))
                scale_key = (item.namespace_key, str(ref.get("kind", "")), str(ref.get("name", "")))
                ctx.autoscalers[scale_key] = item
        everything.append(item)
        group = item.api_group
        ctx.objects_by_kind.setdefault((group, kind), []).append(item)
        if group.endswith("istio.io"):
            ctx.istio_objects.append(item)

    # Services and PDBs by (namespace, one label pair their selector requires).
    service_index: dict[tuple[str, str, str], list[Service]] = defaultdict(list)
    for service in ctx.services:
        selector = service.selector
        if selector:
            key, value = min(selector.items())
            service_index[(service.namespace_key, key, value)].append(service)
    pdb_index: dict[tuple[str, str, str], list[K8sObject]] = defaultdict(list)
    pdb_scan: dict[str, list[K8sObject]] = defaultdict(list)  # matchExpressions-only selectors
    # Each PDB's selector, read once: (matchLabels, matchExpressions). A PDB without one
    # selects no pod (policy/v1: "a null selector will match no pods", while `{}` selects
    # every pod of the namespace), so it is not indexed at all.
    pdb_selectors: dict[int, tuple[dict[str, str], list[Any]]] = {}
    for pdb in pdbs:
        selector = get(pdb.obj, ("spec", "selector"))
        if selector is None:
            continue
        match_labels = string_map(as_dict(selector).get("matchLabels"))
        pdb_selectors[id(pdb)] = (match_labels, as_list(as_dict(selector).get("matchExpressions")))
        if match_labels:
            key, value = min(match_labels.items())
            pdb_index[(pdb.namespace_key, key, value)].append(pdb)
        else:
            pdb_scan[pdb.namespace_key].append(pdb)

    for workload in ctx.workloads:
        labels = workload.pod_labels
        namespace = workload.namespace_key
        matched: list[Service] = []
        matched_pdbs: list[K8sObject] = []
        for key, value in labels.items():
            for service in service_index.get((namespace, key, value), ()):
                if labels_match(service.selector, labels):
                    matched.append(service)
                    ctx.workloads_of.setdefault(id(service), []).append(workload)
            for pdb in pdb_index.get((namespace, key, value), ()):
                if _pdb_selects(pdb_selectors[id(pdb)], labels):
                    matched_pdbs.append(pdb)
        for pdb in pdb_scan.get(namespace, ()):
            if _pdb_selects(pdb_selectors[id(pdb)], labels):
                matched_pdbs.append(pdb)
        ctx.workload_namespaces.add(namespace)
        ctx.services_of[id(workload)] = sorted(matched, key=lambda s: s.index)
        ctx.pdbs_of[id(workload)] = matched_pdbs
    return ctx, everything


def _pdb_selects(selector: tuple[dict[str, str], list[Any]], labels: dict[str, str]) -> bool:
    """`label_selector_matches` on a selector read beforehand."""
    match_labels, expressions = selector
    return labels_match(match_labels, labels) and expressions_match(expressions, labels)


# ---------------------------------------------------------------- findings


@dataclass
class Finding:
    rule: Rule
    severity: Severity
    target: str
    kind: str
    namespace: str
    name: str
    message: str
    path: FieldPath = ()
    file: str | None = None
    line: int | None = None
    suppressed: str | None = None  # why it is suppressed, if it is
    order: tuple[int, ...] = ()

    @property
    def object(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    def as_record(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "name": self.rule.name,
            "severity": self.severity.label,
            "target": self.target,
            "object": self.object,
            "kind": self.kind,
            "namespace": self.namespace or None,
            "objectName": self.name,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "suppressed": self.suppressed,
        }


@dataclass
class AnalysisReport:
    targets: list[str]
    findings: list[Finding]  # active (not suppressed), in target/object order
    suppressed: list[Finding]
    fail_on: Severity = Severity.ERROR
    objects: int = 0
    # Inputs that could not be analysed (failed renders, unparsable files): they fail the run.
    errors: list[InputError] = field(default_factory=list)
    # What was left out and why (non-Kubernetes documents, pod templates not checked).
    notes: list[str] = field(default_factory=list)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.severity >= self.fail_on]

    @property
    def failed(self) -> bool:
        """Whether the run fails: an input error, or a finding at or above the threshold."""
        return bool(self.errors) or bool(self.failing)

    def counts(self) -> dict[Severity, int]:
        counts = dict.fromkeys(Severity, 0)
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts


# ---------------------------------------------------------------- running


# Objects checked together by each rule in turn: few enough that their fields stay in the
# CPU cache (a Deployment and its views take a few KiB) while every rule reads them.
_BLOCK = 128


def _checks(scope: Scope) -> tuple[tuple[Rule, Any], ...]:
    return tuple(
        (rule, rule.check)
        for rule in CATALOG.values()
        if rule.scope is scope and rule.check is not None
    )


def _applies(rule: Rule, subject: K8sObject) -> bool:
    """Mesh readiness does not apply where Istio never injects, and a rule about the
    sidecar does not apply to a pod that opts out of it."""
    if rule.mesh and subject.namespace in SYSTEM_NAMESPACES:
        return False
    return not (rule.needs_sidecar and isinstance(subject, Workload) and subject.opted_out)


def _exempt(subject: K8sObject) -> bool:
    """Whether some rule may not apply to `subject` (most subjects: no, and no check)."""
    return subject.namespace in SYSTEM_NAMESPACES or (
        isinstance(subject, Workload) and subject.opted_out
    )


@dataclass
class _Locators:
    source: Locator
    patches: PatchLocator


def _where(
    rendered: Any, locators: _Locators | None, item: K8sObject, path: FieldPath
) -> tuple[str | None, int | None]:
    """(file, line) of a finding: the plain file's own line; for a rendered object the
    overlay patch that set the field, else the line in the object's source file."""
    if isinstance(rendered, LoadedObject):  # a plain file: its loader knows every line
        return item.source_path, rendered.line_of(path)
    if locators is None:
        return item.source_path, None
    transformations = (rendered.origin or {}).get("transformations")
    if transformations:
        patched = locators.patches.locate(transformations, item.kind, item.name, path)
        if patched is not None:
            return patched
    return item.source_path, locators.source.locate(item.source_path, item.kind, item.name, path)


def analyze_target(
    result: RenderResult, analysis: AnalysisConfig, locators: _Locators | None
) -> tuple[list[Finding], list[Finding], int]:
    """(active findings, suppressed findings, object count) of one rendered target."""
    target_rules = analysis.for_target(result.target)
    ctx, everything = build_context(result, target_rules.settings)
    raw: list[tuple[Rule, K8sObject, Hit]] = []
    # Rule by rule over the whole target, each rule walked every object again, and once a
    # target outgrew the CPU cache every walk went to main memory: the time per object grew
    # with the target (9.6 us at 2,500 objects, 24.5 us at 20,000). Rule by rule within
    # blocks of objects keeps a block in cache and each rule's code hot. Findings are sorted
    # by (object, rule) below, so the order they are found in does not show.
    for subjects, rules in (
        (ctx.workloads, _checks(Scope.WORKLOAD)),
        (ctx.services, _checks(Scope.SERVICE)),
        (everything, _checks(Scope.OBJECT)),
        (ctx.istio_objects, _checks(Scope.ISTIO)),
    ):
        for start in range(0, len(subjects), _BLOCK):
            block: list[Any] = []
            exempt: list[Any] = []
            for subject in subjects[start : start + _BLOCK]:
                (exempt if _exempt(subject) else block).append(subject)
            for rule, check in rules:
                for subject in block:
                    for hit in check(subject, ctx):
                        raw.append((rule, subject, hit))
                for subject in exempt:
                    if _applies(rule, subject):
                        for hit in check(subject, ctx):
                            raw.append((rule, subject, hit))

    # Suppression annotations, parsed once per object that carries one.
    suppressions: dict[int, supp.Suppression] = {}
    for item in everything:
        # The raw annotations, not item.annotations: that view costs a dict per object and
        # only a few objects carry the annotation. Keys are str (YAML gives no other key
        # whose str() is the annotation's name), values are read as str like in the view.
        annotations = as_dict(as_dict(item.obj.get("metadata")).get("annotations"))
        if supp.ANNOTATION not in annotations:
            continue
        parsed = supp.parse(str(annotations[supp.ANNOTATION]))
        suppressions[id(item)] = parsed
        where = ("metadata", "annotations", supp.ANNOTATION)
        for clause in parsed.missing_reason:
            raw.append((supp.MISSING_REASON, item, Hit(where, repr(clause))))
        for name in parsed.unknown:
            raw.append((supp.UNKNOWN_RULE, item, Hit(where, name)))

    active: list[Finding] = []
    suppressed: list[Finding] = []
    for rule, item, hit in raw:
        finding = Finding(
            rule=rule,
            severity=target_rules.severity.get(rule.id, rule.severity),
            target=result.target,
            kind=item.kind,
            namespace=item.namespace,
            name=item.name,
            message=rule.format(hit),
            path=hit.path,
            order=(item.index, int(rule.id[2:])),
        )
        if rule.id in target_rules.disabled:
            finding.suppressed = f"disabled for {result.target} in pyproject.toml"
        elif rule.id in (reasons := suppressions.get(id(item), supp.Suppression()).rules):
            finding.suppressed = reasons[rule.id]
        finding.file, finding.line = _where(result.objects[item.index], locators, item, hit.path)
        (suppressed if finding.suppressed else active).append(finding)
    active.sort(key=lambda f: f.order)
    suppressed.sort(key=lambda f: f.order)
    return active, suppressed, len(everything)


def analyze(
    results: Iterable[RenderResult],
    analysis: AnalysisConfig,
    root: Path | None = None,
    fail_on: Severity | None = None,
    errors: Iterable[InputError] = (),
    notes: Iterable[str] = (),
) -> AnalysisReport:
    """Analyse every successfully rendered target (or group of plain files); a target that
    failed to render is an error of the report, as are the input `errors` given. `root`
    enables source line lookup for rendered objects (plain-file objects know their lines)."""
    locators = _Locators(Locator(root), PatchLocator(root)) if root is not None else None
    report = AnalysisReport(
        targets=[],
        findings=[],
        suppressed=[],
        fail_on=fail_on or analysis.fail_on,
        errors=list(errors),
        notes=list(notes),
    )
    results = list(results)
    report.errors.extend(render_errors(results, root))
    with cyclic_gc_paused():
        for result in results:
            if not result.ok:
                continue
            report.notes.extend(unchecked_pod_templates(result))
            active, suppressed, count = analyze_target(result, analysis, locators)
            report.targets.append(result.target)
            report.findings.extend(active)
            report.suppressed.extend(suppressed)
            report.objects += count
    return report


# Custom resources known to hold no pod template.
_NO_PODS = frozenset({"CustomResourceDefinition", "List"})
_SEARCH_DEPTH = 8


def _containers_at(value: Any, path: FieldPath, depth: int) -> FieldPath | None:
    """The path of the first `containers` list of container maps under `value`, if any."""
    if depth > _SEARCH_DEPTH:
        return None
    if isinstance(value, dict):
        found = value.get("containers")
        if isinstance(found, list) and found and all(isinstance(c, dict) for c in found):
            return path
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, child in items:
        if isinstance(child, dict | list):
            inner = _containers_at(child, (*path, key), depth + 1)
            if inner is not None:
                return inner
    return None


def unchecked_pod_templates(result: RenderResult) -> list[str]:
    """One note per kind whose objects hold containers where no rule looks (a pod spec not
    at `spec.template`): they are reported as skipped, never ignored silently."""
    skipped: dict[str, tuple[int, str]] = {}
    for rendered in result.objects:
        obj = rendered.obj
        kind = str(obj.get("kind", ""))
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        # Every built-in kind with pods is known; only custom resources can hide one.
        if "." not in group or group.endswith("k8s.io") or kind in _NO_PODS:
            continue
        if pod_template_path(obj) is not None:
            continue
        spec = obj.get("spec")
        if not isinstance(spec, dict | list):
            continue
        where = _containers_at(spec, ("spec",), 1)
        if where is not None:
            count, first = skipped.get(kind, (0, ".".join(map(str, where))))
            skipped[kind] = (count + 1, first)
    return [
        f"{result.target}: skipped {count} {kind} object{'s' if count > 1 else ''}: "
        f"pod spec at {where} is not checked (only spec.template is)"
        for kind, (count, where) in sorted(skipped.items())
    ]
