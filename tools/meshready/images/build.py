"""Container images: choosing a builder, tagging from git, building, smoke-running, pushing.

The pure core (builder choice, tags, OCI labels, command lines, parsing engine output) works
on plain data; `detect_builder`, `git_state`, `build`, `smoke_run`, `push` and friends are the
subprocess edges.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshready.errors import EXIT_FINDINGS, MeshreadyError
from meshready.git import GitState
from meshready.images.ref import DIGEST_RE, parse_image

BUILDER_ORDER = ("docker", "podman", "buildah")
DEFAULT_REGISTRY = "localhost/asm-ready"
# image name -> build context; the image name is also the `image:` the base manifests use.
DEFAULT_IMAGES = {"helloserver": "apps/hello", "loadgen": "apps/loadgen"}
DIRTY_SUFFIX = "-dirty"
SHA_LENGTH = 12  # long enough to stay unique in a busy repository, short enough to read
BUILD_TIMEOUT = 1800.0
# The UID:GID the Dockerfiles create; the smoke run insists on it instead of trusting USER.
SMOKE_USER = "10001:10001"

LOADGEN_REPORT_RE = re.compile(r"(\d+) request\(s\) complete to (\S+)")


# ---------------------------------------------------------------- builder choice (pure)


@dataclass(frozen=True)
class Builder:
    kind: str  # docker | podman | buildah
    path: str
    # docker only: how BuildKit is reached: "buildx" (plugin), "env" (DOCKER_BUILDKIT=1 on
    # a pre-23 CLI that embeds it) or "" (the legacy builder: a CLI >= 23 without buildx).
    buildkit: str = ""

    def describe(self) -> str:
        how = {"buildx": " (BuildKit via buildx)", "env": " (BuildKit)", "": ""}[self.buildkit]
        if self.kind == "docker" and not self.buildkit:
            how = " (legacy builder: no buildx plugin for this CLI)"
        return f"{self.kind}{how} at {self.path}"

    @property
    def can_run(self) -> bool:
        """Whether it runs containers from images (buildah only builds)."""
        return self.kind in ("docker", "podman")


@dataclass(frozen=True)
class BuilderProbe:
    """What was found for one candidate: its path, and for docker whether an engine answers
    and how BuildKit is reached."""

    path: str | None
    usable: bool = True
    buildkit: str = ""
    why_not: str = ""


def builder_kind(name_or_path: str) -> str | None:
    base = Path(name_or_path).name
    return next((kind for kind in BUILDER_ORDER if base.startswith(kind)), None)


def choose_builder(override: str | None, probes: Mapping[str, BuilderProbe]) -> Builder:
    """The builder to use: `override` ($BUILDER, a name or a path) when set, otherwise the
    first usable of docker (BuildKit), podman, buildah."""
    if override:
        kind = builder_kind(override)
        if kind is None:
            raise MeshreadyError(
                f"BUILDER={override} is not one of {', '.join(BUILDER_ORDER)} (a name or a path)"
            )
        probe = probes.get(kind, BuilderProbe(None))
        if probe.path is None:
            raise MeshreadyError(f"BUILDER={override}: no such executable")
        if not probe.usable:
            raise MeshreadyError(f"BUILDER={override}: {probe.why_not}")
        return Builder(kind, probe.path, probe.buildkit if kind == "docker" else "")
    reasons = []
    for kind in BUILDER_ORDER:
        probe = probes.get(kind, BuilderProbe(None))
        if probe.path and probe.usable:
            return Builder(kind, probe.path, probe.buildkit if kind == "docker" else "")
        reasons.append(f"{kind}: {probe.why_not or 'not on PATH'}")
    raise MeshreadyError(
        "no container builder found (" + "; ".join(reasons) + "): install docker, podman or "
        "buildah, or set BUILDER"
    )


# ---------------------------------------------------------------- tags and labels (pure)


def image_tag(registry: str, name: str, sha: str, dirty: bool) -> str:
    """`REGISTRY/NAME:SHA[-dirty]` with SHA abbreviated to SHA_LENGTH characters."""
    registry = registry.rstrip("/")
    if not registry:
        raise MeshreadyError("the registry must not be empty (REGISTRY, --registry)")
    return f"{registry}/{name}:{sha[:SHA_LENGTH]}{DIRTY_SUFFIX if dirty else ''}"


def created_epoch(state: GitState, env: Mapping[str, str]) -> int:
    """SOURCE_DATE_EPOCH when set (the reproducible-builds convention), else the commit
    time: never the wall clock, so rebuilding a commit gives the same labels."""
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return state.commit_time
    if not raw.isdigit():
        raise MeshreadyError(f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds")
    return int(raw)


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def oci_labels(state: GitState, created: int) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.revision": state.sha + (DIRTY_SUFFIX if state.dirty else ""),
        "org.opencontainers.image.created": rfc3339(created),
    }
    if state.source:
        labels["org.opencontainers.image.source"] = state.source
    return dict(sorted(labels.items()))


@dataclass(frozen=True)
class ImageSpec:
    name: str  # helloserver; also the `image:` in the base manifests
    context: str  # repo-relative build context holding the Dockerfile


def images_table(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`[tool.meshready.images]` of the repository configuration."""
    table = raw.get("images", {})
    if not isinstance(table, dict):
        raise MeshreadyError("[tool.meshready.images] must be a table")
    return table


