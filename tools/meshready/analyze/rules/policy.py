"""Workload policy (MR2xx): the Pod Security "restricted" profile plus common hygiene."""

from __future__ import annotations

from collections.abc import Iterator

from meshready.analyze.rules.base import Hit, Scope, Severity, rule
from meshready.analyze.rules.model import (
    REPLICATED_KINDS,
    Container,
    Context,
    Workload,
    as_dict,
    as_list,
    get,
)
from meshready.images.ref import parse_image

SECCOMP_ALLOWED = ("RuntimeDefault", "Localhost")
# The only capability the restricted profile lets a container add.
ADDABLE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SERVING_KINDS = frozenset(
    {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "Rollout"}
)


def _where(container: Container) -> str:
    return f"{'init container' if container.init else 'container'} {container.name}"


def _security_context_path(container: Container) -> tuple:
    """Where a missing security setting belongs: the container's securityContext, the block
    to edit. Without one the finding's line falls back to the container itself."""
    return (*container.path, "securityContext")


def run_as_non_root(workload: Workload, ctx: Context) -> Iterator[Hit]:
    pod = workload.pod_security_context
    for container in workload.all_containers:
        own = container.security_context
        non_root = own.get("runAsNonRoot", pod.get("runAsNonRoot"))
        user = own.get("runAsUser", pod.get("runAsUser"))
        if user == 0:
            # Point at the runAsUser to change: the container's own, else the pod's.
            if "runAsUser" in own:
                yield Hit(
                    (*container.path, "securityContext", "runAsUser"),
                    f"{_where(container)} runs as UID 0",
                )
            else:
                yield Hit(
                    (*workload.pod_spec_path, "securityContext", "runAsUser"),
                    f"{_where(container)} runs as UID 0 (the pod's runAsUser)",
                )
        elif non_root is not True:
            yield Hit(
                _security_context_path(container), f"{_where(container)} has no runAsNonRoot: true"
            )


rule(
    id="MR201",
    name="run-as-non-root",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="container may run as root",
    description=(
        "The restricted Pod Security profile requires `runAsNonRoot: true` (on the pod or "
        "every container), so that the kubelet refuses to start an image that runs as UID 0. "
        "A process running as root turns any container escape into root on the node."
    ),
    remediation=(
        "Set `securityContext.runAsNonRoot: true` on the pod (and a non-zero `runAsUser` "
        "if the image does not set a numeric USER)."
    ),
    upstream="Pod Security `restricted` rejects the pod unless `runAsNonRoot` is true on the pod or every container (a container's `false` overrides the pod's `true`), and rejects `runAsUser: 0`.",
    deliberate="An image that must start as root (it drops privileges itself): suppress with `MR201: <image> needs root to <why>` and keep the namespace at `baseline`.",
    reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)(run_as_non_root)