def image_specs(raw: Mapping[str, Any]) -> list[ImageSpec]:
    """[tool.meshready.images.contexts] (name = context dir), or the two apps."""
    table = raw.get("contexts", DEFAULT_IMAGES)
    if not isinstance(table, Mapping) or not table:
        raise MeshreadyError("[tool.meshready.images.contexts] must map image names to dirs")
    return [ImageSpec(str(name), str(ctx)) for name, ctx in table.items()]


def build_command(
    builder: Builder,
    tag: str,
    context: Path,
    labels: Mapping[str, str],
    build_args: Mapping[str, str],
) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment for building `context` into `tag`."""
    env: dict[str, str] = {}
    if builder.kind == "docker" and builder.buildkit == "buildx":
        argv = [builder.path, "buildx", "build", "--load"]
    elif builder.kind == "docker":
        argv = [builder.path, "build"]
        env["DOCKER_BUILDKIT"] = "1" if builder.buildkit == "env" else "0"
    else:  # podman build and buildah build share these flags
        argv = [builder.path, "build", "--layers"]
    # Host networking: CI's engine has no bridge, so a RUN step needing the network has
    # nothing else.
    argv += ["--network", "host", "--tag", tag, "--file", str(context / "Dockerfile")]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    if builder.kind in ("podman", "buildah") and "SOURCE_DATE_EPOCH" in build_args:
        # Clamps every timestamp in the image, the created time included: reproducible.
        argv += ["--timestamp", build_args["SOURCE_DATE_EPOCH"]]
    argv.append(str(context))
    return argv, env


def pick_repo_digest(repo_digests: list[str], tag: str) -> str:
    """The `repo@sha256:...` among an image's RepoDigests that belongs to `tag`'s repository."""
    repo = parse_image(tag).repository
    for ref in repo_digests:
        parsed = parse_image(ref)
        if parsed.repository == repo and parsed.tag is None and parsed.pinned:
            return ref
    raise MeshreadyError(f"the engine recorded no registry digest for {repo} after pushing {tag}")


def parse_loadgen_report(output: str) -> tuple[int, str]:
    """(requests completed, URL) from loadgen's last progress line."""
    matches = LOADGEN_REPORT_RE.findall(output)
    if not matches:
        raise MeshreadyError(
            "loadgen printed no `N request(s) complete to URL` line", exit_code=EXIT_FINDINGS
        )
    count, url = matches[-1]
    return int(count), url


# ---------------------------------------------------------------- edges: probing


def _run(
    argv: list[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
        )
    except FileNotFoundError:
        raise MeshreadyError(f"{argv[0]}: not found") from None
    except subprocess.TimeoutExpired:
        raise MeshreadyError(
            f"{' '.join(argv[:3])} took longer than {timeout:.0f}s", exit_code=EXIT_FINDINGS
        ) from None


def _last_line(proc: subprocess.CompletedProcess) -> str:
    for stream in (proc.stderr, proc.stdout):
        lines = [line.strip() for line in stream.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"exit status {proc.returncode}"


def _probe_docker(path: str) -> BuilderProbe:
    proc = _run([path, "version", "--format", "{{.Client.Version}} {{.Server.Version}}"], 20)
    if proc.returncode != 0:
        return BuilderProbe(path, usable=False, why_not=f"no engine answers ({_last_line(proc)})")
    client = proc.stdout.split()[0] if proc.stdout.split() else "0"
    if _run([path, "buildx", "version"], 20).returncode == 0:
        return BuilderProbe(path, buildkit="buildx")
    digits = re.match(r"\d*", client)
    major = int(digits.group() or 0) if digits else 0
    # The CLI embedded BuildKit (DOCKER_BUILDKIT=1) until 23.0 made buildx the only way.
    return BuilderProbe(path, buildkit="env" if 18 <= major < 23 else "")


def _probe(kind: str, found: str | None) -> BuilderProbe:
    if found is None:
        return BuilderProbe(None)
    return _probe_docker(found) if kind == "docker" else BuilderProbe(found)


def detect_builder(env: Mapping[str, str] | None = None) -> Builder:
    env = os.environ if env is None else env
    path_var = env.get("PATH", "")
    override = env.get("BUILDER", "").strip() or None
    probes: dict[str, BuilderProbe] = {}
    if override:
        kind = builder_kind(override)
        if kind is not None:
            probes[kind] = _probe(kind, shutil.which(override, path=path_var))
        return choose_builder(override, probes)
    for kind in BUILDER_ORDER:
        probes[kind] = _probe(kind, shutil.which(kind, path=path_var))
        if probes[kind].path and probes[kind].usable:
            break  # the first usable one wins; the rest need no probing
    return choose_builder(override, probes)


# ---------------------------------------------------------------- edges: build, inspect


@dataclass
class BuiltImage:
    name: str
    tag: str
    seconds: float
    size_bytes: int = 0
    digest_ref: str = ""  # repo@sha256:... once pushed


def build_image(
    builder: Builder,
    root: Path,
    spec: ImageSpec,
    tag: str,
    labels: Mapping[str, str],
    build_args: Mapping[str, str],
    timeout: float = BUILD_TIMEOUT,
) -> BuiltImage:
    context = root / spec.context
    if not (context / "Dockerfile").is_file():
        raise MeshreadyError(f"{spec.context}/Dockerfile does not exist (image {spec.name})")
    argv, extra_env = build_command(builder, tag, context, labels, build_args)
    started = time.monotonic()
    proc = _run(argv, timeout, env=extra_env, cwd=root)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-25:])
        raise MeshreadyError(
            f"building {spec.name} from {spec.context} failed: {_last_line(proc)}\n{tail}",
            exit_code=EXIT_FINDINGS,
        )
    return BuiltImage(spec.name, tag, seconds, image_size(builder, tag))


def _inspect(builder: Builder, ref: str) -> dict[str, Any]:
    argv = [builder.path, "image", "inspect", ref]
    if builder.kind == "buildah":
        argv = [builder.path, "inspect", "--type", "image", ref]
    proc = _run(argv, 60)
    if proc.returncode != 0:
        raise MeshreadyError(f"cannot inspect {ref}: {_last_line(proc)}", exit_code=EXIT_FINDINGS)
    data = json.loads(proc.stdout)
    return data[0] if isinstance(data, list) else data


def image_size(builder: Builder, ref: str) -> int:
    data = _inspect(builder, ref)
    return int(data.get("Size") or data.get("ImageSize") or 0)


def image_labels(builder: Builder, ref: str) -> dict[str, str]:
    data = _inspect(builder, ref)
    config = data.get("Config") or data.get("OCIv1", {}).get("config") or {}
    return dict(config.get("Labels") or {})


def push_image(builder: Builder, tag: str, tmp_dir: Path) -> str:
    """Push `tag`; the `repo@sha256:...` the registry knows it by."""
    if builder.kind == "docker":
        proc = _run([builder.path, "push", tag], BUILD_TIMEOUT)
        if proc.returncode != 0:
            raise MeshreadyError(f"pushing {tag} failed: {_last_line(proc)}", EXIT_FINDINGS)
        return pick_repo_digest(_inspect(builder, tag).get("RepoDigests") or [], tag)
    digest_file = tmp_dir / f"digest-{secrets.token_hex(4)}"
    proc = _run([builder.path, "push", "--digestfile", str(digest_file), tag], BUILD_TIMEOUT)
    if proc.returncode != 0:
        raise MeshreadyError(f"pushing {tag} failed: {_last_line(proc)}", EXIT_FINDINGS)
    digest = digest_file.read_text().strip()
    if not DIGEST_RE.fullmatch(digest):
        raise MeshreadyError(f"{builder.kind} wrote no digest for {tag}", EXIT_FINDINGS)
    return f"{tag.rsplit(':', 1)[0]}@{digest}"