def allow_privilege_escalation(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.all_containers:
        own = container.security_context
        if own.get("allowPrivilegeEscalation") is not False:
            yield Hit(_security_context_path(container), _where(container))


rule(
    id="MR202",
    name="allow-privilege-escalation",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="container does not set allowPrivilegeEscalation: false",
    description=(
        "Unless it is false, a process can gain more privileges than its parent (setuid "
        "binaries, file capabilities). The restricted profile requires it to be false."
    ),
    remediation="Set `securityContext.allowPrivilegeEscalation: false` on every container.",
    upstream="Pod Security `restricted` rejects a container whose `allowPrivilegeEscalation` is not explicitly false.",
    deliberate="None under `restricted`; a namespace at `baseline` accepts it: suppress with the reason the process needs setuid.",
    reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)(allow_privilege_escalation)


def read_only_root_filesystem(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.all_containers:
        own = container.security_context
        if own.get("readOnlyRootFilesystem") is not True:
            yield Hit(_security_context_path(container), _where(container))


rule(
    id="MR203",
    name="read-only-root-filesystem",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="container root filesystem is writable",
    description=(
        "A read-only root filesystem stops an intruder from dropping tools or changing "
        "binaries in the container, and makes every write an explicit, reviewed volume."
    ),
    remediation="Set `securityContext.readOnlyRootFilesystem: true` and mount an emptyDir where the app must write.",
    upstream="Pod Security does not require it (no profile checks `readOnlyRootFilesystem`); it is hardening beyond `restricted`.",
    deliberate="An application that writes to its image's filesystem: suppress with `MR203: writes to /path` or lower the rule per target.",
    reference="https://kubernetes.io/docs/tasks/configure-pod-container/security-context/",
)(read_only_root_filesystem)


def drop_all_capabilities(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.all_containers:
        own = container.security_context
        capabilities = as_dict(own.get("capabilities"))
        # Without a capabilities block the line falls back to the securityContext's, or the
        # container's.
        path = (*container.path, "securityContext", "capabilities")
        # Exactly "ALL", as Pod Security compares: `all` passes a linter and fails admission.
        if "ALL" not in [str(c) for c in as_list(capabilities.get("drop"))]:
            yield Hit(path, _where(container))
        added = [str(c) for c in as_list(capabilities.get("add"))]
        extra = [c for c in added if c not in ADDABLE_CAPABILITIES]  # exactly, as Pod Security
        if extra:
            yield Hit((*path, "add"), f"{_where(container)} adds {', '.join(extra)}")


rule(
    id="MR204",
    name="drop-all-capabilities",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="container does not drop ALL capabilities",
    description=(
        "The restricted profile requires `capabilities.drop: [ALL]` and allows adding back "
        "only NET_BIND_SERVICE; default capabilities such as NET_RAW allow spoofing traffic "
        "inside the cluster."
    ),
    remediation="Set `securityContext.capabilities.drop: [ALL]`; add back only NET_BIND_SERVICE if needed.",
    upstream="Pod Security `restricted` requires `drop` to contain `ALL`, compared exactly (`all` is rejected), and allows `add` to contain only `NET_BIND_SERVICE`, again exactly (`CAP_NET_BIND_SERVICE` is rejected).",
    deliberate="A container that needs a capability (NET_ADMIN for a CNI agent): suppress with the capability and why, and keep its namespace at `privileged`.",
    reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)(drop_all_capabilities)


def seccomp_runtime_default(workload: Workload, ctx: Context) -> Iterator[Hit]:
    pod_type = as_dict(workload.pod_security_context.get("seccompProfile")).get("type")
    for container in workload.all_containers:
        own = container.security_context
        kind = as_dict(own.get("seccompProfile")).get("type", pod_type)
        if kind not in SECCOMP_ALLOWED:
            shown = f"seccompProfile {kind}" if kind else "no seccompProfile"
            yield Hit(_security_context_path(container), f"{_where(container)} has {shown}")


rule(
    id="MR205",
    name="seccomp-runtime-default",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="container has no RuntimeDefault seccomp profile",
    description=(
        "Without a seccomp profile a container can make every system call the kernel offers. "
        "The restricted profile requires `RuntimeDefault` (or a `Localhost` profile) on the "
        "pod or every container."
    ),
    remediation="Set `securityContext.seccompProfile.type: RuntimeDefault` on the pod.",
    upstream="Pod Security `restricted` requires `seccompProfile.type` `RuntimeDefault` or `Localhost` on the pod or every container; `Unconfined` is rejected.",
    deliberate="A workload that needs system calls the default profile blocks: ship a `Localhost` profile instead of suppressing.",
    reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)(seccomp_runtime_default)


def privileged_container(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.all_containers:
        if container.security_context.get("privileged") is True:
            yield Hit((*container.path, "securityContext", "privileged"), _where(container))


rule(
    id="MR206",
    name="privileged-container",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="container is privileged",
    description="A privileged container has every capability and access to all host devices: it is root on the node.",
    remediation="Remove `privileged: true`; grant the single capability the workload needs instead.",
    upstream="Pod Security `baseline` (and so `restricted`) rejects privileged containers.",
    deliberate="A node-level agent: suppress with `MR206: <agent> manages the node` and run it in a `privileged` namespace.",
    reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)(privileged_container)


def host_pid_ipc(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for field_ in ("hostPID", "hostIPC"):
        if workload.pod_spec.get(field_) is True:
            yield Hit((*workload.pod_spec_path, field_), field_)


rule(
    id="MR207",
    name="host-pid-ipc",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="pod shares the host's PID or IPC namespace",
    description=(
        "hostPID lets the pod see and signal every process on the node; hostIPC lets it read "
        "shared memory of host processes. Both are forbidden by the baseline profile."
    ),
    remediation="Remove `hostPID` and `hostIPC` from the pod spec.",
    upstream="Pod Security `baseline` rejects `hostPID` and `hostIPC`.",
    deliberate="A node monitoring agent: suppress with the reason, in a `privileged` namespace.",
    reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)(host_pid_ipc)


def host_path_volume(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for i, volume in enumerate(as_list(workload.pod_spec.get("volumes"))):
        if isinstance(volume, dict) and "hostPath" in volume:
            path = get(volume, ("hostPath", "path"), "?")
            yield Hit(
                (*workload.pod_spec_path, "volumes", i, "hostPath"),
                f"volume {volume.get('name', i)} mounts {path}",
            )


rule(
    id="MR208",
    name="host-path-volume",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="pod mounts a hostPath volume",
    description=(
        "A hostPath volume exposes the node's filesystem to the pod; it is the most common "
        "way out of a container. The baseline profile forbids it."
    ),
    remediation="Use an emptyDir, a ConfigMap/Secret or a PersistentVolumeClaim instead.",
    upstream="Pod Security `baseline` rejects every hostPath volume.",
    deliberate="A log collector reading /var/log: suppress with the path and why, in a `privileged` namespace.",
    reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)(host_path_volume)


def container_resources(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.all_containers:
        resources = as_dict(container.spec.get("resources"))
        missing = [
            f"{section}.{name}"
            for section, name in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))
            if as_dict(resources.get(section)).get(name) in (None, "")
        ]
        if missing:  # without a resources block the line falls back to the container's
            yield Hit(
                (*container.path, "resources"), f"{_where(container)} has no {', '.join(missing)}"
            )


rule(
    id="MR209",
    name="container-resources",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="container lacks CPU or memory requests, or a memory limit",
    description=(
        "Requests let the scheduler place pods on nodes that can hold them; a memory limit "
        "stops one leaking container from starving its neighbours (including its sidecar). "
        "CPU limits are left out on purpose: they throttle without protecting anything."
    ),
    remediation="Set `resources.requests.cpu`, `resources.requests.memory` and `resources.limits.memory`.",
    upstream="Kubernetes schedules pods without requests as BestEffort and evicts them first; no Pod Security profile checks resources. The sidecar has requests of its own.",
    deliberate="Resources set by a VerticalPodAutoscaler or a LimitRange: suppress with `MR209: set by <what>`.",
    reference="https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/",
)(container_resources)


def container_probes(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if workload.kind in ("Job", "CronJob"):
        return
    for container in workload.app_containers:
        if not container.ports:
            continue
        missing = [p for p in ("livenessProbe", "readinessProbe") if not container.spec.get(p)]
        if missing:
            yield Hit(container.path, f"{_where(container)} has no {' and no '.join(missing)}")


rule(
    id="MR210",
    name="container-probes",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="serving container lacks a liveness or readiness probe",
    description=(
        "Without a readiness probe a pod receives traffic before it can answer it; without a "
        "liveness probe a wedged process is never restarted. Containers that declare a port "
        "serve traffic and need both."
    ),
    remediation="Add `readinessProbe` and `livenessProbe` (an HTTP GET on a health endpoint, by port name).",
    upstream="Kubernetes treats a container without a readiness probe as ready as soon as it starts; Istio rewrites HTTP probes through its agent. Client-only containers (no declared port) are not checked.",
    deliberate="A worker whose health the process exit says: suppress with `MR210: exits on failure`.",
    reference="https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/",
)(container_probes)


def _image_detail(container: Container, image: str) -> str:
    return f"{_where(container)} image {image!r}" if image else f"{_where(container)} has no image"


def image_tag(workload: Workload, ctx: Context) -> Iterator[Hit]:
    for container in workload.all_containers:
        image = str(container.spec.get("image") or "")
        parsed = parse_image(image)
        if parsed.digest is None and parsed.tag in (None, "latest"):
            yield Hit((*container.path, "image"), _image_detail(container, image))


rule(
    id="MR211",
    name="image-tag",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="image is untagged or uses :latest",
    description=(
        "`:latest` (or no tag, which means latest) changes under the same manifest: two "
        "nodes can run different code, and a rollback does not roll back. The hydrated "
        "manifests are meant to say exactly what runs."
    ),
    remediation="Use an immutable tag (a version or the commit the image was built from), or a digest.",
    upstream="Kubernetes pulls `:latest` (or an untagged image) with `imagePullPolicy: Always`, so each node runs whatever the tag points at when the pod starts. `localhost:5000/web` is untagged: `:5000` is a registry port.",
    deliberate="A development target that always runs the newest build: disable the rule for that target in pyproject.toml.",
    reference="https://kubernetes.io/docs/concepts/containers/images/#image-names",
)(image_tag)


def image_digest(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if not ctx.settings.require_digest:
        return
    for container in workload.all_containers:
        image = str(container.spec.get("image") or "")
        if not parse_image(image).pinned:
            yield Hit((*container.path, "image"), _image_detail(container, image))


rule(
    id="MR212",
    name="image-digest",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="image is not pinned by digest, and this target requires it",
    description=(
        "A tag can be pushed again; only a digest names the exact bytes that run. Targets "
        "with `require_digest = true` in their rule config (typically production) must "
        "pin every image by digest."
    ),
    remediation="Use `image: name@sha256:<digest>` (kustomize's `images:` field can set `digest`).",
    upstream="Kubernetes runs whatever the tag resolves to at pull time; only a digest is immutable.",
    deliberate="Only on for targets with `require_digest = true`; leave it off where tags are enough.",
    reference="https://kubernetes.io/docs/concepts/containers/images/#image-pull-policy",
)(image_digest)


def dedicated_service_account(workload: Workload, ctx: Context) -> Iterator[Hit]:
    spec = workload.pod_spec
    name = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if not name or name == "default":
        # The field that says default (the deprecated one if only it does); when neither is
        # set the line falls back to the pod spec's.
        field_ = (
            "serviceAccount"
            if name and not spec.get("serviceAccountName")
            else "serviceAccountName"
        )
        yield Hit((*workload.pod_spec_path, field_))


rule(
    id="MR213",
    name="dedicated-service-account",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="pod runs as the namespace's default ServiceAccount",
    description=(
        "The mesh derives a workload's identity (its SPIFFE ID, used in mTLS and "
        "AuthorizationPolicy) from its ServiceAccount. Workloads sharing `default` share an "
        "identity, so policy cannot tell them apart, and RBAC granted to one is granted to all."
    ),
    remediation="Create a ServiceAccount per workload and set `serviceAccountName` in the pod spec.",
    upstream="Kubernetes gives every pod the namespace's `default` ServiceAccount; Istio issues the certificate `spiffe://<trust-domain>/ns/<ns>/sa/<account>` from it.",
    deliberate="A namespace with a single workload, where the default identity is unambiguous: suppress with that reason.",
    reference="https://istio.io/latest/docs/concepts/security/#istio-identity",
)(dedicated_service_account)


def automount_service_account_token(workload: Workload, ctx: Context) -> Iterator[Hit]:
    spec = workload.pod_spec
    if spec.get("automountServiceAccountToken") is not None:
        return  # false, or an explicit true: the token is declared as used
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    account = ctx.service_accounts.get((workload.namespace_key, str(name)))
    if account is not None and account.obj.get("automountServiceAccountToken") is False:
        return
    yield Hit(workload.pod_spec_path)


rule(
    id="MR214",
    name="automount-service-account-token",
    severity=Severity.WARNING,
    scope=Scope.WORKLOAD,
    message="service account token is mounted without saying it is used",
    description=(
        "Every pod gets an API token mounted by default; an application that never calls the "
        "Kubernetes API only gives an intruder a credential. The token is taken as unused "
        "unless the pod spec says `automountServiceAccountToken: true` explicitly."
    ),
    remediation=(
        "Set `automountServiceAccountToken: false` on the pod spec (or its ServiceAccount); "
        "set it to `true` on the pod spec if the application does use the API."
    ),
    upstream="Kubernetes mounts a token unless the pod or its ServiceAccount sets `automountServiceAccountToken: false`.",
    deliberate="The application calls the Kubernetes API: set `automountServiceAccountToken: true` on the pod spec (that answers the rule).",
    reference="https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/",
)(automount_service_account_token)


def _serving(workload: Workload, ctx: Context) -> bool:
    return workload.kind in SERVING_KINDS and bool(ctx.services_of.get(id(workload)))


def production_replicas(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if not ctx.settings.production or workload.kind not in REPLICATED_KINDS:
        return
    if not _serving(workload, ctx):
        return
    hpa = ctx.autoscalers.get((workload.namespace_key, workload.kind, workload.name))
    if hpa is not None:
        minimum = get(hpa.obj, ("spec", "minReplicas"), 1)
        if isinstance(minimum, int) and minimum < 2:
            yield Hit(("spec",), f"HorizontalPodAutoscaler {hpa.name} has minReplicas {minimum}")
        return
    replicas = get(workload.obj, ("spec", "replicas"), 1)
    if isinstance(replicas, int) and replicas < 2:
        # Without replicas the line falls back to the spec's.
        yield Hit(("spec", "replicas"), f"replicas {replicas}")


rule(
    id="MR215",
    name="production-replicas",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="serving workload in a production target runs fewer than 2 replicas",
    description=(
        "One replica means every rollout, node drain or crash is an outage. Applies to "
        "workloads selected by a Service in targets listed in `production_targets`; with a "
        "HorizontalPodAutoscaler its minReplicas counts."
    ),
    remediation="Set `spec.replicas: 2` or more in the production overlay (or the HPA's minReplicas).",
    upstream="Kubernetes' default for a missing `spec.replicas` is 1, and for a missing HPA `minReplicas` also 1; both count as one replica here.",
    deliberate="A singleton by design (a leader-elected controller): suppress with `MR215: singleton, <why>`.",
    reference="https://kubernetes.io/docs/concepts/workloads/pods/disruptions/",
)(production_replicas)


def production_disruption_budget(workload: Workload, ctx: Context) -> Iterator[Hit]:
    if ctx.settings.production and _serving(workload, ctx) and not ctx.pdbs_of.get(id(workload)):
        yield Hit((*workload.template_path, "metadata", "labels"))


rule(
    id="MR216",
    name="production-disruption-budget",
    severity=Severity.ERROR,
    scope=Scope.WORKLOAD,
    message="serving workload in a production target has no PodDisruptionBudget",
    description=(
        "Without a PodDisruptionBudget a node upgrade may evict every replica at once. "
        "Applies to workloads selected by a Service in targets listed in `production_targets`."
    ),
    remediation="Add a PodDisruptionBudget (e.g. `maxUnavailable: 1`) whose selector matches the pods.",
    upstream="Kubernetes evicts without limit when no PodDisruptionBudget selects the pods. A PDB without a selector selects no pod (`selector: {}` selects every pod of its namespace), and one whose selector has an unknown matchExpressions operator is invalid and selects nothing.",
    deliberate="A singleton that may be interrupted: suppress with the reason.",
    reference="https://kubernetes.io/docs/tasks/run-application/configure-pdb/",
)(production_disruption_budget)