# ---------------------------------------------------------------- edges: smoke run


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, ""


@dataclass
class SmokeReport:
    port: int
    root_body: str
    requests_completed: int
    loadgen_url: str
    lines: list[str] = field(default_factory=list)


def hardened_run_flags(name: str) -> list[str]:
    return [
        "--rm",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        SMOKE_USER,
    ]


@contextlib.contextmanager
def _running_server(builder: Builder, tag: str, port: int) -> Iterator[str]:
    name = f"meshready-smoke-hello-{secrets.token_hex(4)}"
    # Host networking shares the machine's interfaces: bind loopback only.
    env = ["--env", f"PORT={port}", "--env", "LISTEN_ADDRESS=127.0.0.1"]
    argv = [builder.path, "run", "--detach", *hardened_run_flags(name), *env]
    proc = _run([*argv, tag], 120)
    if proc.returncode != 0:
        raise MeshreadyError(f"cannot start {tag}: {_last_line(proc)}", EXIT_FINDINGS)
    try:
        yield name
    finally:
        # --rm removes it once stopped; -f in case it ignores the stop signal.
        _run([builder.path, "rm", "--force", name], 60)


def _logs(builder: Builder, name: str) -> str:
    proc = _run([builder.path, "logs", "--tail", "20", name], 30)
    return (proc.stdout + proc.stderr).strip()


def smoke_run(
    builder: Builder, hello_tag: str, loadgen_tag: str, ready_timeout: float = 60.0
) -> SmokeReport:
    """Run the hello image hardened on a free loopback port, GET / and /readyz, then run
    the loadgen image against it for 3 s at 10 rps and check its report line."""
    if not builder.can_run:
        raise MeshreadyError(
            f"--smoke runs containers: {builder.kind} cannot; use docker or podman"
        )
    port = free_loopback_port()
    base = f"http://127.0.0.1:{port}"
    with _running_server(builder, hello_tag, port) as name:
        deadline = time.monotonic() + ready_timeout
        status = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, _ = _get(f"{base}/readyz", timeout=2)
                if status == 200:
                    break
            time.sleep(0.2)
        if status != 200:
            raise MeshreadyError(
                f"{hello_tag} was not ready on {base}/readyz within {ready_timeout:.0f}s "
                f"(last status {status or 'no answer'}); its log: {_logs(builder, name)}",
                EXIT_FINDINGS,
            )
        status, body = _get(f"{base}/")
        if status != 200 or body.strip() != "Hello World!":
            raise MeshreadyError(
                f"GET {base}/ gave {status} {body.strip()[:80]!r}, not 200 'Hello World!'",
                EXIT_FINDINGS,
            )
        load_name = f"meshready-smoke-loadgen-{secrets.token_hex(4)}"
        proc = _run(
            [
                builder.path,
                "run",
                *hardened_run_flags(load_name),
                "--env",
                f"SERVER_ADDR={base}",
                "--env",
                "REQUESTS_PER_SECOND=10",
                "--env",
                "DURATION=3",
                loadgen_tag,
            ],
            120,
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise MeshreadyError(
                f"{loadgen_tag} exited {proc.returncode} against {base}: {_last_line(proc)}",
                EXIT_FINDINGS,
            )
        count, url = parse_loadgen_report(output)
        if count <= 0:
            raise MeshreadyError(f"loadgen completed no requests to {url}", EXIT_FINDINGS)
    return SmokeReport(port, body.strip(), count, url, output.strip().splitlines())


def write_build_record(
    path: Path,
    builder: Builder,
    state: GitState,
    labels: Mapping[str, str],
    built: Mapping[str, BuiltImage],
) -> None:
    """What was built, as JSON (build/images.json): tags, sizes, build times, digests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "builder": builder.describe(),
        "revision": state.sha,
        "dirty": state.dirty,
        "labels": dict(labels),
        "images": {
            name: {
                "tag": i.tag,
                "size_bytes": i.size_bytes,
                "build_seconds": round(i.seconds, 2),
                "digest": i.digest_ref or None,
            }
            for name, i in built.items()
        },
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
